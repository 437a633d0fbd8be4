import CryptoSupport
import Foundation
import HTTPKit
import Jobs
import SQLKit

/// Precomputed aggregation levels: the cells of a table's points at the resolutions tiles z0–`maxZoom` ask
/// for, per (table, geometry column, index type, aggregationExp), stored in the warehouse as
/// `carto."tessera_agg_<key>_<build>"` with one row per (resolution `__r`, cell `__cell`) and the
/// aggregationExp columns. A low-zoom tile over millions of points then reads a few thousand rows by index
/// instead of grouping the whole table (z0 of 5M points: ~900 ms live).
///
/// Freshness: `carto.tessera_agg_levels` records the table's data version (oid, file node and write
/// counters) read before the build; a tile uses the levels only when that version is still the table's,
/// so any write, truncate or table swap sends tiles back to the live path (always correct) until the
/// sql-worker's `aggregation_levels` job, queued by the tile that found them stale, has rebuilt them.
/// Pure: statements only; the tile route and AggregationLevelRunner run them.
enum AggregationLevels {
    static let jobKind = "aggregation_levels"
    /// Tiles up to this zoom use (and ask for) levels; deeper tiles hold few enough points to group live.
    static let maxZoom = 6
    static let catalog: SQL = "carto.tessera_agg_levels"

    /// The key of the levels a source's tiles can use, or nil when they cannot: tables only (a query's data
    /// version is not known), no filters (they change with every widget interaction), and an aggregationExp
    /// of simple aggregates (the worker evaluates it on the platform's own session, not the requester's).
    static func key(_ record: SourceRecord, index: CellIndex) -> String? {
        let d = record.definition
        guard d.kind == .table, record.aggregatesPoints, let name = try? SourceSQL.table(d) else { return nil }
        do { if try FilterSQL.condition(d.filters, or: d.filtersOr, schema: record.schema) != nil { return nil } } catch { return nil }
        let exp = expression(d)
        guard (try? AggregationExpression.validate(exp)) != nil else { return nil }
        // `format`: the layout of the levels table; a new layout makes new keys (older tables are never read).
        let text = [format, name.qualifiedIdentifier.text, d.spatialColumn, index.rawValue, exp, String(record.schema.srid)].joined(separator: "\u{0}")
        return String(Encoding.hex(Crypto.sha256(Array(text.utf8))).prefix(24))
    }

    static func expression(_ d: SourceDefinition) -> String { d.aggregationExp ?? "count(*) AS count" }

    static let format = "2"

    /// The columns of a levels table besides the aggregationExp ones (never cell properties).
    static func keyColumns(_ index: CellIndex) -> [String] {
        (index == .quadbin ? ["__x", "__y"] : []) + ["__r", "__cell", "__json"]
    }

    /// The resolutions tiles z0–maxZoom of this source aggregate to (the same function the tile route uses).
    static func resolutions(_ record: SourceRecord, index: CellIndex, maxFeatures: Int) -> [Int] {
        let level = record.definition.aggregationResLevel ?? (index == .quadbin ? 6 : 4)
        let data = record.dataResolution ?? index.maxResolution
        return Array(Set((0...maxZoom).map {
            CellAggregation.resolution(z: $0, level: level, dataResolution: data, maxFeatures: maxFeatures, index: index)
        })).sorted()
    }

    /// The table's data version as text: it changes with every committed write (PostgreSQL's per-table
    /// counters), TRUNCATE, rewrite or swap (file node, oid). Slot `table`: the table's quoted name.
    static let version: SQL = version(of: SQL.slot("table"))

    /// The data version of the table named by the text expression `table`.
    static func version(of table: SQL) -> SQL {
        """
        (SELECT c.oid::text || ':' || c.relfilenode || ':' || coalesce(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0) \
        FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid WHERE c.oid = to_regclass(\(table)::text))
        """
    }

    /// The keys whose levels no longer match their table's data (tables that still exist): what a write asks
    /// the queue to rebuild (LevelRefreshRunner).
    static let stale: SQL = """
        SELECT l.key FROM \(catalog) l
        WHERE to_regclass(l.source_table) IS NOT NULL AND l.data_version IS DISTINCT FROM \(version(of: "l.source_table"))
        ORDER BY l.key
        """

    /// Whether the warehouse has the catalogue at all (a warehouse no build ran on has not).
    static let catalogExists: SQL = "SELECT to_regclass('carto.tessera_agg_levels') IS NOT NULL"

    /// The fresh levels of `key` the session may read: the relation and its resolutions, no row otherwise.
    /// The reader must be able to read the table itself (no row-level security on it): the levels are
    /// derived from all of its rows.
    static let lookup: SQL = """
        SELECT l.relation, array_to_string(l.resolutions, ',') FROM \(catalog) l
        WHERE l.key = \(SQL.slot("key")) AND l.data_version = \(version)
          AND has_table_privilege(to_regclass(\(SQL.slot("table"))::text), 'SELECT')
          AND has_table_privilege(to_regclass('carto.' || quote_ident(l.relation)), 'SELECT')
          AND NOT (SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass(\(SQL.slot("table"))::text))
        """

    /// The build job of a source's levels (one pending or running per key and connection); `resolution`: one a
    /// tile wants, which the build then holds whatever the worker's own configuration.
    static func job(_ record: SourceRecord, key: String, account: String, resolution: Int? = nil) -> JobQueue.NewJob {
        var payload: [String: JSON] = ["account": .string(account), "source": .string(record.id)]
        if let resolution { payload["resolution"] = .int(resolution) }
        var job = JobQueue.NewJob(queue: "sql", kind: jobKind, payload: .object(payload),
                                  uniqueKey: "\(jobKind):\(account):\(record.definition.connection):\(key)")
        job.accountId = account
        job.maxAttempts = 3
        return job
    }

    /// The lookup's conditions for one known relation, folded into its tile statement as `_levels.fresh`: a tile
    /// whose levels relation the process remembers (per key, TileRoute) costs that one statement, and a relation
    /// that is no longer the fresh levels of the key for this session answers `fresh = false` (its rows are never
    /// read) in the very snapshot the tile is read in, so no data change is ever missed. `resolution`: a level
    /// the relation must hold (aggregation levels).
    static func fresh(key: String, table: QualifiedName, relation: String, resolution: SQL? = nil) -> SQL {
        let name = table.qualifiedIdentifier.text
        let holds: SQL = resolution.map { (r: SQL) -> SQL in " AND \(r)::int = ANY (l.resolutions)" } ?? ""
        return """
            _levels AS MATERIALIZED (SELECT EXISTS (SELECT 1 FROM \(catalog) l
              WHERE l.key = \(key) AND l.relation = \(relation) AND l.data_version = \(version(of: "\(name)"))\(holds)
                AND has_table_privilege(to_regclass(\(name)::text), 'SELECT')
                AND NOT (SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass(\(name)::text))) AS fresh)
            """
    }

    static func lookupParameters(key: String, table: QualifiedName) -> [String?] {
        lookup.parameters(filling: ["key": key, "table": table.qualifiedIdentifier.text])!
    }

    /// The rows of one resolution of a source's levels (slot `resolution`), as the build inserts them:
    /// `__r`, `__cell` (the quadbin or H3 cell id as bigint), the aggregationExp columns, and `__json`, the
    /// cell as tiles carry it (`{id, properties}`), so that a tile only concatenates text.
    static func levelSQL(_ record: SourceRecord, index: CellIndex) throws -> SQL {
        let cells = try CellAggregation.cellsSQL(record, index: index, inTile: false)
        switch index {
        case .quadbin:
            let cell: SQL = "carto.quadbin_fromzxy(\(SQL.slot("resolution"))::int, t.__x, t.__y)"
            return """
                SELECT \(SQL.slot("resolution"))::int AS __r, \(cell) AS __cell, t.*,
                  json_build_object('id', lpad(to_hex(\(cell)), 16, '0'), 'properties', to_jsonb(t) - '__x' - '__y')::text AS __json
                FROM (
                \(cells)
                ) t
                """
        case .h3:
            return """
                SELECT \(SQL.slot("resolution"))::int AS __r, t.*,
                  json_build_object('id', carto.h3_int_tostring(t.__cell), 'properties', to_jsonb(t) - '__cell')::text AS __json
                FROM (
                \(cells)
                ) t
                """
        }
    }

    /// One tile from the levels table `relation` (in schema carto): the cells at the slot `resolution` under
    /// the tile, in the live statement's shape (`[{id, properties}]`, cell count). A tile's cells are one range
    /// of ids, slots `lo` and `hi` (quadbinDescendantRange, h3DescendantRange).
    /// `fresh`: the source's key and table; the statement also answers whether the relation is still the key's
    /// fresh levels holding the resolution (see `fresh(key:table:relation:)`), as a third column; no cell is read when not.
    static func tileSQL(relation: String, index: CellIndex, fresh: (key: String, table: QualifiedName)) throws -> SQL {
        return """
            WITH \(Self.fresh(key: fresh.key, table: fresh.table, relation: relation, resolution: SQL.slot("resolution")))
            SELECT coalesce('[' || string_agg(t.__json, ',') || ']', '[]'), count(*), (SELECT fresh FROM _levels)
            FROM carto.\(try Identifier(relation)) t
            WHERE (SELECT fresh FROM _levels)
              AND t.__r = \(SQL.slot("resolution"))::int AND t.__cell BETWEEN \(SQL.slot("lo"))::bigint AND \(SQL.slot("hi"))::bigint
            """
    }

    /// The stored cells of the slot `resolution` (the TileJSON's tilestats attributes read them).
    static func cellsSQL(relation: String) throws -> SQL {
        "SELECT * FROM carto.\(try Identifier(relation)) WHERE __r = \(SQL.slot("resolution"))::int"
    }

    /// The ids of an H3 cell's descendants at `resolution` lie between these two: the cell's digits below
    /// its own resolution all 0 (lowest) or all 7 (above the highest), with the resolution field set.
    static func h3DescendantRange(_ cell: UInt64, resolution: Int) -> (lo: UInt64, hi: UInt64) {
        let z = Int((cell >> 52) & 0xF)
        var lo = (cell & ~(UInt64(0xF) << 52)) | (UInt64(resolution) << 52)
        var hi = lo
        for digit in stride(from: z + 1, through: resolution, by: 1) {
            let shift = UInt64((15 - digit) * 3)
            lo &= ~(UInt64(7) << shift)
            hi |= UInt64(7) << shift
        }
        return (lo, hi)
    }

    /// The quadbin cell of tile z/x/y (as `carto.quadbin_fromzxy`): header, mode, resolution, then x and y
    /// interleaved (x on the even bits) from the top, unused trailing bits set.
    static func quadbin(z: Int, x: Int, y: Int) -> UInt64 {
        func spread(_ value: UInt64) -> UInt64 {
            var v = value & 0xFFFF_FFFF
            v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF
            v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF
            v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F
            v = (v | (v << 2)) & 0x3333_3333_3333_3333
            return (v | (v << 1)) & 0x5555_5555_5555_5555
        }
        let morton = z == 0 ? 0 : spread(UInt64(x) << UInt64(32 - z)) | spread(UInt64(y) << UInt64(32 - z)) << 1
        return 0x4000_0000_0000_0000 | (1 << 59) | (UInt64(z) << 52) | (morton >> 12) | (0x000F_FFFF_FFFF_FFFF >> UInt64(2 * z))
    }

    /// The ids of tile z/x/y's descendant cells at `resolution`: one range, as quadbin cells are Morton-ordered.
    /// Bound as plain values (not computed in the statement) so that even a generic plan scans the index range.
    static func quadbinDescendantRange(z: Int, x: Int, y: Int, resolution: Int) -> (lo: UInt64, hi: UInt64) {
        let shift = resolution - z
        return (quadbin(z: resolution, x: x << shift, y: y << shift),
                quadbin(z: resolution, x: ((x + 1) << shift) - 1, y: ((y + 1) << shift) - 1))
    }

    /// The bound values of `tileSQL` for one tile (`h3Cell` for H3 tiles).
    static func parameters(_ sql: SQL, z: Int, x: Int, y: Int, resolution: Int, h3Cell: UInt64? = nil) -> [String?] {
        let range = h3Cell.map { h3DescendantRange($0, resolution: resolution) }
            ?? quadbinDescendantRange(z: z, x: x, y: y, resolution: resolution)
        return sql.parameters(filling: ["resolution": String(resolution),
                                        "lo": String(Int64(bitPattern: range.lo)), "hi": String(Int64(bitPattern: range.hi))])!
    }

    /// The build's statements, in order, for the relation `relation` (schema carto). The first resolution
    /// creates the table, the others insert; then the index tiles read by, and the catalogue row.
    static func createSQL(relation: String, level: SQL) throws -> SQL {
        "CREATE TABLE carto.\(try Identifier(relation)) \(tableOptions) AS \(level)"
    }

    /// The storage options of every levels table (aggregation and thinning). No parallel scans: a tile reads a few
    /// thousand rows, yet the planner's estimate for the partial index's rows chose a parallel bitmap scan, and each
    /// parallel worker is a fresh process that loads PostGIS and sets up PROJ for ST_Transform before its first row
    /// (the places layer's z0-z2 tiles from the levels: p95 118-130 ms with a worker, 28-39 ms without).
    static let tableOptions: SQL = "WITH (parallel_workers = 0)"

    static func insertSQL(relation: String, level: SQL) throws -> SQL {
        "INSERT INTO carto.\(try Identifier(relation)) \(level)"
    }

    static func indexSQL(relation: String) throws -> SQL {
        "CREATE INDEX ON carto.\(try Identifier(relation)) (__r, __cell)"
    }

    static let catalogDDL = """
        CREATE SCHEMA IF NOT EXISTS carto;
        CREATE TABLE IF NOT EXISTS carto.tessera_agg_levels (
          key text PRIMARY KEY, relation text NOT NULL, source_table text NOT NULL, data_version text NOT NULL,
          resolutions int[] NOT NULL, built_at timestamptz NOT NULL DEFAULT now());
        """

    /// Records the build (replacing the previous one of the key); returns the previous relation to drop. The CTE is
    /// read by RETURNING, after the upsert changed the row: a plain read still sees the statement's snapshot (the old
    /// relation), whereas FOR UPDATE skipped the row this very command had updated and answered NULL (so the old
    /// tables were never dropped). Concurrent builds of one key serialize on the upsert's row lock anyway.
    static let record: SQL = """
        WITH old AS MATERIALIZED (SELECT relation FROM \(catalog) WHERE key = \(SQL.slot("key")))
        INSERT INTO \(catalog) AS l (key, relation, source_table, data_version, resolutions)
        VALUES (\(SQL.slot("key")), \(SQL.slot("relation")), \(SQL.slot("table")), \(SQL.slot("version")), string_to_array(\(SQL.slot("resolutions")), ',')::int[])
        ON CONFLICT (key) DO UPDATE SET relation = excluded.relation, source_table = excluded.source_table,
          data_version = excluded.data_version, resolutions = excluded.resolutions, built_at = now()
        RETURNING (SELECT relation FROM old)
        """
}
