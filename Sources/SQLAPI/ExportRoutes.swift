import Foundation
import HTTPKit
import Jobs
import MapsAPI
import Platform
import Postgres
import SQLKit

/// Export jobs: `POST /api/v3/sql/{connection}/exports` queues an export of a query or a table as CSV,
/// GeoJSON, GeoPackage, FlatGeobuf or zipped Shapefile for the sql-worker (GDAL); `GET …/exports/{id}`
/// reports its progress and, once written, a short-lived signed download URL for the caller;
/// `DELETE …/exports/{id}` cancels it; `GET …/exports/{id}/file?expires=&signature=` downloads the file.
/// Small CSV/GeoJSON results need no job: `…/query?format=csv|geojson` streams them.
public struct ExportRoutes: Sendable {
    let services: Services
    static let queue = "sql"
    public static let kind = "export"
    var jobs: JobQueue { JobQueue(pool: services.metadata) }
    var signer: ExportSignature { ExportSignature(key: services.secrets.exportURLKey) }

    func register(_ router: Router) {
        router.post("/api/v3/sql/{connection}/exports", create)
        router.get("/api/v3/sql/{connection}/exports/{id}", show)
        router.delete("/api/v3/sql/{connection}/exports/{id}", cancel)
        router.get("/api/v3/sql/{connection}/exports/{id}/file", download)
    }

    func create(_ request: HTTPRequest) throws -> HTTPResponse {
        let connection = request.pathParameters["connection"]!
        let principal = try services.auth.authenticate(request, api: "sql")
        try principal.requireJobAccess()
        let p = try Parameters.from(request, bodyLimit: services.config.maxBodyBytes)
        guard let formatName = p.string("format"), let format = ExportFormat(name: formatName) else {
            throw APIError.badRequest("format must be one of csv, geojson, gpkg, fgb, shp", code: "invalid_parameter")
        }
        let raw = p.string("query") ?? p.string("q"), table = p.string("table").flatMap { $0.isEmpty ? nil : $0 }
        let query = try Self.query(raw, table: table)
        let name = Self.fileName(p.string("name") ?? p.string("table") ?? "export")
        // A builder layer's export: its query's parameters and its widget filters.
        let parameters = table == nil ? try QueryParameters.positional(try p.json("queryParameters")) : []
        let filters = try p.json("filters").flatMap { $0.isNull ? nil : $0 }
        let filtersOr = p.string("filtersLogicalOperator")?.lowercased() == "or"
        let statement = try validate(query, parameters: parameters, principal: principal, connection: connection, request: request) { db, watch in
            guard let filters else { return SQL(unsafeRaw: query, parameters: parameters) }
            return try FilteredSource.select(connection: connection, table: table, query: table == nil ? raw : nil, queryParameters: parameters,
                                             filters: filters, filtersOr: filtersOr, db: db, watch: watch)
        }
        var job = JobQueue.NewJob(queue: Self.queue, kind: Self.kind, payload: [
            "connection": .string(connection), "query": .string(statement), "format": .string(format.rawValue), "name": .string(name),
        ])
        // A rerun after a crash starts the file again from scratch; the statement only reads.
        job.maxAttempts = 2
        job.accountId = principal.accountId
        job.createdBy = principal.userId
        guard let id = try jobs.enqueue(job), let stored = try jobs.find(id: id) else {
            throw APIError.internalError("Could not queue the export")
        }
        return .json(body(stored, principal: principal), status: 201, headers: [("Cache-Control", "no-store")])
    }

    /// The statement the worker runs: the query wrapped as a subquery (so it is one SELECT, never a
    /// script or a write), or every column of a table named by the one qualified-name parser.
    static func query(_ raw: String?, table: String?) throws -> String {
        if let table, !table.isEmpty {
            let name: QualifiedName
            do { name = try QualifiedName(parsing: table) } catch {
                throw APIError.badRequest("table is not a valid table name", code: "invalid_parameter")
            }
            let sql: SQL = "SELECT * FROM \(name)"
            return sql.text
        }
        guard var q = raw, q.utf8.contains(where: { $0 > 32 }) else {
            throw APIError.badRequest("Missing required parameter: query (or table)", code: "missing_parameter")
        }
        guard !q.contains("\0") else { throw APIError.badRequest("query must not contain NUL characters") }
        guard q.utf8.count <= QueryRoute.maxQueryBytes else { throw APIError(413, "query_too_large", "query exceeds \(QueryRoute.maxQueryBytes) bytes") }
        q = q.trimmingCharacters(in: .whitespacesAndNewlines)
        while q.hasSuffix(";") { q = String(q.dropLast()).trimmingCharacters(in: .whitespacesAndNewlines) }
        let sql: SQL = "SELECT * FROM (\(unsafeRaw: q)\n) AS tessera_export"
        return sql.text
    }

    /// A download name of letters, digits, `_` and `-` only (it ends up in a path and a header).
    public static func fileName(_ raw: String) -> String {
        let kept = String(raw.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) && $0.isASCII || $0 == "_" || $0 == "-" }
            .map(Character.init)).prefix(64)
        return kept.isEmpty ? "export" : String(kept)
    }

    /// Runs the statement with no rows in the caller's own session, under the same grant checks as the
    /// query route: what the caller may not query is refused now (403/400/404), not by a failed job,
    /// and a query with a mistake fails at once with PostgreSQL's message.
    /// `build` makes the statement the worker runs (the query itself, or the filtered source); its values are
    /// written into the text for GDAL, which binds none, and that text is checked as well.
    func validate(_ query: String, parameters: [String?], principal: Principal, connection: String, request: HTTPRequest,
                  build: (PGConnection, PGConnection.Watch) throws -> SQL) throws -> String {
        let access = principal.access(to: connection)
        if case .none = access {
            _ = try services.warehouses.connection(account: principal.accountId, name: connection)
            throw GrantCheck.denied("The token has no grant on connection \(connection)")
        }
        let watch = PGConnection.Watch(request: request,
                                       deadline: Date().addingTimeInterval(services.warehouses.statementTimeout(for: principal) + 2))
        return try services.warehouses.withSession(for: principal, connection: connection, request: request, readsOnly: true) { db in
            if case .granted(let grants) = access {
                _ = try GrantCheck.authorize(query, parameters: parameters, grants: grants, connection: db, watch: watch)
            } else {
                try ReadOnlyGuard.check(query, parameters, connection: db, watch: watch)
            }
            _ = try db.execute(query + " LIMIT 0", parameters, watch: watch)
            guard let statement = try build(db, watch).inlined() else {
                throw APIError.badRequest("queryParameters must not contain NUL characters", code: "invalid_parameter")
            }
            _ = try db.execute("SELECT * FROM (\(statement)\n) AS tessera_export LIMIT 0", [], watch: watch)
            return statement
        }
    }

    func find(_ request: HTTPRequest) throws -> (Principal, Job) {
        let principal = try services.auth.authenticate(request, api: "sql")
        try principal.requireJobAccess()
        guard let job = try jobs.find(id: request.pathParameters["id"], queue: Self.queue, kind: Self.kind, account: principal.accountId),
              job.payload["connection"]?.stringValue == request.pathParameters["connection"] else {
            throw APIError.notFound("Job not found", code: "job_not_found")
        }
        try principal.authorize(job: job.accountId, createdBy: job.createdBy)
        return (principal, job)
    }

    func show(_ request: HTTPRequest) throws -> HTTPResponse {
        let (principal, job) = try find(request)
        return .json(body(job, principal: principal), headers: [("Cache-Control", "no-store")])
    }

    func cancel(_ request: HTTPRequest) throws -> HTTPResponse {
        let (principal, job) = try find(request)
        _ = try jobs.cancel(id: job.id, account: principal.accountId)
        return .json(body(try jobs.find(id: job.id) ?? job, principal: principal), headers: [("Cache-Control", "no-store")])
    }

    func download(_ request: HTTPRequest) throws -> HTTPResponse {
        let (principal, job) = try find(request)
        let q = try request.queryParameters()
        guard let expires = q["expires"].flatMap({ Int($0) }), let signature = q["signature"] else {
            throw APIError.forbidden("The download URL is not signed", code: "export_url_invalid")
        }
        switch signer.verify(job: job.id, user: principal.userId ?? "", expires: expires, signature: signature) {
        case .invalid: throw APIError.forbidden("The download URL is not valid for this user", code: "export_url_invalid")
        case .expired: throw APIError.forbidden("The download URL has expired: ask the export for a new one", code: "export_url_expired")
        case .valid: break
        }
        guard job.state == "completed", let file = ExportFiles(directory: services.config.importDir).finished(job) else {
            throw APIError(410, "export_gone", "The export file is not available (not finished, failed, cancelled or expired)")
        }
        guard let handle = FileHandle(forReadingAtPath: file.path) else {
            throw APIError(410, "export_gone", "The export file has expired")
        }
        let format = ExportFormat(rawValue: job.payload["format"]?.stringValue ?? "") ?? .csv
        let downloadName = (job.payload["name"]?.stringValue ?? "export") + (format == .shp ? ".zip" : "." + format.fileExtension)
        return HTTPResponse(status: 200, headers: [
            ("Content-Type", format.contentType), ("Content-Length", String(file.size)),
            ("Content-Disposition", "attachment; filename=\"\(downloadName)\""), ("Cache-Control", "private, no-store"),
        ], body: .stream { writer in
            defer { try? handle.close() }
            while !writer.clientGone, let chunk = try handle.read(upToCount: 256 << 10), !chunk.isEmpty {
                guard writer.write(Array(chunk)) else { return }
            }
        })
    }

    /// The batch jobs' status words, plus the format, progress and, for the caller, a signed URL.
    func body(_ job: Job, principal: Principal) -> JSON {
        guard case .object(var body) = BatchJobRoutes.body(job) else { return .null }
        body["format"] = job.payload["format"] ?? .null
        body["name"] = job.payload["name"] ?? .null
        if let progress = job.progress { body["progress"] = progress }
        if job.state == "completed", let finished = ExportFiles(directory: services.config.importDir).finished(job) {
            let expires = min(Int(Date().timeIntervalSince1970) + services.config.exportURLTTLSeconds, finished.expiresAt)
            let signature = signer.sign(job: job.id, user: principal.userId ?? "", expires: expires)
            let connection = job.payload["connection"]?.stringValue ?? ""
            body["downloadUrl"] = .string("/api/v3/sql/\(Self.pathEscaped(connection))/exports/\(job.id)/file?expires=\(expires)&signature=\(signature)")
            body["urlExpiresAt"] = .int(expires)
            body["fileExpiresAt"] = .int(finished.expiresAt)
        } else if job.state == "completed" {
            body["status"] = "expired"
        }
        return .object(body)
    }

    static func pathEscaped(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? s
    }
}
