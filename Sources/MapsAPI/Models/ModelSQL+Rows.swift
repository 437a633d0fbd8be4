import HTTPKit
import Platform
import SQLKit

/// table, scatterplot and pick: models returning source rows.
extension ModelSQL {
    static let maxColumns = 500
    static let maxOffset = 1_000_000_000
    static let tileResolutions: [Double] = [0.25, 0.5, 1, 2, 4]

    /// `{rows, metadata: {total}}`: the `column` list (every non-spatial column when absent), sorted by
    /// `sortBy`/`sortDirection`, paged by `limit` (default 10) and `offset`. Row keys keep the column names.
    func table() throws -> ModelQuery {
        let columns = try params.strings("column", max: Self.maxColumns) ?? plainColumns
        guard !columns.isEmpty else { throw ModelParams.invalid("params.column must name at least one column") }
        var seen = Set<String>()
        let select = SQL.join(try columns.filter { seen.insert($0).inserted }.map(selectItem), separator: ", ")
        var order: SQL = ""
        if let sortBy = try params.string("sortBy"), !sortBy.isEmpty {
            let direction: SQL
            switch (try params.string("sortDirection") ?? "asc").lowercased() {
            case "asc": direction = "ASC NULLS LAST"
            case "desc": direction = "DESC NULLS LAST"
            default: throw ModelParams.invalid("params.sortDirection must be asc or desc")
            }
            guard try kind(sortBy) != .json else { throw ModelParams.invalid("params.sortBy cannot be a JSON column") }
            order = " ORDER BY \(try ref(sortBy)) \(direction)"
        }
        let limit = try params.int("limit", default: 10, min: 0, cap: Self.maxRows)
        let offset = try params.int("offset", default: 0, min: 0, cap: Self.maxOffset)
        let sql: SQL = """
            SELECT (SELECT count(*) FROM \(source()))::text,
                   (SELECT coalesce(json_agg(_t), '[]') FROM (
                      SELECT \(select) FROM \(source())\(order) LIMIT \(limit) OFFSET \(offset)
                    ) _t)::text
            """
        return ModelQuery(sql: sql) { row in ["rows": row.count > 1 ? row[1] : [], "metadata": ["total": row.first ?? 0]] }
    }

    /// A returned column; geometries as EWKB hex text, as the SQL API returns them.
    func selectItem(_ column: String) throws -> SQL {
        try kind(column) == .geometry ? "\(try ref(column))::geometry::text AS \(try Identifier(column))" : try ref(column)
    }

    /// `{rows: [{x, y}]}`: up to `limit` (default 500) pairs where both values are present.
    func scatterplot() throws -> ModelQuery {
        let x = try value(key: "xAxisColumn", joinKey: "xAxisJoinOperation")
        let y = try value(key: "yAxisColumn", joinKey: "yAxisJoinOperation")
        guard x.kind == .number, y.kind == .number else {
            throw ModelParams.invalid("scatterplot needs numeric xAxisColumn and yAxisColumn")
        }
        let limit = try params.int("limit", default: 500, min: 0, cap: Self.maxRows)
        let sql: SQL = """
            SELECT coalesce(json_agg(json_build_object('x', x, 'y', y)), '[]')::text FROM (
              SELECT \(x.sql) AS x, \(y.sql) AS y FROM \(source(["\(x.sql) IS NOT NULL", "\(y.sql) IS NOT NULL"])) LIMIT \(limit)
            ) _t
            """
        return ModelQuery(sql: sql) { row in ["rows": row.first ?? []] }
    }

    /// `{rows, metadata: {total}}`: the features whose `_carto_feature_id` (md5 of the geometry's WKB) is
    /// in `featureIds`, in that order, with the requested `columns` (`_carto_feature_id` may be one of them).
    /// Without `featureIds` every feature matching the filters is a candidate. `dataType`, `z` and
    /// `tileResolution` are validated but do not change ids (they are resolution independent here).
    func pick() throws -> ModelQuery {
        let idColumn = "_carto_feature_id"
        if let t = try params.string("dataType"), !["points", "lines", "polygons"].contains(t) {
            throw ModelParams.invalid("params.dataType must be points, lines or polygons")
        }
        _ = try params.int("z", default: 0, min: 0, cap: 30)
        if let r = params.values["tileResolution"], !r.isNull, !(r.doubleValue.map { Self.tileResolutions.contains($0) } ?? false) {
            throw ModelParams.invalid("params.tileResolution must be one of 0.25, 0.5, 1, 2, 4")
        }
        let ids = try featureIds()
        let columns = try params.strings("columns", max: Self.maxColumns) ?? (plainColumns + [idColumn])
        guard !columns.isEmpty else { throw ModelParams.invalid("params.columns must name at least one column") }
        let computedId = schema.kind(of: idColumn) == nil
        let fid: SQL = ids != nil || (computedId && columns.contains(idColumn)) ? (computedId ? try featureId() : try ref(idColumn)) : ""
        var seen = Set<String>()
        let select = SQL.join(try columns.filter { seen.insert($0).inserted }.map { c -> SQL in
            c == idColumn && computedId ? "\(fid) AS \(try Identifier(idColumn))" : try selectItem(c)
        }, separator: ", ")
        let limit = try params.int("limit", default: 1000, min: 0, cap: Self.maxRows)
        let offset = try params.int("offset", default: 0, min: 0, cap: Self.maxOffset)
        var extra: [SQL] = []
        var order: SQL = ""
        if let ids {
            let array = arrayLiteral(ids)
            extra.append("\(fid) = ANY(\(array)::text[])")
            order = " ORDER BY array_position(\(array)::text[], \(fid))"
        }
        let sql: SQL = """
            SELECT (SELECT count(*) FROM \(source(extra)))::text,
                   (SELECT coalesce(json_agg(_t), '[]') FROM (
                      SELECT \(select) FROM \(source(extra))\(order) LIMIT \(limit) OFFSET \(offset)
                    ) _t)::text
            """
        return ModelQuery(sql: sql) { row in ["rows": row.count > 1 ? row[1] : [], "metadata": ["total": row.first ?? 0]] }
    }
}
