/// A PostgreSQL identifier (table, column, schema, role…), quoted without a database connection.
/// The only way a name reaches SQL text: interpolating an `Identifier` into `SQL` quotes it.
public struct Identifier: Sendable, Hashable, CustomStringConvertible {
    public let name: String

    /// Refuses NUL: PostgreSQL names cannot hold it and libpq would silently cut the name there.
    public init(_ name: String) throws(SQLError) {
        guard !name.utf8.contains(0) else { throw SQLError.invalidIdentifier(name) }
        self.name = name
    }

    /// The name in double quotes with embedded double quotes doubled: what `PQescapeIdentifier` produces
    /// for valid UTF-8 (a Swift string always is), and what the server's lexer reads back unchanged.
    public var quoted: String {
        var out = "\""
        out.reserveCapacity(name.utf8.count + 2)
        for c in name.unicodeScalars {
            if c == "\"" { out.append("\"\"") } else { out.unicodeScalars.append(c) }
        }
        out.append("\"")
        return out
    }

    public var description: String { quoted }

    /// Quotes one name; the pure counterpart of libpq's identifier quoting.
    public static func quote(_ name: String) throws(SQLError) -> String { try Identifier(name).quoted }
}

/// What building SQL can refuse.
public enum SQLError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidIdentifier(String)
    /// A qualified name that does not parse; `reason` says why.
    case invalidName(String, reason: String)

    public var description: String {
        switch self {
        case .invalidIdentifier: return "identifiers cannot contain NUL characters"
        case .invalidName(_, let reason): return reason
        }
    }
}
