import Foundation
import HTTPKit
import Jobs
import Postgres

/// A workspace event, consumed by `tessera-workspace-subscriber` (queue `workspace`). Producers enqueue
/// it with `WorkspaceEvents.enqueue(_:on:)` inside the transaction of the change itself, so the event
/// exists exactly when the change committed. Payloads (the job's `payload`, camelCase like CARTO's):
///
/// - `connection.deleted` `{accountId, connectionName}`: grants naming the connection are removed from
///   the account's tokens (a token left without grants stays but reaches nothing) and the connection's
///   cached responses are purged.
/// - `user.removed` `{accountId, userId, transferTo}`: the user's queued and running jobs are cancelled;
///   their API tokens and OAuth clients are revoked (deleted: the person still knows their secrets; the
///   removing transaction already deleted them, this repeats it idempotently); the connections, `maps`
///   rows (`owner_id`) and those maps' own tokens they owned move to `transferTo`
///   (the admin who removed them; the account's oldest admin when that one is gone too). Ownership
///   columns therefore have no foreign key to `users` (migration 005): a `SET NULL`/`CASCADE` would
///   erase who owned what before the subscriber runs. A `maps.owner_id` must follow the same rule.
/// - `map.deleted` `{accountId, mapId, datasets: [{connection, source}]}` and `dataset.deleted`
///   `{accountId, connection, source}`: cached responses of the Maps API sources instantiated from those
///   datasets (`source` is a table name or a SQL query, as in the source handshake) are purged.
///
/// Handlers are idempotent: a redelivered event finds nothing left to do.
public enum WorkspaceEvent: Sendable, Equatable {
    case connectionDeleted(accountId: String, connectionName: String)
    case userRemoved(accountId: String, userId: String, transferTo: String)
    case mapDeleted(accountId: String, mapId: String, datasets: [Dataset])
    case datasetDeleted(accountId: String, dataset: Dataset)

    /// A dataset of a map: the connection name and the table name or query.
    public struct Dataset: Sendable, Equatable {
        public var connection: String
        public var source: String
        public init(connection: String, source: String) {
            self.connection = connection
            self.source = source
        }
        var json: JSON { ["connection": .string(connection), "source": .string(source)] }
    }

    /// The job kinds of the `workspace` queue.
    public enum Kind: String, Sendable, CaseIterable {
        case connectionDeleted = "connection.deleted"
        case userRemoved = "user.removed"
        case mapDeleted = "map.deleted"
        case datasetDeleted = "dataset.deleted"
    }

    public var kind: Kind {
        switch self {
        case .connectionDeleted: .connectionDeleted
        case .userRemoved: .userRemoved
        case .mapDeleted: .mapDeleted
        case .datasetDeleted: .datasetDeleted
        }
    }

    public var accountId: String {
        switch self {
        case .connectionDeleted(let a, _), .userRemoved(let a, _, _), .mapDeleted(let a, _, _), .datasetDeleted(let a, _): a
        }
    }

    public var payload: JSON {
        switch self {
        case .connectionDeleted(let account, let name):
            ["accountId": .string(account), "connectionName": .string(name)]
        case .userRemoved(let account, let user, let transferTo):
            ["accountId": .string(account), "userId": .string(user), "transferTo": .string(transferTo)]
        case .mapDeleted(let account, let map, let datasets):
            ["accountId": .string(account), "mapId": .string(map), "datasets": .array(datasets.map(\.json))]
        case .datasetDeleted(let account, let dataset):
            ["accountId": .string(account), "connection": .string(dataset.connection), "source": .string(dataset.source)]
        }
    }

    /// Reads an event back from its job; a malformed one is a `PermanentJobError` (retrying cannot fix it).
    public init(kind: String, payload p: JSON) throws {
        func field(_ key: String, in j: JSON = p) throws -> String {
            guard let v = j[key]?.stringValue, !v.isEmpty else { throw PermanentJobError("\(kind) event without \(key)") }
            return v
        }
        switch Kind(rawValue: kind) {
        case .connectionDeleted:
            self = .connectionDeleted(accountId: try field("accountId"), connectionName: try field("connectionName"))
        case .userRemoved:
            self = .userRemoved(accountId: try field("accountId"), userId: try field("userId"), transferTo: try field("transferTo"))
        case .mapDeleted:
            let datasets = try (p["datasets"]?.arrayValue ?? []).map {
                Dataset(connection: try field("connection", in: $0), source: try field("source", in: $0))
            }
            self = .mapDeleted(accountId: try field("accountId"), mapId: try field("mapId"), datasets: datasets)
        case .datasetDeleted:
            self = .datasetDeleted(accountId: try field("accountId"),
                                   dataset: Dataset(connection: try field("connection"), source: try field("source")))
        case nil:
            throw PermanentJobError("unknown workspace event \(kind)")
        }
    }
}

public enum WorkspaceEvents {
    public static let queue = "workspace"

    /// Queues `event` on `connection`, joining the caller's open transaction (the event then exists only
    /// if that transaction commits). `actor` is the user who caused it, recorded as the job's creator.
    @discardableResult
    public static func enqueue(_ event: WorkspaceEvent, actor: String? = nil, on connection: PGConnection) throws -> Int64? {
        var job = JobQueue.NewJob(queue: queue, kind: event.kind.rawValue, payload: event.payload)
        job.accountId = event.accountId
        job.createdBy = actor
        job.maxAttempts = 10
        return try JobQueue.enqueue(job, on: connection)
    }
}
