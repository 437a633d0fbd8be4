import Foundation
import HTTPKit
import Observability
import Spawn

/// Varnish's cache hit ratio in the cdn-invalidator's metrics (it is the program that already talks to
/// Varnish): each time the metrics file is written, `varnishstat -j` reads the cache's hit and miss
/// counters from its shared memory (the unit's SupplementaryGroups=varnish may read it). The ratio is
/// since Varnish started; Prometheus gets the counters too, for a ratio over any window.
public struct VarnishHitRatio: Sendable {
    /// `varnishstat -n`: empty reads Varnish's default instance.
    let workdir: String

    public init(workdir: String) { self.workdir = workdir }

    public struct Counters: Equatable, Sendable {
        public var hits: Double, misses: Double
        public init(hits: Double, misses: Double) { self.hits = hits; self.misses = misses }
        /// nil before the first lookup: no ratio rather than a made-up one.
        public var ratio: Double? { hits + misses > 0 ? hits / (hits + misses) : nil }
    }

    /// `varnishstat -j` output: Varnish 6.5+ nests the counters under "counters", older ones do not.
    public static func parse(_ text: String) -> Counters? {
        guard let json = try? JSON.decode([UInt8](text.utf8)) else { return nil }
        let counters = json["counters"]?.objectValue != nil ? json["counters"]! : json
        guard let hit = counters["MAIN.cache_hit"]?["value"]?.doubleValue,
              let miss = counters["MAIN.cache_miss"]?["value"]?.doubleValue else { return nil }
        return Counters(hits: hit, misses: miss)
    }

    public static func samples(_ c: Counters) -> [Metrics.Sample] {
        var samples = [
            Metrics.Sample("tessera_varnish_cache_hits_total", "Varnish lookups answered from the cache (MAIN.cache_hit).", type: "counter", value: c.hits),
            Metrics.Sample("tessera_varnish_cache_misses_total", "Varnish lookups fetched from the backend (MAIN.cache_miss).", type: "counter", value: c.misses),
        ]
        if let ratio = c.ratio {
            samples.append(Metrics.Sample("tessera_varnish_cache_hit_ratio", "hits / (hits + misses) since Varnish started.", value: ratio))
        }
        return samples
    }

    /// Reads the counters now; nil when Varnish is not running or not readable (the series are then
    /// absent, which Prometheus shows as such, never as zero).
    public func read() -> Counters? {
        guard let varnishstat = try? ChildProcess.tool("varnishstat") else { return nil }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-varnishstat-\(UUID().uuidString)").path
        guard (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil else { return nil }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var argv = [varnishstat, "-j", "-f", "MAIN.cache_hit", "-f", "MAIN.cache_miss"]
        if !workdir.isEmpty { argv += ["-n", workdir] }
        guard let child = try? ChildProcess(argv, environment: ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"],
                                            stdout: "\(dir)/out", stderr: "\(dir)/err"),
              case .exited(0) = child.wait(deadline: Date().addingTimeInterval(5), interval: 0.02, isCancelled: { false }),
              let text = try? String(contentsOfFile: "\(dir)/out", encoding: .utf8) else { return nil }
        return Self.parse(text)
    }

    /// Adds the Varnish series to this program's metrics (read when the metrics file is written).
    public func export() {
        Metrics.shared.collect { read().map(VarnishHitRatio.samples) ?? [] }
    }
}
