import HTTPKit
import Platform
import SQLKit

/// timeseries: values grouped into UTC time steps.
extension ModelSQL {
    /// Seconds per step for the fixed-length units; month and year are calendar steps.
    static let stepSeconds: [String: Int] = ["second": 1, "minute": 60, "hour": 3600, "day": 86_400, "week": 604_800]
    /// Weeks start on Monday (1970-01-05), like the client's local `getUTCMonday` grouping.
    static let weekOrigin = 345_600
    static let maxTimeseriesRows = 50_000
    static let maxSplitCategories = 100

    /// `{rows: [{name, value}], metadata?: {categories}}`. `name` is the step's start in epoch
    /// milliseconds (UTC), as the client's own local grouping produces; steps of `stepMultiplier` units
    /// count from 1970-01-01 (weeks from Monday 1970-01-05). With `splitByCategory` each row also has
    /// `category` and `metadata.categories` lists the categories (the `splitByCategoryLimit` most
    /// frequent, default 5, or `splitByCategoryValues` in the given order).
    func timeseries() throws -> ModelQuery {
        let column = try params.requiredString("column")
        let columnKind = try kind(column)
        let c = try ref(column)
        let epoch: SQL
        switch columnKind {
        case .date, .timestamp: epoch = Self.epochSeconds(c, kind: columnKind)
        case .number: epoch = "(\(c)::float8 / 1000)"  // epoch milliseconds
        default: throw ModelParams.invalid("timeseries needs a date, timestamp or epoch-milliseconds column (params.column)")
        }
        guard let step = try params.string("stepSize") else { throw ModelParams.invalid("Missing required parameter: params.stepSize") }
        let multiplier = try params.int("stepMultiplier", default: 1, min: 1, cap: 1_000_000)
        let bucket: SQL
        if let seconds = Self.stepSeconds[step] {
            let origin = step == "week" ? Self.weekOrigin : 0
            let width: SQL = "\(Double(seconds) * Double(multiplier))"
            bucket = "((floor((\(epoch) - \(literal: origin)) / \(width)::float8) * \(width)::float8 + \(literal: origin)) * 1000)"
        } else if step == "month" || step == "year" {
            let months: SQL = "\(multiplier * (step == "year" ? 12 : 1))"
            let ts: SQL = "(to_timestamp(\(epoch)) AT TIME ZONE 'UTC')"
            let index: SQL = "((extract(year FROM \(ts)) - 1970) * 12 + extract(month FROM \(ts)) - 1)"
            bucket = "(extract(epoch FROM (timestamp '1970-01-01' + make_interval(months => (floor(\(index) / \(months)::int) * \(months)::int)::int))) * 1000)::float8"
        } else {
            throw ModelParams.invalid("params.stepSize must be year, month, week, day, hour, minute or second")
        }
        let op = try ModelOperation.parse(params.string("operation"))
        let value = op == .count || op == .custom ? nil : try self.value(key: "operationColumn", joinKey: "joinOperation", default: column)
        let agg = try aggregate(op, value, key: "operationColumn")
        let notNull: SQL = "\(c) IS NOT NULL"
        let cap = Self.maxTimeseriesRows + 1

        guard let split = try params.string("splitByCategory"), !split.isEmpty else {
            let sql: SQL = """
                SELECT coalesce(json_agg(json_build_object('name', name, 'value', value) ORDER BY name), '[]')::text FROM (
                  SELECT \(bucket) AS name, \(agg) AS value FROM \(source([notNull])) GROUP BY 1 ORDER BY 1 LIMIT \(literal: cap)
                ) _t
                """
            return ModelQuery(sql: sql) { row in ["rows": try Self.checkedRows(row.first)] }
        }
        guard ![.geometry, .json].contains(try kind(split)) else {
            throw ModelParams.invalid("params.splitByCategory must be a column of plain values")
        }
        let s = try ref(split)
        let categories: SQL
        if let values = try params.strings("splitByCategoryValues", max: 1000), !values.isEmpty {
            categories = "SELECT c, n FROM unnest(\(arrayLiteral(values))::text[]) WITH ORDINALITY AS _v(c, n)"
        } else {
            let limit = try params.int("splitByCategoryLimit", default: 5, min: 1, cap: Self.maxSplitCategories)
            categories = """
                SELECT c, row_number() OVER (ORDER BY freq DESC, c) AS n FROM (
                  SELECT \(s)::text AS c, count(*) AS freq FROM \(source(["\(s) IS NOT NULL"])) GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT \(limit)
                ) _f
                """
        }
        let sql: SQL = """
            WITH _cats AS (\(categories))
            SELECT (SELECT coalesce(json_agg(c ORDER BY n), '[]') FROM _cats)::text,
                   (SELECT coalesce(json_agg(json_build_object('name', name, 'category', category, 'value', value) ORDER BY name, n), '[]') FROM (
                      SELECT \(bucket) AS name, \(s)::text AS category, \(agg) AS value
                      FROM \(source([notNull, "\(s)::text IN (SELECT c FROM _cats)"])) GROUP BY 1, 2 ORDER BY 1, 2 LIMIT \(literal: cap)
                    ) _t JOIN _cats ON _cats.c = _t.category)::text
            """
        return ModelQuery(sql: sql) { row in
            ["rows": try Self.checkedRows(row.count > 1 ? row[1] : nil), "metadata": ["categories": row.first ?? []]]
        }
    }

    static func checkedRows(_ rows: JSON?) throws -> JSON {
        guard let rows, rows.arrayValue != nil else { return [] }
        if rows.arrayValue!.count > maxTimeseriesRows {
            throw ModelParams.invalid("The time series has more than \(maxTimeseriesRows) points; use a larger stepSize or stepMultiplier")
        }
        return rows
    }
}
