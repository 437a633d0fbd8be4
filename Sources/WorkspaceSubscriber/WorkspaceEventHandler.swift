import Foundation
import HTTPKit
import Jobs
import Observability
import Platform
import Postgres

/// The workspace-subscriber's job handler (queue `workspace`; events and payloads: `WorkspaceEvent`).
/// Each event's database effects, the cdn purge jobs it queues and the job's completion commit in one
/// transaction, so an event is applied once; and every effect is a no-op when repeated (a retried or
/// redelivered event does no harm).
public struct WorkspaceEventHandler: Sendable {
    let pool: PGPool

    public init(pool: PGPool) { self.pool = pool }

    public func run(_ job: Job, _ context: JobContext) throws -> JSON? {
        let event = try WorkspaceEvent(kind: job.kind, payload: job.payload)
        try pool.transaction { db in
            let result = try apply(event, job: job, on: db)
            Log.info("workspace_event", [("job", job.id), ("kind", job.kind), ("result", result.text)])
            // Fenced by the lease: a worker whose lease was lost rolls everything back.
            guard try JobQueue.complete(job, result: result, on: db) else {
                throw PGError(sqlstate: nil, message: "lease of job \(job.id) lost; effects rolled back")
            }
        }
        return nil
    }

    func apply(_ event: WorkspaceEvent, job: Job, on db: PGConnection) throws -> JSON {
        switch event {
        case .connectionDeleted(let account, let name):
            return try connectionDeleted(account: account, name: name, on: db)
        case .userRemoved(let account, let user, let transferTo):
            return try userRemoved(account: account, user: user, transferTo: transferTo, job: job, on: db)
        case .mapDeleted(let account, _, let datasets):
            return try purgeSources(account: account, datasets: datasets, on: db)
        case .datasetDeleted(let account, let dataset):
            return try purgeSources(account: account, datasets: [dataset], on: db)
        }
    }

    /// Grants naming the connection go, unless a connection of that name exists again: the delete already
    /// dropped the old grants, so those present now were given for the new one.
    func connectionDeleted(account: String, name: String, on db: PGConnection) throws -> JSON {
        let recreated = try db.execute("SELECT 1 FROM connections WHERE account_id = $1 AND name = $2", [account, name]).rowCount > 0
        let tokens = recreated ? 0 : try TokenStore.removeGrants(account: account, connectionName: name, on: db)
        try CacheInvalidation.purge(keys: [CacheInvalidation.connection(account: account, name: name)], account: account, on: db)
        return ["tokensChanged": .int(tokens), "recreated": .bool(recreated)]
    }

    /// Cancels the user's unfinished jobs and revokes their credentials: API tokens and OAuth clients are
    /// deleted, never transferred (the removed person knows the client secrets and token strings). What the
    /// organisation keeps (connections, maps, and each map's own token) moves to `transferTo`, or to the
    /// account's oldest admin when that user is gone as well (removed meanwhile).
    func userRemoved(account: String, user: String, transferTo: String, job: Job, on db: PGConnection) throws -> JSON {
        guard UUID(uuidString: user) != nil, UUID(uuidString: transferTo) != nil else {
            throw PermanentJobError("user.removed needs user ids")
        }
        let cancelled = try JobQueue.cancel(createdBy: user, account: account, except: job.id, on: db)
        let revoked = try AccountStore.revokeCredentials(of: user, account: account, on: db)
        let heir = try db.execute("""
            SELECT id FROM users WHERE account_id = $1 AND (id = $2 OR role = 'admin') AND id <> $3
            ORDER BY id = $2 DESC, created_at, id LIMIT 1
            """, [account, transferTo, user]).string(0, 0)
        guard let heir else {
            return ["jobsCancelled": .int(cancelled), "revoked": revoked, "note": "no user left to own the account's objects"]
        }
        func move(_ sql: String) throws -> Int { try db.execute(sql, [heir, user, account]).affectedRows ?? 0 }
        let moved: [String: JSON] = [
            "connections": .int(try move("UPDATE connections SET created_by = $1 WHERE created_by = $2 AND account_id = $3")),
            "mapTokens": .int(try move("""
                UPDATE api_tokens SET created_by = $1 WHERE created_by = $2 AND account_id = $3
                  AND EXISTS (SELECT 1 FROM maps m WHERE m.token_id = api_tokens.id)
                """)),
            "maps": .int(try move("UPDATE maps SET owner_id = $1 WHERE owner_id = $2 AND account_id = $3")),
        ]
        return ["jobsCancelled": .int(cancelled), "revoked": revoked, "transferredTo": .string(heir), "moved": .object(moved)]
    }

    /// Purges the cached responses of every Maps API source instantiated from these datasets.
    func purgeSources(account: String, datasets: [WorkspaceEvent.Dataset], on db: PGConnection) throws -> JSON {
        var keys: [String] = []
        for d in datasets {
            let r = try db.execute("""
                SELECT id FROM map_sources WHERE account_id = $1 AND connection_name = $2
                  AND (definition->>'name' = $3 OR definition->>'q' = $3) ORDER BY id
                """, [account, d.connection, d.source])
            keys += (0..<r.rowCount).compactMap { r.string($0, 0) }.map { "src:" + $0 }
        }
        if !keys.isEmpty { try CacheInvalidation.purge(keys: keys, account: account, on: db) }
        return ["purgedKeys": .array(keys.map { .string($0) })]
    }
}
