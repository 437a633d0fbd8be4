import CryptoSupport
import Foundation
import HTTPKit
import Jobs
import SQLKit

/// Precomputed thinning levels: for a dense point table, every row that `Thinning` keeps at some zoom
/// 0...`maxZoom`, copied with its minimum zoom (`__minz`) and its grid cell at `maxZoom`, stored in the warehouse
/// as `carto."tessera_thin_<key>_<build>"` beside the aggregation levels (the same catalogue,
/// `carto.tessera_agg_levels`, and the same freshness and privilege rules). A low-zoom tile then reads its few
/// thousand kept rows, clustered on disk, by a per-zoom partial index instead of ranking every row of the cells
/// it touches (z0 of 5M points: a block sample and a sort per request).
///
/// The minimum zoom is the thinning's own rule: kept at z when among the `perCell` best of its cell at z (same
/// cell formula, same order: the `thinningOrder` column, the coordinate hash, the row address). Since a feature
/// kept at z is kept at z+1, the best of a cell at z are found among the features kept at z+1: the build ranks
/// every row once at `maxZoom`, then only the survivors, zoom by zoom. A tile runs the per-request statement's
/// own select list over the copied rows, so its properties and bytes are the same.
///
/// Pure: statements only; the tile route, the TileJSON and ThinningLevelRunner run them.
enum ThinningLevels {
    static let jobKind = "thinning_levels"
    /// Tiles up to this zoom use (and ask for) levels.
    static let maxZoom = 6
    /// The layout of a levels table; a new layout makes new keys (older tables are never read).
    static let format = "t2"

    /// The key of the levels a source's thinned tiles can use, or nil when they cannot: tables only (a query's
    /// data version is not known), no filters (they change with every widget interaction).
    static func key(_ record: SourceRecord, _ thinning: Thinning) -> String? {
        let d = record.definition
        guard d.kind == .table, let name = try? SourceSQL.table(d) else { return nil }
        do { if try FilterSQL.condition(d.filters, or: d.filtersOr, schema: record.schema) != nil { return nil } } catch { return nil }
        if let order = d.thinningOrder, record.schema.kind(of: order.name) != .number { return nil }
        if record.schema.columns.contains(where: { ownColumns.contains($0.name) }) { return nil }
        let order = d.thinningOrder.map { $0.name + ($0.descending ? ":desc" : ":asc") } ?? ""
        let text = [format, name.qualifiedIdentifier.text, d.spatialColumn, String(record.schema.srid), order,
                    String(thinning.cellBits), String(thinning.perCell)].joined(separator: "\u{0}")
        return String(Encoding.hex(Crypto.sha256(Array(text.utf8))).prefix(24))
    }

    /// The build job of a source's levels (one pending or running per key and connection).
    static func job(_ record: SourceRecord, key: String, account: String) -> JobQueue.NewJob {
        var job = JobQueue.NewJob(queue: "sql", kind: jobKind, payload: ["account": .string(account), "source": .string(record.id)],
                                  uniqueKey: "\(jobKind):\(account):\(record.definition.connection):\(key)")
        job.accountId = account
        job.maxAttempts = 3
        return job
    }

    /// The tiles-URL parameter of a TileJSON answered while the source's levels are not built (just imported, or
    /// the build queued or running): every tile of that URL is thinned per request from a block sample (the
    /// non-levelled rule of `Thinning.samplePercent`, z0 of 1M points ~0.1 s instead of ~1.4 s exactly), never from
    /// the levels, even once they exist. The sample keeps other features than the levels would, so a client must
    /// never hold both kinds of tile: its TileJSON pins one kind for all its tiles, and the interim TileJSON is
    /// cached briefly (`interimMaxAge`) so that the next map opened after the build gets the precomputed ones.
    static let interimParameter = (name: "thinning", value: "sampled")
    static let interimMaxAge = 10

    /// Whether a TileJSON without fresh levels pins interim tiles: only when some levelled zoom would be sampled
    /// (otherwise the per-request tiles are exact, the levels' own rule, and need no pinning).
    static func interim(_ record: SourceRecord, _ thinning: Thinning) -> Bool {
        guard key(record, thinning) != nil, let zooms = zooms(thinning) else { return false }
        return zooms.contains { thinning.samplePercent(z: $0, ordered: record.definition.thinningOrder != nil) != nil }
    }

    /// The zooms of a source's thinned tiles that levels serve.
    static func zooms(_ thinning: Thinning) -> ClosedRange<Int>? {
        thinning.maxZoom >= 0 ? 0...min(maxZoom, thinning.maxZoom) : nil
    }

    /// The columns a levels table adds to the table's own (a table that has one of them is not precomputed).
    static let ownColumns = ["__tid", "__x", "__y", "__h", "__cx", "__cy", "__r", "__minz"]

    /// The levels table: the table's own columns, as they are, for every row kept at some zoom up to `maxZoom`,
    /// with `__minz`, the grid cell at `maxZoom` (`__cx`, `__cy`) and the ranking keys; stored in that order of
    /// minimum zoom, then along a Z-order curve (geohash), so that the kept rows of a tile lie in a few runs of
    /// blocks. Slot `cells`: `thinning.cells(z: maxZoom)`.
    static func buildSQL(_ record: SourceRecord, _ thinning: Thinning, relation: String) throws -> SQL {
        let d = record.definition
        let srid = record.schema.srid
        let g: SQL = "_src.\(try Identifier(d.spatialColumn))"
        // The per-request statement's expressions (TileSQL .thinned), so cells and hashes are bit for bit its own.
        let point: SQL = srid == 3857 || srid == 4326 ? "\(g)::geometry" : "ST_Transform(ST_SetSRID(\(g)::geometry, \(literal: srid)), 3857)"
        let cells = try TileSQL.cellSQL(x: "_p.__x", y: "_p.__y", srid: srid)
        var rank: [SQL] = []
        var keys: [SQL] = ["__tid"]
        if let order = d.thinningOrder {
            let column = try Identifier(order.name)
            rank.append("\(column) \(unsafeRaw: order.descending ? "DESC NULLS LAST" : "ASC NULLS LAST")")
            keys.append("\(column)")
        }
        rank += ["__h", "__tid"]
        keys += ["__h", "__cx", "__cy"]
        let perCell: SQL = "\(literal: thinning.perCell)"
        var levels: [SQL] = []
        levels.append("""
            _k\(literal: maxZoom) AS MATERIALIZED (
              SELECT * FROM (
                SELECT _q.*, row_number() OVER (PARTITION BY __cx, __cy ORDER BY \(rank, joinedBy: ", ")) AS __r FROM (
                  SELECT _p.*, hashfloat8extended(_p.__x, 0) # hashfloat8extended(_p.__y, 1) AS __h, \(cells.x) AS __cx, \(cells.y) AS __cy
                  FROM (SELECT _src.*, _src.ctid AS __tid, ST_XMin(\(point)) AS __x, ST_YMin(\(point)) AS __y
                        FROM \(try SourceSQL.from(d)) AS _src WHERE \(g) IS NOT NULL OFFSET 0) AS _p
                ) AS _q WHERE _q.__cx IS NOT NULL AND _q.__cy IS NOT NULL
              ) AS _s WHERE __r <= \(perCell))
            """)
        for z in stride(from: maxZoom - 1, through: 0, by: -1) {
            let up = maxZoom - z
            levels.append("""
                _k\(literal: z) AS MATERIALIZED (
                  SELECT \(keys, joinedBy: ", ") FROM (
                    SELECT _k.*, row_number() OVER (PARTITION BY __cx >> \(literal: up), __cy >> \(literal: up) ORDER BY \(rank, joinedBy: ", ")) AS __r
                    FROM (SELECT \(keys, joinedBy: ", ") FROM _k\(literal: z + 1)) AS _k
                  ) AS _s WHERE __r <= \(perCell))
                """)
        }
        let union: [SQL] = (0..<maxZoom).map { "SELECT __tid, \(literal: $0) AS z FROM _k\(literal: $0)" }
        let lonlat: SQL = srid == 4326 ? "_k.\(try Identifier(d.spatialColumn))::geometry"
            : "ST_Transform(ST_SetSRID(_k.\(try Identifier(d.spatialColumn))::geometry, \(literal: srid)), 4326)"
        return """
            CREATE TABLE carto.\(try Identifier(relation)) \(AggregationLevels.tableOptions) AS
            WITH \(levels, joinedBy: ",\n")
            SELECT _k.*, coalesce(_m.z, \(literal: maxZoom))::smallint AS __minz
            FROM _k\(literal: maxZoom) AS _k LEFT JOIN (
              SELECT __tid, min(z) AS z FROM (\(union, joinedBy: " UNION ALL ")) AS _u GROUP BY __tid
            ) AS _m ON _m.__tid = _k.__tid
            ORDER BY coalesce(_m.z, \(literal: maxZoom)), ST_GeoHash(\(lonlat), 12)
            """
    }

    /// One partial index per zoom on the table's geometry column: a tile of zoom z searches only the rows kept at z.
    static func indexSQL(_ record: SourceRecord, relation: String) throws -> [SQL] {
        let g = try Identifier(record.definition.spatialColumn)
        return try (0...maxZoom).map { "CREATE INDEX ON carto.\(try Identifier(relation)) USING gist (\(g)) WHERE __minz <= \(literal: $0)" }
    }

    /// The kept features per minimum zoom and the rows the thinning sees (geometry and cell not null), recorded as
    /// the table's comment `{"kept": [k0, ..., k6], "total": n}` (cumulative): the TileJSON's exact
    /// `fraction_dropped_per_zoom` without a scan.
    static func countsSQL(relation: String) throws -> SQL {
        """
        SELECT z, (SELECT count(*) FROM carto.\(try Identifier(relation)) WHERE __minz <= z)
        FROM generate_series(0, \(literal: maxZoom)) AS z ORDER BY z
        """
    }

    static func totalSQL(_ record: SourceRecord) throws -> SQL {
        "SELECT count(*) FROM \(try SourceSQL.from(record.definition)) AS _src WHERE _src.\(try Identifier(record.definition.spatialColumn)) IS NOT NULL"
    }

    static func comment(kept: [Int], total: Int) -> String {
        String(decoding: JSON.object(["kept": .array(kept.map(JSON.int)), "total": .int(total)]).encoded(), as: UTF8.self)
    }

    /// The comment's counts (nil when absent or not ours).
    static func counts(_ comment: String?) -> (kept: [Int], total: Int)? {
        guard let comment, let j = try? JSON.decode(comment), let total = j["total"]?.intValue,
              let kept = j["kept"]?.arrayValue?.compactMap(\.intValue), kept.count == maxZoom + 1 else { return nil }
        return (kept, total)
    }

    /// The comment of the levels table `relation` (schema carto).
    static func commentSQL(relation: String) throws -> SQL {
        "SELECT obj_description(to_regclass('carto.' || quote_ident(\(relation))), 'pg_class')"
    }
}

extension ThinningLevels {
    /// Pure reference of `buildSQL`: each feature's minimum zoom (absent: not kept at any zoom up to `maxZoom`),
    /// ranked once at `maxZoom`, then only the survivors, zoom by zoom, as the statement does.
    static func minZooms(_ thinning: Thinning, _ features: [Thinning.Feature]) -> [Int: Int] {
        var survivors = features
        var minz: [Int: Int] = [:]
        for z in stride(from: maxZoom, through: 0, by: -1) {
            var byCell: [[Int]: [Thinning.Feature]] = [:]
            for f in survivors {
                let (cx, cy) = Thinning.cell(lon: f.lon, lat: f.lat, cells: thinning.cells(z: z))
                byCell[[cx, cy], default: []].append(f)
            }
            survivors = byCell.values.flatMap { $0.sorted { ($0.importance, -$0.id) > ($1.importance, -$1.id) }.prefix(thinning.perCell) }
            for f in survivors { minz[f.id] = z }
        }
        return minz
    }

    /// Pure reference of a levels tile: the features kept at z (minimum zoom ≤ z) in the tile's cell range.
    static func kept(_ thinning: Thinning, _ features: [Thinning.Feature], minZooms: [Int: Int], z: Int, x: Int, y: Int) -> Set<Thinning.Feature> {
        let r = thinning.cellRange(z: z, x: x, y: y)
        return Set(features.filter { f in
            guard let m = minZooms[f.id], m <= z else { return false }
            let (cx, cy) = Thinning.cell(lon: f.lon, lat: f.lat, cells: thinning.cells(z: z))
            return (r[0]...r[2]).contains(cx) && (r[1]...r[3]).contains(cy)
        })
    }
}
