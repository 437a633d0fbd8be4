import HTTPKit
import Platform

/// The SQL API v3 routes, served by the maps-api program.
public enum SQLAPI {
    public static func register(_ router: Router, services: Services) {
        let route = QueryRoute(services: services)
        router.get("/api/v3/sql/{connection}/query", route.handle)
        router.post("/api/v3/sql/{connection}/query", route.handle)
        BatchJobRoutes(services: services).register(router)
        ExportRoutes(services: services).register(router)
    }
}
