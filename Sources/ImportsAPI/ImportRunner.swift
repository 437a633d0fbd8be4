import Foundation
import HTTPKit
import Jobs
import Observability
import OutboundHTTP
import Platform
import Postgres
import Spawn

/// Runs import jobs for the import-worker.
///
/// One attempt: fetch the input (upload or checked URL) into `work/job-<id>/`, decide the format and
/// dataset, load it with ogr2ogr into a staging table `<schema>.tessera_import_<job id>` (a large GeoJSON
/// file in two halves at once, `Loader+Split`), tidy the staging table, then swap it in. The swap (drop of the old table when overwriting, rename, marker
/// row) is ONE warehouse transaction made while the job row is locked in the metadata database; the
/// job's completion and its DataChange record (cache purge, levels refresh) commit together right after. A retry first drops
/// what a dead attempt left (its staging table, its ogr2ogr session, its work folder); the marker keyed by
/// the job id makes an attempt that died between the two commits complete without importing twice.
public struct ImportRunner: Sendable {
    let services: Services
    let settings: ImportSettings
    static let markers = "carto.tessera_import_markers"

    public init(services: Services, settings: ImportSettings) {
        self.services = services
        self.settings = settings
    }

    var uploads: UploadStore { UploadStore(directory: settings.uploadsDir) }

    static func stagingName(_ jobId: Int64) -> String { "tessera_import_\(jobId)" }
    static func applicationName(_ jobId: Int64) -> String { "tessera-import-\(jobId)" }

    public func run(_ job: Job, _ context: JobContext) throws -> JSON? {
        guard job.kind == "import" else { throw PermanentJobError("Unknown import job kind \(job.kind)") }
        let request: ImportRequest
        do { request = try ImportRequest(payload: job.payload) } catch {
            throw PermanentJobError("The import job is incomplete")
        }
        let work = settings.workDir + "/job-\(job.id)"
        var dropUpload = false
        defer {
            try? FileManager.default.removeItem(atPath: work)
            if dropUpload, case .upload(let file, _, _) = request.source { uploads.remove(file) }
        }
        do {
            let result = try attempt(job, request, context, work: work)
            dropUpload = true
            return result
        } catch {
            dropStagingIfOwned(job, request)
            if error is ImportCancelled || context.isCancelled {
                // Cancelled by the user: final, the upload goes. Released at shutdown: it runs again, keep it.
                let requested = (try? cancelRequested(job.id)) ?? false
                dropUpload = requested
                if requested && !context.isCancelled {
                    // Seen in our own check before the worker's heartbeat noticed: record it as cancelled here.
                    try? JobQueue(pool: services.metadata).acknowledgeCancel(job)
                }
                throw ImportCancelled()
            }
            let (message, permanent) = ImportRunner.describe(error)
            dropUpload = permanent || job.attempt >= job.maxAttempts
            Log.warning("import_failed", [("job", job.id), ("permanent", permanent), ("error", message)])
            if permanent { throw PermanentJobError(message) }
            throw ImportFailure(message, permanent: false)
        }
    }

    /// A user-facing message and whether retrying is pointless.
    static func describe(_ error: Error) -> (String, Bool) {
        switch error {
        case let f as ImportFailure: return (f.message, f.permanent)
        case let f as URLRefused: return (f.message, f.permanent)
        case let p as PermanentJobError: return (p.message, true)
        case let e as APIError: return (e.message, e.status < 500 && e.status != 429)
        case let e as PGError:
            let api = APIError(e)
            return (api.message, !e.connectionLost && api.status < 500 && api.status != 429 && e.sqlstate?.hasPrefix("40") != true
                    && e.sqlstate != "55P03")
        case let e as ChildProcess.Failure: return (e.message, false)
        default: return (String(describing: error), false)
        }
    }

    /// Drops this attempt's staging table, unless the job now belongs to another attempt (lease lost),
    /// which uses the same staging name.
    func dropStagingIfOwned(_ job: Job, _ request: ImportRequest) {
        do {
            let owned = try services.metadata.withConnection { db in
                try db.execute("SELECT 1 FROM jobs WHERE id = $1 AND lease_token = $2::uuid", [String(job.id), job.leaseToken]).rowCount == 1
            }
            guard owned, let account = job.accountId else { return }
            let record = try services.warehouses.connection(account: account, name: request.connection)
            let warehouse = Warehouse(pool: try services.warehouses.privilegedPool(for: record), schema: request.schema,
                                      staging: ImportRunner.stagingName(job.id), jobId: job.id)
            try warehouse.dropLeftovers(applicationName: ImportRunner.applicationName(job.id))
        } catch {
            Log.warning("import_staging_cleanup_failed", [("job", job.id), ("error", String(describing: error))])
        }
    }

    func cancelRequested(_ id: Int64) throws -> Bool {
        try services.metadata.withConnection { db in
            try db.execute("SELECT cancel_requested FROM jobs WHERE id = $1", [String(id)]).bool(0, 0) ?? false
        }
    }

    func attempt(_ job: Job, _ request: ImportRequest, _ context: JobContext, work: String) throws -> JSON? {
        guard let account = job.accountId else { throw ImportFailure("The import job has no organisation") }
        let deadline = Date().addingTimeInterval(Double(settings.timeoutSeconds))
        let record = try services.warehouses.connection(account: account, name: request.connection)
        let pool = try services.warehouses.privilegedPool(for: record)
        let warehouse = Warehouse(pool: pool, schema: request.schema, staging: ImportRunner.stagingName(job.id), jobId: job.id)

        let markers = warehouse.ensureMarkers()
        if markers, let done = try warehouse.marker() {
            // A previous attempt swapped the table in but died before recording it: record it now.
            Log.info("import_already_applied", [("job", job.id)])
            try finish(job, request, account: account, warehouse: warehouse, result: done, alreadySwapped: true)
            return nil
        }
        try warehouse.dropLeftovers(applicationName: ImportRunner.applicationName(job.id))
        try warehouse.requireSchema()
        if !request.overwrite, try warehouse.exists(request.table) {
            throw ImportFailure("Table \(request.destination) already exists; set overwrite=true to replace it")
        }

        try? FileManager.default.removeItem(atPath: work)
        guard mkdir(work, 0o700) == 0 else {
            throw ImportFailure("Could not create the import work folder (\(String(cString: strerror(errno))))", permanent: false)
        }

        var phases = ImportPhases()
        var started = DispatchTime.now().uptimeNanoseconds
        // 1. The input.
        let input: String
        var hints: [String] = []
        switch request.source {
        case .upload(let file, let filename, _):
            input = uploads.path(file)
            guard access(input, R_OK) == 0 else { throw ImportFailure("The uploaded file is no longer available") }
            if let filename { hints.append(filename) }
        case .url(let url):
            context.report(progress: ["phase": "downloading", "bytes": 0])
            let downloader = Downloader(guardian: URLGuard(allowlist: settings.privateURLAllowlist), maxBytes: settings.maxBytes,
                                        maxRedirects: settings.maxRedirects)
            let got = try downloader.download(url, into: work, deadline: deadline, isCancelled: { context.isCancelled }) { bytes in
                context.report(progress: ["phase": "downloading", "bytes": .int(bytes)])
            }
            input = got.path
            hints = got.nameHints
            phases.record("download", since: started)
        }
        if context.isCancelled { throw ImportCancelled() }
        if try ImportRunner.isRaster(input: input, hints: hints) {
            return try attemptRaster(job, request, context, work: work, input: input, warehouse: warehouse, account: account, deadline: deadline)
        }

        // 2. What it is.
        context.report(progress: ["phase": "inspecting"])
        started = DispatchTime.now().uptimeNanoseconds
        let dataset = try DatasetResolver(settings: settings).resolve(input: input, nameHints: hints, workDir: work, deadline: deadline,
                                                                        isCancelled: { context.isCancelled })
        let layers = try ImportRunner.layers(of: dataset, autoguessing: request.autoguessing, work: work, deadline: deadline,
                                             isCancelled: { context.isCancelled })
        let (layer, skipped) = try ImportRunner.chooseLayer(layers)
        phases.record("inspect", since: started)

        // 3. Load into the staging table.
        let (conninfo, password) = try services.warehouses.toolConninfo(for: record, applicationName: ImportRunner.applicationName(job.id))
        let load = try Loader(settings: settings, work: work, dataset: dataset, layer: layer, autoguessing: request.autoguessing,
                              schema: request.schema, staging: warehouse.staging)
        let peakRSS = try load.loadStaging(into: warehouse, applicationName: ImportRunner.applicationName(job.id), conninfo: conninfo,
                                           password: password, deadline: deadline, context: context, phases: &phases)
        if context.isCancelled { throw ImportCancelled() }

        // 4. Tidy and measure the staging table.
        context.report(progress: layer.featureCount >= 0 ? ["phase": "finalizing", "rows": .int(layer.featureCount), "percent": 100]
                                                          : ["phase": "finalizing", "percent": 100])
        var stats = try warehouse.finishStaging(geometryName: load.geometryName, deadline: deadline, phases: &phases)
        if !skipped.isEmpty {
            stats.warnings.append("The file has several layers; imported \(layer.name), skipped \(skipped.joined(separator: ", "))")
        }
        var result: [String: JSON] = [
            "table": .string(request.destination), "schema": .string(request.schema), "tableName": .string(request.table),
            "rows": .int(stats.rows), "format": .string(dataset.format.rawValue), "layer": .string(layer.name),
            "geometryType": stats.geometryType.map(JSON.string) ?? .null, "warnings": .array(stats.warnings.map(JSON.string)),
            "ogr2ogrPeakRssKiB": .int(peakRSS), "phasesMs": phases.json,
        ]
        if let member = dataset.member { result["archiveMember"] = .string(member) }

        // 5. Swap it in, record completion.
        started = DispatchTime.now().uptimeNanoseconds
        try finish(job, request, account: account, warehouse: warehouse, result: .object(result), alreadySwapped: false)
        phases.record("swap", since: started)
        Log.info("import_phases", [("job", job.id), ("ms", phases.summary)])
        return nil
    }

    /// The input's layers, as much as the loader needs to know of them.
    static func layers(of dataset: DatasetResolver.Dataset, autoguessing: Bool, work: String, deadline: Date,
                       isCancelled: () -> Bool) throws -> [GDALTools.LayerInfo] {
        // Counting features is a full pass over the file (for a CSV about as long as loading it): only a
        // file with several layers needs counts, to skip its empty ones. GDAL parses a whole GeoJSON file
        // just to open it: its first bytes say what the load needs (`GeoJSONHead`), ogrinfo only when not.
        if dataset.format == .geojson, let head = GeoJSONHead.read(path: dataset.path) {
            return [GDALTools.LayerInfo(head: head, path: dataset.path)]
        }
        var layers = try GDALTools.layers(of: dataset.path, format: dataset.format, autoguessing: autoguessing, workDir: work,
                                          counted: false, deadline: deadline, isCancelled: isCancelled)
        if layers.count > 1 {
            layers = try GDALTools.layers(of: dataset.path, format: dataset.format, autoguessing: autoguessing, workDir: work,
                                          deadline: deadline, isCancelled: isCancelled)
        }
        return layers
    }

    /// The layer to import: the first one with features (GPX waypoints/routes/tracks, KML folders,
    /// GeoPackage tables); the others are reported in a warning.
    static func chooseLayer(_ layers: [GDALTools.LayerInfo]) throws -> (GDALTools.LayerInfo, [String]) {
        guard let chosen = layers.first(where: { $0.featureCount != 0 }) else {
            throw ImportFailure("The file contains no rows")
        }
        if chosen.name.hasPrefix("-") { throw ImportFailure("Layer names starting with '-' are not supported") }
        let skipped = layers.filter { $0.name != chosen.name && $0.featureCount != 0 }.map(\.name)
        return (chosen, skipped)
    }

    /// Swaps the staging table in and completes the job; both halves are described on the type.
    func finish(_ job: Job, _ request: ImportRequest, account: String, warehouse: Warehouse, result: JSON, alreadySwapped: Bool) throws {
        try services.metadata.transaction { meta in
            let row = try meta.execute(
                "SELECT cancel_requested FROM jobs WHERE id = $1 AND lease_token = $2::uuid AND state = 'running' FOR UPDATE",
                [String(job.id), job.leaseToken])
            guard row.rowCount == 1 else { throw ImportCancelled() } // the lease was lost: another attempt owns the job
            if !alreadySwapped {
                if row.bool(0, 0) == true { throw ImportCancelled() }
                try warehouse.swap(into: request.table, overwrite: request.overwrite, result: result)
            }
            guard try JobQueue.complete(job, result: result, on: meta) else { throw ImportCancelled() }
            try DataChange.record(account: account, connection: request.connection, table: request.destination, on: meta)
        }
        Log.info("import_completed", [("job", job.id), ("table", request.destination), ("rows", result["rows"]?.intValue)])
    }
}
