import Foundation
import HTTPKit
import Platform
import SQLKit

/// What every model statement shares: the source as `<from> AS _src`, its schema, and the WHERE
/// conditions (filters, spatial filters, selected feature ids). Pure: the facts it needs from the warehouse
/// (the schema, the SRIDs of spatially filtered columns) are read beforehand (`ModelContext`), so each
/// model's statement is a function of the request and those facts.
struct ModelSQL {
    /// The most rows any model returns (table, pick, scatterplot limits; category lists).
    static let maxRows = 10_000

    let request: ModelRequest
    /// Users may send SQL fragments (`operationExp`, aggregation strings); API Access Tokens never.
    let allowsRawSQL: Bool
    let from: SQL
    let schema: SourceSchema
    private(set) var conditions: [SQL] = []

    var params: ModelParams { request.params }
    var definition: SourceDefinition { request.definition }

    /// `srids` holds the SRID of each spatially filtered column's data (0 for unknown).
    init(request: ModelRequest, schema: SourceSchema, srids: [String: Int], allowsRawSQL: Bool) throws {
        self.request = request
        self.allowsRawSQL = allowsRawSQL
        self.schema = schema
        let d = request.definition
        from = try SourceSQL.from(d)
        if let filter = try FilterSQL.condition(d.filters, or: d.filtersOr, schema: schema) {
            conditions.append(filter)
        }
        for (column, filter) in request.spatialFilters {
            conditions.append(try Self.spatialCondition(column, filter, mode: request.spatialFiltersMode, schema: schema,
                                                        index: d.spatialType.index, srid: srids[column] ?? 4326))
        }
        if request.model != .pick, let ids = try featureIds(), !ids.isEmpty {
            conditions.append("\(try featureId()) = ANY(\(arrayLiteral(ids))::text[])")
        }
    }

    /// A spatial filter on a geometry column (the shape intersects it), or on a quadbin source's cell column
    /// (its cells selected by `mode`, or by the selected cell ids).
    static func spatialCondition(_ column: String, _ filter: SpatialFilter, mode: SpatialFilterMode, schema: SourceSchema,
                                 index: CellIndex?, srid: Int) throws -> SQL {
        if index == .quadbin, schema.kind(of: column) == .number {
            let cell: SQL = "\(try ref(column, schema: schema))::bigint"
            switch filter {
            case .shape(let geojson): return mode.quadbinCondition(cell: cell, shape: "ST_SetSRID(ST_GeomFromGeoJSON(\(geojson)), 4326)")
            case .quadbinCells(let cells): return SpatialFilterMode.quadbinCells(cell: cell, cells)
            case .h3Cells: break
            }
        }
        // H3 cell columns: bigint, or hex text (what h3TableSource data usually holds).
        if index == .h3, let kind = schema.kind(of: column), kind == .number || kind == .string {
            let ref = try ref(column, schema: schema)
            let cell: SQL = kind == .number ? "\(ref)::bigint" : "carto.h3_string_toint(\(ref)::text)"
            switch filter {
            case .shape(let geojson): return mode.h3Condition(cell: cell, shape: "ST_SetSRID(ST_GeomFromGeoJSON(\(geojson)), 4326)")
            case .h3Cells(let cells): return SpatialFilterMode.h3Cells(cell: cell, cells)
            case .quadbinCells: break
            }
        }
        let g = try geometryRef(column, schema: schema)
        guard case .shape(let geojson) = filter else {
            throw ModelRequest.invalidSpatial("spatialFilters indexes need a quadbin or H3 cell column, and \(column) is not one")
        }
        let shape: SQL
        switch srid {
        case 4326, 0: shape = "ST_SetSRID(ST_GeomFromGeoJSON(\(geojson)), \(literal: srid))"
        default: shape = "ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(\(geojson)), 4326), \(literal: srid))"
        }
        return "ST_Intersects(\(g), \(shape))"
    }

    /// The statement that reads the SRID of a column's data (first non-null row).
    static func sridSQL(from: SQL, geometry: SQL) -> SQL {
        "SELECT ST_SRID(\(geometry)) FROM \(from) AS _src WHERE \(geometry) IS NOT NULL LIMIT 1"
    }

    /// `_src."<column>"` for a column of the source, or 400 `Column not found` with `column_name`.
    func ref(_ column: String) throws -> SQL { try Self.ref(column, schema: schema) }

    static func ref(_ column: String, schema: SourceSchema) throws -> SQL {
        guard schema.kind(of: column) != nil else { throw FilterSQL.columnNotFound(column) }
        return "_src.\(try Identifier(column))"
    }

    func kind(_ column: String) throws -> ColumnKind {
        guard let kind = schema.kind(of: column) else { throw FilterSQL.columnNotFound(column) }
        return kind
    }

    /// A geometry (or geography, read as geometry) column as `_src."<column>"::geometry`.
    func geometryRef(_ column: String) throws -> SQL { try Self.geometryRef(column, schema: schema) }

    static func geometryRef(_ column: String, schema: SourceSchema) throws -> SQL {
        guard let kind = schema.kind(of: column) else { throw FilterSQL.columnNotFound(column) }
        guard kind == .geometry else {
            throw APIError.badRequest("\(column) is not a geometry column", code: "invalid_parameter")
        }
        return "\(try ref(column, schema: schema))::geometry"
    }

    /// `_carto_feature_id` of a feature: the md5 (hex) of its geometry's WKB. Tiles that carry this
    /// property let the pick model and `featureIds` selections find the same features.
    func featureId() throws -> SQL {
        "md5(ST_AsBinary(\(try geometryRef(definition.spatialColumn))))"
    }

    func featureIds() throws -> [String]? {
        guard let ids = try params.strings("featureIds", max: ModelRequest.maxFeatureIds) else { return nil }
        guard ids.allSatisfy({ $0.utf8.count <= 128 }) else { throw ModelParams.invalid("params.featureIds must be feature id strings") }
        return ids
    }

    /// `<from> AS _src WHERE …` with the shared conditions and any model-specific ones.
    func source(_ extra: [SQL] = []) -> SQL {
        let all = conditions + extra
        return all.isEmpty ? "\(from) AS _src" : "\(from) AS _src WHERE \(all, joinedBy: " AND ")"
    }

    /// Columns a model returns when the client names none: every non-spatial column.
    var plainColumns: [String] { schema.columns.filter { $0.kind != .geometry }.map(\.name) }
}

/// One model's statement (one row of JSON text columns) and how its columns become the response body.
struct ModelQuery {
    let sql: SQL
    let shape: ([JSON]) throws -> JSON
}
