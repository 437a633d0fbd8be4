import Foundation
import HTTPKit
import Jobs
import Observability
import OutboundHTTP
import Platform
import Postgres
import SQLKit

/// The Imports API (contract §10): jobs in the `imports` queue, run by the import-worker.
///
/// `POST /api/v3/imports` takes either JSON `{connection, url, destination, overwrite, autoguessing}`
/// or a file: the raw body (`?connection=&destination=&overwrite=&filename=`, or a
/// `Content-Disposition` filename) or `multipart/form-data` (fields + one file part). Files are
/// streamed to disk under a generated name, never held in memory. At most `maxRunningPerAccount`
/// imports per organisation are pending or running; one more is 429.
struct ImportRoutes: Sendable {
    let services: Services
    let settings: ImportSettings
    static let queue = "imports"
    static let kind = "import"
    var jobs: JobQueue { JobQueue(pool: services.metadata) }
    var uploads: UploadStore { UploadStore(directory: settings.uploadsDir) }

    func register(_ router: Router) {
        router.post("/api/v3/imports/preview", { try preview($0) })
        router.post("/api/v3/imports", { try create($0) })
        router.get("/api/v3/imports", { try list($0) })
        router.get("/api/v3/imports/{id}", { try show($0) })
        router.post("/api/v3/imports/{id}/cancel", { try cancel($0) })
    }

    /// Users with a write role, and API tokens that allow the `imports` API.
    func authenticate(_ request: HTTPRequest) throws -> Principal {
        let principal = try services.auth.authenticate(request, api: "imports")
        try principal.requireJobAccess()
        try principal.requireWrite(to: nil, "import data")
        return principal
    }

    // MARK: create

    /// Fields of an import, from wherever the request carries them.
    struct Fields {
        var values: [String: String] = [:]
        subscript(_ key: String) -> String? { values[key].flatMap { $0.isEmpty ? nil : $0 } }
        func bool(_ key: String, default d: Bool) -> Bool {
            guard let v = self[key]?.lowercased() else { return d }
            return ["true", "1", "yes"].contains(v)
        }
    }

    func create(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try authenticate(request)
        let mode = request.mediaType
        var fields = Fields(values: try request.queryParameters())
        let source: ImportRequest.Source
        var upload: UploadStore.Writer?
        defer { upload?.discard() } // only reached with a writer still set when the import was refused

        if mode == "application/json" {
            let p = try Parameters.from(request, bodyLimit: 1 << 20)
            for (k, v) in p.body { fields.values[k] = p.string(k) ?? (v.isNull ? nil : v.text) }
            guard let url = fields["url"] else {
                throw APIError.badRequest("Give a url (JSON) or upload a file", code: "missing_parameter")
            }
            do { _ = try URLGuard.parse(url) } catch let f as URLRefused { throw APIError.badRequest(f.message, code: "invalid_url") }
            if fields["destination"] == nil, let name = URL(string: url)?.lastPathComponent, let table = ImportRequest.tableName(fromFilename: name) {
                fields.values["destination"] = table
            }
            source = .url(url)
        } else {
            var filename = fields["filename"] ?? request.header("content-disposition").flatMap {
                HeaderParameters.parse($0)["filename*"].map(HeaderParameters.extValue) ?? HeaderParameters.parse($0)["filename"]
            }
            // Refuse early what can be refused before the bytes arrive. A raw body carries its fields in
            // the query string, so they must all be there; multipart fields may still come with the body.
            if mode != "multipart/form-data" {
                guard fields["connection"] != nil else {
                    throw APIError.badRequest("Missing required parameter: connection", code: "missing_parameter")
                }
                if fields["destination"] == nil, let table = filename.flatMap(ImportRequest.tableName(fromFilename:)) {
                    fields.values["destination"] = table
                }
            }
            if let connection = fields["connection"] { _ = try target(principal, connection: connection, fields: fields, request: request) }
            try checkLimit(principal.accountId, request: request)
            let writer = try UploadStore.Writer(store: uploads)
            upload = writer
            if mode == "multipart/form-data" {
                filename = try receiveMultipart(request, into: writer, fields: &fields) ?? filename
            } else {
                try request.streamBody(limit: settings.maxBytes) { try writer.write($0) }
            }
            try checkComplete(request, bytes: writer.bytes, raw: mode != "multipart/form-data")
            guard writer.bytes > 0 else { throw APIError.badRequest("The uploaded file is empty", code: "empty_file") }
            filename = filename.map(ImportRoutes.displayName)
            if fields["destination"] == nil, let filename, let table = ImportRequest.tableName(fromFilename: filename) {
                fields.values["destination"] = table
            }
            try writer.finish()
            source = .upload(file: writer.name, filename: filename, bytes: writer.bytes)
        }

        guard let connection = fields["connection"] else {
            throw APIError.badRequest("Missing required parameter: connection", code: "missing_parameter")
        }
        let (schema, table) = try target(principal, connection: connection, fields: fields, request: request)
        let importRequest = ImportRequest(connection: connection, schema: schema, table: table, overwrite: fields.bool("overwrite", default: false),
                                          autoguessing: fields.bool("autoguessing", default: true), source: source)
        var job = JobQueue.NewJob(queue: Self.queue, kind: Self.kind, payload: importRequest.payload)
        job.maxAttempts = 3
        job.accountId = principal.accountId
        job.createdBy = principal.userId
        // The uploaded file is on this VM's disk only (unless that is shared storage); a URL import can run anywhere.
        if case .upload = source { job.node = settings.uploadNode }
        let id = try services.metadata.transaction { db -> Int64? in
            // Serialises this organisation's enqueues so the limit holds under concurrent requests.
            _ = try db.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", ["tessera:imports:" + principal.accountId])
            try checkLimit(principal.accountId, request: request, on: db)
            return try JobQueue.enqueue(job, on: db)
        }
        guard let id, let stored = try jobs.find(id: id) else {
            throw APIError.internalError("Could not queue the import")
        }
        upload = nil // the job owns the file now
        Log.info("import_queued", [("request_id", request.requestId), ("job", id), ("destination", importRequest.destination)])
        return .json(Self.body(stored), status: 201, headers: [("Cache-Control", "no-store")])
    }

    /// The destination, checked: the connection is the caller's and reachable, the schema exists, the
    /// table does not exist unless overwriting (409), and an API token's grants cover it.
    func target(_ principal: Principal, connection: String, fields: Fields, request: HTTPRequest) throws -> (String, String) {
        _ = try services.warehouses.connection(account: principal.accountId, name: connection)
        guard let destination = fields["destination"] else {
            throw APIError.badRequest("Missing required parameter: destination", code: "missing_parameter")
        }
        let (schema, table) = try ImportRequest.parseDestination(destination)
        switch principal.access(to: connection) {
        case .everything: break
        case .none: throw APIError.forbidden("The token has no grant on connection \(connection)", code: "source_not_granted")
        case .granted(let grants):
            guard grants.contains(where: { $0.allowsTable(schema: schema, table: table) }) else {
                throw APIError.forbidden("The token's grants do not cover \(schema).\(table)", code: "source_not_granted")
            }
        }
        let overwrite = fields.bool("overwrite", default: false)
        try services.warehouses.withSession(for: principal, connection: connection, request: request, readsOnly: true) { db in
            guard try db.execute("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]).rowCount == 1 else {
                throw APIError.badRequest("Schema \(schema) does not exist", code: "schema_not_found")
            }
            let name = QualifiedName(schema: schema, table: table).identifier.text
            if !overwrite, try db.execute("SELECT to_regclass($1) IS NOT NULL", [name]).bool(0, 0) == true {
                throw APIError.conflict("Table \(schema).\(table) already exists; set overwrite=true to replace it", code: "table_exists")
            }
        }
        return (schema, table)
    }

    func checkLimit(_ account: String, request: HTTPRequest, on db: PGConnection? = nil) throws {
        func count(_ db: PGConnection) throws -> Int {
            try db.execute("""
                SELECT count(*) FROM jobs WHERE account_id = $1::uuid AND queue = $2 AND kind = 'import'
                  AND state IN ('available', 'running', 'retryable')
                """, [account, Self.queue]).int(0, 0) ?? 0
        }
        let n = try db.map(count) ?? services.metadata.withConnection(count)
        if n >= settings.maxRunningPerAccount {
            var e = APIError.tooManyRequests("\(n) imports are already pending or running; at most \(settings.maxRunningPerAccount) at a time",
                                             code: "too_many_imports")
            e.hint = "Wait for an import to finish, or cancel one"
            throw e
        }
    }

    /// A raw body must be exactly Content-Length long, and the client must still be there.
    func checkComplete(_ request: HTTPRequest, bytes: Int, raw: Bool) throws {
        if raw, let length = request.contentLength, length != bytes {
            throw APIError.badRequest("The upload was interrupted (\(bytes) of \(length) bytes received)", code: "incomplete_upload")
        }
        if request.isClientGone() { throw APIError.badRequest("The upload was interrupted", code: "incomplete_upload") }
    }

    /// Streams a multipart body: the one file part goes to `writer`, other parts are small fields.
    /// Returns the file part's filename.
    func receiveMultipart(_ request: HTTPRequest, into writer: UploadStore.Writer, fields: inout Fields) throws -> String? {
        let parser = MultipartParser(boundary: try MultipartParser.boundary(contentType: request.header("content-type") ?? ""))
        var current: (name: String?, isFile: Bool)?
        var value: [UInt8] = []
        var sawFile = false
        var filename: String?
        var collected = fields
        try request.streamBody(limit: settings.maxBytes + 1 << 20) { chunk in
            try parser.feed(chunk) { event in
                switch event {
                case .partStart(let name, let file):
                    let isFile = file != nil || name == "file"
                    if isFile {
                        if sawFile { throw APIError.badRequest("Upload one file per import", code: "invalid_multipart") }
                        sawFile = true
                        filename = file
                    }
                    current = (name, isFile)
                    value = []
                case .data(let bytes):
                    guard let part = current else { return }
                    if part.isFile {
                        if writer.bytes + bytes.count > settings.maxBytes {
                            throw APIError(413, "payload_too_large", "Request body exceeds \(settings.maxBytes) bytes")
                        }
                        try writer.write(bytes)
                    } else {
                        value += bytes
                        if value.count > 64 * 1024 { throw APIError.badRequest("A form field is too large", code: "invalid_multipart") }
                    }
                case .partEnd:
                    if let part = current, !part.isFile, let name = part.name {
                        collected.values[name] = String(decoding: value, as: UTF8.self)
                    }
                    current = nil
                }
            }
        }
        try parser.finish()
        guard sawFile else { throw APIError.badRequest("The multipart body has no file part", code: "missing_file") }
        fields = collected
        return filename
    }

    /// A client filename as shown back (metadata only): its last path component, printable, bounded.
    static func displayName(_ name: String) -> String {
        let last = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? name
        return String(last.filter { !$0.isASCII || ($0.asciiValue! >= 0x20 && $0.asciiValue! != 0x7F) }.prefix(255))
    }

    // MARK: status

    func find(_ request: HTTPRequest) throws -> (Principal, Job) {
        let principal = try services.auth.authenticate(request, api: "imports")
        guard let job = try jobs.find(id: request.pathParameters["id"], queue: Self.queue, kind: Self.kind, account: principal.accountId) else {
            throw APIError.notFound("Import not found", code: "import_not_found")
        }
        do { try principal.authorize(job: job.accountId, createdBy: job.createdBy) } catch {
            throw APIError.notFound("Import not found", code: "import_not_found")
        }
        return (principal, job)
    }

    func show(_ request: HTTPRequest) throws -> HTTPResponse {
        let (_, job) = try find(request)
        return .json(Self.body(job), headers: [("Cache-Control", "no-store")])
    }

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: "imports")
        let all = try principal.visibleJobs(try jobs.list(queue: Self.queue, account: principal.accountId).filter { $0.kind == Self.kind },
                                            account: \.accountId, createdBy: \.createdBy)
        return .json(["results": .array(all.map(Self.body)), "total": .int(all.count)], headers: [("Cache-Control", "no-store")])
    }

    func cancel(_ request: HTTPRequest) throws -> HTTPResponse {
        let (principal, job) = try find(request)
        try principal.requireWrite(to: nil, "cancel imports")
        let state = try jobs.cancel(id: job.id, account: principal.accountId)
        if state == "cancelled", !job.isFinal, let source = job.payload["source"], source["type"]?.stringValue == "file",
           let file = source["file"]?.stringValue {
            // Never started (or between attempts): nobody else will delete its upload.
            uploads.remove(file)
        }
        let updated = try jobs.find(id: job.id) ?? job
        return .json(Self.body(updated), headers: [("Cache-Control", "no-store")])
    }

    /// An import job as the API shows it: status pending | running | success | failure | cancelled.
    static func body(_ job: Job) -> JSON {
        let status: String
        switch job.state {
        case "running": status = "running"
        case "completed": status = "success"
        case "discarded": status = "failure"
        case "cancelled": status = "cancelled"
        default: status = "pending"
        }
        let p = job.payload
        var source: [String: JSON] = ["type": p["source"]?["type"] ?? .null]
        if let url = p["source"]?["url"] { source["url"] = url }
        if let name = p["source"]?["filename"] { source["filename"] = name }
        if let bytes = p["source"]?["bytes"] { source["bytes"] = bytes }
        var body: [String: JSON] = [
            "id": .string(String(job.id)), "jobId": .string(String(job.id)), "status": .string(status),
            "connection": p["connection"] ?? .null, "destination": p["destination"] ?? .null,
            "overwrite": p["overwrite"] ?? false, "autoguessing": p["autoguessing"] ?? true, "source": .object(source),
            "progress": job.progress ?? .null, "result": job.result ?? .null,
            "warnings": job.result?["warnings"] ?? .array([]), "rows": job.result?["rows"] ?? .null,
            "error": status == "failure" || status == "pending" ? .optional(job.lastError) : .null,
            "attempt": .int(job.attempt), "createdAt": .string(job.createdAt), "startedAt": .optional(job.startedAt),
            "finishedAt": .optional(job.finishedAt), "updatedAt": .optional(job.finishedAt ?? job.startedAt ?? job.createdAt),
        ]
        if status == "success" { body["progress"] = ["phase": "done", "percent": 100, "rows": job.result?["rows"] ?? .null] }
        return .object(body)
    }
}
