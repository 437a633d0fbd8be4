import Foundation
import HTTPKit
import Jobs
import Platform
import Postgres

/// SQL batch jobs (contract §4.2): `POST /api/v3/sql/{connection}/job` queues a statement for the
/// sql-worker; `GET …/job/{id}` reports it, `DELETE …/job/{id}` cancels it (a running statement is
/// cancelled in the database), `GET /api/v3/sql/jobs` lists the caller's jobs (an admin's: the organisation's).
struct BatchJobRoutes: Sendable {
    let services: Services
    static let queue = "sql"
    static let kind = "batch_query"
    var jobs: JobQueue { JobQueue(pool: services.metadata) }

    func register(_ router: Router) {
        router.post("/api/v3/sql/{connection}/job", create)
        router.get("/api/v3/sql/{connection}/job/{id}", show)
        router.delete("/api/v3/sql/{connection}/job/{id}", cancel)
        router.get("/api/v3/sql/jobs", list)
    }

    /// Batch jobs change data: users with write roles, and API tokens with `*` on the connection.
    func authorize(_ request: HTTPRequest, connection: String) throws -> Principal {
        let principal = try services.auth.authenticate(request, api: "sql")
        try principal.requireJobAccess()
        try principal.requireWrite(to: connection, "run batch jobs")
        _ = try services.warehouses.connection(account: principal.accountId, name: connection)
        return principal
    }

    func create(_ request: HTTPRequest) throws -> HTTPResponse {
        let connection = request.pathParameters["connection"]!
        let principal = try authorize(request, connection: connection)
        let p = try Parameters.from(request, bodyLimit: services.config.maxBodyBytes)
        guard let query = p.string("query") ?? p.string("q"), query.utf8.contains(where: { $0 > 32 }), !query.contains("\0") else {
            throw APIError.badRequest("Missing required parameter: query", code: "missing_parameter")
        }
        let parameters = try QueryParameters.positional(try p.json("queryParameters"))
        var job = JobQueue.NewJob(queue: Self.queue, kind: Self.kind, payload: [
            "connection": .string(connection), "query": .string(query),
            "queryParameters": .array(parameters.map(JSON.optional)), "metadata": try p.json("metadata") ?? .null,
        ])
        // Statements are not idempotent: a retry after a crash is guarded by a marker in the warehouse.
        job.maxAttempts = 3
        job.accountId = principal.accountId
        job.createdBy = principal.userId
        guard let id = try jobs.enqueue(job),
              let stored = try jobs.find(id: id) else {
            throw APIError.internalError("Could not queue the job")
        }
        return .json(Self.body(stored), status: 201, headers: [("Cache-Control", "no-store")])
    }

    func find(_ request: HTTPRequest) throws -> (Principal, Job) {
        let connection = request.pathParameters["connection"]!
        let principal = try services.auth.authenticate(request, api: "sql")
        try principal.requireJobAccess()
        guard let job = try jobs.find(id: request.pathParameters["id"], queue: Self.queue, kind: Self.kind, account: principal.accountId),
              job.payload["connection"]?.stringValue == connection else {
            throw APIError.notFound("Job not found", code: "job_not_found")
        }
        try principal.authorize(job: job.accountId, createdBy: job.createdBy)
        return (principal, job)
    }

    func show(_ request: HTTPRequest) throws -> HTTPResponse {
        let (_, job) = try find(request)
        return .json(Self.body(job), headers: [("Cache-Control", "no-store")])
    }

    func cancel(_ request: HTTPRequest) throws -> HTTPResponse {
        let (principal, job) = try find(request)
        try principal.requireWrite(to: job.payload["connection"]?.stringValue, "cancel batch jobs")
        _ = try jobs.cancel(id: job.id, account: principal.accountId)
        let updated = try jobs.find(id: job.id) ?? job
        return .json(Self.body(updated), headers: [("Cache-Control", "no-store")])
    }

    func list(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: "sql")
        // The sql queue also carries LDS geocode-table jobs; those are reported by the LDS API.
        let all = try principal.visibleJobs(try jobs.list(queue: Self.queue, account: principal.accountId).filter { $0.kind == Self.kind },
                                            account: \.accountId, createdBy: \.createdBy)
        return .json(["results": .array(all.map(Self.body)), "total": .int(all.count)], headers: [("Cache-Control", "no-store")])
    }

    /// CARTO's job shape: pending | running | success | failure | cancelled.
    static func body(_ job: Job) -> JSON {
        let status: String
        switch job.state {
        case "running": status = "running"
        case "completed": status = "success"
        case "discarded": status = "failure"
        case "cancelled": status = "cancelled"
        default: status = "pending"
        }
        var body: [String: JSON] = [
            "jobId": .string(String(job.id)), "connection": job.payload["connection"] ?? .null, "query": job.payload["query"] ?? .null,
            "status": .string(status), "createdAt": .string(job.createdAt), "updatedAt": .optional(job.finishedAt ?? job.startedAt ?? job.createdAt),
            "metadata": job.payload["metadata"] ?? .null, "attempt": .int(job.attempt), "provider": "postgres",
        ]
        if let result = job.result { body["result"] = result }
        if status == "failure" || (status == "pending" && job.lastError != nil) {
            body["error"] = ["code": .string(status == "failure" ? "job_failed" : "job_retrying"), "msg": .optional(job.lastError)]
        }
        return .object(body)
    }
}
