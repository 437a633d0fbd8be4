import HTTPKit
import Platform
import Postgres

/// `/api/v3/connections`: PostgreSQL warehouse connections of the caller's organisation.
struct ConnectionRoutes {
    let services: Services
    var store: ConnectionStore { ConnectionStore(services.metadata) }
    static let sslmodes: Set<String> = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

    func register(_ r: Router) {
        r.get("/api/v3/connections", list)
        r.post("/api/v3/connections", create)
        r.post("/api/v3/connections/test", testUnsaved)
        r.get("/api/v3/connections/{id}", show)
        r.patch("/api/v3/connections/{id}", update)
        r.put("/api/v3/connections/{id}", update)
        r.delete("/api/v3/connections/{id}", delete)
        r.post("/api/v3/connections/{id}/test", testSaved)
    }

    func find(_ request: HTTPRequest, _ principal: Principal) throws -> ConnectionRecord {
        guard let c = try store.find(account: principal.accountId, idOrName: request.pathParameters["id"]!) else {
            throw APIError.notFound("Connection not found", code: "connection_not_found")
        }
        return c
    }

    /// Applies request fields onto a record (all required when creating).
    func apply(_ p: Parameters, to c: inout ConnectionRecord, creating: Bool) throws {
        func field(_ names: String...) -> String? { names.lazy.compactMap { p.string($0) }.first }
        if let name = field("name") {
            guard name.range(of: "^[A-Za-z0-9_-]{1,64}$", options: .regularExpression) != nil else {
                throw APIError.badRequest("Connection names use letters, digits, _ and - (at most 64)", code: "invalid_connection")
            }
            c.name = name
        }
        if let provider = field("provider_type", "providerType", "provider"), provider != "postgres" {
            throw APIError.badRequest("Only PostgreSQL connections are supported", code: "invalid_connection")
        }
        let params = p.body["parameters"]?.objectValue ?? [:]
        func value(_ names: String...) -> String? {
            for n in names {
                if let v = p.string(n) { return v }
                if let v = params[n]?.stringValue ?? params[n]?.intValue.map(String.init) { return v }
            }
            return nil
        }
        if let host = value("host") { c.host = host }
        if let port = value("port") {
            guard let n = Int(port), (1...65535).contains(n) else { throw APIError.badRequest("port must be 1-65535", code: "invalid_connection") }
            c.port = n
        }
        if let db = value("database", "dbname") { c.database = db }
        if let user = value("user", "username") { c.username = user }
        if let password = value("password") { c.passwordSealed = password.isEmpty ? nil : try services.warehouses.sealPassword(password) }
        if let ssl = value("sslmode") {
            guard Self.sslmodes.contains(ssl) else { throw APIError.badRequest("Unknown sslmode", code: "invalid_connection") }
            c.sslmode = ssl
        }
        // Where and as whom a platform-created record connects is the platform's: any such edit makes it a
        // user connection, subject to every rule of ConnectionPolicy.
        if ["host", "port", "database", "dbname", "user", "username", "password", "sslmode"].contains(where: { value($0) != nil }) {
            c.platformManaged = false
        }
        for (label, v) in [("name", c.name), ("host", c.host), ("database", c.database), ("user", c.username)] where v.isEmpty {
            throw APIError.badRequest("Missing required field: \(label)", code: "invalid_connection")
        }
        if [c.host, c.database, c.username].contains(where: { $0.count > 255 || $0.contains("\0") }) {
            throw APIError.badRequest("Field too long or invalid", code: "invalid_connection")
        }
    }

    func blank(_ account: String) -> ConnectionRecord {
        ConnectionRecord(id: "", accountId: account, name: "", host: "", port: 5432, database: "", username: "",
                         passwordSealed: nil, sslmode: "prefer", createdAt: nil, updatedAt: "")
    }

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        _ = try principal.requireUser()
        let all = try store.list(account: principal.accountId)
        return .json(["results": .array(all.map { $0.json() }), "total": .int(all.count)])
    }

    func show(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        _ = try principal.requireUser()
        return .json(try find(request, principal).json())
    }

    func create(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let userId = try principal.requireRole(.admin, .editor)
        var c = blank(principal.accountId)
        try apply(try services.parameters(request), to: &c, creating: true)
        try services.warehouses.checkPolicy(c, allowUnresolvable: true)
        do {
            let created = try store.create(account: principal.accountId, createdBy: userId, name: c.name, host: c.host, port: c.port,
                                           database: c.database, username: c.username, passwordSealed: c.passwordSealed, sslmode: c.sslmode)
            AuditLog(services.metadata).record(account: principal.accountId, actor: "user:\(userId)", action: "connection_created",
                                               target: created.name, requestId: request.requestId)
            return .json(created.json(), status: 201)
        } catch let e as PGError where e.sqlstate == "23505" {
            throw APIError.conflict("A connection named \(c.name) already exists", code: "connection_exists")
        }
    }

    func update(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let userId = try principal.requireRole(.admin, .editor)
        var c = try find(request, principal)
        let oldName = c.name
        try apply(try services.parameters(request), to: &c, creating: false)
        try services.warehouses.checkPolicy(c, allowUnresolvable: true)
        do {
            guard let updated = try store.update(c) else { throw APIError.notFound("Connection not found") }
            services.warehouses.forget(account: principal.accountId, name: oldName)
            if oldName != updated.name { try TokenStore(services.metadata).removeGrants(account: principal.accountId, connectionName: oldName) }
            AuditLog(services.metadata).record(account: principal.accountId, actor: "user:\(userId)", action: "connection_updated",
                                               target: updated.name, requestId: request.requestId)
            return .json(updated.json())
        } catch let e as PGError where e.sqlstate == "23505" {
            throw APIError.conflict("A connection named \(c.name) already exists", code: "connection_exists")
        }
    }

    func delete(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        let userId = try principal.requireRole(.admin, .editor)
        let c = try find(request, principal)
        // The store also drops the connection's grants and queues `connection.deleted` (cache purge).
        guard try store.delete(account: principal.accountId, id: c.id, actor: userId) else { throw APIError.notFound("Connection not found") }
        services.warehouses.forget(account: principal.accountId, name: c.name)
        AuditLog(services.metadata).record(account: principal.accountId, actor: "user:\(userId)", action: "connection_deleted",
                                           target: c.name, requestId: request.requestId)
        return .noContent()
    }

    /// A refused host is an error before any socket is opened; otherwise only the class of a failure is
    /// told (see Warehouses.test), so the call is no port or role scanner. nginx rate-limits it.
    func testResponse(_ c: ConnectionRecord) throws -> HTTPResponse {
        try services.warehouses.checkPolicy(c, allowUnresolvable: true)
        let result = services.warehouses.test(c)
        return .json(["ok": .bool(result.ok), "message": .string(result.message),
                      "server_version": .optional(result.serverVersion), "postgis_version": .optional(result.postgis)],
                     status: result.ok ? 200 : 400)
    }

    func testSaved(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        _ = try principal.requireUser()
        return try testResponse(try find(request, principal))
    }

    func testUnsaved(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: nil)
        _ = try principal.requireRole(.admin, .editor)
        var c = blank(principal.accountId)
        c.name = "test"
        try apply(try services.parameters(request), to: &c, creating: true)
        return try testResponse(c)
    }
}
