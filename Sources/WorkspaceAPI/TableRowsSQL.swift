import SQLKit

/// The data explorer's page of a table: chosen columns, an optional search over them, an order and a page.
/// Pure (no connection): the route checks the column names against the catalog first, and the text is
/// snapshot-tested. Rows come back as one JSON array (`json_agg`), so their types survive the trip.
public struct TableRowsSQL: Sendable {
    public var table: QualifiedName
    /// The columns shown (the geometry column is left out: the map preview shows it).
    public var columns: [String]
    public var orderBy: String?
    public var descending = false
    /// Rows any of whose columns, as text, contain this (case-insensitive, no wildcards).
    public var search: String?
    public var limit = 50
    public var offset = 0

    public static let maxLimit = 1000
    /// A searched table's matches are counted up to here ("10,000+" beyond): counting all of a big table's
    /// matches would scan it.
    public static let countCap = 10_000

    public init(table: QualifiedName, columns: [String]) {
        self.table = table
        self.columns = columns
    }

    /// `%` and `_` in the search text are literal: escaped for LIKE, whose escape character is `\`.
    public static func likePattern(_ text: String) -> String {
        var out = "%"
        for c in text {
            if c == "\\" || c == "%" || c == "_" { out.append("\\") }
            out.append(c)
        }
        return out + "%"
    }

    func whereClause() throws -> SQL {
        guard let search, !search.isEmpty, !columns.isEmpty else { return SQL() }
        let pattern = Self.likePattern(search)
        var tests: [SQL] = []
        for c in columns {
            let column = try Identifier(c)
            tests.append("t.\(column)::text ILIKE \(pattern)")
        }
        // One bound copy per column keeps each test a plain ILIKE the planner can read.
        return " WHERE \(tests, joinedBy: " OR ")"
    }

    /// The page: `[{column: value, ...}, ...]` in one row and column.
    public func rows() throws -> SQL {
        var selected: [SQL] = []
        for c in columns {
            let column = try Identifier(c)
            selected.append("t.\(column)")
        }
        let list: SQL = selected.isEmpty ? "NULL" : SQL.join(selected, separator: ", ")
        var order = SQL()
        if let orderBy {
            let column = try Identifier(orderBy)
            order = " ORDER BY t.\(column) \(unsafeRaw: descending ? "DESC NULLS LAST" : "ASC NULLS FIRST")"
        }
        let page: SQL = " LIMIT \(literal: max(1, min(limit, Self.maxLimit))) OFFSET \(literal: max(0, offset))"
        let filter = try whereClause()
        return "SELECT coalesce(json_agg(p), '[]') FROM (SELECT \(list) FROM \(table) AS t\(filter)\(order)\(page)) AS p"
    }

    /// Matches of the search, counted up to `countCap + 1`.
    public func count() throws -> SQL {
        let filter = try whereClause()
        return "SELECT count(*) FROM (SELECT 1 FROM \(table) AS t\(filter) LIMIT \(literal: Self.countCap + 1)) AS c"
    }
}
