import HTTPKit
import Platform
import SQLKit
import Postgres

/// The data explorer's listings of a connection's warehouse: schemas, their tables, and one table's
/// columns, row count, geometry and bounds. Row previews are the SQL API's job.
struct ExplorerRoutes {
    let services: Services

    func register(_ r: Router) {
        r.get("/api/v3/workspace/connections/{name}/schemas", schemas)
        r.get("/api/v3/workspace/connections/{name}/schemas/{schema}/tables", tables)
        r.get("/api/v3/workspace/connections/{name}/tables/{fqn}", table)
    }

    /// Runs `body` on the connection's warehouse pool as a signed-in user of the organisation.
    func withCatalog(_ request: HTTPRequest, _ body: (WarehouseCatalog) throws -> HTTPResponse) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        _ = try principal.requireUser()
        var response = try services.warehouses.withSession(for: principal, connection: request.pathParameters["name"]!, request: request,
                                                                readsOnly: true) {
            try body(WarehouseCatalog(db: $0))
        }
        response.setHeader("Cache-Control", "no-store")
        return response
    }

    func schemas(_ request: HTTPRequest) throws -> HTTPResponse {
        try withCatalog(request) { .json(["data": .array(try $0.schemas())]) }
    }

    func tables(_ request: HTTPRequest) throws -> HTTPResponse {
        let schema = request.pathParameters["schema"]!
        return try withCatalog(request) { catalog in
            guard let tables = try catalog.tables(schema: schema) else {
                throw APIError.notFound("Schema not found: \(schema)", code: "schema_not_found")
            }
            return .json(["data": .array(tables)])
        }
    }

    /// `{fqn}` is `schema.table` (quoted parts keep their case and dots) or a bare table name in `public`.
    func table(_ request: HTTPRequest) throws -> HTTPResponse {
        let fqn = request.pathParameters["fqn"]!
        let notFound = APIError.notFound("Table not found: \(fqn)", code: "table_not_found")
        // A database part is accepted and ignored, as everywhere else a table is named; a name that does
        // not parse names no table.
        guard let parsed = try? QualifiedName(parsing: fqn) else { throw notFound }
        let (schema, name) = (parsed.schemaOrPublic, parsed.table)
        return try withCatalog(request) { catalog in
            guard let table = try catalog.table(schema: schema, name: name) else { throw notFound }
            return .json(table)
        }
    }
}
