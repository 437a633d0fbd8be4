import CLibPQ
import Foundation

/// The one error type of the PostgreSQL layer. `sqlstate` is nil for client-side failures
/// (connection refused, lost connection), which callers treat as "database unavailable".
public struct PGError: Error, CustomStringConvertible, Sendable {
    public let sqlstate: String?
    public let message: String
    public let detail: String?
    public let hint: String?
    /// Whether the connection itself failed (so the pool must not reuse it).
    public let connectionLost: Bool
    /// 1-based character offset of the error in the statement text (PG_DIAG_STATEMENT_POSITION), when the
    /// server names one: the SQL editor marks it.
    public var position: Int?

    public init(sqlstate: String?, message: String, detail: String? = nil, hint: String? = nil, connectionLost: Bool = false,
                position: Int? = nil) {
        self.sqlstate = sqlstate
        self.message = message
        self.detail = detail
        self.hint = hint
        self.connectionLost = connectionLost
        self.position = position
    }

    public var description: String { "\(sqlstate ?? "-----"): \(message)" }

    /// Builds an error from a failed result, falling back to the connection's message.
    static func from(result: OpaquePointer?, connection: OpaquePointer?) -> PGError {
        // PG_DIAG_* are character-literal macros that Swift does not import.
        func field(_ code: Character) -> String? {
            guard let result, let p = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: p)
        }
        let lost = connection.map { PQstatus($0) == CONNECTION_BAD } ?? true
        var message = field("M")
        if message == nil, let connection, let p = PQerrorMessage(connection) {
            message = String(cString: p).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return PGError(sqlstate: field("C") ?? (lost ? "08006" : nil),
                       message: message ?? "unknown database error",
                       detail: field("D"), hint: field("H"),
                       connectionLost: lost, position: field("P").flatMap { Int($0) })
    }

    /// A connection attempt failed. libpq messages can echo host names but never passwords; we still keep
    /// only the first line so nothing of the conninfo reaches a client.
    static func connectFailed(_ connection: OpaquePointer?) -> PGError {
        var text = "could not connect to the database"
        if let connection, let p = PQerrorMessage(connection) {
            let full = String(cString: p)
            if let first = full.split(separator: "\n").first { text = String(first) }
        }
        return PGError(sqlstate: "08001", message: text, connectionLost: true)
    }
}

