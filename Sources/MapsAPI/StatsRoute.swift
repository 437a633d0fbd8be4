import Foundation
import HTTPKit
import Platform
import Postgres

/// Stats API (contract §3): `/api/v3/stats/{connection}/{table}/{attribute}` and
/// `/api/v3/stats/{connection}/{attribute}?q=…`. Numbers get min/max/avg/sum/quantiles, strings and
/// booleans their top categories, timestamps min/max; the spatial column gets the extent.
struct StatsRoute: Sendable {
    let maps: MapsService
    static var maxQuantiles: Int { StatsSQL.maxQuantiles }

    func handle(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try maps.services.auth.authenticate(request, api: "maps")
        let connection = request.pathParameters["connection"]!
        let attribute = request.pathParameters["attribute"]!
        let p = try Parameters.from(request, bodyLimit: maps.services.config.maxBodyBytes)
        var d: SourceDefinition
        if let table = request.pathParameters["table"] {
            d = SourceDefinition(kind: .table, connection: connection)
            d.name = table
        } else {
            guard let q = p.string("q"), q.utf8.contains(where: { $0 > 32 }) else {
                throw APIError.badRequest("Missing required parameter: q", code: "missing_parameter")
            }
            d = SourceDefinition(kind: .query, connection: connection)
            d.sql = q
            d.queryParameters = try QueryParameters.positional(try p.json("queryParameters"))
        }
        if let filters = try p.json("filters"), !filters.isNull {
            try FilterSQL.validate(filters)
            d.filters = filters
        }
        d.filtersOr = p.string("filtersLogicalOperator")?.lowercased() == "or"
        try SourceAccess.authorize(principal, d)
        let body = try maps.withWarehouse(principal, connection, request: request) { db -> JSON in
            let watch = maps.watch(request)
            if d.kind == .table, let band = try RasterSource.bandStats(d.name ?? "", attribute: attribute, connection: db, watch: watch) {
                return band
            }
            let schema = try SourceSchema.describe(from: try SourceSQL.from(d), connection: db, watch: watch)
            let (kind, sql) = try StatsSQL.statement(d, schema: schema, attribute: attribute)
            let r = try db.execute(sql, watch: watch)
            switch kind {
            case .geometry:
                let box = TileJSONBuilder.parseBox(r.string(0, 0))
                return ["extent": box.map { ["xmin": .number($0[0]), "ymin": .number($0[1]), "xmax": .number($0[2]), "ymax": .number($0[3])] } ?? .null]
            case .number:
                let values = Self.parseArray(r.string(0, 4))
                // quantiles[n] holds the n+1 break values (min … max) splitting the data into n buckets.
                var quantiles: [JSON] = [[]]
                var offset = 0
                for n in 1...Self.maxQuantiles {
                    let slice = offset + n + 1 <= values.count ? Array(values[offset..<(offset + n + 1)]) : []
                    quantiles.append(.array(slice.map { $0.map(JSON.number) ?? .null }))
                    offset += n + 1
                }
                return ["attribute": .string(attribute), "type": "Number",
                        "min": r.double(0, 0).map(JSON.number) ?? .null, "max": r.double(0, 1).map(JSON.number) ?? .null,
                        "avg": r.double(0, 2).map(JSON.number) ?? .null, "sum": r.double(0, 3).map(JSON.number) ?? .null,
                        "quantiles": .array(quantiles)]
            case .timestamp, .date:
                return ["attribute": .string(attribute), "type": "Timestamp", "min": .optional(r.string(0, 0)), "max": .optional(r.string(0, 1))]
            default:
                let categories = (0..<r.rowCount).map { i -> JSON in
                    ["category": kind == .boolean ? (r.string(i, 0).map { .bool($0 == "true") } ?? .null) : .optional(r.string(i, 0)),
                     "frequency": .int(r.int(i, 1) ?? 0)]
                }
                return ["attribute": .string(attribute), "type": .string(kind == .boolean ? "Boolean" : "String"),
                        "categories": .array(categories)]
            }
        }
        return .json(body, headers: CachePolicy.headers(request, principal: principal, maxAge: 1800, connection: connection))
    }

    /// `{1.5,2,NULL}` → [1.5, 2, nil]
    static func parseArray(_ text: String?) -> [Double?] {
        guard let text, text.count >= 2 else { return [] }
        return text.dropFirst().dropLast().split(separator: ",").map { Double($0) }
    }
}
