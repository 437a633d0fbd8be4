import Foundation
import HTTPKit

/// Wall time of each step of one import attempt, in milliseconds and in order: the import-worker logs it
/// with the completion and the job's result carries it, so a slow import (or a bench run) shows which step
/// took the time without a profiler.
struct ImportPhases {
    private(set) var entries: [(name: String, ms: Int)] = []

    mutating func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let started = DispatchTime.now().uptimeNanoseconds
        defer { record(name, since: started) }
        return try body()
    }

    mutating func record(_ name: String, since started: UInt64) {
        entries.append((name, Int((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)))
    }

    /// A step timed elsewhere (on another thread).
    mutating func add(_ name: String, ms: Int) { entries.append((name, ms)) }

    /// `inspect=12 load=3400 index=310`: one log field.
    var summary: String { entries.map { "\($0.name)=\($0.ms)" }.joined(separator: " ") }

    var json: JSON {
        var object: [String: JSON] = [:]
        for (name, ms) in entries { object[name] = .int((object[name]?.intValue ?? 0) + ms) }
        return .object(object)
    }
}
