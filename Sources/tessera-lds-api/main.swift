import Config
import FastCGI
import HTTPKit
import LDSAPI
import Platform

FastCGIProgram.run(name: "tessera-lds-api") { args in
    let config = try TesseraConfig.load(file: args.configFile)
    let services = try Services(config: config)
    let router = Router()
    LDSAPI.register(router, services: services)
    return (HTTPApplication(name: "lds-api", router: router), config.threads)
}
