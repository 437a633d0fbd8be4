import HTTPKit
@testable import MapsAPI
import SQLKit
import XCTest

/// Precomputed aggregation levels: which sources may use them, the resolutions they hold, the statements
/// that build and read them (snapshots), and the id range of an H3 cell's descendants.
final class AggregationLevelsSQLTests: XCTestCase {
    static let schema = SourceSchema(columns: [("geom", .geometry), ("value", .number), ("kind", .string)], srid: 4326)

    func record(_ configure: (inout SourceDefinition) -> Void = { _ in }, kind: SourceDefinition.Kind = .table,
                index: CellIndex = .quadbin) -> SourceRecord {
        var d = SourceDefinition(kind: kind, connection: "carto_dw")
        if kind == .table { d.name = "public.points" } else { d.sql = "SELECT * FROM points" }
        d.spatialType = index == .quadbin ? .quadbin : .h3
        d.aggregationExp = "count(*) AS n, sum(value) AS total"
        configure(&d)
        return SourceRecord(id: "s1", definition: d, schema: Self.schema, geometryType: "POINT",
                            dataResolution: index.maxResolution, extent: nil)
    }

    func testOnlyUnfilteredTablesWithSimpleAggregatesUseLevels() throws {
        let key = AggregationLevels.key(record(), index: .quadbin)
        XCTAssertNotNil(key)
        XCTAssertEqual(key, AggregationLevels.key(record(), index: .quadbin), "a key names the table, column, index and expression")
        XCTAssertNotEqual(key, AggregationLevels.key(record(index: .h3), index: .h3))
        XCTAssertNotEqual(key, AggregationLevels.key(record { $0.aggregationExp = "count(*) AS n" }, index: .quadbin))
        XCTAssertNil(AggregationLevels.key(record(kind: .query), index: .quadbin), "a query's data version is unknown")
        let filters = try JSON.decode(#"{"kind": {"in": {"values": ["a"]}}}"#)
        XCTAssertNil(AggregationLevels.key(record { $0.filters = filters }, index: .quadbin), "filters change with every widget interaction")
        XCTAssertNil(AggregationLevels.key(record { $0.aggregationExp = "count(*) AS n, pg_sleep(1) AS s" }, index: .quadbin),
                     "the worker only evaluates simple aggregates")
    }

    func testResolutionsAreThoseOfTilesZ0ToZ6() {
        XCTAssertEqual(AggregationLevels.resolutions(record(), index: .quadbin, maxFeatures: 20000), [6, 7, 8, 9, 10, 11, 12])
        XCTAssertEqual(AggregationLevels.resolutions(record { $0.aggregationResLevel = 3 }, index: .h3, maxFeatures: 20000),
                       [3, 4, 5, 6, 7, 8, 9])
    }

    func testStatements() throws {
        let fresh = (key: "k", table: try QualifiedName(parsing: "public.points"))
        assertSnapshot(try AggregationLevels.levelSQL(record(), index: .quadbin), "agg_levels_build_quadbin")
        assertSnapshot(try AggregationLevels.levelSQL(record(index: .h3), index: .h3), "agg_levels_build_h3")
        assertSnapshot(try AggregationLevels.tileSQL(relation: "tessera_agg_abc_1", index: .quadbin, fresh: fresh), "agg_levels_tile_quadbin")
        assertSnapshot(try AggregationLevels.tileSQL(relation: "tessera_agg_abc_1", index: .h3, fresh: fresh), "agg_levels_tile_h3")
        assertSnapshot(AggregationLevels.lookup, "agg_levels_lookup")
        assertSnapshot(try AggregationLevels.cellsSQL(relation: "tessera_agg_abc_1"), "agg_levels_cells")
        assertSnapshot(AggregationLevels.record, "agg_levels_record")
        assertSnapshot(AggregationLevels.stale, "agg_levels_stale")
        let lookup = AggregationLevels.lookupParameters(key: "k", table: try QualifiedName(parsing: "public.points"))
        XCTAssertEqual(Set(lookup), ["k", "\"public\".\"points\""])
        let tile = try AggregationLevels.tileSQL(relation: "r", index: .quadbin, fresh: fresh)
        XCTAssertFalse(AggregationLevels.parameters(tile, z: 2, x: 1, y: 3, resolution: 8).contains { $0?.utf8.first == 0 })
        // A relation name is an identifier, never SQL.
        XCTAssertTrue(try AggregationLevels.tileSQL(relation: "x\"; DROP TABLE t; --", index: .h3, fresh: fresh).text.contains("carto.\"x\"\"; DROP TABLE t; --\""))
    }

    /// Quadbin ids as carto.quadbin_fromzxy makes them (the bench's quadbin_hex, checked against it): a tile's
    /// descendants are the ids between its first and last child.
    func testQuadbinDescendantsAreOneIdRange() throws {
        XCTAssertEqual(AggregationLevels.quadbin(z: 0, x: 0, y: 0), 0x480F_FFFF_FFFF_FFFF)
        for (z, x, y) in [(1, 1, 0), (5, 16, 11), (6, 33, 22), (13, 4093, 2724)] {
            let tile = try XCTUnwrap(Quadbin.tile(hex: String(AggregationLevels.quadbin(z: z, x: x, y: y), radix: 16)))
            XCTAssertTrue(tile == (z, x, y), "\(z)/\(x)/\(y) round trip")
            let (lo, hi) = AggregationLevels.quadbinDescendantRange(z: z, x: x, y: y, resolution: z + 6)
            XCTAssertTrue(Quadbin.tile(hex: String(lo, radix: 16))! == (z + 6, x << 6, y << 6))
            XCTAssertTrue(Quadbin.tile(hex: String(hi, radix: 16))! == (z + 6, ((x + 1) << 6) - 1, ((y + 1) << 6) - 1))
            // The next tile's first child lies beyond the range.
            let next = AggregationLevels.quadbinDescendantRange(z: z, x: x + 1, y: y, resolution: z + 6).lo
            XCTAssertTrue(next > hi || AggregationLevels.quadbinDescendantRange(z: z, x: x + 1, y: y, resolution: z + 6).hi < lo)
        }
    }

    /// Checked against the h3 package (PyPI): the children of 82186ffffffffff at resolution 5 run from
    /// 85186803fffffff to 85186edbfffffff (343 cells).
    func testH3DescendantsAreOneIdRange() throws {
        let cell = UInt64(0x0821_86ff_ffff_ffff)
        let (lo, hi) = AggregationLevels.h3DescendantRange(cell, resolution: 5)
        XCTAssertEqual(lo, 0x0851_8680_3fff_ffff, "the first child: digits 3-5 zero")
        XCTAssertEqual(hi, 0x0851_86ff_ffff_ffff, "digits 3-5 all 7: above the last child 85186edbfffffff")
        XCTAssertLessThan(hi, 0x0851_8700_0000_0000, "below every cell of the next resolution-2 cell")
        XCTAssertEqual(AggregationLevels.h3DescendantRange(cell, resolution: 2).lo, cell, "the cell itself at its own resolution")
        let tile = try XCTUnwrap(H3Cells.cell(hex: "82186ffffffffff"))
        XCTAssertEqual(tile.cell, cell)
    }
}

/// aggregationExp aliases keep the client's case (fetchMap reads `__aggregationValue` back as written).
final class AggregationAliasTests: XCTestCase {
    func testMixedCaseAliasesAreQuoted() {
        XCTAssertEqual(AggregationExpression.preservingAliasCase("1 AS __aggregationValue"), #"1 AS "__aggregationValue""#)
        XCTAssertEqual(AggregationExpression.preservingAliasCase("count(*) AS n, sum(value) as Total"), #"count(*) AS n, sum(value) as "Total""#)
        XCTAssertEqual(AggregationExpression.preservingAliasCase(#"sum(x) AS "Quoted", avg(y) AS lower"#), #"sum(x) AS "Quoted", avg(y) AS lower"#)
        XCTAssertEqual(AggregationExpression.preservingAliasCase("coalesce(sum(a), 0) AS sumA, max('x, AS y') AS mX"),
                       #"coalesce(sum(a), 0) AS "sumA", max('x, AS y') AS "mX""#, "commas inside parentheses and strings do not split")
        XCTAssertEqual(AggregationExpression.preservingAliasCase("count(*)"), "count(*)", "no alias, nothing to keep")
        XCTAssertNoThrow(try AggregationExpression.validate(AggregationExpression.preservingAliasCase("1 AS __aggregationValue")),
                         "scoped tokens may still send fetchMap's default")
    }
}
