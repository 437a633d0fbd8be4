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
        r.get("/api/v3/workspace/connections/{name}/tables/{fqn}/rows", rows)
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

    /// A page of a table's rows: `orderBy` (a column) and `order` (`asc`/`desc`), `search` (text any shown
    /// column contains), `limit` (1…1000, default 50) and `offset`. Rows leave geometry columns out; `columns`
    /// lists them all (the SQL editor completes column names from it).
    /// `meta.matches` counts a search's matches up to `TableRowsSQL.countCap` (`matchesCapped` beyond).
    func rows(_ request: HTTPRequest) throws -> HTTPResponse {
        let fqn = request.pathParameters["fqn"]!
        let notFound = APIError.notFound("Table not found: \(fqn)", code: "table_not_found")
        guard let parsed = try? QualifiedName(parsing: fqn) else { throw notFound }
        let p = try services.parameters(request)
        let limit = try p.int("limit") ?? 50, offset = try p.int("offset") ?? 0
        guard (1...TableRowsSQL.maxLimit).contains(limit) else {
            throw APIError.badRequest("limit must be between 1 and \(TableRowsSQL.maxLimit)", code: "invalid_parameter")
        }
        guard offset >= 0 else { throw APIError.badRequest("offset must not be negative", code: "invalid_parameter") }
        let order = (p.string("order") ?? "asc").lowercased()
        guard order == "asc" || order == "desc" else { throw APIError.badRequest("order must be asc or desc", code: "invalid_parameter") }
        let search = p.string("search").flatMap { $0.isEmpty ? nil : $0 }
        if let search, search.count > 200 || search.contains("\0") {
            throw APIError.badRequest("search must be at most 200 characters, without NUL", code: "invalid_parameter")
        }
        let orderBy = p.string("orderBy").flatMap { $0.isEmpty ? nil : $0 }
        return try withCatalog(request) { catalog in
            guard let all = try catalog.columns(schema: parsed.schemaOrPublic, name: parsed.table) else { throw notFound }
            let shown = all.filter { $0.kind != "geometry" }
            if let orderBy, !shown.contains(where: { $0.name == orderBy }) {
                var e = APIError.badRequest("Column not found", code: "column_not_found")
                e.columnName = orderBy
                throw e
            }
            var page = TableRowsSQL(table: QualifiedName(schema: parsed.schemaOrPublic, table: parsed.table), columns: shown.map(\.name))
            page.orderBy = orderBy
            page.descending = order == "desc"
            page.search = search
            page.limit = limit
            page.offset = offset
            let sql = try page.rows()
            let text = try catalog.db.execute(sql.text, sql.parameters).string(0, 0) ?? "[]"
            var meta: [String: JSON] = ["limit": .int(limit), "offset": .int(offset), "order": .string(order),
                                        "orderBy": .optional(orderBy), "search": .optional(search)]
            if search != nil {
                let count = try page.count()
                let n = try catalog.db.execute(count.text, count.parameters).int(0, 0) ?? 0
                meta["matches"] = .int(min(n, TableRowsSQL.countCap))
                meta["matchesCapped"] = .bool(n > TableRowsSQL.countCap)
            }
            return .json(["rows": try JSON.decode(text), "meta": .object(meta),
                          "columns": .array(all.map { ["name": .string($0.name), "type": .string($0.kind)] })])
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
