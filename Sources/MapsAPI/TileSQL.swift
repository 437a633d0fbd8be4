import HTTPKit
import Platform
import Postgres

/// The vector-tile statement of a source. Its text is fixed per source and mode (so it is prepared once per
/// connection) and z/x/y and the feature cap are its last parameters.
struct TileSQL: Sendable {
    /// Which features a capped tile keeps.
    enum Mode: Sendable {
        /// Scan order: the first query, which only finds out whether the tile is over its budget.
        case fast
        /// A deterministic subset spread over the tile: ordered by a hash of the geometry.
        case ordered
        /// The same, drawn from a repeatable Bernoulli sample of a table (percent bound last), so a low zoom of a
        /// big table hashes and sorts a few times the cap instead of every row.
        case sampled
    }
    let mode: Mode
    let text: String
    /// Parameters before z, x, y and the cap: the query source's own and the filters' values.
    let parameters: [String?]
    let extent: Int
    let buffer: Int
    /// The data's box in EPSG:3857, when known.
    let dataExtent: [Double]?
    let srid: Int

    static func make(_ record: SourceRecord, connection: PGConnection, mode: Mode) throws -> TileSQL {
        let d = record.definition
        precondition(mode != .sampled || d.kind == .table, "only tables can be sampled")
        var b = SQLBuilder(connection: connection, parameters: d.queryParameters)
        let from = try SourceSQL.from(d, b)
        let g = "_src.\(try b.quote(d.spatialColumn))"
        let srid = record.schema.srid
        let geom = "ST_SetSRID(\(g)::geometry, \(srid))"
        let mercator = srid == 3857 ? geom : "ST_Transform(\(geom), 3857)"
        var props: [String] = []
        for column in try record.schema.properties(requested: d.columns, spatialColumn: d.spatialColumn) {
            let q = try b.quote(column)
            switch record.schema.kind(of: column) {
            case .number?: props.append("_src.\(q)::float8 AS \(q)")
            case .boolean?: props.append("_src.\(q) AS \(q)")
            default: props.append("_src.\(q)::text AS \(q)")
            }
        }
        // The id CARTO's pick model regenerates to find a clicked feature (see Models/ModelContext+Rows).
        props.append("md5(ST_AsBinary(\(g)::geometry)) AS _carto_feature_id")
        let extent = d.extent
        let buffer = max(8, extent / 64)
        var conditions: [String] = []
        if let filter = try FilterSQL.condition(d.filters, or: d.filtersOr, alias: "_src", schema: record.schema, builder: &b) {
            conditions.append(filter)
        }
        let n = b.parameters.count
        let (z, x, y, cap) = ("$\(n + 1)::int", "$\(n + 2)::int", "$\(n + 3)::int", "$\(n + 4)::int")
        let envelope = "ST_TileEnvelope(\(z), \(x), \(y))"
        // The search box (tile + buffer, clipped to the world and the data) comes in Web Mercator as
        // parameters; the index condition stays on the raw column so a GiST index on it is used.
        let box = "ST_MakeEnvelope($\(n + 5)::float8, $\(n + 6)::float8, $\(n + 7)::float8, $\(n + 8)::float8, 3857)"
        let sample = mode == .sampled ? " TABLESAMPLE BERNOULLI ($\(n + 9)::float8) REPEATABLE (0)" : ""
        conditions.insert("\(g) && " + (srid == 3857 ? box : "ST_Transform(\(box), \(srid))"), at: 0)
        let text = """
            SELECT ST_AsMVT(t.*, '\(TileJSONBuilder.layer)', \(extent), 'geom'), count(*) FROM (
              SELECT ST_AsMVTGeom(\(mercator), \(envelope), \(extent), \(buffer), true) AS geom\(props.isEmpty ? "" : ", " + props.joined(separator: ", "))
              FROM \(from) AS _src\(sample)
              WHERE \(conditions.joined(separator: " AND "))
              \(mode == .fast ? "" : "ORDER BY md5(ST_AsEWKB(\(geom)))")
              LIMIT \(cap)
            ) t WHERE t.geom IS NOT NULL
            """
        return TileSQL(mode: mode, text: text, parameters: b.parameters, extent: extent, buffer: buffer, dataExtent: record.extent, srid: srid)
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
        return parameters + [String(z), String(x), String(y), String(cap)] + box.map { String($0) }
            + (mode == .sampled ? [String(samplePercent ?? 100)] : [])
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
}
