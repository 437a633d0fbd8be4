import Foundation
import HTTPKit
import Jobs
import Observability
import Platform
import Postgres
import SQLKit

/// The sql-worker's `aggregation_levels` job `{account, source, resolution}`: (re)builds the precomputed aggregation
/// levels of a source's table (see AggregationLevels) in the source's warehouse. Queued by a tile that found
/// none fresh, so a data change (import, SQL write, anything that moves the table's version) is followed
/// by a rebuild on the next low-zoom tile; the unique key keeps one pending build per levels key.
public struct AggregationLevelRunner: Sendable {
    public static let kind = AggregationLevels.jobKind
    let services: Services
    public init(services: Services) { self.services = services }

    public func run(_ job: Job, _ context: JobContext) throws -> JSON? {
        guard let account = job.payload["account"]?.stringValue ?? job.accountId, let id = job.payload["source"]?.stringValue else {
            throw PermanentJobError("aggregation_levels needs account and source")
        }
        let record: SourceRecord
        do { record = try SourceStore(pool: services.metadata).load(id: id, account: account) } catch let e as APIError {
            throw PermanentJobError(e.message)
        }
        guard let index = record.definition.spatialType.index, let key = AggregationLevels.key(record, index: index) else {
            throw PermanentJobError("the source cannot use precomputed levels")
        }
        let connection: ConnectionRecord
        do { connection = try services.warehouses.connection(account: account, name: record.definition.connection) } catch let e as APIError {
            throw PermanentJobError(e.message)
        }
        let table = try SourceSQL.table(record.definition).qualifiedIdentifier.text
        var wanted = AggregationLevels.resolutions(record, index: index, maxFeatures: services.config.tileMaxFeatures)
        if let asked = job.payload["resolution"]?.intValue, (0...index.maxResolution).contains(asked) { wanted.append(asked) }
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
            // Resolutions other sources of the same key asked for are kept.
            let current = try db.execute("SELECT array_to_string(resolutions, ','), data_version FROM carto.tessera_agg_levels WHERE key = $1",
                                         [key], watch: watch)
            let existing = current.rowCount == 1 ? (current.string(0, 0) ?? "").split(separator: ",").compactMap { Int($0) } : []
            let resolutions = Array(Set(wanted + existing)).sorted()
            // A request that found the levels stale just before the previous build committed queues another one.
            if current.rowCount == 1, current.string(0, 1) == version, Set(existing).isSuperset(of: wanted) {
                return ["key": .string(key), "upToDate": true, "dataVersion": .string(version)]
            }
            let relation = "tessera_agg_\(key)_\(job.id)"
            let level = try AggregationLevels.levelSQL(record, index: index)
            try db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            do {
                try db.execute("SELECT set_config('statement_timeout', $1, true)", [String(services.config.sqlJobTimeoutMs)])
                for (n, resolution) in resolutions.enumerated() {
                    let sql = n == 0 ? try AggregationLevels.createSQL(relation: relation, level: level)
                        : try AggregationLevels.insertSQL(relation: relation, level: level)
                    try db.execute(sql.text, sql.parameters(filling: ["resolution": String(resolution)])!, watch: watch)
                }
                try db.execute(try AggregationLevels.indexSQL(relation: relation), watch: watch)
                try db.execute("ANALYZE carto.\(try Identifier(relation))" as SQL, watch: watch)
                let record = AggregationLevels.record
                let old = try db.execute(record.text, record.parameters(filling: [
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
            Log.info("aggregation_levels_built", [("key", key), ("table", table), ("relation", relation), ("ms", ms)])
            return ["key": .string(key), "relation": .string(relation), "resolutions": .array(resolutions.map(JSON.int)),
                    "dataVersion": .string(version), "ms": .int(ms)]
        }
    }
}
