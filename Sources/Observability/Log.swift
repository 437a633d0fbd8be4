import Foundation

/// The one place where log events are formatted: one line per event on stderr (journald keeps it),
/// as `level=… event=… key=value …`. Values are quoted when they contain spaces or quotes.
public enum Log {
    public enum Level: Int, Sendable, Comparable {
        case debug = 0, info, warning, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        var name: String { ["debug", "info", "warning", "error"][rawValue] }
    }

    nonisolated(unsafe) public static var minimumLevel: Level = .info

    public static func debug(_ event: String, _ fields: [(String, Any?)] = []) { emit(.debug, event, fields) }
    public static func info(_ event: String, _ fields: [(String, Any?)] = []) { emit(.info, event, fields) }
    public static func warning(_ event: String, _ fields: [(String, Any?)] = []) { emit(.warning, event, fields) }
    public static func error(_ event: String, _ fields: [(String, Any?)] = []) { emit(.error, event, fields) }

    public static func emit(_ level: Level, _ event: String, _ fields: [(String, Any?)]) {
        guard level >= minimumLevel else { return }
        var line = "level=\(level.name) event=\(event)"
        for (key, value) in fields {
            guard let value else { continue }
            line += " \(key)=\(quote(String(describing: value)))"
        }
        line += "\n"
        // One write(2) per line keeps lines whole when threads log at once.
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }

    static func quote(_ s: String) -> String {
        if s.isEmpty { return "\"\"" }
        if s.utf8.contains(where: { $0 == 32 || $0 == 34 || $0 == 61 || $0 == 10 || $0 == 92 }) {
            let escaped = s.replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
            return "\"\(escaped)\""
        }
        return s
    }
}
