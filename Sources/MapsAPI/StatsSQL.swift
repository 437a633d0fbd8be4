import HTTPKit
import Platform
import SQLKit

/// The Stats API's statement for one attribute, from the source and its schema (read beforehand): extent
/// for geometries, min/max/avg/sum/quantiles for numbers, min/max for times, top categories otherwise.
enum StatsSQL {
    static let maxQuantiles = 20
    static let maxCategories = 50

    static func statement(_ d: SourceDefinition, schema: SourceSchema, attribute: String) throws -> (kind: ColumnKind, sql: SQL) {
        guard let kind = schema.kind(of: attribute) else { throw FilterSQL.columnNotFound(attribute) }
        let from = try SourceSQL.from(d)
        let c: SQL = "_src.\(try Identifier(attribute))"
        let filter = try FilterSQL.condition(d.filters, or: d.filtersOr, schema: schema)
        let whereClause: SQL = filter.map { " WHERE \($0)" } ?? ""
        switch kind {
        case .geometry:
            return (kind, "SELECT ST_Extent(ST_Transform(\(c)::geometry, 4326))::text FROM \(from) AS _src\(whereClause)")
        case .number:
            let fractions = (1...maxQuantiles).flatMap { n in (0...n).map { Double($0) / Double(n) } }
            return (kind, """
                SELECT min(\(c))::float8, max(\(c))::float8, avg(\(c))::float8, sum(\(c))::float8,
                       percentile_disc(\(arrayLiteral(fractions.map { String($0) }))::float8[])
                         WITHIN GROUP (ORDER BY \(c)::float8)::text
                FROM \(from) AS _src\(whereClause)
                """)
        case .timestamp, .date:
            return (kind, "SELECT min(\(c))::text, max(\(c))::text FROM \(from) AS _src\(whereClause)")
        default:
            return (kind, """
                SELECT \(c)::text, count(*) FROM \(from) AS _src\(whereClause)
                GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT \(literal: maxCategories)
                """)
        }
    }
}
