import Foundation
import Observability
import Platform

/// Deletes what crashed programs leave in the import directory: uploads no pending import refers to
/// (the API died mid-request, or their job ended while no worker ran it), work folders of jobs no
/// longer running, and old preview folders. Runs at worker start and every few minutes.
public final class ImportJanitor: @unchecked Sendable {
    let services: Services
    let settings: ImportSettings
    var interval = 300.0
    /// Files younger than this are never touched (an upload being enqueued, a job just claimed).
    var grace = 600.0

    public init(services: Services, settings: ImportSettings) {
        self.services = services
        self.settings = settings
    }

    public func start() {
        let thread = Thread { [self] in
            while true {
                sweep()
                Thread.sleep(forTimeInterval: interval)
            }
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    func sweep() {
        do {
            let (referenced, running) = try services.metadata.withConnection { db -> (Set<String>, Set<String>) in
                let r = try db.execute("""
                    SELECT payload->'source'->>'file', id::text, state FROM jobs
                    WHERE queue = 'imports' AND state IN ('available', 'running', 'retryable')
                    """)
                var files = Set<String>(), ids = Set<String>()
                for i in 0..<r.rowCount {
                    if let f = r.string(i, 0) { files.insert(f) }
                    if r.string(i, 2) == "running" { ids.insert(r.string(i, 1)!) }
                }
                return (files, ids)
            }
            var removed = 0
            let fm = FileManager.default
            for name in (try? fm.contentsOfDirectory(atPath: settings.uploadsDir)) ?? [] {
                let path = settings.uploadsDir + "/" + name
                let age = ageSeconds(path)
                if name.hasSuffix(".part") {
                    // An upload in progress writes continuously; an hour without a write is abandoned.
                    if age > 3600 { unlink(path); removed += 1 }
                } else if !referenced.contains(name) && age > grace {
                    unlink(path); removed += 1
                }
            }
            for name in (try? fm.contentsOfDirectory(atPath: settings.workDir)) ?? [] where name.hasPrefix("job-") {
                let path = settings.workDir + "/" + name
                if !running.contains(String(name.dropFirst(4))) && ageSeconds(path) > grace {
                    try? fm.removeItem(atPath: path); removed += 1
                }
            }
            for name in (try? fm.contentsOfDirectory(atPath: settings.previewDir)) ?? [] {
                let path = settings.previewDir + "/" + name
                if ageSeconds(path) > 3600 { try? fm.removeItem(atPath: path); removed += 1 }
            }
            if removed > 0 { Log.info("import_janitor_removed", [("count", removed)]) }
        } catch {
            Log.warning("import_janitor_failed", [("error", String(describing: error))])
        }
    }

    func ageSeconds(_ path: String) -> Double {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        return Date().timeIntervalSince1970 - Double(st.st_mtim.tv_sec)
    }
}
