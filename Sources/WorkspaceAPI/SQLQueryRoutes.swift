import Foundation
import HTTPKit
import Platform

/// `/api/v3/workspace/sql/history` and `/api/v3/workspace/sql/queries`: the SQL editor's history and
/// saved queries of the signed-in user (any role: a viewer's read queries are theirs to keep too).
struct SQLQueryRoutes {
    let services: Services

    func register(_ r: Router) {
        r.get("/api/v3/workspace/sql/history", history)
        r.post("/api/v3/workspace/sql/history", record)
        r.delete("/api/v3/workspace/sql/history", clear)
        r.get("/api/v3/workspace/sql/queries", saved)
        r.post("/api/v3/workspace/sql/queries", save)
        r.get("/api/v3/workspace/sql/queries/{id}", show)
        r.patch("/api/v3/workspace/sql/queries/{id}", update)
        r.delete("/api/v3/workspace/sql/queries/{id}", delete)
    }

    static let noStore: [(String, String)] = [("Cache-Control", "no-store")]
    static let maxSQLBytes = 1 << 20

    func store(_ request: HTTPRequest) throws -> SQLQueryStore {
        let principal = try services.auth.authenticate(request, api: nil)
        let (user, _) = try principal.requireUser()
        return SQLQueryStore(pool: services.metadata, account: principal.accountId, user: user)
    }

    static func invalid(_ message: String) -> APIError { APIError.badRequest(message, code: "invalid_parameter") }

    /// A string field: required ones must be present and not blank; nil when absent and optional.
    func text(_ p: Parameters, _ name: String, max: Int, required: Bool, trim: Bool = true) throws -> String? {
        guard p.has(name) else {
            if required { throw APIError.badRequest("Missing required parameter: \(name)", code: "missing_parameter") }
            return nil
        }
        guard let raw = p.body[name]?.stringValue ?? p.query[name] else { throw Self.invalid("\(name) must be a string") }
        let value = trim ? raw.trimmingCharacters(in: .whitespacesAndNewlines) : raw
        guard !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw Self.invalid("\(name) must not be empty") }
        guard value.utf8.count <= max else { throw Self.invalid("\(name) is longer than \(max) bytes") }
        guard !value.contains("\0") else { throw Self.invalid("\(name) must not contain NUL characters") }
        return value
    }

    func number(_ p: Parameters, _ name: String) throws -> Double? {
        guard let v = p.body[name] ?? p.query[name].map(JSON.string), v != .null else { return nil }
        if let n = v.doubleValue, n.isFinite, n >= 0 { return n }
        if let s = v.stringValue, let n = Double(s), n.isFinite, n >= 0 { return n }
        throw Self.invalid("\(name) must be a non-negative number")
    }

    func history(_ request: HTTPRequest) throws -> HTTPResponse {
        .json(["data": .array(try store(request).list(.history))], headers: Self.noStore)
    }

    func record(_ request: HTTPRequest) throws -> HTTPResponse {
        let s = try store(request)
        let p = try services.parameters(request)
        let connection = try text(p, "connection", max: 200, required: true)!
        let sql = try text(p, "sql", max: Self.maxSQLBytes, required: true, trim: false)!
        let rows = try number(p, "rowCount").map { Int($0) }
        let ms = try number(p, "durationMs")
        let error = try text(p, "error", max: 2000, required: false)
        return .json(try s.record(connection: connection, sql: sql, rowCount: rows, durationMs: ms, error: error),
                     status: 201, headers: Self.noStore)
    }

    func clear(_ request: HTTPRequest) throws -> HTTPResponse {
        try store(request).clearHistory()
        return .noContent(headers: Self.noStore)
    }

    func saved(_ request: HTTPRequest) throws -> HTTPResponse {
        .json(["data": .array(try store(request).list(.saved))], headers: Self.noStore)
    }

    func save(_ request: HTTPRequest) throws -> HTTPResponse {
        let s = try store(request)
        let p = try services.parameters(request)
        let name = try text(p, "name", max: 200, required: true)!
        let connection = try text(p, "connection", max: 200, required: true)!
        let sql = try text(p, "sql", max: Self.maxSQLBytes, required: true, trim: false)!
        return .json(try s.save(name: name, connection: connection, sql: sql), status: 201, headers: Self.noStore)
    }

    static let notFound = APIError.notFound("Saved query not found", code: "query_not_found")

    func show(_ request: HTTPRequest) throws -> HTTPResponse {
        guard let q = try store(request).find(id: request.pathParameters["id"]!) else { throw Self.notFound }
        return .json(q, headers: Self.noStore)
    }

    func update(_ request: HTTPRequest) throws -> HTTPResponse {
        let s = try store(request)
        let p = try services.parameters(request)
        let name = try text(p, "name", max: 200, required: false)
        let connection = try text(p, "connection", max: 200, required: false)
        let sql = try text(p, "sql", max: Self.maxSQLBytes, required: false, trim: false)
        guard let q = try s.update(id: request.pathParameters["id"]!, name: name, connection: connection, sql: sql) else { throw Self.notFound }
        return .json(q, headers: Self.noStore)
    }

    func delete(_ request: HTTPRequest) throws -> HTTPResponse {
        guard try store(request).delete(id: request.pathParameters["id"]!) else { throw Self.notFound }
        return .noContent(headers: Self.noStore)
    }
}
