@testable import MapsAPI
import HTTPKit
import Platform
import SQLKit
import XCTest

/// Precomputed thinning levels, pure: the minimum zoom the build gives every feature keeps exactly what the
/// per-request thinning keeps, so tiles from the levels have no seams either; the statements (snapshots).
final class ThinningLevelsTests: XCTestCase {
    /// ThinningTests' fixtures (the same places table and clumpy cloud).
    enum base {
        static func record(rows: Int, order: String? = nil, filters: JSON? = nil) -> SourceRecord {
            var d = SourceDefinition(kind: .table, connection: "carto_dw")
            d.name = "public.places"
            d.columns = ["name", "pop"]
            d.filters = filters
            if let order { d.thinningOrder = .init(name: order) }
            var r = SourceRecord(id: "s1", definition: d,
                                 schema: SourceSchema(columns: [("geom", .geometry), ("name", .string), ("pop", .number)], srid: 4326),
                                 geometryType: "POINT", extent: [-20037508, -20037508, 20037508, 20037508])
            r.rows = rows
            return r
        }

        static func features(_ n: Int) -> [Thinning.Feature] {
            var seed: UInt64 = 42
            func next() -> Double { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Double(seed >> 11) / Double(1 << 53) }
            return (0..<n).map { i in
                let lon = i % 3 == 0 ? -180 + 360 * next() : (next() - 0.5) * 6
                let lat = i % 3 == 0 ? -80 + 160 * next() : (next() - 0.5) * 6
                return .init(id: i, lon: lon, lat: lat, importance: floor(next() * 1000))
            }
        }

        static func inBuffer(_ f: Thinning.Feature, z: Int, x: Int, y: Int, margin: Double) -> Bool {
            let n = Double(1 << z)
            let (tx, ty) = (Double((f.lon + 180) / 360 * n), (1 - asinh(tan(max(-85.0511, min(85.0511, f.lat)) * .pi / 180)) / .pi) / 2 * n)
            return tx >= Double(x) - margin && tx <= Double(x + 1) + margin && ty >= Double(y) - margin && ty <= Double(y + 1) + margin
        }
    }

    func testLevelsKeepWhatPerRequestThinningKeeps() throws {
        let thinning = try XCTUnwrap(Thinning.plan(base.record(rows: 5_000_000), cap: 20_000))
        let all = base.features(40_000)
        let minz = ThinningLevels.minZooms(thinning, all)
        var compared = 0
        for z in 0...ThinningLevels.maxZoom {
            let c = 1 << max(0, z - 1)
            for (x, y) in Set([(0, 0), (c - 1, c - 1), (c, c - 1), (min(c, (1 << z) - 1), min(c, (1 << z) - 1))].map { [$0.0, $0.1] }).map({ ($0[0], $0[1]) }) {
                let live = thinning.kept(all, z: z, x: x, y: y)
                let levels = ThinningLevels.kept(thinning, all, minZooms: minz, z: z, x: x, y: y)
                XCTAssertEqual(levels, live, "z\(z)/\(x)/\(y)")
                compared += live.count
            }
        }
        XCTAssertGreaterThan(compared, 1000)
        // Something is dropped at every zoom up to 6 (else the comparison proves little).
        XCTAssertLessThan(minz.count, all.count)
        XCTAssertTrue((0...ThinningLevels.maxZoom).allSatisfy { z in minz.values.contains(z) })
    }

    func testNoSeamsBetweenAdjacentTilesFromLevels() throws {
        let thinning = try XCTUnwrap(Thinning.plan(base.record(rows: 5_000_000), cap: 20_000))
        let all = base.features(60_000)
        let minz = ThinningLevels.minZooms(thinning, all)
        let margin = 64.0 / 4096
        var shared = 0, dropped = 0
        for z in 1...ThinningLevels.maxZoom {
            let c = 1 << (z - 1)
            for (a, b) in [((c - 1, c - 1), (c, c - 1)), ((c - 1, c - 1), (c - 1, c)), ((c, c), (c - 1, c)), ((c - 1, c - 1), (c, c))] {
                let keptA = ThinningLevels.kept(thinning, all, minZooms: minz, z: z, x: a.0, y: a.1)
                let keptB = ThinningLevels.kept(thinning, all, minZooms: minz, z: z, x: b.0, y: b.1)
                for f in all where base.inBuffer(f, z: z, x: a.0, y: a.1, margin: margin) && base.inBuffer(f, z: z, x: b.0, y: b.1, margin: margin) {
                    shared += 1
                    if !keptA.contains(f) { dropped += 1 }
                    XCTAssertEqual(keptA.contains(f), keptB.contains(f), "feature \(f.id) at z\(z) between \(a) and \(b)")
                }
            }
        }
        XCTAssertGreaterThan(shared, 100)
        XCTAssertGreaterThan(dropped, 0)
    }

    /// A write's refresh queues, for a stale key, the very build a low-zoom tile queues (same unique key, so the two
    /// dedupe), once per key however many sources use it, and nothing for sources of other keys.
    func testARefreshQueuesOneBuildPerStaleKey() throws {
        let record = base.record(rows: 5_000_000)
        let thinning = try XCTUnwrap(Thinning.plan(record, cap: 20_000))
        let key = try XCTUnwrap(ThinningLevels.key(record, thinning))
        var stale: Set<String> = [key, "another"]
        let jobs = LevelRefreshRunner.builds(record, account: "a1", cap: 20_000, remaining: &stale)
        XCTAssertEqual(jobs.map(\.uniqueKey), [ThinningLevels.job(record, key: key, account: "a1").uniqueKey])
        XCTAssertEqual(jobs.first?.uniqueKey, "thinning_levels:a1:carto_dw:\(key)")
        XCTAssertEqual(jobs.first?.kind, ThinningLevelRunner.kind)
        XCTAssertEqual(jobs.first?.payload["source"]?.stringValue, "s1")
        XCTAssertEqual(stale, ["another"])
        XCTAssertTrue(LevelRefreshRunner.builds(record, account: "a1", cap: 20_000, remaining: &stale).isEmpty, "one build per key")
        var other: Set<String> = ["another"]
        XCTAssertTrue(LevelRefreshRunner.builds(base.record(rows: 5_000_000, order: "pop"), account: "a1", cap: 20_000, remaining: &other).isEmpty)
    }

    func testOnlyUnfilteredTablesUseLevels() throws {
        let thinning = try XCTUnwrap(Thinning.plan(base.record(rows: 5_000_000), cap: 20_000))
        let key = try XCTUnwrap(ThinningLevels.key(base.record(rows: 5_000_000), thinning))
        XCTAssertEqual(key, ThinningLevels.key(base.record(rows: 9_000_000), thinning), "the row estimate is not part of the key")
        XCTAssertNotEqual(key, ThinningLevels.key(base.record(rows: 5_000_000, order: "pop"), thinning), "an order makes other levels")
        XCTAssertNil(ThinningLevels.key(base.record(rows: 5_000_000, order: "name"), thinning), "a text order is not precomputed")
        let filtered = base.record(rows: 5_000_000, filters: try JSON.decode(#"{"pop": {"between": {"values": [[0, 5]]}}}"#))
        XCTAssertNil(ThinningLevels.key(filtered, thinning), "filters change with every widget interaction")
        XCTAssertEqual(ThinningLevels.zooms(thinning), 0...6)
        XCTAssertNil(TileRoute.thinningLevelsKey(base.record(rows: 5_000_000), thinning, z: 7))
        XCTAssertEqual(ThinningLevels.counts(ThinningLevels.comment(kept: [1, 2, 3, 4, 5, 6, 7], total: 9))?.kept, [1, 2, 3, 4, 5, 6, 7])
        // Fresh levels' exact counts replace the sampled estimate at their zooms.
        let rows = (0...7).map { (z: $0, total: 100.0, kept: 10.0) }
        let fractions = thinning.fractionDropped(rows, levels: (kept: [1, 2, 3, 4, 5, 6, 50], total: 100))
        XCTAssertEqual(fractions[6], 0.5, accuracy: 1e-9)
        XCTAssertEqual(fractions[0], 0.99, accuracy: 1e-9)
    }

    func testInterimTilesOnlyWhereTheyWouldBeSampled() throws {
        let big = base.record(rows: 5_000_000)
        let thinning = try XCTUnwrap(Thinning.plan(big, cap: 20_000))
        // Before its levels exist a big table's TileJSON pins sampled tiles (fast z0), never mixed with precomputed ones.
        XCTAssertTrue(ThinningLevels.interim(big, thinning))
        // An importance order is never sampled (the live tiles are exact, the levels' own rule): nothing to pin.
        let ordered = base.record(rows: 5_000_000, order: "pop")
        XCTAssertFalse(ThinningLevels.interim(ordered, try XCTUnwrap(Thinning.plan(ordered, cap: 20_000))))
        // No levels (filters): the ordinary live tiles, already sampled the same way in every tile.
        let filtered = base.record(rows: 5_000_000, filters: try JSON.decode(#"{"pop": {"between": {"values": [[0, 5]]}}}"#))
        XCTAssertFalse(ThinningLevels.interim(filtered, thinning))
        // Small enough that no levelled zoom is sampled: the live tiles are exact already.
        let small = base.record(rows: 24_000)
        XCTAssertFalse(ThinningLevels.interim(small, try XCTUnwrap(Thinning.plan(small, cap: 20_000))))
    }

    func testStatementSnapshots() throws {
        let record = base.record(rows: 5_000_000)
        let thinning = try XCTUnwrap(Thinning.plan(record, cap: 20_000))
        assertSnapshot(try ThinningLevels.buildSQL(record, thinning, relation: "tessera_thin_k_1"), "thinning_levels_build")
        let ordered = base.record(rows: 5_000_000, order: "pop")
        assertSnapshot(try ThinningLevels.buildSQL(ordered, thinning, relation: "tessera_thin_k_2"), "thinning_levels_build_ordered")
        assertSnapshot(try TileSQL.make(record, mode: .thinned, levels: ("tessera_thin_k_1", 3, "k")).sql, "tile_table_thinned_levels")
        assertSnapshot(try ThinningLevels.indexSQL(record, relation: "tessera_thin_k_1").reduce(SQL()) { $0 + $1 + ";\n" }, "thinning_levels_indexes")
    }
}
