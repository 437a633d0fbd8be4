import Config
import FastCGI
import HTTPKit
import Platform
import WorkspaceAPI

FastCGIProgram.run(name: "tessera-workspace-api") { args in
    let config = try TesseraConfig.load(file: args.configFile)
    let services = try Services(config: config)
    return (HTTPApplication(name: "workspace-api", router: WorkspaceAPI.router(services)), config.threads)
}
