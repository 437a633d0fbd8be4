import HTTPKit
import Platform
import Workflows

/// The workspace-api program's routes: accounts and sessions, OAuth, tokens, connections, users, maps and
/// the data explorer.
public enum WorkspaceAPI {
    public static func router(_ services: Services) -> Router {
        let router = Router()
        AccountRoutes(services: services).register(router)
        TokenRoutes(services: services).register(router)
        ConnectionRoutes(services: services).register(router)
        UserRoutes(services: services).register(router)
        MapRoutes(services: services).register(router)
        PublicMapRoutes(services: services).register(router)
        WorkspaceConfigRoutes(services: services).register(router)
        ExplorerRoutes(services: services).register(router)
        SQLQueryRoutes(services: services).register(router)
        PasswordResetRoutes(services: services).register(router)
        WorkflowRoutes(services: services).register(router)
        router.get("/api/health") { _ in .json(["status": "ok"]) }
        return router
    }
}

extension Services {
    /// Parameters with the configured body limit.
    func parameters(_ request: HTTPRequest) throws -> Parameters {
        try Parameters.from(request, bodyLimit: config.maxBodyBytes)
    }
}

extension Parameters {
    func required(_ name: String) throws -> String {
        guard let value = string(name), !value.isEmpty else {
            throw APIError.badRequest("Missing required parameter: \(name)", code: "missing_parameter")
        }
        return value
    }
}
