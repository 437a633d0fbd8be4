import Foundation
import HTTPKit
import Platform
import Postgres

/// What every model statement shares: the source as `<from> AS _src`, its schema, and the WHERE
/// conditions (filters, spatial filters, selected feature ids) whose values are already bound in `b`.
/// Each model then issues one statement that returns its answer as PostgreSQL-built JSON text.
struct ModelContext {
    /// The most rows any model returns (table, pick, scatterplot limits; category lists).
    static let maxRows = 10_000

    let db: PGConnection
    let watch: PGConnection.Watch
    let request: ModelRequest
    /// Users may send SQL fragments (`operationExp`, aggregation strings); API Access Tokens never.
    let allowsRawSQL: Bool
    var b: SQLBuilder
    let from: String
    let schema: SourceSchema
    private(set) var conditions: [String] = []

    var params: ModelParams { request.params }
    var definition: SourceDefinition { request.definition }

    init(db: PGConnection, watch: PGConnection.Watch, request: ModelRequest, allowsRawSQL: Bool) throws {
        self.db = db
        self.watch = watch
        self.request = request
        self.allowsRawSQL = allowsRawSQL
        let d = request.definition
        b = SQLBuilder(connection: db, parameters: d.queryParameters)
        if d.kind == .query {
            // Own line breaks so a trailing `-- comment` cannot swallow the parenthesis; a trailing `;`
            // (accepted by grants, which compare SQL modulo it) would be a syntax error inside one.
            var sql = Substring(d.sql ?? "")
            while let last = sql.unicodeScalars.last, last == ";" || last.properties.isWhitespace { sql = sql.dropLast() }
            from = "(\n\(sql)\n)"
        } else {
            from = try SourceSQL.from(d, b)
        }
        schema = try SourceSchema.describe(from: from, parameters: d.queryParameters, connection: db, watch: watch)
        if let filter = try FilterSQL.condition(d.filters, or: d.filtersOr, alias: "_src", schema: schema, builder: &b) {
            conditions.append(filter)
        }
        for (column, geojson) in request.spatialFilters {
            let g = try geometryRef(column)
            let srid = try srid(of: g)
            let shape: String
            switch srid {
            case 4326, 0: shape = "ST_SetSRID(ST_GeomFromGeoJSON(\(b.bind(geojson))), \(srid))"
            default: shape = "ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(\(b.bind(geojson))), 4326), \(srid))"
            }
            conditions.append("ST_Intersects(\(g), \(shape))")
        }
        if request.model != .pick, let ids = try featureIds(), !ids.isEmpty {
            conditions.append("\(try featureId()) = ANY(\(b.bind(FilterSQL.arrayLiteral(ids)))::text[])")
        }
    }

    /// `_src."<column>"` for a column of the source, or 400 `Column not found` with `column_name`.
    func ref(_ column: String) throws -> String {
        guard schema.kind(of: column) != nil else { throw FilterSQL.columnNotFound(column) }
        return "_src.\(try b.quote(column))"
    }

    func kind(_ column: String) throws -> ColumnKind {
        guard let kind = schema.kind(of: column) else { throw FilterSQL.columnNotFound(column) }
        return kind
    }

    /// A geometry (or geography, read as geometry) column as `_src."<column>"::geometry`.
    func geometryRef(_ column: String) throws -> String {
        guard try kind(column) == .geometry else {
            throw APIError.badRequest("\(column) is not a geometry column", code: "invalid_parameter")
        }
        return "\(try ref(column))::geometry"
    }

    /// The SRID of the column's data (first non-null row); 0 for unknown. Geography reads as 4326.
    func srid(of geometry: String) throws -> Int {
        let r = try db.execute("SELECT ST_SRID(\(geometry)) FROM \(from) AS _src WHERE \(geometry) IS NOT NULL LIMIT 1",
                               definition.queryParameters, watch: watch)
        return r.rowCount == 1 ? (r.int(0, 0) ?? 4326) : 4326
    }

    /// `_carto_feature_id` of a feature: the md5 (hex) of its geometry's WKB. Tiles that carry this
    /// property let the pick model and `featureIds` selections find the same features.
    func featureId() throws -> String {
        "md5(ST_AsBinary(\(try geometryRef(definition.spatialColumn))))"
    }

    func featureIds() throws -> [String]? {
        guard let ids = try params.strings("featureIds", max: ModelRequest.maxFeatureIds) else { return nil }
        guard ids.allSatisfy({ $0.utf8.count <= 128 }) else { throw ModelParams.invalid("params.featureIds must be feature id strings") }
        return ids
    }

    /// `<from> AS _src WHERE …` with the shared conditions and any model-specific ones.
    func source(_ extra: [String] = []) -> String {
        let all = conditions + extra
        return "\(from) AS _src" + (all.isEmpty ? "" : " WHERE " + all.joined(separator: " AND "))
    }

    /// Runs a statement returning one row of JSON text columns and parses them. Build `sql` (and so bind
    /// its values) before the call: a call's `self` is read before its arguments are evaluated.
    func json(_ sql: String) throws -> [JSON] {
        let r = try db.execute(sql, b.parameters, watch: watch)
        guard r.rowCount == 1 else { return [] }
        return try (0..<r.columnCount).map { column in
            guard let text = r.string(0, column) else { return .null }
            do { return try JSON.decode(Array(text.utf8), maxDepth: 1024) } catch {
                throw APIError.internalError("The warehouse returned a value that is not JSON")
            }
        }
    }

    /// Columns a model returns when the client names none: every non-spatial column.
    var plainColumns: [String] { schema.columns.filter { $0.kind != .geometry }.map(\.name) }
}
