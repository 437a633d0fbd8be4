import HTTPKit
import Platform
import Postgres

/// Builds dynamic SQL for one statement: values are always bound (`$n`), identifiers always go through
/// libpq's quoting. A query source's own `$1…$k` come first, so its parameters keep their numbers.
struct SQLBuilder {
    private(set) var parameters: [String?]
    let connection: PGConnection

    init(connection: PGConnection, parameters: [String?] = []) {
        self.connection = connection
        self.parameters = parameters
    }

    /// Binds a value and returns its placeholder.
    mutating func bind(_ value: String?) -> String {
        parameters.append(value)
        return "$\(parameters.count)"
    }

    mutating func bind(_ value: Double) -> String { bind(value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)) }
    mutating func bind(_ value: Int) -> String { bind(String(value)) }

    func quote(_ identifier: String) throws -> String {
        try connection.quoteIdentifier(identifier)
    }

    /// `"schema"."table"` from a possibly qualified name (`db.schema.table` drops the database part).
    func quoteQualified(_ name: String) throws -> String {
        var parts = Grant.splitName(name)
        if parts.count == 3 { parts.removeFirst() }
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else {
            throw APIError.badRequest("Invalid table name: \(name)", code: "invalid_source")
        }
        return try parts.map(quote).joined(separator: ".")
    }
}

