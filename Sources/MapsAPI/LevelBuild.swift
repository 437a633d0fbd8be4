import Foundation
import HTTPKit
import Jobs
import Observability
import Platform
import Postgres
import SQLKit

/// What the two levels jobs (ThinningLevelRunner, AggregationLevelRunner) share: the payload `{account, source}`,
/// the source and its connection, then, on the platform's own session of the source's warehouse, the table's data
/// version read before the build's snapshot, the catalogue's row of the key, the build in one REPEATABLE READ
/// transaction, its record in the catalogue and the drop of the table it replaces. Only the build differs.
struct LevelBuild {
    let services: Services
    let job: Job
    let context: JobContext
    let account: String
    let record: SourceRecord

    /// The catalogue's row of the key, when there is one.
    struct Current {
        let version: String?
        let resolutions: [Int]
    }

    /// The job's source; a payload or source that can never build is a permanent failure.
    init(_ job: Job, _ context: JobContext, services: Services) throws {
        guard let account = job.payload["account"]?.stringValue ?? job.accountId, let id = job.payload["source"]?.stringValue else {
            throw PermanentJobError("\(job.kind) needs account and source")
        }
        do { record = try SourceStore(pool: services.metadata).load(id: id, account: account) } catch let e as APIError {
            throw PermanentJobError(e.message)
        }
        self.services = services
        self.job = job
        self.context = context
        self.account = account
    }

    /// Builds the levels of `key` into `carto."<prefix>_<key>_<job id>"` unless `wanted` finds them current
    /// (`wanted` answers the resolutions to record, nil when nothing is to do); `build` runs inside the transaction.
    func run(key: String, prefix: String, event: String,
             wanted: (_ current: Current?, _ version: String) -> [Int]?,
             build: (_ db: PGConnection, _ relation: String, _ resolutions: [Int], _ watch: PGConnection.Watch) throws -> Void) throws -> JSON {
        let connection: ConnectionRecord
        do { connection = try services.warehouses.connection(account: account, name: record.definition.connection) } catch let e as APIError {
            throw PermanentJobError(e.message)
        }
        let table = try SourceSQL.table(record.definition).qualifiedIdentifier.text
        let watch = PGConnection.Watch(isAborted: { context.isCancelled },
                                       deadline: Date().addingTimeInterval(Double(services.config.sqlJobTimeoutMs) / 1000))
        let started = Date()
        return try services.warehouses.privilegedPool(for: connection).withConnection { db -> JSON in
            try db.executeScript(AggregationLevels.catalogDDL)
            // Read before the build's snapshot: every write this version counts is then in the data read.
            let versionSQL: SQL = "SELECT \(AggregationLevels.version)"
            guard let version = try db.execute(versionSQL.text, versionSQL.parameters(filling: ["table": table])!, watch: watch).string(0, 0) else {
                throw PermanentJobError("table \(table) does not exist")
            }
            let row = try db.execute("SELECT array_to_string(resolutions, ','), data_version FROM carto.tessera_agg_levels WHERE key = $1",
                                     [key], watch: watch)
            let current = row.rowCount == 1
                ? Current(version: row.string(0, 1), resolutions: (row.string(0, 0) ?? "").split(separator: ",").compactMap { Int($0) }) : nil
            // A request that found the levels stale just before the previous build committed queues another one.
            guard let resolutions = wanted(current, version) else {
                return ["key": .string(key), "upToDate": true, "dataVersion": .string(version)]
            }
            let relation = "\(prefix)_\(key)_\(job.id)"
            try db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            do {
                try db.execute("SELECT set_config('statement_timeout', $1, true)", [String(services.config.sqlJobTimeoutMs)])
                try build(db, relation, resolutions, watch)
                let recordSQL = AggregationLevels.record
                let old = try db.execute(recordSQL.text, recordSQL.parameters(filling: [
                    "key": key, "relation": relation, "table": table, "version": version,
                    "resolutions": resolutions.map(String.init).joined(separator: ","),
                ])!, watch: watch).string(0, 0)
                if let old, old != relation { try db.execute("DROP TABLE IF EXISTS carto.\(try Identifier(old))" as SQL, watch: watch) }
                try db.execute("COMMIT")
            } catch {
                if db.isHealthy { _ = try? db.execute("ROLLBACK") }
                throw error
            }
            let ms = Int(Date().timeIntervalSince(started) * 1000)
            Log.info(event, [("key", key), ("table", table), ("relation", relation), ("ms", ms)])
            return ["key": .string(key), "relation": .string(relation), "resolutions": .array(resolutions.map(JSON.int)),
                    "dataVersion": .string(version), "ms": .int(ms)]
        }
    }
}
