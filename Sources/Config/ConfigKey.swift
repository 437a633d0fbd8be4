import Foundation

/// One `TESSERA_*` setting: its default, how a value is checked, what it means and which programs must
/// restart to see a new value. `ConfigKeys.all` is the only place a key is declared: `TesseraConfig`
/// validates through it, `tessera config-docs` writes the README's table from it and the admin console
/// builds its Configuration screen from it.
public struct ConfigKey: Sendable {
    public enum Kind: Sendable {
        /// Free text (a conninfo, a name); anything without a newline.
        case text
        case integer(min: Int, max: Int)
        case choice([String])
        /// An URL whose scheme is one of these (`unix` means `unix:/path`); empty allowed when `optional`.
        case url(schemes: [String], optional: Bool)
        /// Comma-separated URLs, each with one of these schemes; empty allowed.
        case urlList(schemes: [String])
        case absolutePath
        /// Comma-separated entries; each must not contain any of the characters.
        case list(forbidden: String)
        /// A systemd OnCalendar expression (checked for shape here; systemd has the last word).
        case calendar
        /// Comma-separated entries, each matching `pattern` (anchored); `words` says what that is.
        /// Empty allowed when `optional`.
        case entries(pattern: String, words: String, optional: Bool)
    }

    public let name: String
    public let defaultValue: String
    public let kind: Kind
    public let meaning: String
    /// Units to restart (`tessera-maps-api`, …) or re-apply (`tessera-backup.timer`, `nginx`) after a change.
    public let units: [String]
    /// Its value may hold a credential: the support bundle and the console show it redacted.
    public let secret: Bool

    public init(_ name: String, _ defaultValue: String, _ kind: Kind, units: [String], secret: Bool = false, _ meaning: String) {
        self.name = name
        self.defaultValue = defaultValue
        self.kind = kind
        self.meaning = meaning
        self.units = units
        self.secret = secret
    }

    /// Why `value` is not acceptable for this key, or nil.
    public func problem(_ value: String) -> String? {
        if value.contains(where: { $0.isNewline }) { return "\(name) must be one line" }
        switch kind {
        case .text:
            return nil
        case .integer(let min, let max):
            guard let n = Int(value), n >= min, n <= max else { return "\(name) must be an integer between \(min) and \(max)" }
            return nil
        case .choice(let options):
            return options.contains(value) ? nil : "\(name) must be one of \(options.joined(separator: ", "))"
        case .url(let schemes, let optional):
            if value.isEmpty && optional { return nil }
            let ok = schemes.contains { $0 == "unix" ? value.hasPrefix("unix:/") : value.hasPrefix("\($0)://") }
            return ok ? nil : "\(name) must be \(schemes.map { $0 == "unix" ? "unix:/path" : "\($0)://…" }.joined(separator: " or "))"
                + (optional ? " (or empty)" : "")
        case .urlList(let schemes):
            for entry in ConfigKey.entries(value) {
                let one = ConfigKey(name, "", .url(schemes: schemes, optional: false), units: [], "")
                if let problem = one.problem(entry) { return problem + " (each comma-separated entry): \(entry)" }
            }
            return nil
        case .absolutePath:
            return value.hasPrefix("/") ? nil : "\(name) must be an absolute path"
        case .list(let forbidden):
            for entry in ConfigKey.entries(value) where entry.contains(where: { forbidden.contains($0) }) {
                return "\(name) entries may not contain \(forbidden.map { "'\($0)'" }.joined(separator: " ")): \(entry)"
            }
            return nil
        case .calendar:
            return value.trimmingCharacters(in: .whitespaces).isEmpty ? "\(name) must be a systemd OnCalendar expression" : nil
        case .entries(let pattern, let words, let optional):
            let list = ConfigKey.entries(value)
            if list.isEmpty { return optional ? nil : "\(name) must be \(words)" }
            for entry in list where entry.range(of: "^(?:\(pattern))$", options: .regularExpression) == nil {
                return "\(name) must be \(words): \(entry)"
            }
            return nil
        }
    }

    /// What the validation accepts, in words (the README and the console show it).
    public var rule: String {
        switch kind {
        case .text: return "text"
        case .integer(let min, let max): return "integer \(min)…\(max)"
        case .choice(let options): return options.joined(separator: " | ")
        case .url(let schemes, let optional):
            return schemes.map { $0 == "unix" ? "unix:/path" : "\($0)://…" }.joined(separator: " | ") + (optional ? " or empty" : "")
        case .urlList(let schemes):
            return "comma-separated " + schemes.map { $0 == "unix" ? "unix:/path" : "\($0)://…" }.joined(separator: " | ") + " or empty"
        case .absolutePath: return "absolute path"
        case .list: return "comma-separated list"
        case .calendar: return "systemd OnCalendar"
        case .entries(_, let words, let optional): return words + (optional ? " or empty" : "")
        }
    }

    public static func entries(_ value: String) -> [String] {
        value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
