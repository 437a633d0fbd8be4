@testable import MapsAPI
import HTTPKit
import Platform
import SQLKit
import XCTest

/// Seamless thinning, pure: the decision per feature is the same in every tile that holds it.
final class ThinningTests: XCTestCase {
    func record(rows: Int, order: String? = nil, geometry: String = "POINT") -> SourceRecord {
        var d = SourceDefinition(kind: .table, connection: "carto_dw")
        d.name = "public.places"
        d.columns = ["name", "pop"]
        if let order { d.thinningOrder = .init(name: order) }
        var r = SourceRecord(id: "s1", definition: d,
                             schema: SourceSchema(columns: [("geom", .geometry), ("name", .string), ("pop", .number)], srid: 4326),
                             geometryType: geometry, extent: [-20037508, -20037508, 20037508, 20037508])
        r.rows = rows
        return r
    }

    /// A dense, clumpy cloud: many points per grid cell near the tiles' shared borders.
    func features(_ n: Int) -> [Thinning.Feature] {
        var seed: UInt64 = 42
        func next() -> Double { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Double(seed >> 11) / Double(1 << 53) }
        return (0..<n).map { i in
            // Around the meridian and the equator (the borders of the z1..z4 tiles), and spread widely.
            let lon = i % 3 == 0 ? -180 + 360 * next() : (next() - 0.5) * 6
            let lat = i % 3 == 0 ? -80 + 160 * next() : (next() - 0.5) * 6
            return .init(id: i, lon: lon, lat: lat, importance: floor(next() * 1000))
        }
    }

    /// The buffer box of a tile in lon/lat (the tile plus buffer/extent of its size on each side).
    func inBuffer(_ f: Thinning.Feature, z: Int, x: Int, y: Int, margin: Double) -> Bool {
        let n = Double(1 << z)
        let (tx, ty) = (Double((f.lon + 180) / 360 * n), (1 - asinh(tan(max(-85.0511, min(85.0511, f.lat)) * .pi / 180)) / .pi) / 2 * n)
        return tx >= Double(x) - margin && tx <= Double(x + 1) + margin && ty >= Double(y) - margin && ty <= Double(y + 1) + margin
    }

    func testNoSeamsBetweenAdjacentLowZoomTiles() throws {
        let thinning = try XCTUnwrap(Thinning.plan(record(rows: 5_000_000), cap: 20_000))
        let all = features(60_000)
        let margin = 64.0 / 4096  // the tile buffer (TileSQL: extent/64) in tile units
        var shared = 0
        for z in 1...4 {
            let c = 1 << (z - 1)  // tiles around the centre of the world: the cloud's densest part
            for (a, b) in [((c - 1, c - 1), (c, c - 1)), ((c - 1, c - 1), (c - 1, c)), ((c, c), (c - 1, c)), ((c - 1, c - 1), (c, c))] {
                let keptA = thinning.kept(all, z: z, x: a.0, y: a.1), keptB = thinning.kept(all, z: z, x: b.0, y: b.1)
                for f in all where inBuffer(f, z: z, x: a.0, y: a.1, margin: margin) && inBuffer(f, z: z, x: b.0, y: b.1, margin: margin) {
                    shared += 1
                    XCTAssertEqual(keptA.contains(f), keptB.contains(f), "feature \(f.id) at z\(z) between \(a) and \(b)")
                }
                // Something is dropped (the test would prove nothing otherwise), and the tile stays within budget.
                let inA = all.filter { inBuffer($0, z: z, x: a.0, y: a.1, margin: margin) }
                XCTAssertLessThan(inA.filter(keptA.contains).count, inA.count)
                XCTAssertLessThanOrEqual(inA.filter(keptA.contains).count, 20_000)
            }
        }
        XCTAssertGreaterThan(shared, 100)
    }

    /// The counter-example: a per-tile cap (the old LIMIT) keeps a shared feature in one tile and not the other.
    func testAPerTileLimitWouldSeam() {
        let all = features(20_000)
        let margin = 64.0 / 4096
        func limited(_ x: Int, _ y: Int) -> Set<Thinning.Feature> {
            Set(all.filter { inBuffer($0, z: 1, x: x, y: y, margin: margin) }.sorted { $0.importance > $1.importance }.prefix(500))
        }
        let a = limited(0, 0), b = limited(1, 0)
        let seams = all.filter { inBuffer($0, z: 1, x: 0, y: 0, margin: margin) && inBuffer($0, z: 1, x: 1, y: 0, margin: margin) }
            .filter { a.contains($0) != b.contains($0) }
        XCTAssertFalse(seams.isEmpty)
    }

    func testKeptAtAZoomStaysKeptDeeper() throws {
        let thinning = try XCTUnwrap(Thinning.plan(record(rows: 5_000_000), cap: 20_000))
        let all = features(30_000)
        let z2 = thinning.kept(all, z: 2, x: 1, y: 1)
        let z3 = (2...3).flatMap { x in (2...3).map { y in thinning.kept(all, z: 3, x: x, y: y) } }.reduce(Set()) { $0.union($1) }
        for f in z2 where inBuffer(f, z: 2, x: 1, y: 1, margin: 0) { XCTAssertTrue(z3.contains(f), "feature \(f.id)") }
    }

    func testPlanFollowsBudgetAndDensity() throws {
        let big = try XCTUnwrap(Thinning.plan(record(rows: 5_000_000), cap: 20_000))
        XCTAssertEqual(big.cellBits, 5)
        XCTAssertEqual(big.perCell, 3)  // (32+2)^2 cells touched * 3 <= 4096
        XCTAssertLessThanOrEqual((big.cellsPerSide + 2) * (big.cellsPerSide + 2) * big.perCell, 20_000)
        XCTAssertEqual(big.maxZoom, 7)   // 5M/4^7 = 305 > 128 >= 5M/4^8
        let small = try XCTUnwrap(Thinning.plan(record(rows: 400), cap: 50))
        XCTAssertLessThanOrEqual((small.cellsPerSide + 2) * (small.cellsPerSide + 2) * small.perCell, 50)
        XCTAssertNil(Thinning.plan(record(rows: 100), cap: 20_000))           // no dense tile anywhere
        XCTAssertNil(Thinning.plan(record(rows: 5_000_000, geometry: "POLYGON"), cap: 20_000))
        // Big zooms of a big table read a sample (default order only: an importance order must see every row).
        XCTAssertNotNil(big.samplePercent(z: 0, ordered: false))
        XCTAssertNil(big.samplePercent(z: 0, ordered: true))
        // z0: 5M rows a tile -> 0.5% of the blocks; z1: 1.25M -> 2%; z3: 78k would be 33%, but a tile reads at most
        // 102,400 rows of the table (2% of 5M: the sample is of the whole table, not of the tile) ...
        XCTAssertEqual(try XCTUnwrap(big.samplePercent(z: 0, ordered: false)), 0.512, accuracy: 0.01)
        XCTAssertEqual(try XCTUnwrap(big.samplePercent(z: 1, ordered: false)), 2.048, accuracy: 0.01)
        XCTAssertEqual(try XCTUnwrap(big.samplePercent(z: 3, ordered: false)), 2.048, accuracy: 0.01)
        // ... as at z6, whose average tile (1,220 rows) is small but whose dense ones (32x) are not; z7: every row.
        XCTAssertEqual(try XCTUnwrap(big.samplePercent(z: 6, ordered: false)), 2.048, accuracy: 0.01)
        XCTAssertNil(big.samplePercent(z: 7, ordered: false))
        let million = try XCTUnwrap(Thinning.plan(record(rows: 1_000_000), cap: 20_000))
        XCTAssertEqual(try XCTUnwrap(million.samplePercent(z: 2, ordered: false)), 10.24, accuracy: 0.01)  // 41% capped
        XCTAssertEqual(try XCTUnwrap(million.samplePercent(z: 5, ordered: false)), 10.24, accuracy: 0.01)
        XCTAssertNil(million.samplePercent(z: 6, ordered: false))  // 244 rows a tile, 7,800 at 32x: every row
        // A zoom precomputed levels serve reads every row live too: a sampled live tile beside a precomputed one
        // keeps other features in their shared buffer (issue 13's seam between 3/3/2 and 3/4/2).
        XCTAssertNil(big.samplePercent(z: 1, ordered: false, levelled: true))
        // ... and the TileJSON's kept share for such a zoom is the exact rule's, not capped at the sample.
        let rows = [(z: 1, total: 5_000_000.0, kept: 1_000_000.0)]
        XCTAssertEqual(big.fractionDropped(rows)[1], 1 - 0.02048, accuracy: 0.0001)
        XCTAssertEqual(big.fractionDropped(rows, levelled: true)[1], 0.8, accuracy: 0.0001)
    }

    func testThinnedStatementSnapshots() throws {
        assertSnapshot(try TileSQL.make(record(rows: 5_000_000), mode: .thinned).sql, "tile_table_thinned")
        assertSnapshot(try TileSQL.make(record(rows: 5_000_000, order: "pop"), mode: .thinnedSampled).sql, "tile_table_thinned_sampled_ordered")
        var query = SourceDefinition(kind: .query, connection: "carto_dw")
        query.sql = "SELECT * FROM places WHERE pop > $1"
        query.queryParameters = ["10"]
        query.columns = ["name", "pop"]
        var q = SourceRecord(id: "s2", definition: query,
                             schema: SourceSchema(columns: [("geom", .geometry), ("name", .string), ("pop", .number)], srid: 3857),
                             geometryType: "POINT", extent: [-20037508, -20037508, 20037508, 20037508])
        q.rows = 5_000_000
        assert(Thinning.plan(q, cap: 20_000) != nil)
        assertSnapshot(try TileSQL.make(q, mode: .thinned).sql, "tile_query_thinned_3857")
        let t = try XCTUnwrap(Thinning.plan(record(rows: 5_000_000), cap: 20_000))
        assertSnapshot(try t.droppedSQL(record(rows: 5_000_000)), "tile_thinning_dropped")
    }

    func testThinningOrderMustBeNumeric() throws {
        XCTAssertThrowsError(try TileSQL.make(record(rows: 5_000_000, order: "name"), mode: .thinned)) { error in
            XCTAssertEqual((error as? APIError)?.status, 400)
        }
    }
}
