import Foundation
import Synchronization

/// The one metrics registry of a program, rendered in Prometheus text format (version 0.0.4).
///
/// Series are registered once (startup, or the first time a label set is seen) under a lock; what the hot
/// path touches afterwards is only relaxed atomic adds on the series it already holds.
public final class Metrics: Sendable {
    public static let shared = Metrics()

    /// Latency buckets in seconds: tiles and small queries sit in the low ones, exports in the high ones.
    public static let latencyBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
    /// Size buckets in bytes (tiles, responses).
    public static let sizeBuckets: [Double] = [256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304]

    private struct Family {
        let name: String
        let help: String
        let type: String
        var series: [(labels: String, metric: AnyMetric)] = []
        var byLabels: [String: Int] = [:]
    }

    private let families = Mutex<[String: Family]>([:])
    private let order = Mutex<[String]>([])
    /// Values computed at scrape time (pool usage, queue depth read from the database, Varnish counters).
    private let collectors = Mutex<[@Sendable () -> [Sample]]>([])

    public init() {}

    public func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Counter {
        series(name, help, "counter", labels) { Counter() }
    }

    public func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
        series(name, help, "gauge", labels) { Gauge() }
    }

    public func histogram(_ name: String, _ help: String, _ labels: [(String, String)] = [], buckets: [Double] = Metrics.latencyBuckets) -> Histogram {
        series(name, help, "histogram", labels) { Histogram(bounds: buckets) }
    }

    /// A sample computed when scraped; `type` is `gauge` or `counter`.
    public struct Sample: Sendable {
        public var name: String, help: String, type: String, labels: [(String, String)], value: Double
        public init(_ name: String, _ help: String, type: String = "gauge", labels: [(String, String)] = [], value: Double) {
            self.name = name; self.help = help; self.type = type; self.labels = labels; self.value = value
        }
    }

    public func collect(_ collector: @escaping @Sendable () -> [Sample]) {
        collectors.withLock { $0.append(collector) }
    }

    private func series<M: AnyMetric>(_ name: String, _ help: String, _ type: String, _ labels: [(String, String)], make: () -> M) -> M {
        let key = Self.render(labels)
        return families.withLock { families in
            var family = families[name] ?? Family(name: name, help: help, type: type)
            if family.series.isEmpty && families[name] == nil { order.withLock { $0.append(name) } }
            if let index = family.byLabels[key], let existing = family.series[index].metric as? M { return existing }
            let metric = make()
            family.byLabels[key] = family.series.count
            family.series.append((key, metric))
            families[name] = family
            return metric
        }
    }

    /// The whole registry in Prometheus text format.
    public func render() -> String {
        var out = ""
        let names = order.withLock { $0 }
        let snapshot = families.withLock { $0 }
        for name in names {
            guard let family = snapshot[name] else { continue }
            out += "# HELP \(name) \(family.help)\n# TYPE \(name) \(family.type)\n"
            for (labels, metric) in family.series { metric.write(name: name, labels: labels, to: &out) }
        }
        var seen = Set<String>()
        for sample in collectors.withLock({ $0 }).flatMap({ $0() }) {
            if seen.insert(sample.name).inserted {
                out += "# HELP \(sample.name) \(sample.help)\n# TYPE \(sample.name) \(sample.type)\n"
            }
            out += "\(sample.name)\(Self.braced(Self.render(sample.labels))) \(Self.format(sample.value))\n"
        }
        return out
    }

    static func render(_ labels: [(String, String)]) -> String {
        labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",")
    }

    static func braced(_ labels: String) -> String { labels.isEmpty ? "" : "{\(labels)}" }

    static func escape(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == 92 || $0 == 34 || $0 == 10 }) else { return value }
        return value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ value: Double) -> String {
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}

protocol AnyMetric: AnyObject, Sendable {
    func write(name: String, labels: String, to out: inout String)
}

public final class Counter: AnyMetric {
    private let value = Atomic<Int>(0)
    public func add(_ n: Int = 1) { value.wrappingAdd(n, ordering: .relaxed) }
    public var current: Int { value.load(ordering: .relaxed) }
    func write(name: String, labels: String, to out: inout String) {
        out += "\(name)\(Metrics.braced(labels)) \(current)\n"
    }
}

public final class Gauge: AnyMetric {
    private let value = Atomic<Int>(0)
    public func set(_ n: Int) { value.store(n, ordering: .relaxed) }
    public func add(_ n: Int) { value.wrappingAdd(n, ordering: .relaxed) }
    public var current: Int { value.load(ordering: .relaxed) }
    func write(name: String, labels: String, to out: inout String) {
        out += "\(name)\(Metrics.braced(labels)) \(current)\n"
    }
}

/// Buckets are stored non-cumulative (one add per observation) and summed when rendered. The sum is kept
/// in micro-units so it stays an integer atomic.
public final class Histogram: AnyMetric {
    public let bounds: [Double]
    private let buckets: [Counter]
    private let count = Counter()
    private let microSum = Counter()

    init(bounds: [Double]) {
        self.bounds = bounds
        self.buckets = (0...bounds.count).map { _ in Counter() }
    }

    public func observe(_ value: Double) {
        var index = bounds.count
        for (i, bound) in bounds.enumerated() where value <= bound { index = i; break }
        buckets[index].add()
        count.add()
        microSum.add(Int((value * 1_000_000).rounded()))
    }

    public var observations: Int { count.current }

    func write(name: String, labels: String, to out: inout String) {
        let total = count.current
        guard total > 0 else { return }
        let prefix = labels.isEmpty ? "" : labels + ","
        var cumulative = 0
        for (i, bound) in bounds.enumerated() {
            cumulative += buckets[i].current
            out += "\(name)_bucket{\(prefix)le=\"\(Metrics.format(bound))\"} \(cumulative)\n"
        }
        cumulative += buckets[bounds.count].current
        out += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(max(cumulative, total))\n"
        out += "\(name)_sum\(Metrics.braced(labels)) \(Metrics.format(Double(microSum.current) / 1_000_000))\n"
        out += "\(name)_count\(Metrics.braced(labels)) \(max(cumulative, total))\n"
    }
}
