import HTTPKit
import Platform
import Postgres
import SQLKit

/// `/api/v3/workflows`: documents (owned and shared like maps), runs, per-node previews and the component
/// table. Who may do what is `Principal.authorize(workflow:)`; tokens need `workflows` in allowed_apis.
public struct WorkflowRoutes: Sendable {
    let services: Services
    var store: WorkflowStore { WorkflowStore(pool: services.metadata) }
    static let noStore: [(String, String)] = [("Cache-Control", "no-store")]

    public init(services: Services) { self.services = services }

    public func register(_ r: Router) {
        r.get("/api/v3/workflows/components", components)
        r.get("/api/v3/workflows", list)
        r.post("/api/v3/workflows", create)
        r.get("/api/v3/workflows/{id}", show)
        r.patch("/api/v3/workflows/{id}", update)
        r.delete("/api/v3/workflows/{id}", delete)
        r.get("/api/v3/workflows/{id}/sql", script)
        r.get("/api/v3/workflows/{id}/runs", runs)
        r.post("/api/v3/workflows/{id}/runs", startRun)
        r.get("/api/v3/workflows/{id}/runs/{runId}", showRun)
        r.post("/api/v3/workflows/{id}/runs/{runId}/cancel", cancelRun)
        r.get("/api/v3/workflows/{id}/nodes/{nodeId}/preview", preview)
    }

    func principal(_ request: HTTPRequest) throws -> Principal {
        try services.auth.authenticate(request, api: "workflows")
    }

    func find(_ request: HTTPRequest, _ principal: Principal, _ action: Principal.WorkflowAction) throws -> WorkflowRecord {
        guard let w = try store.find(id: request.pathParameters["id"]!, account: principal.accountId) else {
            throw APIError.notFound("Workflow not found", code: "workflow_not_found")
        }
        try principal.authorize(workflow: w.accountId, owner: w.ownerId, privacy: w.privacyLevel, connection: w.connection, action)
        return w
    }

    func components(_ request: HTTPRequest) throws -> HTTPResponse {
        _ = try principal(request)
        return .json(ComponentCatalog.json)
    }

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let p = try principal(request)
        let visible = try store.list(account: p.accountId).filter {
            (try? p.authorize(workflow: $0.accountId, owner: $0.ownerId, privacy: $0.privacyLevel, connection: $0.connection, .read)) != nil
        }
        return .json(["results": .array(visible.map(\.json)), "total": .int(visible.count)], headers: Self.noStore)
    }

    func show(_ request: HTTPRequest) throws -> HTTPResponse {
        let p = try principal(request)
        return .json(try find(request, p, .read).json, headers: Self.noStore)
    }

    // MARK: body fields

    func text(_ params: Parameters, _ name: String, max: Int) throws -> String? {
        guard params.has(name) else { return nil }
        guard let s = params.body[name]?.stringValue?.trimmingWhitespace, !s.isEmpty, s.count <= max else {
            throw WorkflowError.invalid("must be a non-empty string of at most \(max) characters", parameter: name)
        }
        return s
    }

    func document(_ params: Parameters) throws -> WorkflowDocument {
        try WorkflowDocument(nodes: params.body["nodes"], edges: params.body["edges"], variables: params.body["variables"])
    }

    func schedule(_ params: Parameters) throws -> Cron?? {
        guard params.has("schedule") else { return nil }
        guard let v = params.body["schedule"], !v.isNull, v.stringValue?.isEmpty == false else { return .some(nil) }
        guard let s = v.stringValue else { throw WorkflowError.invalid("must be a cron expression or null", parameter: "schedule") }
        do { return .some(try Cron(s)) } catch let error as Cron.Invalid { throw WorkflowError.invalid(error.reason, parameter: "schedule") }
    }

    func privacy(_ params: Parameters) throws -> String? {
        guard let s = try text(params, "privacy", max: 20) else { return nil }
        guard Principal.MapPrivacy(rawValue: s) != nil else {
            throw WorkflowError.invalid("must be private, organization or public", parameter: "privacy")
        }
        return s
    }

    func checkConnection(_ name: String, _ p: Principal) throws {
        do { _ = try services.warehouses.connection(account: p.accountId, name: name) } catch let e as APIError where e.status == 404 {
            throw WorkflowError.invalid("connection \(name) does not exist or you cannot use it", parameter: "connection")
        }
        if case .none = p.access(to: name) { throw WorkflowError.invalid("your token has no grant on connection \(name)", parameter: "connection") }
    }

    func create(_ request: HTTPRequest) throws -> HTTPResponse {
        let p = try principal(request)
        let user = try p.requireRole(.admin, .editor)
        let params = try Parameters.from(request, bodyLimit: services.config.maxBodyBytes)
        guard let name = try text(params, "name", max: 200) else { throw WorkflowError.invalid("is required", parameter: "name") }
        guard let connection = try text(params, "connection", max: 200) else { throw WorkflowError.invalid("is required", parameter: "connection") }
        try checkConnection(connection, p)
        let doc = try document(params)
        let w = try store.create(account: p.accountId, owner: user, name: name, connection: connection,
                                 privacy: try privacy(params) ?? "private", document: doc.json, schedule: try schedule(params) ?? nil)
        return .json(w.json, status: 201, headers: Self.noStore)
    }

    func update(_ request: HTTPRequest) throws -> HTTPResponse {
        let p = try principal(request)
        let w = try find(request, p, .write)
        let params = try Parameters.from(request, bodyLimit: services.config.maxBodyBytes)
        var c = WorkflowStore.Changes()
        c.name = try text(params, "name", max: 200)
        c.privacy = try privacy(params)
        if params.has("nodes") || params.has("edges") || params.has("variables") {
            c.document = try WorkflowDocument(nodes: params.body["nodes"] ?? w.document["nodes"], edges: params.body["edges"] ?? w.document["edges"],
                                              variables: params.body["variables"] ?? w.document["variables"]).json
        }
        c.schedule = try schedule(params)
        return .json(try store.update(w, c).json, headers: Self.noStore)
    }

    func delete(_ request: HTTPRequest) throws -> HTTPResponse {
        let p = try principal(request)
        let w = try find(request, p, .write)
        guard try store.delete(w) else { throw APIError.notFound("Workflow not found", code: "workflow_not_found") }
        return .noContent()
    }

    /// Compiles every node against the warehouse in the caller's session (LIMIT 0 probes only).
    func compiled(_ w: WorkflowRecord, _ p: Principal, _ request: HTTPRequest, variables: [String: JSON]) throws
        -> (WorkflowDocument, [(WorkflowDocument.Node, SQL)]) {
        let doc = try WorkflowDocument(nodes: w.document["nodes"], edges: w.document["edges"], variables: w.document["variables"])
        guard !doc.nodes.isEmpty else { throw WorkflowError.invalid("the workflow has no nodes", parameter: "nodes") }
        do { _ = try services.warehouses.connection(account: w.accountId, name: w.connection) } catch let e as APIError where e.status == 404 {
            throw WorkflowError.invalid("connection \(w.connection) no longer exists", parameter: "connection")
        }
        let sql = try services.warehouses.withSession(for: p, connection: w.connection, request: request) { db in
            try GraphCheck.check(doc, variables: variables, on: db)
        }
        return (doc, sql)
    }

    func script(_ request: HTTPRequest) throws -> HTTPResponse {
        let p = try principal(request)
        let w = try find(request, p, .read)
        let doc = try WorkflowDocument(nodes: w.document["nodes"], edges: w.document["edges"], variables: w.document["variables"])
        let (_, sql) = try compiled(w, p, request, variables: try doc.resolveVariables(nil))
        return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; charset=utf-8")] + Self.noStore,
                            body: .bytes(Array(GraphCheck.script(sql).utf8)))
    }

    func startRun(_ request: HTTPRequest) throws -> HTTPResponse {
        let p = try principal(request)
        let w = try find(request, p, .run)
        let params = try Parameters.from(request, bodyLimit: services.config.maxBodyBytes)
        let doc = try WorkflowDocument(nodes: w.document["nodes"], edges: w.document["edges"], variables: w.document["variables"])
        let variables = try doc.resolveVariables(params.body["variables"])
        _ = try compiled(w, p, request, variables: variables)
        let runId = try services.metadata.transaction { db in
            try WorkflowStore.startRun(w, createdBy: p.userId, variables: .object(variables), trigger: "api", scheduledFor: nil, on: db)
        }
        guard let runId else { throw APIError.internalError("Could not queue the run") }
        return .json(["id": .string(String(runId)), "status": "pending"], status: 201, headers: Self.noStore)
    }

    func runs(_ request: HTTPRequest) throws -> HTTPResponse {
        let p = try principal(request)
        let w = try find(request, p, .read)
        let list = try store.runs(workflow: w.id)
        return .json(["results": .array(list), "total": .int(list.count)], headers: Self.noStore)
    }

    func showRun(_ request: HTTPRequest) throws -> HTTPResponse {
        let p = try principal(request)
        let w = try find(request, p, .read)
        guard let run = try store.run(id: request.pathParameters["runId"]!, workflow: w.id) else {
            throw APIError.notFound("Run not found", code: "run_not_found")
        }
        return .json(run, headers: Self.noStore)
    }

    func cancelRun(_ request: HTTPRequest) throws -> HTTPResponse {
        let p = try principal(request)
        let w = try find(request, p, .run)
        let runId = request.pathParameters["runId"]!
        guard try store.cancel(run: runId, workflow: w.id), let run = try store.run(id: runId, workflow: w.id) else {
            throw APIError.notFound("Run not found", code: "run_not_found")
        }
        return .json(run, headers: Self.noStore)
    }

    /// The first rows and the columns of a node's latest result, and a Maps API source to draw it.
    func preview(_ request: HTTPRequest) throws -> HTTPResponse {
        let p = try principal(request)
        let w = try find(request, p, .read)
        let nodeId = request.pathParameters["nodeId"]!
        guard let table = try store.latestTable(workflow: w.id, node: nodeId) else {
            throw APIError.notFound("Node \(nodeId) has no result yet: run the workflow first", code: "no_result")
        }
        let name = try QualifiedName(parsing: table)
        let limit = min(max(Int(try request.queryParameters()["limit"] ?? "") ?? 50, 1), 1000)
        let (columns, rows) = try services.warehouses.withSession(for: p, connection: w.connection, request: request, readsOnly: true) { db in
            let columns = try GraphCheck.describe(try db.execute("SELECT * FROM \(name.qualifiedIdentifier) LIMIT 0"), on: db)
            let r = try db.execute("SELECT row_to_json(t)::text FROM (SELECT * FROM \(name.qualifiedIdentifier) LIMIT \(literal: limit)) t")
            return (columns, (0..<r.rowCount).compactMap { r.string($0, 0).flatMap { try? JSON.decode($0) } })
        }
        let geometry = columns.first(where: \.isGeometry)?.name
        return .json([
            "node": .string(nodeId), "table": .string(table),
            "schema": .array(columns.map { ["name": .string($0.name), "type": .string($0.type)] }),
            "rows": .array(rows),
            "source": geometry.map { ["connectionName": .string(w.connection), "type": "table", "source": .string(table),
                                      "geoColumn": .string($0)] } ?? .null,
        ], headers: Self.noStore)
    }
}
