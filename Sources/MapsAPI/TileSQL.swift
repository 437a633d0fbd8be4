import HTTPKit
import Platform
import SQLKit

/// The vector-tile statement of a source. Its text is fixed per source and mode (so it is prepared once per
/// connection) and z/x/y and the feature cap are its last parameters.
struct TileSQL: Sendable {
    /// Which features a capped tile keeps.
    /// Raw values name the cached statements (`MapsService.tileSQL`): interpolating the enum itself went
    /// through reflection, a visible share of a light tile's CPU.
    enum Mode: String, Sendable {
        /// Scan order: the first query, which only finds out whether the tile is over its budget.
        case fast
        /// A deterministic subset spread over the tile: ordered by a hash of the geometry.
        case ordered
        /// The same, drawn from a repeatable Bernoulli sample of a table (percent bound last), so a low zoom of a
        /// big table hashes and sorts a few times the cap instead of every row.
        case sampled
        /// Seamless thinning (see `Thinning`): the most important features of every grid cell the tile touches.
        case thinned
        /// The same over a repeatable block sample of a table (the low zooms of a big table, default order).
        case thinnedSampled
    }
    let mode: Mode
    /// The statement: the query source's own parameters and the filters' values are bound; z, x, y, the cap,
    /// the search box and the sample percent are slots filled per tile, so the text (and its prepared plan) is
    /// the same for every tile of the source.
    let sql: SQL
    let extent: Int
    let buffer: Int
    /// The data's box in EPSG:3857, when known.
    let dataExtent: [Double]?
    let srid: Int

    var text: String { sql.text }

    /// Pure: everything it needs about the warehouse (columns, their kinds, the SRID, the data's box) is in
    /// the record the handshake read.
    /// `levels`: a `.thinned` tile of zoom `z` read from the source's precomputed thinning levels `relation`
    /// (see ThinningLevels): the same statement but for where the kept rows' addresses come from, plus a third
    /// column, whether `relation` is still the fresh levels of `key` (AggregationLevels.fresh); no row is read when not.
    static func make(_ record: SourceRecord, mode: Mode, levels: (relation: String, z: Int, key: String)? = nil) throws -> TileSQL {
        let d = record.definition
        precondition(![.sampled, .thinnedSampled].contains(mode) || d.kind == .table, "only tables can be sampled")
        let from = try SourceSQL.from(d)
        let g: SQL = "_src.\(try Identifier(d.spatialColumn))"
        let srid = record.schema.srid
        let geom: SQL = "ST_SetSRID(\(g)::geometry, \(literal: srid))"
        let mercator: SQL = srid == 3857 ? geom : "ST_Transform(\(geom), 3857)"
        var props: [SQL] = []
        // The features' order in the tile: without one, it is whatever order the plan produced the rows in,
        // which changes with the plan (a prepared statement's generic plan after five runs, an index scan
        // or not), and so would the bytes of the same tile of the same data (HTTP caches and ETags rely on
        // them). The feature id, then the properties for identical geometries; sorting at most the cap's
        // rows, by keys the rows already carry.
        var featureOrder: [SQL] = ["t._carto_feature_id COLLATE \"C\""]
        var ties: [SQL] = []
        for column in try record.schema.properties(requested: d.tileColumns, spatialColumn: d.spatialColumn) {
            let q = try Identifier(column)
            // The TrajectoryTileLayer subtracts the source's timestampRange.min from numeric timestamps as they
            // are; that range comes from the range model, which answers epoch milliseconds: the same unit here.
            let epochMs = column == d.timestampColumn && d.spatialType == .trajectory
                && [.timestamp, .date].contains(record.schema.kind(of: column))
            if column != "geom" && column != "_carto_feature_id" {
                // Text properties sort bytewise (C); numbers and booleans have no collation.
                let textual = !epochMs && record.schema.kind(of: column) != .number && record.schema.kind(of: column) != .boolean
                featureOrder.append(textual ? "t.\(q) COLLATE \"C\"" : "t.\(q)")
                ties.append(textual ? "_p.\(q)::text COLLATE \"C\"" : "_p.\(q)")
            }
            if epochMs {
                props.append("(extract(epoch FROM _src.\(q)) * 1000)::float8 AS \(q)")
                continue
            }
            switch record.schema.kind(of: column) {
            case .number?: props.append("_src.\(q)::float8 AS \(q)")
            case .boolean?: props.append("_src.\(q) AS \(q)")
            default: props.append("_src.\(q)::text AS \(q)")
            }
        }
        if d.featureBbox {
            // The whole (unclipped) geometry's WGS84 box as "west,south,east,north", on polygons only: the client
            // places one label per polygon however many tiles it spans.
            let box: SQL = srid == 4326 ? "\(geom)::box2d" : "ST_Transform(ST_Envelope(\(geom)), 4326)::box2d"
            props.append("""
                CASE WHEN GeometryType(\(g)::geometry) IN ('POLYGON', 'MULTIPOLYGON')
                THEN concat_ws(',', ST_XMin(\(box)), ST_YMin(\(box)), ST_XMax(\(box)), ST_YMax(\(box))) END AS _carto_bbox
                """)
        }
        // The id CARTO's pick model regenerates to find a clicked feature (see Models/ModelContext+Rows).
        props.append("md5(ST_AsBinary(\(g)::geometry)) AS _carto_feature_id")
        let extent = d.extent
        let buffer = max(8, extent / 64)
        // The search box (tile + buffer, clipped to the world and the data) comes in Web Mercator as
        // parameters; the index condition stays on the raw column so a GiST index on it is used.
        let box: SQL = "ST_MakeEnvelope(\(SQL.slot("xmin"))::float8, \(SQL.slot("ymin"))::float8, \(SQL.slot("xmax"))::float8, \(SQL.slot("ymax"))::float8, 3857)"
        let searchBox: SQL = srid == 3857 ? box : "ST_Transform(\(box), \(literal: srid))"
        var conditions: [SQL] = ["\(g) && \(searchBox)"]
        if let filter = try FilterSQL.condition(d.filters, or: d.filtersOr, schema: record.schema) {
            conditions.append(filter)
        }
        let envelope: SQL = "ST_TileEnvelope(\(SQL.slot("z"))::int, \(SQL.slot("x"))::int, \(SQL.slot("y"))::int)"
        if [.thinned, .thinnedSampled].contains(mode) {
            // Each candidate's geometry is read once, for its two coordinates; cells and hash come from those.
            let cells = try Self.cellSQL(x: "_p._x", y: "_p._y", srid: srid)
            var rank: [SQL] = []
            var carried: [SQL] = []
            if let column = d.thinningOrder {
                guard record.schema.kind(of: column.name) == .number else {
                    throw APIError.badRequest("thinningOrder must name a numeric column of the source: \(column.name)", code: "invalid_parameter")
                }
                carried.append("_src.\(try Identifier(column.name)) AS _order")
                rank.append("_p._order \(unsafeRaw: column.descending ? "DESC NULLS LAST" : "ASC NULLS LAST")")
            }
            // The default order: a hash of the coordinates, a stable pseudo-random number per feature (an int8,
            // not text, so the sort stays small and fast).
            rank.append("hashfloat8extended(_p._x, 0) # hashfloat8extended(_p._y, 1)")
            let sample: SQL = mode == .thinnedSampled ? " TABLESAMPLE SYSTEM (\(SQL.slot("percent"))::float8) REPEATABLE (0)" : ""
            let point: SQL = srid == 3857 || srid == 4326 ? "\(g)::geometry" : "ST_Transform(\(geom), 3857)"
            let coordinates: SQL = "ST_XMin(\(point)) AS _x, ST_YMin(\(point)) AS _y"
            let rows: SQL
            if let levels, d.kind == .table, mode == .thinned {
                // The levels hold the kept rows themselves (the table's columns): the rows kept at this zoom whose
                // cell is in the tile's range, by the partial index of the zoom.
                let up = ThinningLevels.maxZoom - levels.z
                rows = """
                    FROM carto.\(try Identifier(levels.relation)) AS _src
                      WHERE (SELECT fresh FROM _levels) AND _src.__minz <= \(literal: levels.z) AND \(g) && \(searchBox)
                        AND _src.__cx >> \(literal: up) BETWEEN \(SQL.slot("cx0"))::int8 AND \(SQL.slot("cx1"))::int8
                        AND _src.__cy >> \(literal: up) BETWEEN \(SQL.slot("cy0"))::int8 AND \(SQL.slot("cy1"))::int8
                    """
            } else if d.kind == .table {
                // A table ranks narrow rows (cell, keys, row address) and fetches only the kept rows by address;
                // the address also settles ties, so the same row wins in every tile.
                rows = """
                    FROM \(from) AS _src
                      WHERE _src.ctid = ANY (ARRAY(
                        SELECT _k.tid FROM (
                          SELECT _p.tid, row_number() OVER (PARTITION BY _c.cx, _c.cy ORDER BY \(rank, joinedBy: ", "), _p.tid) AS _r
                          FROM (SELECT _src.ctid AS tid, \(carried + [coordinates], joinedBy: ", ") FROM \(from) AS _src\(sample)
                                WHERE \(conditions, joinedBy: " AND ") OFFSET 0) AS _p
                          CROSS JOIN LATERAL (SELECT \(cells.x) AS cx, \(cells.y) AS cy) AS _c
                          WHERE _c.cx BETWEEN \(SQL.slot("cx0"))::int8 AND \(SQL.slot("cx1"))::int8 AND _c.cy BETWEEN \(SQL.slot("cy0"))::int8 AND \(SQL.slot("cy1"))::int8
                        ) AS _k WHERE _k._r <= \(SQL.slot("percell"))::int))
                    """
            } else {
                // A query's rows have no address: identical geometries of equal importance are told apart by
                // their properties, so every tile picks the same one.
                rows = """
                    FROM (
                        SELECT _p.*, row_number() OVER (PARTITION BY _c.cx, _c.cy ORDER BY \(rank + ties, joinedBy: ", ")) AS _carto_rank
                        FROM (SELECT _src.*, \(carried + [coordinates], joinedBy: ", ") FROM \(from) AS _src WHERE \(conditions, joinedBy: " AND ") OFFSET 0) AS _p
                        CROSS JOIN LATERAL (SELECT \(cells.x) AS cx, \(cells.y) AS cy) AS _c
                        WHERE _c.cx BETWEEN \(SQL.slot("cx0"))::int8 AND \(SQL.slot("cx1"))::int8 AND _c.cy BETWEEN \(SQL.slot("cy0"))::int8 AND \(SQL.slot("cy1"))::int8
                      ) AS _src
                      WHERE _src._carto_rank <= \(SQL.slot("percell"))::int
                    """
            }
            var head: SQL = ""
            var freshColumn: SQL = ""
            if let levels, d.kind == .table, mode == .thinned {
                head = "WITH \(AggregationLevels.fresh(key: levels.key, table: try SourceSQL.table(d), relation: levels.relation))\n"
                freshColumn = ", (SELECT fresh FROM _levels)"
            }
            let sql: SQL = """
                \(head)SELECT ST_AsMVT(t.*, '\(unsafeRaw: TileJSONBuilder.layer)', \(literal: extent), 'geom' ORDER BY \(featureOrder, joinedBy: ", ")), count(*)\(freshColumn) FROM (
                  SELECT ST_AsMVTGeom(\(mercator), \(envelope), \(literal: extent), \(literal: buffer), true) AS geom, \(props, joinedBy: ", ")
                  \(rows)
                ) t WHERE t.geom IS NOT NULL
                """
            return TileSQL(mode: mode, sql: sql, extent: extent, buffer: buffer, dataExtent: record.extent, srid: srid)
        }
        let sample: SQL = mode == .sampled ? " TABLESAMPLE BERNOULLI (\(SQL.slot("percent"))::float8) REPEATABLE (0)" : ""
        let order: SQL = mode == .fast ? "" : "ORDER BY md5(ST_AsEWKB(\(geom)))"
        let sql: SQL = """
            SELECT ST_AsMVT(t.*, '\(unsafeRaw: TileJSONBuilder.layer)', \(literal: extent), 'geom' ORDER BY \(featureOrder, joinedBy: ", ")), count(*) FROM (
              SELECT ST_AsMVTGeom(\(mercator), \(envelope), \(literal: extent), \(literal: buffer), true) AS geom, \(props, joinedBy: ", ")
              FROM \(from) AS _src\(sample)
              WHERE \(conditions, joinedBy: " AND ")
              \(order)
              LIMIT \(SQL.slot("cap"))::int
            ) t WHERE t.geom IS NOT NULL
            """
        return TileSQL(mode: mode, sql: sql, extent: extent, buffer: buffer, dataExtent: record.extent, srid: srid)
    }

    static let worldHalf = 20037508.342789244

    /// The tile's box with its buffer in EPSG:3857, clipped to the world and to the data; nil when the
    /// tile holds no data at all.
    func searchBox(z: Int, x: Int, y: Int) -> [Double]? {
        let size = 2 * Self.worldHalf / Double(1 << z)
        let margin = size * Double(buffer) / Double(extent)
        var box = [-Self.worldHalf + Double(x) * size - margin, Self.worldHalf - Double(y + 1) * size - margin,
                   -Self.worldHalf + Double(x + 1) * size + margin, Self.worldHalf - Double(y) * size + margin]
        let clip = dataExtent ?? [-Self.worldHalf, -Self.worldHalf, Self.worldHalf, Self.worldHalf]
        box = [max(box[0], clip[0], -Self.worldHalf), max(box[1], clip[1], -Self.worldHalf),
               min(box[2], clip[2], Self.worldHalf), min(box[3], clip[3], Self.worldHalf)]
        return box[0] <= box[2] && box[1] <= box[3] ? box : nil
    }

    /// Bound values for one tile; nil when the tile is certainly empty. `samplePercent` only for `.sampled`.
    func parameters(z: Int, x: Int, y: Int, cap: Int, samplePercent: Double? = nil) -> [String?]? {
        guard let box = searchBox(z: z, x: x, y: y) else { return nil }
        return sql.parameters(filling: Self.slots(z: z, x: x, y: y, cap: cap, box: box, samplePercent: samplePercent))
    }

    /// The values of the statement's slots for one tile.
    static func slots(z: Int, x: Int, y: Int, cap: Int, box: [Double], samplePercent: Double? = nil) -> [String: String?] {
        ["z": String(z), "x": String(x), "y": String(y), "cap": String(cap),
         "xmin": String(box[0]), "ymin": String(box[1]), "xmax": String(box[2]), "ymax": String(box[3]),
         "percent": String(samplePercent ?? 100)]
    }

    /// The percentage of a table's rows to sample so that a tile over its budget still gets about `cap` features
    /// (with room to spare), assuming the rows spread evenly over the data's box; nil when sampling would not
    /// save much or the table's size is unknown.
    func samplePercent(rows: Int?, z: Int, x: Int, y: Int, cap: Int) -> Double? {
        guard mode == .sampled, let rows, rows > 0, let box = searchBox(z: z, x: x, y: y) else { return nil }
        let area = { (b: [Double]) in max(0, b[2] - b[0]) * max(0, b[3] - b[1]) }
        let covered = dataExtent.map { area($0) > 0 ? min(1, area(box) / area($0)) : 1 } ?? 1
        let percent = 100 * 3 * Double(cap) / max(1, Double(rows) * covered)
        return percent < 30 ? percent : nil
    }

    /// The grid cell (column, row from the top) of a feature at `cells` cells per world side, from its x and y in
    /// the stored SRID (4326: plain arithmetic on longitude/latitude, no per-row transform) or in EPSG:3857 (any
    /// other SRID is transformed first); the reference is `Thinning.cell`.
    static func cellSQL(x: SQL, y: SQL, srid: Int) throws -> (x: SQL, y: SQL) {
        let n: SQL = "\(SQL.slot("cells"))::float8"
        if srid == 4326 {
            let lat: SQL = "radians(greatest(-85.0511, least(85.0511, \(y))))"
            return ("floor((\(x) + 180) / 360 * \(n))::int8", "floor((1 - asinh(tan(\(lat))) / pi()) / 2 * \(n))::int8")
        }
        let half: SQL = "\(unsafeRaw: String(worldHalf))::float8"
        return ("floor((\(x) + \(half)) / (2 * \(half)) * \(n))::int8", "floor((\(half) - \(y)) / (2 * \(half)) * \(n))::int8")
    }

    /// Bound values for one thinned tile; nil when the tile is certainly empty.
    func thinnedParameters(_ thinning: Thinning, z: Int, x: Int, y: Int, samplePercent: Double?) -> [String?]? {
        guard searchBox(z: z, x: x, y: y) != nil else { return nil }
        var box = thinning.searchBox(z: z, x: x, y: y)
        box = [max(box[0], -Self.worldHalf), max(box[1], -Self.worldHalf), min(box[2], Self.worldHalf), min(box[3], Self.worldHalf)]
        let r = thinning.cellRange(z: z, x: x, y: y)
        var values = Self.slots(z: z, x: x, y: y, cap: 0, box: box, samplePercent: samplePercent)
        values["cells"] = String(thinning.cells(z: z))
        values["percell"] = String(thinning.perCell)
        for (name, v) in zip(["cx0", "cy0", "cx1", "cy1"], r) { values[name] = String(v) }
        return sql.parameters(filling: values)
    }
}
