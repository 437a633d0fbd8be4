import Config
import Foundation
import HTTPKit
import Postgres
import Redis

/// The Status screen: units, the services Tessera needs, disk space, the job queue and recent 5xx.
public struct StatusReport {
    public static let services = ["postgresql", "redis-server", "varnish", "nginx"]
    public static let units = ConfigKeys.programs + ["tessera-admin", "tessera-backup.timer"]

    let config: TesseraConfig
    let actions: PrivilegedActions
    let accessLog: String?
    let version: String
    /// The workers' metrics files (`<dir>/<program>/metrics.prom`); the cdn-invalidator's holds Varnish's hit ratio.
    var metricsDir: String = "/run/tessera/metrics"

    public func json() -> JSON {
        let states = actions.unitStates(Self.units + Self.services)
        func unit(_ name: String) -> JSON {
            guard let s = states[name] else { return ["name": .string(name), "active": "unknown"] }
            return ["name": .string(name), "active": .string(s.active), "sub": .string(s.sub),
                    "restarts": s.restarts.map { JSON.int($0) } ?? .null, "since": .optional(s.since)]
        }
        var services = Self.services.map(unit)
        services.append(contentsOf: [database(), redis()])
        return [
            "version": .string(version),
            "units": .array(Self.units.map(unit)),
            "services": .array(services),
            "disks": .array(disks()),
            "queues": queues(),
            "errors_5xx": errors5xx(),
            "cache": cache(),
        ]
    }

    func database() -> JSON {
        do {
            let c = try PGConnection(config.databaseURL)
            let v = try c.execute("SHOW server_version").string(0, 0) ?? ""
            return ["name": "postgresql (metadata database)", "active": "active", "sub": .string("connected, version \(v)")]
        } catch {
            return ["name": "postgresql (metadata database)", "active": "failed", "sub": .string(Redaction.scrub("\(error)"))]
        }
    }

    func redis() -> JSON {
        guard !config.redisURL.isEmpty else { return ["name": "redis (cache)", "active": "inactive", "sub": "not configured"] }
        guard let url = RedisURL(config.redisURL) else {
            return ["name": "redis (cache)", "active": "failed", "sub": "TESSERA_REDIS_URL does not parse (the APIs run without the cache)"]
        }
        let client = RedisClient(url)
        let failed = FailureFlag()
        client.onFailure = { reason in failed.set(reason) }
        _ = client.get("tessera:admin:ping")
        if let reason = failed.reason { return ["name": "redis (cache)", "active": "failed", "sub": .string(reason)] }
        return ["name": "redis (cache)", "active": "active", "sub": "answers"]
    }

    func disks() -> [JSON] {
        var seen = Set<UInt>()
        var out: [JSON] = []
        for path in ["/", config.importDir, config.backupDir, "/var/lib/postgresql"] {
            var s = statvfs()
            guard statvfs(path, &s) == 0, seen.insert(UInt(s.f_fsid)).inserted else { continue }
            let total = Int(s.f_blocks) * Int(s.f_frsize), free = Int(s.f_bavail) * Int(s.f_frsize)
            out.append(["path": .string(path), "total_bytes": .int(total), "free_bytes": .int(free),
                        "used_percent": .number(total > 0 ? (Double(total - free) * 1000 / Double(total)).rounded() / 10 : 0)])
        }
        return out
    }

    /// Waiting = available or retryable; the oldest waiting job's age says whether workers keep up.
    func queues() -> JSON {
        do {
            let c = try PGConnection(config.databaseURL)
            let r = try c.execute("""
                SELECT queue,
                       count(*) FILTER (WHERE state IN ('available', 'retryable')),
                       count(*) FILTER (WHERE state = 'running'),
                       extract(epoch FROM now() - min(created_at) FILTER (WHERE state IN ('available', 'retryable')))::bigint
                FROM jobs GROUP BY queue ORDER BY queue
                """)
            return .array((0..<r.rowCount).map { i in
                ["queue": .optional(r.string(i, 0)), "waiting": .int(Int(r.string(i, 1) ?? "0") ?? 0),
                 "running": .int(Int(r.string(i, 2) ?? "0") ?? 0),
                 "oldest_waiting_seconds": r.string(i, 3).flatMap { Int($0) }.map { .int($0) } ?? .null]
            })
        } catch {
            return ["error": .string(Redaction.scrub("\(error)"))]
        }
    }

    /// Varnish's hit ratio as the cdn-invalidator last exported it (README "Metrics"): one source for the
    /// console and Prometheus, and the console needs no access to Varnish's shared memory.
    func cache() -> JSON {
        let file = "\(metricsDir)/cdn-invalidator/metrics.prom"
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            return ["error": .string("no metrics from the cdn-invalidator (\(file)): is it running?")]
        }
        let values = Self.samples(text)
        guard let hits = values["tessera_varnish_cache_hits_total"], let misses = values["tessera_varnish_cache_misses_total"] else {
            return ["error": "the cdn-invalidator cannot read Varnish's counters (varnishstat)"]
        }
        return ["hit_ratio": values["tessera_varnish_cache_hit_ratio"].map { .number($0) } ?? .null,
                "hits": .number(hits), "misses": .number(misses)]
    }

    /// Unlabelled samples of a Prometheus text file, by series name.
    static func samples(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.contains("{") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let v = Double(parts[1]) { out[String(parts[0])] = v }
        }
        return out
    }

    /// 5xx answers per API in the last hour, from nginx's access log (null when it is not readable).
    func errors5xx() -> JSON {
        guard let accessLog, let tail = Self.tail(accessLog, bytes: 8 << 20) else { return .null }
        let since = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-3600))
        return .object(Self.count5xx(lines: tail, since: since).mapValues { .int($0) })
    }

    /// Lines look like `addr [2026-12-06T07:00:00+00:00] "GET /api/v3/maps/x HTTP/1.1" 502 …` (nginx/tessera-site.conf).
    static func count5xx(lines: String, since: String) -> [String: Int] {
        var counts = ["workspace-api": 0, "maps-api": 0, "import-api": 0, "lds-api": 0]
        for line in lines.split(separator: "\n") {
            guard let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]"), open < close else { continue }
            // Same-offset ISO 8601 timestamps compare as text; nginx writes the server's offset.
            let stamp = line[line.index(after: open)..<close]
            guard stamp.prefix(19) >= since.prefix(19) else { continue }
            let parts = line[close...].split(separator: "\"")
            guard parts.count >= 3 else { continue }
            let request = parts[1].split(separator: " ")
            let status = parts[2].split(separator: " ").first.flatMap { Int($0) } ?? 0
            guard request.count >= 2, status >= 500, status <= 599 else { continue }
            let uri = request[1]
            let api: String
            if uri.hasPrefix("/api/v3/maps") || uri.hasPrefix("/api/v3/sql") || uri.hasPrefix("/api/v3/stats") { api = "maps-api" }
            else if uri.hasPrefix("/api/v3/imports") { api = "import-api" }
            else if uri.hasPrefix("/api/v3/lds") { api = "lds-api" }
            else if uri.hasPrefix("/api") { api = "workspace-api" }
            else { continue }
            counts[api, default: 0] += 1
        }
        return counts
    }

    static func tail(_ path: String, bytes: Int) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > UInt64(bytes) ? size - UInt64(bytes) : 0)
        return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
    }
}

final class FailureFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value: String?
    func set(_ reason: String) { lock.withLock { value = value ?? reason } }
    var reason: String? { lock.withLock { value } }
}
