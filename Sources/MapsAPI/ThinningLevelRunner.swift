import Foundation
import HTTPKit
import Jobs
import Observability
import Platform
import Postgres
import SQLKit

/// The sql-worker's `thinning_levels` job `{account, source}`: (re)builds the precomputed thinning levels of a
/// dense point table (see ThinningLevels) in the source's warehouse, recorded in the aggregation levels'
/// catalogue. Queued by a low-zoom tile that found none fresh, so a data change (import, SQL write, anything
/// that moves the table's version) is followed by a rebuild; the unique key keeps one pending build per key.
public struct ThinningLevelRunner: Sendable {
    public static let kind = ThinningLevels.jobKind
    let services: Services
    public init(services: Services) { self.services = services }

    public func run(_ job: Job, _ context: JobContext) throws -> JSON? {
        guard let account = job.payload["account"]?.stringValue ?? job.accountId, let id = job.payload["source"]?.stringValue else {
            throw PermanentJobError("thinning_levels needs account and source")
        }
        let record: SourceRecord
        do { record = try SourceStore(pool: services.metadata).load(id: id, account: account) } catch let e as APIError {
            throw PermanentJobError(e.message)
        }
        guard let thinning = Thinning.plan(record, cap: services.config.tileMaxFeatures),
              let key = ThinningLevels.key(record, thinning) else {
            throw PermanentJobError("the source's tiles are not thinned from levels")
        }
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
            // A tile that found the levels stale just before the previous build committed queues another one.
            let current = try db.execute("SELECT data_version FROM carto.tessera_agg_levels WHERE key = $1", [key], watch: watch)
            if current.rowCount == 1, current.string(0, 0) == version {
                return ["key": .string(key), "upToDate": true, "dataVersion": .string(version)]
            }
            let relation = "tessera_thin_\(key)_\(job.id)"
            try db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            do {
                try db.execute("SELECT set_config('statement_timeout', $1, true)", [String(services.config.sqlJobTimeoutMs)])
                // Room to rank a few million rows with little spilling (this transaction only; the deeper levels sort far fewer).
                try db.execute("SELECT set_config('work_mem', '128MB', true)")
                let build = try ThinningLevels.buildSQL(record, thinning, relation: relation)
                try db.execute(build.text, build.parameters(filling: ["cells": String(thinning.cells(z: ThinningLevels.maxZoom))])!, watch: watch)
                for index in try ThinningLevels.indexSQL(record, relation: relation) { try db.execute(index, watch: watch) }
                try db.execute("ANALYZE carto.\(try Identifier(relation))" as SQL, watch: watch)
                let counts = try db.execute(try ThinningLevels.countsSQL(relation: relation), watch: watch)
                let kept = (0..<counts.rowCount).map { counts.int($0, 1) ?? 0 }
                let total = try db.execute(try ThinningLevels.totalSQL(record), watch: watch).int(0, 0) ?? 0
                let comment = ThinningLevels.comment(kept: kept, total: total)
                try db.execute("COMMENT ON TABLE carto.\(try Identifier(relation)) IS \(unsafeRaw: SQL.literal(comment))" as SQL, watch: watch)
                let record = AggregationLevels.record
                let old = try db.execute(record.text, record.parameters(filling: [
                    "key": key, "relation": relation, "table": table, "version": version,
                    "resolutions": (0...ThinningLevels.maxZoom).map(String.init).joined(separator: ","),
                ])!, watch: watch).string(0, 0)
                if let old, old != relation { try db.execute("DROP TABLE IF EXISTS carto.\(try Identifier(old))" as SQL, watch: watch) }
                try db.execute("COMMIT")
            } catch {
                if db.isHealthy { _ = try? db.execute("ROLLBACK") }
                throw error
            }
            let ms = Int(Date().timeIntervalSince(started) * 1000)
            Log.info("thinning_levels_built", [("key", key), ("table", table), ("relation", relation), ("ms", ms)])
            return ["key": .string(key), "relation": .string(relation), "dataVersion": .string(version), "ms": .int(ms)]
        }
    }
}
