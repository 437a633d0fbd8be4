import Foundation
import HTTPKit
import Jobs
import Observability
import Platform
import Postgres
import SQLKit

/// The sql-worker's `levels_refresh` job `{account, connection}` (queued by every writer, see LevelsRefresh):
/// finds the levels of the connection's warehouse whose table's data version moved, and queues their builds
/// (ThinningLevelRunner, AggregationLevelRunner) for a source of this account that uses them, so no tile has to
/// find them stale first. The catalogue names keys and tables, not sources: the account's sources on the
/// connection, most recently used first, are matched by the key they compute. Queueing uses the builds' own
/// unique keys, so whatever else asked (a tile, another write) a key has one build pending at a time.
public struct LevelRefreshRunner: Sendable {
    public static let kind = LevelsRefresh.kind
    /// The sources looked at per refresh (each one that uses levels is decoded and keyed in the worker).
    static let sourcesScanned = 2000
    let services: Services
    public init(services: Services) { self.services = services }

    public func run(_ job: Job, _ context: JobContext) throws -> JSON? {
        guard let account = job.payload["account"]?.stringValue ?? job.accountId, let name = job.payload["connection"]?.stringValue else {
            throw PermanentJobError("levels_refresh needs account and connection")
        }
        let connection: ConnectionRecord
        do { connection = try services.warehouses.connection(account: account, name: name) } catch let e as APIError {
            throw PermanentJobError(e.message)
        }
        let watch = PGConnection.Watch(isAborted: { context.isCancelled },
                                       deadline: Date().addingTimeInterval(Double(services.config.sqlJobTimeoutMs) / 1000))
        let stale: Set<String> = try services.warehouses.privilegedPool(for: connection).withConnection { db in
            guard try db.execute(AggregationLevels.catalogExists.text, watch: watch).bool(0, 0) == true else { return [] }
            let r = try db.execute(AggregationLevels.stale.text, watch: watch)
            return Set((0..<r.rowCount).compactMap { r.string($0, 0) })
        }
        guard !stale.isEmpty else { return ["stale": 0, "queued": 0] }
        let jobs = try services.metadata.withConnection { db -> [JobQueue.NewJob] in
            let r = try db.execute("""
                SELECT id, definition::text, metadata::text FROM map_sources WHERE account_id = $1 AND connection_name = $2
                ORDER BY last_used_at DESC LIMIT $3
                """, [account, name, String(Self.sourcesScanned)])
            var remaining = stale
            var jobs: [JobQueue.NewJob] = []
            for i in 0..<r.rowCount where !remaining.isEmpty {
                guard let id = r.string(i, 0), let d = r.string(i, 1), let m = r.string(i, 2),
                      let record = try? SourceRecord(id: id, definition: try SourceDefinition(json: try JSON.decode(d)), metadata: try JSON.decode(m))
                else { continue }
                jobs += Self.builds(record, account: account, cap: services.config.tileMaxFeatures, remaining: &remaining)
            }
            for job in jobs { try JobQueue.enqueue(job, on: db) }
            return jobs
        }
        Log.info("levels_refresh", [("connection", name), ("stale", stale.count), ("queued", jobs.count)])
        return ["stale": .int(stale.count), "queued": .int(jobs.count)]
    }

    /// The builds of the stale keys `record` uses (each key taken out of `remaining`, so one source builds it).
    static func builds(_ record: SourceRecord, account: String, cap: Int, remaining: inout Set<String>) -> [JobQueue.NewJob] {
        var jobs: [JobQueue.NewJob] = []
        if let thinning = Thinning.plan(record, cap: cap), let key = ThinningLevels.key(record, thinning), remaining.remove(key) != nil {
            jobs.append(ThinningLevels.job(record, key: key, account: account))
        }
        if let index = record.definition.spatialType.index, let key = AggregationLevels.key(record, index: index), remaining.remove(key) != nil {
            jobs.append(AggregationLevels.job(record, key: key, account: account))
        }
        return jobs
    }
}
