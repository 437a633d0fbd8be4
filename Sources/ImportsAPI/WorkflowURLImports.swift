import Foundation
import HTTPKit
import Jobs
import OutboundHTTP
import Platform
import Postgres
import Workflows

/// import_url nodes of workflows, loaded exactly like a URL import (same guard, limits, detection and
/// ogr2ogr options) but straight into the node's table in the workflow's schema; the workflow runner
/// decides its name (the cache key) and publishes it.
public struct WorkflowURLImports: WorkflowURLImporter {
    let services: Services
    let settings: ImportSettings

    public init(services: Services) {
        self.services = services
        settings = ImportSettings(config: services.config)
    }

    public func load(url: String, account: String, connection: String, schema: String, table: String, context: JobContext) throws -> Int {
        let deadline = Date().addingTimeInterval(Double(settings.timeoutSeconds))
        let record = try services.warehouses.connection(account: account, name: connection)
        let pool = try services.warehouses.privilegedPool(for: record)
        let warehouse = Warehouse(pool: pool, schema: schema, staging: table, jobId: 0)
        let drop = { _ = try? pool.withConnection { db in try db.execute("DROP TABLE IF EXISTS \(warehouse.qualified(table))") } }
        drop()
        // The sql-worker's own temporary folder: the import-worker's directory belongs to another service.
        let work = (NSTemporaryDirectory() as NSString).appendingPathComponent("tessera-wf-import-" + UUID().uuidString)
        guard mkdir(work, 0o700) == 0 else { throw APIError.internalError("Could not create a work folder for the import") }
        defer { try? FileManager.default.removeItem(atPath: work) }
        do {
            let downloader = Downloader(guardian: URLGuard(allowlist: settings.privateURLAllowlist), maxBytes: settings.maxBytes,
                                        maxRedirects: settings.maxRedirects)
            let got = try downloader.download(url, into: work, deadline: deadline, isCancelled: { context.isCancelled }) { _ in }
            if try ImportRunner.isRaster(input: got.path, hints: got.nameHints) {
                throw ImportFailure("import_url reads vector files (CSV, GeoJSON, GeoPackage, …), not rasters")
            }
            let dataset = try DatasetResolver(settings: settings).resolve(input: got.path, nameHints: got.nameHints, workDir: work,
                                                                            deadline: deadline, isCancelled: { context.isCancelled })
            var layers = try GDALTools.layers(of: dataset.path, format: dataset.format, autoguessing: true, workDir: work, counted: false,
                                              deadline: deadline, isCancelled: { context.isCancelled })
            if layers.count > 1 {
                layers = try GDALTools.layers(of: dataset.path, format: dataset.format, autoguessing: true, workDir: work,
                                              deadline: deadline, isCancelled: { context.isCancelled })
            }
            let (layer, _) = try ImportRunner.chooseLayer(layers)
            let (conninfo, password) = try services.warehouses.toolConninfo(for: record, applicationName: "tessera-workflow-import")
            let loader = try Loader(settings: settings, work: work, dataset: dataset, layer: layer, autoguessing: true, schema: schema,
                                    staging: table)
            _ = try loader.run(conninfo: conninfo, password: password, deadline: deadline, context: context)
            if context.isCancelled { throw ImportCancelled() }
            var phases = ImportPhases()
            return try warehouse.finishStaging(geometryName: loader.geometryName, deadline: deadline, phases: &phases).rows
        } catch {
            drop()
            if context.isCancelled { throw error }
            let (message, permanent) = ImportRunner.describe(error)
            throw permanent ? APIError.badRequest(message, code: "import_failed") : APIError(502, "import_failed", message)
        }
    }
}
