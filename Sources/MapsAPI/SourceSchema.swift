import HTTPKit
import Platform
import Postgres
import SQLKit

/// The columns of a source as PostgreSQL describes them, plus what tiles need to know about its geometry.
struct SourceSchema: Sendable {
    var columns: [(name: String, kind: ColumnKind)]
    /// SRID of the spatial column (0 when unknown, treated as 4326).
    var srid: Int = 4326

    func kind(of column: String) -> ColumnKind? { columns.first { $0.name == column }?.kind }

    /// CARTO's `schema` array.
    var json: JSON { .array(columns.map { ["name": .string($0.name), "type": .string($0.kind.schemaType)] }) }

    /// Describes `SELECT * FROM <from>` without reading rows.
    static func describe(from: SQL, connection: PGConnection, watch: PGConnection.Watch) throws -> SourceSchema {
        let oids = try connection.geometryOids()
        let sql: SQL = "SELECT * FROM \(from) AS _src LIMIT 0"
        // Every query source passes here (handshake, stats, models) before it runs anywhere.
        if from.text.hasPrefix("(") { try ReadOnlyGuard.check(sql.text, sql.parameters, connection: connection, watch: watch) }
        let r = try connection.execute(sql, watch: watch)
        return SourceSchema(columns: (0..<r.columnCount).map { (r.columnName($0), ColumnKind.of(oid: r.columnType($0), geometryOids: oids)) })
    }

    /// Properties carried by tiles: the requested columns (all must exist) or every non-spatial column.
    func properties(requested: [String]?, spatialColumn: String) throws -> [String] {
        if let requested {
            for c in requested where kind(of: c) == nil { throw FilterSQL.columnNotFound(c) }
            return requested.filter { $0 != spatialColumn }
        }
        return columns.filter { $0.kind != .geometry && $0.name != spatialColumn }.map(\.name)
    }
}

/// The FROM item of a source: a quoted table name or the query in parentheses with its own parameters.
enum SourceSQL {
    /// The source's rows: the table or query, or — `aggregationExp` on a vector source — its rows grouped by
    /// geometry with the expression's columns as properties ("grouped by geometry and then aggregated", as
    /// @carto/api-client documents the parameter).
    static func from(_ d: SourceDefinition) throws -> SQL {
        let base = try rows(d)
        guard d.spatialType == .geo, d.kind != .tileset, let exp = d.aggregationExp else { return base }
        let g = try Identifier(d.spatialColumn)
        return "(SELECT _agg.\(g) AS \(g), \(SQL(unsafeRaw: exp)) FROM \(base) AS _agg GROUP BY _agg.\(g))"
    }

    static func rows(_ d: SourceDefinition) throws -> SQL {
        switch d.kind {
        case .table, .tileset, .raster: return try table(d).identifier
        case .boundary: return try BoundarySource.from(d)
        case .query: return query(d)
        }
    }

    /// The query of a query source (or a boundary's properties query) as a subquery.
    static func query(_ d: SourceDefinition) -> SQL {
        // A trailing semicolon ends a statement, but the query becomes a subquery here.
        var sql = Substring(d.sql ?? "")
        while let last = sql.unicodeScalars.last, last == ";" || last.properties.isWhitespace { sql = sql.dropLast() }
        // Newlines keep a trailing `--` comment from swallowing the closing parenthesis. The query is
        // the caller's own SQL, authorised as a whole by SourceAccess before it gets here.
        return SQL(unsafeRaw: "(\n\(sql)\n)", parameters: d.queryParameters)
    }

    /// The table of a table or tileset source.
    static func table(_ d: SourceDefinition) throws -> QualifiedName {
        try QualifiedName.parameter(d.name ?? "", named: d.kind == .tileset ? "tileset name" : d.kind == .boundary ? "tilesetTableName" : "table name",
                                    code: "invalid_source")
    }
}
