import Foundation
import HTTPKit
import Jobs
import Observability
import Platform
import Postgres
import SQLKit

extension TileRoute {
    /// An aggregated (points into cells) tile: from the source's precomputed levels when they are fresh and hold
    /// the tile's resolution, else the live statement `live`, after queueing a build of the levels, so the next
    /// low-zoom tiles after a data change are fast again. Answers the JSON and which path made it.
    func aggregatedTile(_ request: HTTPRequest, _ principal: Principal, _ record: SourceRecord, index: CellIndex,
                        z: Int, x: Int, y: Int, h3Cell: UInt64? = nil, resolution: Int,
                        live: (sql: SQL, parameters: [String?])) throws -> (json: String, precomputed: Bool) {
        let key = z <= AggregationLevels.maxZoom ? AggregationLevels.key(record, index: index) : nil
        let account = principal.accountId, connection = record.definition.connection
        func attempt(remembered: Bool) throws -> (json: String, precomputed: Bool) {
            try maps.withWarehouse(principal, connection, request: request) { db -> (String, Bool) in
                let watch = maps.watch(request)
                if let key {
                    // From the levels: one statement, which checks they are still fresh (AggregationLevels.fresh).
                    func cells(_ relation: String) throws -> String? {
                        let sql = try AggregationLevels.tileSQL(relation: relation, index: index,
                                                                fresh: (key, try SourceSQL.table(record.definition)))
                        let parameters = AggregationLevels.parameters(sql, z: z, x: x, y: y, resolution: resolution, h3Cell: h3Cell)
                        let r = try db.execute(sql.text, parameters, watch: watch, prepare: true, lastOfCheckout: true)
                        return r.bool(0, 2) == true ? r.string(0, 0) ?? "[]" : nil
                    }
                    if remembered, let relation = maps.levelRelation(account, connection, key) {
                        if let json = try cells(relation) { return (json, true) }
                        maps.rememberLevelRelation(account, connection, key, nil)
                    }
                    if let relation = try Self.freshLevels(db, record, key: key, resolution: resolution, watch: watch),
                       let json = try cells(relation) {
                        maps.rememberLevelRelation(account, connection, key, relation)
                        return (json, true)
                    }
                    // Queued before the live grouping, which may take until the statement timeout.
                    queueLevels(record, key: key, account: account, resolution: resolution)
                }
                return (try db.execute(live.sql.text, live.parameters, watch: watch, prepare: true, lastOfCheckout: true).string(0, 0) ?? "[]", false)
            }
        }
        do { return try attempt(remembered: true) } catch where Self.levelsRelationGone(error)
            && key.map { maps.levelRelation(account, connection, $0) != nil } == true {
            // The remembered relation was replaced and dropped by a rebuild since: forgotten, and the tile made again on
            // a new session (the error ended the first one's transaction).
            maps.rememberLevelRelation(account, connection, key!, nil)
            return try attempt(remembered: false)
        }
    }

    /// The relation of the key's levels when they are fresh, readable by this session and hold `resolution`.
    static func freshLevels(_ db: PGConnection, _ record: SourceRecord, key: String, resolution: Int,
                            watch: PGConnection.Watch) throws -> String? {
        guard try db.execute(AggregationLevels.catalogExists.text, watch: watch, prepare: true).bool(0, 0) == true else { return nil }
        let lookup = AggregationLevels.lookup
        let r = try db.execute(lookup.text, AggregationLevels.lookupParameters(key: key, table: try SourceSQL.table(record.definition)),
                               watch: watch, prepare: true)
        guard r.rowCount == 1, let relation = r.string(0, 0),
              (r.string(0, 1) ?? "").split(separator: ",").contains(Substring(String(resolution))) else { return nil }
        return relation
    }

    /// Queues a build of the levels (one pending per key), naming the resolution the tile wanted so that the
    /// build holds it whatever the worker's own configuration; a failure to queue only costs speed, never the tile.
    func queueLevels(_ record: SourceRecord, key: String, account: String, resolution: Int) {
        let job = AggregationLevels.job(record, key: key, account: account, resolution: resolution)
        do { try maps.services.metadata.withConnection { _ = try JobQueue.enqueue(job, on: $0) } } catch {
            Log.warning("aggregation_levels_not_queued", [("source", record.id), ("error", "\(error)")])
        }
    }
}
