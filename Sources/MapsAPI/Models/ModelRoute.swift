import Foundation
import HTTPKit
import Platform
import Postgres

/// `GET|POST /api/v3/sql/{connection}/model/{model}` (contract §5): the widget models of remote
/// (table and query) sources. The path is the SQL API's, so API access tokens need `sql` in their
/// `allowed_apis`, plus a grant on the source (as for the Maps API). Models only read: like every Maps
/// route they ask the pool for a read-only session, whoever the principal is.
struct ModelRoute: Sendable {
    let maps: MapsService

    func handle(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try maps.services.auth.authenticate(request, api: "sql")
        let connection = request.pathParameters["connection"]!
        let name = request.pathParameters["model"] ?? ""
        guard let model = WidgetModel(rawValue: name) else {
            throw APIError.notFound("Unknown model \(name); use one of \(WidgetModel.allCases.map(\.rawValue).joined(separator: ", "))",
                                    code: "model_not_found")
        }
        let p = try Parameters.from(request, bodyLimit: maps.services.config.maxBodyBytes)
        let modelRequest = try ModelRequest.parse(model: model, connection: connection, p)
        try SourceAccess.authorize(principal, modelRequest.definition)
        let body = try maps.withWarehouse(principal, connection, request: request) { db -> JSON in
            let watch = maps.watch(request)
            let context = try ModelContext(db: db, watch: watch, request: modelRequest, allowsRawSQL: principal.isUser)
            switch model {
            case .formula: return try context.formula()
            case .category: return try context.category()
            case .histogram: return try context.histogram()
            case .range: return try context.range()
            case .table: return try context.table()
            case .timeseries: return try context.timeseries()
            case .scatterplot: return try context.scatterplot()
            case .aggregations: return try context.aggregations()
            case .pick: return try context.pick()
            }
        }
        return .json(body, headers: CachePolicy.headers(request, principal: principal, maxAge: 1800, connection: connection))
    }
}
