import Config
import Foundation
import HTTPKit

/// A validated edit of the configuration file: the new text and the units it needs restarted.
/// Built by the console (to answer) and again by `tessera admin-apply` (the root side, which trusts
/// nothing the unprivileged console staged).
public struct ConfigChange: Sendable {
    public let newText: String
    public let changedKeys: [String]
    public let units: [String]

    /// Values a console edit may not set: the file cannot name itself.
    static let notEditable: Set<String> = ["TESSERA_CONFIG_FILE"]

    /// Every field that failed, by key: 422 with `fields`, and nothing is written.
    public struct Rejected: HTTPResponseError, CustomStringConvertible {
        public let fields: [String: String]
        public var description: String { fields.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ") }
        public func apiError(requestId: String?) -> APIError {
            var e = APIError(422, "invalid_config", "The configuration was not saved: \(fields.count) value(s) are invalid")
            e.extra["fields"] = .object(fields.mapValues { .string($0) })
            return e
        }
    }

    /// `changes` (a value, or nil to remove the key and fall back to its default) applied to `currentText`.
    public static func plan(currentText: String, changes: [String: String?]) throws -> ConfigChange {
        let current: [String: String]
        do { current = try EnvFile.parse(currentText) } catch {
            throw Rejected(fields: ["_file": "the current file does not parse (\(error)); fix it by hand first"])
        }
        var fields: [String: String] = [:]
        for (key, value) in changes {
            guard let row = ConfigKeys.named(key), !notEditable.contains(key) else { fields[key] = "unknown key \(key)"; continue }
            if let value, let problem = row.problem(value) { fields[key] = problem }
        }
        var next = current
        for (key, value) in changes { next[key] = value }
        // Keys the file already had wrong are reported too: saving must leave a file every program loads.
        for (key, problem) in ConfigKeys.problems(next) where fields[key] == nil { fields[key] = problem }
        if !fields.isEmpty { throw Rejected(fields: fields) }
        let changed = ConfigKeys.all.map(\.name).filter { current[$0] != next[$0] }
        return ConfigChange(newText: EnvFile.updating(currentText, changes), changedKeys: changed,
                            units: ConfigKeys.affectedUnits(old: current, new: next))
    }

    /// Plans the change from `currentText` to a complete staged file (the root side of a console save).
    public static func plan(currentText: String, stagedText: String) throws -> ConfigChange {
        let staged: [String: String]
        do { staged = try EnvFile.parse(stagedText) } catch { throw Rejected(fields: ["_file": "the staged file does not parse (\(error))"]) }
        let current = (try? EnvFile.parse(currentText)) ?? [:]
        var changes: [String: String?] = [:]
        for key in Set(current.keys).union(staged.keys) where current[key] != staged[key] { changes[key] = staged[key] }
        return try plan(currentText: currentText, changes: changes)
    }
}
