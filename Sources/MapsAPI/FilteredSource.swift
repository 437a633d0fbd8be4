import HTTPKit
import Platform
import Postgres
import SQLKit

/// A source's rows as a map layer shows them: the table, or the query with its `queryParameters`, narrowed by
/// the layer's widget filters (CARTO's `filters`, the same builder the tiles and widgets use). What an export of
/// a builder layer writes, so the file holds what the map shows.
public enum FilteredSource {
    /// `SELECT * FROM <source> AS _src [WHERE <filters>]` with its values bound; reads the source's columns
    /// (no rows) on `db` to type the filters, so an unknown column is a 400 before anything is queued.
    public static func select(connection: String, table: String?, query: String?, queryParameters: [String?],
                              filters: JSON?, filtersOr: Bool, db: PGConnection, watch: PGConnection.Watch) throws -> SQL {
        var d = SourceDefinition(kind: table != nil ? .table : .query, connection: connection)
        if let table { d.name = table } else {
            d.sql = query
            d.queryParameters = queryParameters
        }
        if let filters, !filters.isNull {
            try FilterSQL.validate(filters)
            d.filters = filters
        }
        d.filtersOr = filtersOr
        let from = try SourceSQL.from(d)
        let schema = try SourceSchema.describe(from: from, connection: db, watch: watch)
        var sql: SQL = "SELECT * FROM \(from) AS _src"
        if let condition = try FilterSQL.condition(d.filters, or: d.filtersOr, schema: schema) { sql += " WHERE \(condition)" }
        return sql
    }
}
