import Foundation
import HTTPKit
import Jobs
import Observability
import Platform
import SQLAPI
import Spawn

/// Writes export jobs for the sql-worker: GDAL's `ogr2ogr` reads the query from the warehouse (a cursor,
/// so memory stays flat however many rows) and writes the file into the job's `partial/` folder; the
/// finished file is moved next to it, anything else (failure, cancel, size limit) removes the folder.
/// The child connects with the connection's tool conninfo, its password only in the child's
/// environment, and in read-only transactions: an export never writes to the warehouse.
public struct ExportRunner: Sendable {
    let services: Services
    public static let kind = ExportRoutes.kind
    public init(services: Services) { self.services = services }

    public func run(_ job: Job, _ context: JobContext) throws -> JSON? {
        guard let account = job.accountId, let name = job.payload["connection"]?.stringValue,
              let query = job.payload["query"]?.stringValue,
              let format = job.payload["format"]?.stringValue.flatMap(ExportFormat.init(rawValue:)) else {
            throw PermanentJobError("The export has no connection, query or format")
        }
        let layer = ExportRoutes.fileName(job.payload["name"]?.stringValue ?? "export")
        let record: ConnectionRecord
        do { record = try services.warehouses.connection(account: account, name: name) } catch let e as APIError {
            throw PermanentJobError(e.message)
        }
        let tool = try services.warehouses.toolConninfo(for: record, applicationName: "tessera-export")
        let files = ExportFiles(directory: services.config.importDir)
        let partial = files.partialDir(job.id)
        // A rerun (after a crash) starts from nothing.
        try? FileManager.default.removeItem(atPath: files.jobDir(job.id))
        try FileManager.default.createDirectory(atPath: partial, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var keep = false
        defer { if !keep { try? FileManager.default.removeItem(atPath: files.jobDir(job.id)) } }

        let file = layer + "." + format.fileExtension
        let argv = [try ChildProcess.tool("ogr2ogr"), "-f", format.driver] + format.layerOptions
            + ["-nln", layer, partial + "/" + file, "PG:" + tool.conninfo, "-sql", query]
        let timeoutMs = services.config.sqlJobTimeoutMs
        var env = [
            "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": partial, "CPL_TMPDIR": partial,
            "GDAL_DRIVER_PATH": "disable", "GDAL_HTTP_PROXY": "127.0.0.1:9", "GDAL_HTTPS_PROXY": "127.0.0.1:9",
            "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tessera-no-remote-access", "GDAL_CACHEMAX": "64",
            "PGCONNECT_TIMEOUT": "10",
            "PGOPTIONS": "-c default_transaction_read_only=on -c statement_timeout=\(timeoutMs)",
        ]
        if let password = tool.password { env["PGPASSWORD"] = password }
        let maxBytes = services.config.exportMaxBytes
        let child = try ChildProcess(argv, environment: env, stdout: files.jobDir(job.id) + "/ogr2ogr.out",
                                     stderr: files.jobDir(job.id) + "/ogr2ogr.err")
        let outcome = child.wait(deadline: Date().addingTimeInterval(Double(timeoutMs) / 1000), isCancelled: { context.isCancelled },
                                 check: {
                                     Self.size(of: partial) > maxBytes ? "The export is larger than the limit of \(maxBytes) bytes (TESSERA_EXPORT_MAX_BYTES)" : nil
                                 },
                                 tick: { context.report(progress: ["phase": "writing", "bytes": .int(Self.size(of: partial))]) })
        let message = Self.gdalMessage(ChildProcess.tail(files.jobDir(job.id) + "/ogr2ogr.err", limit: 8192))
        switch outcome {
        case .exited(0):
            break
        case .cancelled:
            throw PermanentJobError("The export was cancelled")
        case .timedOut:
            throw PermanentJobError("The export did not finish within \(timeoutMs / 1000) s")
        case .aborted(let why):
            throw PermanentJobError(why)
        case .signalled(let sig):
            throw PermanentJobError("ogr2ogr was killed by signal \(sig)")
        case .exited:
            let transient = ["could not connect", "Connection refused", "server closed the connection", "the database system is"]
                .contains { message.contains($0) }
            if transient { throw ExportRetry(message: "The warehouse could not be reached: \(message)") }
            throw PermanentJobError("The export failed: \(message)")
        }
        let finalPath = files.jobDir(job.id) + "/" + file
        try FileManager.default.moveItem(atPath: partial + "/" + file, toPath: finalPath)
        try? FileManager.default.removeItem(atPath: partial)
        for log in ["/ogr2ogr.out", "/ogr2ogr.err"] { try? FileManager.default.removeItem(atPath: files.jobDir(job.id) + log) }
        keep = true
        let bytes = Self.size(of: finalPath)
        let expiresAt = Int(Date().timeIntervalSince1970) + services.config.exportTTLSeconds
        Log.info("export_written", [("job", job.id), ("format", format.rawValue), ("bytes", bytes), ("peak_rss_kib", child.peakRSSKiB)])
        return ["file": .string(file), "format": .string(format.rawValue), "bytes": .int(bytes),
                "peakRssKiB": .int(child.peakRSSKiB), "expiresAt": .int(expiresAt)]
    }

    /// Bytes under `path` (a file, or a folder and its files).
    static func size(of path: String) -> Int {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { return 0 }
        guard isDir.boolValue else { return ((try? fm.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? 0 }
        return (fm.subpaths(atPath: path) ?? []).reduce(0) { $0 + (((try? fm.attributesOfItem(atPath: path + "/" + $1)[.size]) as? NSNumber)?.intValue ?? 0) }
    }

    /// GDAL's error lines without the "ERROR 1:" prefixes; at most 500 characters.
    static func gdalMessage(_ stderr: String) -> String {
        let lines = stderr.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let errors = lines.filter { $0.hasPrefix("ERROR") }
        // The first error is the cause; what GDAL says after it is about the aborted output.
        let chosen = (errors.isEmpty ? Array(lines.prefix(3)) : [errors[0]]).map { line -> String in
            guard line.hasPrefix("ERROR"), let colon = line.firstIndex(of: ":") else { return line }
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return String((chosen.isEmpty ? "unknown error" : chosen.joined(separator: "; ")).prefix(500))
    }
}

/// A failure worth another attempt (the warehouse was unreachable).
struct ExportRetry: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Deletes export folders nothing has touched for the export TTL: finished files past their expiry,
/// and what a killed worker left. Runs in the sql-worker every minute.
public final class ExportPruner: @unchecked Sendable {
    let files: ExportFiles
    let ttl: Double
    public convenience init(services: Services) {
        self.init(files: ExportFiles(directory: services.config.importDir), ttl: Double(services.config.exportTTLSeconds))
    }

    init(files: ExportFiles, ttl: Double) {
        self.files = files
        self.ttl = ttl
    }

    public func start() {
        let thread = Thread { [self] in
            while true {
                sweep()
                Thread.sleep(forTimeInterval: 60)
            }
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    public func sweep(now: Date = Date()) {
        let fm = FileManager.default
        for entry in (try? fm.contentsOfDirectory(atPath: files.root)) ?? [] where entry.hasPrefix("job-") {
            let dir = files.root + "/" + entry
            let paths = [dir] + (fm.subpaths(atPath: dir) ?? []).map { dir + "/" + $0 }
            let newest = paths.compactMap { (try? fm.attributesOfItem(atPath: $0)[.modificationDate]) as? Date }.max() ?? .distantPast
            if now.timeIntervalSince(newest) > ttl {
                try? fm.removeItem(atPath: dir)
                Log.info("export_pruned", [("dir", entry)])
            }
        }
    }
}
