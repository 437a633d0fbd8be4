import Foundation
import Jobs
import Observability

/// A large GeoJSON FeatureCollection loaded in two halves at once.
///
/// GDAL's GeoJSON driver parses the file twice on one core (the schema pass was about 40% of a 100 MB
/// load), so one ogr2ogr leaves the second core idle. The file is cut at a feature boundary near its middle
/// (`GeoJSONSplit`), each half loads into a staging table of its own in its own ogr2ogr, and the second
/// table is appended to the first (`Warehouse.appendSecondHalf`): the same rows, ids and columns as one
/// load, in about 60% of the wall time for the same CPU. Only files whose head told the loader all it
/// needs are cut (no `crs` member anywhere: a member after `features` would be lost from the first half),
/// and none under `GeoJSONSplit.minimumBytes`. When GDAL typed the halves differently, both tables are
/// dropped and the file loads whole, as before.
extension Loader {
    var splittable: Bool { dataset.format == .geojson && layer.fromHead && layer.lonLat }

    /// Loads the staging table, in two halves when worth it; returns the peak RSS in KiB (of both processes
    /// together when split).
    func loadStaging(into warehouse: Warehouse, applicationName: String, conninfo: String, password: String?, deadline: Date,
                     context: JobContext, phases: inout ImportPhases) throws -> Int {
        var started = DispatchTime.now().uptimeNanoseconds
        if let peakRSS = try runSplit(second: warehouse.secondStaging, conninfo: conninfo, password: password, deadline: deadline,
                                      context: context, phases: &phases) {
            if context.isCancelled { throw ImportCancelled() }
            started = DispatchTime.now().uptimeNanoseconds
            let merged = try warehouse.appendSecondHalf(deadline: deadline)
            phases.record("merge", since: started)
            if merged { return peakRSS }
            Log.warning("import_split_fallback", [("job", warehouse.jobId), ("reason", "GDAL typed the two halves' columns differently")])
            started = DispatchTime.now().uptimeNanoseconds
            try warehouse.dropLeftovers(applicationName: applicationName)
        }
        let peakRSS = try run(conninfo: conninfo, password: password, deadline: deadline, context: context)
        phases.record("load", since: started)
        return peakRSS
    }

    /// Both halves into `staging` and `second`, at once; nil (nothing done) when the file is not cut. A
    /// failure of either stops the other; the error reported is the one that failed first.
    func runSplit(second: String, conninfo: String, password: String?, deadline: Date, context: JobContext,
                  phases: inout ImportPhases) throws -> Int? {
        let started = DispatchTime.now().uptimeNanoseconds
        let path = realPath(dataset.path), size = fileSize(path)
        guard splittable, size >= GeoJSONSplit.minimumBytes, let cut = GeoJSONSplit.find(path: path, size: size) else { return nil }
        let firstPath = work + "/first-half.geojson", secondPath = work + "/second-half.geojson"
        defer {
            unlink(firstPath)
            unlink(secondPath)
        }
        try GeoJSONSplit.writeFirstHalf(cut, of: path, to: firstPath)
        phases.record("split", since: started)
        let loading = DispatchTime.now().uptimeNanoseconds
        defer { phases.record("load", since: loading) }
        let first = try half(firstPath, staging: staging), other = try half(secondPath, staging: second)
        let stop = StopRequest()
        let background = BackgroundWork {
            try GeoJSONSplit.writeSecondHalf(cut, of: path, size: size, to: secondPath)
            return try other.load(conninfo: conninfo, password: password, deadline: deadline, context: context, reports: false,
                                  refused: { stop.requested ? StopRequest.reason : nil })
        }
        let peakRSS: Int
        do {
            peakRSS = try first.load(conninfo: conninfo, password: password, deadline: deadline, context: context,
                                     refused: { background.failure == nil ? nil : StopRequest.reason })
        } catch {
            stop.request()
            if let stopped = error as? ImportFailure, stopped.message == StopRequest.reason, let cause = background.failure { throw cause }
            background.wait()
            throw error
        }
        return peakRSS + (try background.result())
    }

    private func half(_ path: String, staging: String) throws -> Loader {
        try Loader(settings: settings, work: work, dataset: DatasetResolver.Dataset(path: path, format: dataset.format, member: nil),
                   layer: layer, autoguessing: autoguessing, schema: schema, staging: staging)
    }
}

/// Tells the second half's ogr2ogr to stop when the first one failed.
private final class StopRequest: @unchecked Sendable {
    static let reason = "The other half of the file failed to load"
    private let lock = NSLock()
    private var flag = false

    var requested: Bool { lock.withLock { flag } }
    func request() { lock.withLock { flag = true } }
}
