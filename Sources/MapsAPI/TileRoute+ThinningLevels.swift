import Foundation
import HTTPKit
import Jobs
import Observability
import Platform
import Postgres
import SQLKit

extension TileRoute {
    /// The levels key a thinned tile of zoom z can use, or nil when its tiles are thinned per request only.
    static func thinningLevelsKey(_ record: SourceRecord, _ thinning: Thinning, z: Int) -> String? {
        guard ThinningLevels.zooms(thinning)?.contains(z) == true else { return nil }
        return ThinningLevels.key(record, thinning)
    }

    /// The relation of the key's thinning levels when they are fresh and readable by this session (the same
    /// catalogue and rules as the aggregation levels: the table's data version unchanged since the build, SELECT
    /// on the table and on the levels, no row-level security on the table).
    static func freshThinningLevels(_ db: PGConnection, _ record: SourceRecord, key: String,
                                    watch: PGConnection.Watch) throws -> String? {
        guard try db.execute(AggregationLevels.catalogExists.text, watch: watch, prepare: true).bool(0, 0) == true else { return nil }
        let lookup = AggregationLevels.lookup
        let r = try db.execute(lookup.text, AggregationLevels.lookupParameters(key: key, table: try SourceSQL.table(record.definition)),
                               watch: watch, prepare: true)
        return r.rowCount == 1 ? r.string(0, 0) : nil
    }

    /// A thinned tile from the levels `relation`: features and their count.
    func runThinnedLevels(_ record: SourceRecord, _ thinning: Thinning, relation: String, _ db: PGConnection,
                          _ z: Int, _ x: Int, _ y: Int, _ watch: PGConnection.Watch) throws -> ([UInt8], Int) {
        let sql = try maps.levelsTileSQL(record, relation: relation, z: z)
        guard let parameters = sql.thinnedParameters(thinning, z: z, x: x, y: y, samplePercent: nil) else { return ([], 0) }
        let r = try db.execute(sql.text, parameters, watch: watch, prepare: true, binaryResult: true)
        let count = r.bytes(0, 1).map { $0.reduce(0) { $0 << 8 | Int($1) } } ?? 0
        return (r.bytes(0, 0) ?? [], count)
    }

    /// Queues a build of the source's thinning levels (one pending per key); a failure to queue only costs speed.
    func queueThinningLevels(_ record: SourceRecord, key: String, account: String) {
        var job = JobQueue.NewJob(queue: "sql", kind: ThinningLevels.jobKind,
                                  payload: ["account": .string(account), "source": .string(record.id)],
                                  uniqueKey: "\(ThinningLevels.jobKind):\(account):\(record.definition.connection):\(key)")
        job.accountId = account
        job.maxAttempts = 3
        do { try maps.services.metadata.withConnection { _ = try JobQueue.enqueue(job, on: $0) } } catch {
            Log.warning("thinning_levels_not_queued", [("source", record.id), ("error", "\(error)")])
        }
    }
}
