import Config
import FastCGI
import HTTPKit
import Platform
import MapsAPI
import SQLAPI

FastCGIProgram.run(name: "tessera-maps-api") { args in
    let config = try TesseraConfig.load(file: args.configFile)
    let services = try Services(config: config)
    let router = Router()
    SQLAPI.register(router, services: services)
    MapsAPI.register(router, services: services)
    router.get("/api/v3/maps/health") { _ in .json(["status": "ok"]) }
    return (HTTPApplication(name: "maps-api", router: router), config.threads)
}
