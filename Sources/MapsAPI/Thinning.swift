import Foundation
import HTTPKit
import SQLKit

/// Seamless thinning of dense point sources at low zooms. The world at zoom z is cut into a grid of cells
/// (`cellsPerSide` per tile side, each 8 pixels of a 256-pixel tile at the default budget); in every cell the
/// `perCell` most important features are kept: by the source's `thinningOrder` column (descending) or, by
/// default, by a hash of the geometry (a stable, spatially uniform choice). A feature's fate depends only on
/// the features of its own cell, and a tile reads every feature of every cell its buffer touches, so a
/// feature inside two tiles' buffers is kept in both or in neither: no seams. A feature kept at zoom z is kept
/// at z+1 too (a cell's subcell holds a subset ranked in the same order), so points never blink out while
/// zooming in. Tiles then hold at most `perCell` × the cells they touch: within the feature budget.
struct Thinning: Sendable, Equatable {
    /// 2^cellBits cells per tile side.
    let cellBits: Int
    /// Features kept per cell.
    let perCell: Int
    /// Thinning applies at zooms 0...maxZoom (the zooms where an average tile of the source holds more than
    /// `denseAverage` features); above it every feature is drawn.
    let maxZoom: Int
    /// Rows of the source (the handshake's estimate) and its box in EPSG:3857: what sizes the per-zoom sample.
    let rows: Int
    let dataExtent: [Double]?

    /// Features a thinned tile aims at, at most (when the budget allows).
    static let tileTarget = 4096
    /// An average tile over the data with more features than this is thinned.
    static let denseAverage = 128
    /// Zooms whose tiles would scan more than this many times `tileTarget` rows draw their candidates from a
    /// repeatable sample instead (default order only: an importance order must see every row).
    static let sampleAbove = 50

    static let worldHalf = TileSQL.worldHalf

    var cellsPerSide: Int { 1 << cellBits }
    /// Grid cells per world side at zoom z.
    func cells(z: Int) -> Int { 1 << (z + cellBits) }

    /// The plan for a point source under a feature cap, or nil when the source is not thinned at all (not
    /// points, aggregated, or small enough that no tile can be dense).
    static func plan(_ record: SourceRecord, cap: Int) -> Thinning? {
        let d = record.definition
        guard d.spatialType == .geo || d.spatialType == .trajectory, d.kind == .table || d.kind == .query,
              d.aggregationExp == nil, ["POINT", "MULTIPOINT"].contains((record.geometryType ?? "").uppercased()),
              let rows = record.rows, rows > cap else { return nil }  // every tile fits the budget: nothing to drop
        // The finest grid whose cells, one more around for the buffer, still leave at least one feature per
        // cell within the budget.
        let target = min(cap, tileTarget)
        var bits = 5
        while bits > 0 && ((1 << bits) + 2) * ((1 << bits) + 2) > target { bits -= 1 }
        let touched = ((1 << bits) + 2) * ((1 << bits) + 2)
        let perCell = max(1, target / touched)
        var thinning = Thinning(cellBits: bits, perCell: perCell, maxZoom: -1, rows: rows, dataExtent: record.extent)
        var z = 0
        while z <= TileRoute.maxZoom && thinning.averagePerTile(z: z) > Double(min(denseAverage, max(1, target / 32))) { z += 1 }
        thinning = Thinning(cellBits: bits, perCell: perCell, maxZoom: z - 1, rows: rows, dataExtent: record.extent)
        return thinning.maxZoom >= 0 ? thinning : nil
    }

    /// The source's rows in a tile of zoom z if they spread evenly over the data's box: the same for every
    /// tile of the zoom, so the decisions built on it are too.
    func averagePerTile(z: Int) -> Double {
        let size = 2 * Self.worldHalf / Double(1 << z)
        guard let e = dataExtent else { return Double(rows) / Double(1 << (2 * z)) }
        let area = max(0, e[2] - e[0]) * max(0, e[3] - e[1])
        return Double(rows) * (area > 0 ? min(1, size * size / area) : 1)
    }

    /// The percentage of a big table's blocks a thinned tile of zoom z reads (default order only: an importance
    /// order must see every row), or nil for every row. The sample is repeatable and chosen per zoom, so a row
    /// is in or out in every tile alike; only the sampled blocks are read (a row sample would read them all,
    /// 3-12x slower here). Blocks are specks at these zooms, however the table is ordered on disk.
    /// `levelled`: the zoom's tiles may also come from precomputed levels (ThinningLevels), which keep the exact
    /// rule over every row; a sampled live tile beside a precomputed one would then keep other features in their
    /// shared buffer (a seam), so such a tile reads every row too while the levels are being built.
    /// The interim tiles of a levelled source (ThinningLevels.interim) are sampled like a source without levels:
    /// they are never served beside precomputed ones (their TileJSON pins them), so they need not match the levels.
    func samplePercent(z: Int, ordered: Bool, levelled: Bool = false) -> Double? {
        guard !ordered, !levelled else { return nil }
        let sampled = Double(Self.sampleAbove) * Double(Self.tileTarget) / 8  // rows of an average tile in its sample
        let perTile = averagePerTile(z: z)
        // The rule is one per zoom (a row sampled in one tile is in every tile), so it must bound the dense tiles
        // too: a zoom whose densest tiles would rank more rows than a sample holds reads the sample.
        guard perTile * Self.densestTile > sampled else { return nil }
        let percent = min(100 * sampled / max(1, perTile), 100 * Double(Self.sampleBudgetRows) / Double(max(1, rows)))
        return percent < 100 ? percent : nil  // the whole table: the exact rule itself
    }

    /// How much denser than the zoom's average a tile is taken to be: bench/tiles' cities held 4x the average at
    /// z3 and 50x at z5 (1M points); ranked exactly, such tiles took 0.5-1.2 s before the levels existed.
    static let densestTile = 32.0

    /// Rows of the table a sampled tile reads at most. The block sample is drawn from the whole table, not the
    /// tile: at the zooms between z0 and the exact ones the tile's own share (a third of the blocks of a 5M-row
    /// table at z3) read most of the table for every tile; past this budget a tile gets a thinner sample, which
    /// its zoom's `fraction_dropped_per_zoom` counts.
    static let sampleBudgetRows = 4 * sampleAbove * tileTarget / 8

    /// The grid cells [cx0, cy0, cx1, cy1] (inclusive) a tile reads: its own and one more around it, which
    /// holds its buffer (at most half a cell wide).
    func cellRange(z: Int, x: Int, y: Int) -> [Int] {
        let n = cellsPerSide
        return [x * n - 1, y * n - 1, (x + 1) * n, (y + 1) * n]
    }

    /// The EPSG:3857 box of `cellRange`, widened by a hundredth of a cell so that no feature of those cells is
    /// missed by rounding; rows outside the range are dropped by the statement itself.
    func searchBox(z: Int, x: Int, y: Int) -> [Double] {
        let r = cellRange(z: z, x: x, y: y)
        let size = 2 * Self.worldHalf / Double(cells(z: z))
        let eps = size / 100
        return [-Self.worldHalf + Double(r[0]) * size - eps, Self.worldHalf - Double(r[3] + 1) * size - eps,
                -Self.worldHalf + Double(r[2] + 1) * size + eps, Self.worldHalf - Double(r[1]) * size + eps]
    }

    /// The grid cell of a longitude/latitude at zoom z: the formula the statement uses for EPSG:4326 data.
    static func cell(lon: Double, lat: Double, cells n: Int) -> (Int, Int) {
        let phi = max(-85.0511, min(85.0511, lat)) * Double.pi / 180
        return (Int(floor((lon + 180) / 360 * Double(n))), Int(floor((1 - asinh(tan(phi)) / Double.pi) / 2 * Double(n))))
    }

    /// A feature as the reference decision sees it.
    struct Feature: Hashable {
        let id: Int
        let lon: Double
        let lat: Double
        /// Larger is kept first; ties fall back to the id (the statement's geometry hash and row).
        let importance: Double
    }

    /// Pure reference of the statement's decision for one tile: the features a thinned tile of z/x/y holds,
    /// from the features it reads (its cell range), before clipping to the buffer.
    func kept(_ features: [Feature], z: Int, x: Int, y: Int) -> Set<Feature> {
        let r = cellRange(z: z, x: x, y: y)
        var byCell: [[Int]: [Feature]] = [:]
        for f in features {
            let (cx, cy) = Self.cell(lon: f.lon, lat: f.lat, cells: cells(z: z))
            guard (r[0]...r[2]).contains(cx), (r[1]...r[3]).contains(cy) else { continue }
            byCell[[cx, cy], default: []].append(f)
        }
        var out = Set<Feature>()
        for (_, members) in byCell {
            let ranked = members.sorted { ($0.importance, -$0.id) > ($1.importance, -$1.id) }
            out.formUnion(ranked.prefix(perCell))
        }
        return out
    }

    /// The statement behind the TileJSON's `fraction_dropped_per_zoom`: for each thinned zoom, the features the
    /// tiles keep (the sum over cells of min(count, perCell)), from one scan grouped by the finest grid's
    /// cells and rolled up. A big table is counted from a 1% block sample, scaled (an estimate). Pure.
    func droppedSQL(_ record: SourceRecord) throws -> SQL {
        let d = record.definition
        let g: SQL = "_src.\(try Identifier(d.spatialColumn))::geometry"
        let point: SQL = [3857, 4326].contains(record.schema.srid) ? g : "ST_Transform(ST_SetSRID(\(g), \(literal: record.schema.srid)), 3857)"
        let (cx, cy) = try TileSQL.cellSQL(x: "ST_XMin(\(point))", y: "ST_YMin(\(point))", srid: record.schema.srid)
        let sampled = d.kind == .table && rows > Self.exactDroppedRows
        var from: SQL = "\(try SourceSQL.from(d)) AS _src\(unsafeRaw: sampled ? " TABLESAMPLE SYSTEM (1) REPEATABLE (0)" : "")"
        if let filter = try FilterSQL.condition(d.filters, or: d.filtersOr, schema: record.schema) { from += " WHERE \(filter)" }
        let n: SQL = sampled ? "count(*) * 100" : "count(*)"
        return """
            WITH f AS (SELECT cx, cy, \(n) AS n FROM (SELECT \(cx) AS cx, \(cy) AS cy FROM \(from)) s GROUP BY 1, 2)
            SELECT z, sum(n)::float8, sum(least(n, \(literal: perCell)))::float8 FROM (
              SELECT z, sum(n) AS n FROM f, generate_series(0, \(literal: maxZoom)) AS z
              GROUP BY z, f.cx >> (\(literal: maxZoom) - z), f.cy >> (\(literal: maxZoom) - z)
            ) g GROUP BY z ORDER BY z
            """
    }

    /// Tables up to this many rows are counted exactly for the TileJSON.
    static let exactCountRows = 1_000_000
    /// ... and up to this many for its `fraction_dropped_per_zoom`: the rollup joins every occupied finest cell with
    /// every zoom, and a million points (~600,000 cells x 7 zooms) passed the 10 s statement timeout of a token's
    /// TileJSON on a loaded machine, so a just-imported 1M-point table had no TileJSON until its levels existed.
    static let exactDroppedRows = 200_000

    /// `fraction_dropped_per_zoom` from `droppedSQL`'s rows (zoom, features, kept), zooms 0...maxZoom+1 (none
    /// dropped from there on); the sampled zooms keep at most their sample.
    /// `levels`: the precomputed thinning levels' exact counts (ThinningLevels), for the zooms they serve.
    /// `levelled`: the source's low zooms are served by levels (built or not): their live tiles are not sampled.
    func fractionDropped(_ rows: [(z: Int, total: Double, kept: Double)], levels: (kept: [Int], total: Int)? = nil,
                         levelled: Bool = false) -> [Double] {
        (0...(maxZoom + 1)).map { z in
            if let levels, levels.total > 0, ThinningLevels.zooms(self)?.contains(z) == true, z < levels.kept.count {
                return max(0, min(1, 1 - Double(levels.kept[z]) / Double(levels.total)))
            }
            guard let row = rows.first(where: { $0.z == z }), row.total > 0 else { return 0 }
            var kept = row.kept
            if let percent = samplePercent(z: z, ordered: false, levelled: levelled && ThinningLevels.zooms(self)?.contains(z) == true) { kept = min(kept, row.total * percent / 100) }
            return max(0, min(1, 1 - kept / row.total))
        }
    }
}
