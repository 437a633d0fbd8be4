import Foundation
import HTTPKit
import Jobs
import Platform

/// `POST /api/v3/lds/geocoding/table` queues a geocode-table job for the sql-worker;
/// `GET /api/v3/lds/geocoding/table/{id}` reports its state and progress.
struct GeocodeTableRoutes: Sendable {
    let lds: LDSContext
    var jobs: JobQueue { JobQueue(pool: lds.services.metadata) }

    func register(_ router: Router) {
        router.post("/api/v3/lds/geocoding/table", create)
        router.get("/api/v3/lds/geocoding/table/{id}", show)
    }

    /// The job writes into the table: users with write roles, API tokens with `*` on the connection.
    func create(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try lds.authenticate(request)
        let spec = try GeocodeTableSpec(try lds.parameters(request))
        try principal.requireJobAccess()
        try principal.requireWrite(to: spec.connection, "geocode tables")
        _ = try lds.services.warehouses.connection(account: principal.accountId, name: spec.connection)
        var job = JobQueue.NewJob(queue: GeocodeTableRunner.queue, kind: GeocodeTableRunner.kind, payload: spec.json)
        job.maxAttempts = 3
        job.accountId = principal.accountId
        job.createdBy = principal.userId
        // One job per table at a time: two would only contend for the same rows.
        job.uniqueKey = "lds-geocode:\(principal.accountId):\(spec.connection):\(spec.table)"
        guard let id = try jobs.enqueue(job) else {
            throw APIError.conflict("A geocoding job for \(spec.table) is already queued or running", code: "job_exists")
        }
        guard let stored = try jobs.find(id: id) else {
            throw APIError.internalError("Could not queue the job")
        }
        return .json(Self.body(stored), status: 201, headers: [("Cache-Control", "no-store")])
    }

    func show(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try lds.authenticate(request)
        guard let job = try jobs.find(id: request.pathParameters["id"], queue: GeocodeTableRunner.queue, kind: GeocodeTableRunner.kind,
                                      account: principal.accountId) else {
            throw APIError.notFound("Job not found", code: "job_not_found")
        }
        try principal.authorize(job: job.accountId, createdBy: job.createdBy)
        return .json(Self.body(job), headers: [("Cache-Control", "no-store")])
    }

    static func body(_ job: Job) -> JSON {
        let status = ["running": "running", "completed": "success", "discarded": "failure", "cancelled": "cancelled"][job.state] ?? "pending"
        var body: [String: JSON] = [
            "jobId": .string(String(job.id)), "status": .string(status), "attempt": .int(job.attempt),
            "connection": job.payload["connection"] ?? .null, "table": job.payload["table"] ?? .null,
            "progress": job.progress ?? .null, "result": job.result ?? .null,
            "createdAt": .string(job.createdAt), "updatedAt": .optional(job.finishedAt ?? job.startedAt ?? job.createdAt),
        ]
        if let error = job.lastError { body["error"] = .string(error) }
        return .object(body)
    }
}
