import Foundation
import HTTPKit
import Platform

/// The Imports API routes, served by the import-api program (the import-worker does the loading).
public enum ImportsAPI {
    public static func register(_ router: Router, services: Services) throws {
        let settings = ImportSettings(config: services.config)
        try settings.ensureDirectories()
        router.get("/api/v3/imports/health") { _ in .json(["status": "ok"]) }
        ImportRoutes(services: services, settings: settings).register(router)
    }
}
