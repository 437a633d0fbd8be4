import Foundation
import HTTPKit
import Postgres

/// One job row as a worker or the API sees it.
public struct Job: Sendable {
    public let id: Int64
    public let queue: String
    public let kind: String
    public let payload: JSON
    public let state: String
    public let attempt: Int
    public let maxAttempts: Int
    public let accountId: String?
    /// Proves the lease: completing or failing with a stale token is refused (a rescued job's old worker).
    public let leaseToken: String?
    public let progress: JSON?
    public let result: JSON?
    public let errors: JSON
    public let createdAt: String
    public let startedAt: String?
    public let finishedAt: String?
    public let cancelRequested: Bool
    /// The user who queued it (for API tokens: the token's creator); listings are per owner.
    public let createdBy: String?

    static let columns = """
        id, queue, kind, payload::text, state, attempt, max_attempts, account_id, lease_token, progress::text, result::text,
        errors::text, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), cancel_requested, created_by
        """

    init(_ r: PGResult, _ i: Int) {
        func json(_ c: Int) -> JSON? { r.string(i, c).flatMap { try? JSON.decode($0) } }
        id = Int64(r.string(i, 0)!)!
        queue = r.string(i, 1)!
        kind = r.string(i, 2)!
        payload = json(3) ?? .object([:])
        state = r.string(i, 4)!
        attempt = r.int(i, 5) ?? 0
        maxAttempts = r.int(i, 6) ?? 1
        accountId = r.string(i, 7)
        leaseToken = r.string(i, 8)
        progress = json(9)
        result = json(10)
        errors = json(11) ?? .array([])
        createdAt = r.string(i, 12)!
        startedAt = r.string(i, 13)
        finishedAt = r.string(i, 14)
        cancelRequested = r.bool(i, 15) ?? false
        createdBy = r.string(i, 16)
    }

    public var isFinal: Bool { ["completed", "discarded", "cancelled"].contains(state) }

    /// The last recorded error message.
    public var lastError: String? { errors.arrayValue?.last?["error"]?.stringValue }

    public var json: JSON {
        [
            "id": .string(String(id)), "queue": .string(queue), "kind": .string(kind), "state": .string(state),
            "attempt": .int(attempt), "max_attempts": .int(maxAttempts), "payload": payload,
            "progress": progress ?? .null, "result": result ?? .null, "errors": errors,
            "created_at": .string(createdAt), "started_at": .optional(startedAt), "finished_at": .optional(finishedAt),
        ]
    }
}
