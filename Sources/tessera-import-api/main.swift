import Config
import FastCGI
import HTTPKit
import ImportsAPI
import Platform

FastCGIProgram.run(name: "tessera-import-api") { args in
    let config = try TesseraConfig.load(file: args.configFile)
    let services = try Services(config: config)
    let router = Router()
    try ImportsAPI.register(router, services: services)
    return (HTTPApplication(name: "import-api", router: router), config.threads)
}
