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

    /// A thinned tile from the source's fresh levels, nil when there are none: from the relation the process
    /// remembers for the key in one statement (which checks freshness itself), else after the catalogue lookup.
    /// `remembered: false` skips the memo (a retry after the remembered relation was dropped by a rebuild).
    func thinnedFromLevels(_ record: SourceRecord, _ thinning: Thinning, key: String, account: String, remembered: Bool,
                           _ db: PGConnection, _ z: Int, _ x: Int, _ y: Int, _ watch: PGConnection.Watch) throws -> [UInt8]? {
        let connection = record.definition.connection
        if remembered, let relation = maps.levelRelation(account, connection, key) {
            let (bytes, _, fresh) = try runThinnedLevels(record, thinning, relation: relation, key: key, db, z, x, y, watch)
            if fresh { return bytes }
            maps.rememberLevelRelation(account, connection, key, nil)
        }
        guard let relation = try Self.freshThinningLevels(db, record, key: key, watch: watch) else { return nil }
        let (bytes, _, fresh) = try runThinnedLevels(record, thinning, relation: relation, key: key, db, z, x, y, watch)
        guard fresh else { return nil }  // the data moved since the lookup
        maps.rememberLevelRelation(account, connection, key, relation)
        return bytes
    }

    /// A thinned tile from the levels `relation`: features, their count, and whether the relation was still the
    /// key's fresh levels (no feature is read when not).
    func runThinnedLevels(_ record: SourceRecord, _ thinning: Thinning, relation: String, key: String, _ db: PGConnection,
                          _ z: Int, _ x: Int, _ y: Int, _ watch: PGConnection.Watch) throws -> ([UInt8], Int, Bool) {
        let sql = try maps.levelsTileSQL(record, relation: relation, z: z, key: key)
        guard let parameters = sql.thinnedParameters(thinning, z: z, x: x, y: y, samplePercent: nil) else { return ([], 0, true) }
        let r = try db.execute(sql.text, parameters, watch: watch, prepare: true, binaryResult: true, lastOfCheckout: true)
        let count = r.bytes(0, 1).map { $0.reduce(0) { $0 << 8 | Int($1) } } ?? 0
        return (r.bytes(0, 0) ?? [], count, r.bytes(0, 2) == [1])
    }

    /// Whether an error of a tile read from a remembered levels relation means the relation is gone (a rebuild
    /// dropped it, or the session may no longer read it): the tile is then made again on a new session.
    static func levelsRelationGone(_ error: Error) -> Bool {
        guard let e = error as? PGError else { return false }
        return e.sqlstate == "42P01" || e.sqlstate == "42501"
    }

    /// An interim TileJSON (ThinningLevels.interimParameter) is cached briefly: a map opened after the levels' build
    /// gets the precomputed tiles instead of the sampled ones.
    static func interimCacheHeaders(_ request: HTTPRequest, _ principal: Principal, _ record: SourceRecord) -> [(String, String)] {
        CachePolicy.headers(request, principal: principal, maxAge: ThinningLevels.interimMaxAge,
                            connection: record.definition.connection, source: record.id)
    }

    /// Queues a build of the source's thinning levels (one pending per key); a failure to queue only costs speed.
    func queueThinningLevels(_ record: SourceRecord, key: String, account: String) {
        let job = ThinningLevels.job(record, key: key, account: account)
        do { try maps.services.metadata.withConnection { _ = try JobQueue.enqueue(job, on: $0) } } catch {
            Log.warning("thinning_levels_not_queued", [("source", record.id), ("error", "\(error)")])
        }
    }
}
