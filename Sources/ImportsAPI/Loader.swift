import Foundation
import HTTPKit
import Jobs
import Spawn

/// Runs ogr2ogr from the chosen dataset into the staging table (PostgreSQL driver, COPY), reporting
/// progress and stopping it (SIGTERM, then SIGKILL) on cancel or timeout.
///
/// Choices: `-lco GEOMETRY_NAME=geom -lco FID=cartodb_id` (CARTO's names), `LAUNDER=YES`, `PRECISION=NO`
/// (text/float8/integer rather than widths declared by the source), `-dim XY`, lines and polygons
/// promoted to Multi* (single and multi parts in one column type), points left as points, data
/// reprojected to EPSG:4326 (a layer without a CRS is taken to be EPSG:4326 already). No spatial index:
/// GDAL creates it with the table, so every row would be inserted into the GiST tree one at a time;
/// `Warehouse.finishStaging` builds it once the rows are in (a sorted bulk build, several times faster). No
/// `-skipfailures`: a feature GDAL cannot write fails the import instead of silently dropping rows
/// (row counts must equal the source), and skipfailures would also disable COPY batching.
struct Loader {
    let settings: ImportSettings
    let work: String
    let dataset: DatasetResolver.Dataset
    let layer: GDALTools.LayerInfo
    let autoguessing: Bool
    let schema: String
    let staging: String
    /// `geom`, unless the source has an attribute of that name or its attributes are not known (then a
    /// temporary name, renamed after the attributes).
    let geometryName: String

    init(settings: ImportSettings, work: String, dataset: DatasetResolver.Dataset, layer: GDALTools.LayerInfo, autoguessing: Bool,
         schema: String, staging: String) throws {
        self.settings = settings
        self.work = work
        self.dataset = dataset
        self.layer = layer
        self.autoguessing = autoguessing
        self.schema = schema
        self.staging = staging
        geometryName = layer.fromHead || layer.fields.contains { $0.name.lowercased() == "geom" } ? "tessera_geom_tmp" : "geom"
    }

    func arguments(conninfo: String) throws -> [String] {
        var argv = [try ChildProcess.tool("ogr2ogr"), "-f", "PostgreSQL", "--config", "PG_USE_COPY", "YES",
                    "-nln", staging, "-lco", "SCHEMA=\(schema)", "-lco", "GEOMETRY_NAME=\(geometryName)", "-lco", "FID=cartodb_id",
                    "-lco", "LAUNDER=YES", "-lco", "PRECISION=NO", "-lco", "SPATIAL_INDEX=NONE", "-dim", "XY", "-gt", "65536",
                    "-progress"]
        argv += GDALTools.openOptions(for: dataset.format, autoguessing: autoguessing)
        if layer.hasGeometry {
            argv += layer.hasSRS && !layer.lonLat ? ["-t_srs", "EPSG:4326"] : ["-a_srs", "EPSG:4326"]
            if layer.promoteToMulti { argv += ["-nlt", "PROMOTE_TO_MULTI"] }
        }
        argv += ["PG:" + conninfo, dataset.path]
        if !layer.fromHead { argv.append(layer.name) }
        return argv
    }

    /// Loads; returns the child's peak RSS in KiB. A CSV/TSV is checked (`CSVCheck`) on another thread
    /// while GDAL loads it, not before: the check is a full read of the file that ran alone on one of the
    /// two cores ahead of every CSV import. A file the check refuses stops the load and fails with the
    /// check's message (what is wrong, and where), whatever GDAL made of it; the caller drops the staging
    /// table as for any failed load.
    func run(conninfo: String, password: String?, deadline: Date, context: JobContext) throws -> Int {
        let csv = dataset.format == .csv || dataset.format == .tsv
        let path = dataset.path, separator: UInt8? = dataset.format == .tsv ? 9 : nil
        let check = csv ? BackgroundWork { try CSVCheck.validate(path: path, separator: separator, isCancelled: { context.isCancelled }) } : nil
        do {
            let peakRSS = try load(conninfo: conninfo, password: password, deadline: deadline, context: context,
                                   refused: { check?.failure == nil ? nil : "The file failed the CSV check" })
            try check?.result()
            return peakRSS
        } catch {
            try check?.result()
            throw error
        }
    }

    /// One ogr2ogr run; `reports` is false for the second half of a split load (the first reports for both).
    func load(conninfo: String, password: String?, deadline: Date, context: JobContext, reports: Bool = true,
              refused: () -> String?) throws -> Int {
        let out = work + "/ogr2ogr-\(staging).out", err = work + "/ogr2ogr-\(staging).err"
        var env = try GDALTools.environment(keeping: [dataset.format.driver, "PostgreSQL"], workDir: work, password: password)
        // The staging table's commits need not wait for the disk: the swap's own commit flushes the WAL
        // up to it (staging rows included), and a crash before that leaves a table the retry drops.
        env["PGOPTIONS"] = "-c synchronous_commit=off"
        let child = try ChildProcess(try arguments(conninfo: conninfo), environment: env, stdout: out, stderr: err)
        let total = max(layer.featureCount, 0)
        let inputSize = fileSize(realPath(dataset.path))
        let outcome = child.wait(deadline: deadline, isCancelled: { context.isCancelled }, check: refused, tick: {
            guard reports else { return }
            var percent = Loader.progressPercent(ChildProcess.tail(out, limit: 256))
            if percent == nil, inputSize > 0, let position = Loader.readPosition(pid: child.pid, path: realPath(dataset.path)) {
                percent = min(99, position * 100 / inputSize)
            }
            // The total is unknown (0) for single-layer files, which are not counted beforehand.
            var progress: [String: JSON] = ["phase": "loading"]
            if total > 0 { progress["total_rows"] = .int(total) }
            if let percent {
                progress["percent"] = .int(percent)
                if total > 0 { progress["rows"] = .int(total * percent / 100) }
            }
            context.report(progress: .object(progress))
        })
        switch outcome {
        case .exited(0):
            return child.peakRSSKiB
        case .cancelled:
            throw ImportCancelled()
        case .timedOut:
            throw ImportFailure("The import did not finish within \(settings.timeoutSeconds) s")
        case .aborted(let why):
            throw ImportFailure(why)
        case .signalled(let sig):
            throw ImportFailure("ogr2ogr was killed by signal \(sig)" + (sig == SIGKILL ? " (out of memory?)" : ""), permanent: sig != SIGKILL)
        case .exited:
            let message = GDALTools.gdalMessage(err)
            let transient = ["could not connect", "Connection refused", "server closed the connection", "terminating connection",
                             "could not translate host", "timeout expired", "the database system is"].contains { message.contains($0) }
            throw ImportFailure("GDAL could not load the data: \(message)", permanent: !transient)
        }
    }

    /// ogr2ogr -progress prints "0...10...20...": the last number seen.
    static func progressPercent(_ text: String) -> Int? {
        if text.contains("100 - done") { return 100 }
        // stdout holds nothing but the progress line; anything else means there is no progress to read.
        guard !text.isEmpty, text.allSatisfy({ $0 == "." || $0.isWhitespace || ($0.isASCII && $0.isNumber) }) else { return nil }
        return text.split(whereSeparator: { !($0.isASCII && $0.isNumber) }).compactMap { Int($0) }.filter { $0 <= 100 }.last
    }

    /// How far the child has read `path` (for drivers without a fast feature count, e.g. CSV).
    static func readPosition(pid: pid_t, path: String) -> Int? {
        let fdDir = "/proc/\(pid)/fd"
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: fdDir) else { return nil }
        for fd in fds {
            guard (try? FileManager.default.destinationOfSymbolicLink(atPath: fdDir + "/" + fd)) == path,
                  let info = try? String(contentsOfFile: "/proc/\(pid)/fdinfo/\(fd)", encoding: .utf8) else { continue }
            for line in info.split(separator: "\n") where line.hasPrefix("pos:") {
                return Int(line.dropFirst(4).trimmingCharacters(in: .whitespaces))
            }
        }
        return nil
    }
}

func realPath(_ path: String) -> String {
    guard let resolved = realpath(path, nil) else { return path }
    defer { free(resolved) }
    return String(cString: resolved)
}
