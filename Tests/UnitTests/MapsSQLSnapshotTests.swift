import HTTPKit
@testable import MapsAPI
import Platform
import SQLKit
import XCTest

/// The Maps API's SQL built from plain inputs, no database: tiles, filters, TileJSON stats, quadbin,
/// stats. Each statement is compared with a snapshot (text and parameters).
final class MapsSQLSnapshotTests: XCTestCase {
    static let schema = SourceSchema(columns: [("geom", .geometry), ("name", .string), ("pop", .number), ("capital", .boolean),
                                               ("founded", .date), ("updated", .timestamp)], srid: 4326)

    func record(_ d: SourceDefinition, schema: SourceSchema = schema) -> SourceRecord {
        var r = SourceRecord(id: "s1", definition: d, schema: schema, geometryType: "POINT", dataResolution: nil,
                             extent: [-1000, -1000, 1000, 1000])
        r.rows = 1_000_000
        return r
    }

    func table(_ name: String = "public.places") -> SourceDefinition {
        var d = SourceDefinition(kind: .table, connection: "carto_dw")
        d.name = name
        return d
    }

    func query(_ sql: String, _ parameters: [String?] = []) -> SourceDefinition {
        var d = SourceDefinition(kind: .query, connection: "carto_dw")
        d.sql = sql
        d.queryParameters = parameters
        return d
    }

    func filters(_ text: String) throws -> JSON {
        let json = try JSON.decode(text)
        try FilterSQL.validate(json)
        return json
    }

    // MARK: tiles

    func testTileTableSourceInEachMode() throws {
        var d = table()
        d.columns = ["name", "pop", "capital"]
        d.tileResolution = 4
        let r = record(d)
        assertSnapshot(try TileSQL.make(r, mode: .fast).sql, "tile_table_fast")
        assertSnapshot(try TileSQL.make(r, mode: .ordered).sql, "tile_table_ordered")
        assertSnapshot(try TileSQL.make(r, mode: .sampled).sql, "tile_table_sampled")
    }

    func testTileQuerySourceKeepsItsParametersAndBindsTheTile() throws {
        var d = query("SELECT * FROM places WHERE pop > $1 AND name <> '$1' -- $1;\n;", ["1000"])
        d.filters = try filters(#"{"name": {"in": {"values": ["Zaragoza", "Huesca"]}}}"#)
        let tile = try TileSQL.make(record(d, schema: SourceSchema(columns: Self.schema.columns, srid: 3857)), mode: .fast)
        assertSnapshot(tile.sql, "tile_query_3857_filtered")
        // The tile's own values fill the slots; the query's parameter and the filter's stay bound.
        let parameters = try XCTUnwrap(tile.parameters(z: 3, x: 4, y: 3, cap: 100))
        XCTAssertEqual(parameters.filter { $0 == "1000" }.count, 1)
        XCTAssertEqual(Array(parameters.prefix(3)), ["3", "4", "3"])
        XCTAssertFalse(parameters.contains { $0?.utf8.first == 0 }, "every slot filled")
        XCTAssertNil(tile.parameters(z: 5, x: 0, y: 0, cap: 100), "a tile outside the data's box needs no query")
    }

    func testTileStatementTextIsTheSameForEveryTile() throws {
        let a = try TileSQL.make(record(table()), mode: .ordered)
        let b = try TileSQL.make(record(table()), mode: .ordered)
        XCTAssertEqual(a.text, b.text)
        XCTAssertNotEqual(a.parameters(z: 10, x: 511, y: 511, cap: 10), a.parameters(z: 10, x: 512, y: 512, cap: 10))
    }

    // MARK: filters

    func testEachFilterKind() throws {
        let cases: [(String, String)] = [
            ("filter_in_number", #"{"pop": {"in": {"values": [1, 2.5, null]}}}"#),
            ("filter_in_text", #"{"name": {"in": {"values": ["a", "b\"c", "d\\e"]}}}"#),
            ("filter_in_bool", #"{"capital": {"in": {"values": [true]}}}"#),
            ("filter_between", #"{"pop": {"between": {"values": [[1, 10], [null, 5], [20, null]]}}}"#),
            ("filter_closed_open", #"{"pop": {"closed_open": {"values": [[1, 10]]}}}"#),
            ("filter_time", #"{"updated": {"time": {"values": [[1700000000000, "2024-01-01T00:00:00Z"]]}}}"#),
            ("filter_string_search", #"{"name": {"stringSearch": {"values": ["50%_a\\b"], "params": {"mustStart": true}}}}"#),
            ("filter_string_search_regexp", #"{"name": {"stringSearch": {"values": ["^Z.*a$"], "params": {"useRegExp": true, "caseSensitive": true}}}}"#),
            ("filter_two_columns", #"{"pop": {"between": {"values": [[1, 2]]}}, "name": {"in": {"values": ["x"]}, "owner": "w1"}}"#),
        ]
        for (name, text) in cases {
            let sql = try XCTUnwrap(try FilterSQL.condition(try filters(text), or: false, schema: Self.schema), name)
            assertSnapshot(sql, name)
        }
        let or = try XCTUnwrap(try FilterSQL.condition(try filters(cases[8].1), or: true, schema: Self.schema))
        assertSnapshot(or, "filter_two_columns_or")
        XCTAssertNil(try FilterSQL.condition(try filters("{}"), or: false, schema: Self.schema))
    }

    func testFilterOnAMissingColumnIsA400() throws {
        assertAPIError(try FilterSQL.condition(try filters(#"{"nope": {"in": {"values": [1]}}}"#), or: false, schema: Self.schema),
                       status: 400, code: "column_not_found")
        assertAPIError(try FilterSQL.condition(try filters(#"{"pop": {"in": {"values": ["x"]}}}"#), or: false, schema: Self.schema),
                       status: 400, code: "invalid_filter")
    }

    // MARK: TileJSON, quadbin, stats

    func testTileJSONStatistics() throws {
        var d = table()
        d.filters = try filters(#"{"capital": {"in": {"values": [true]}}}"#)
        let (sql, numeric) = try TileJSONBuilder.statsSQL(record(d))
        XCTAssertEqual(numeric, ["pop"])
        assertSnapshot(sql, "tilejson_stats")
    }

    func testQuadbinTile() throws {
        var d = table("public.cells")
        d.spatialType = .quadbin
        d.spatialColumn = "quadbin"
        d.filters = try filters(#"{"pop": {"between": {"values": [[1, 2]]}}}"#)
        let schema = SourceSchema(columns: [("quadbin", .number), ("pop", .number)], srid: 4326)
        let sql = try Quadbin.tileSQL(record(d, schema: schema))
        assertSnapshot(sql, "quadbin_tile_count")
        XCTAssertEqual(Quadbin.parameters(sql, z: 2, x: 1, y: 3, resolution: 8, dataResolution: 10).prefix(1), ["8"])
        d.aggregationExp = "sum(pop) AS pop"
        assertSnapshot(try Quadbin.tileSQL(record(d, schema: schema)), "quadbin_tile_aggregation")
        assertSnapshot(CellAggregation.attributesSQL(cells: try Quadbin.cellsSQL(record(d, schema: schema)), keys: ["__cell"]),
                       "quadbin_attributes")
    }

    func testH3CellColumnTile() throws {
        var d = table("public.cells")
        d.spatialType = .h3
        d.spatialColumn = "h3"
        d.aggregationExp = "sum(pop) AS pop"
        d.filters = try filters(#"{"pop": {"between": {"values": [[1, 2]]}}}"#)
        let text = SourceSchema(columns: [("h3", .string), ("pop", .number)], srid: 4326)
        let sql = try H3Cells.tileSQL(record(d, schema: text))
        assertSnapshot(sql, "h3_tile_text_cells")
        // 0x85283473fffffff: the tile, bound as the signed bigint PostgreSQL stores.
        XCTAssertEqual(CellAggregation.h3Parameters(sql, tile: 0x8528_3473_ffff_fff, z: 5, resolution: 7).filter { $0 == "599686042433355775" }.count, 1)
        let bigint = SourceSchema(columns: [("h3", .number), ("pop", .number)], srid: 4326)
        assertSnapshot(try H3Cells.tileSQL(record(d, schema: bigint)), "h3_tile_bigint_cells")
        assertSnapshot(CellAggregation.attributesSQL(cells: try H3Cells.cellsSQL(record(d, schema: bigint)), keys: ["__cell"]), "h3_attributes")
    }

    func testH3TileIndexParsing() {
        XCTAssertEqual(H3Cells.cell(hex: "85283473fffffff")?.resolution, 5)
        XCTAssertEqual(H3Cells.cell(hex: "8001fffffffffff")?.resolution, 0)
        XCTAssertEqual(H3Cells.cell(hex: "8f283473fffffff")?.resolution, nil, "digits past the resolution must be 7 and those before not")
        XCTAssertNil(H3Cells.cell(hex: "85283473ffffff7"))
        XCTAssertNil(H3Cells.cell(hex: "4841bffffffffff"), "a quadbin cell is no H3 cell")
        XCTAssertNotNil(H3Cells.cell(hex: "80f3fffffffffff"), "base cell 121 is the last")
        XCTAssertNil(H3Cells.cell(hex: "80f5fffffffffff"), "there is no base cell 122")
        XCTAssertNil(H3Cells.cell(hex: ""))
        XCTAssertEqual(CellAggregation.resolution(z: 2, level: 16, dataResolution: 15, maxFeatures: 20000, index: .h3), 7,
                       "7^5 = 16807 cells fit in 20000 features")
    }

    func testPointAggregationTile() throws {
        var d = table()
        d.spatialType = .quadbin
        d.aggregationExp = "count(*) AS n, sum(pop) AS pop"
        d.filters = try filters(#"{"capital": {"in": {"values": [true]}}}"#)
        let sql = try CellAggregation.tileSQL(record(d), index: .quadbin)
        assertSnapshot(sql, "aggregation_quadbin_4326")
        let parameters = CellAggregation.parameters(sql, z: 3, x: 4, y: 2, resolution: 9)
        XCTAssertFalse(parameters.contains { $0?.utf8.first == 0 }, "every slot filled")
        XCTAssertTrue(parameters.contains("6"), "the shift from the tile to its cells")
        assertSnapshot(try CellAggregation.tileSQL(record(d, schema: SourceSchema(columns: Self.schema.columns, srid: 3857)), index: .quadbin),
                       "aggregation_quadbin_3857")
        let cells = try CellAggregation.cellsSQL(record(d), index: .quadbin, inTile: false)
        assertSnapshot(CellAggregation.attributesSQL(cells: cells, keys: ["__x", "__y"]), "aggregation_quadbin_attributes")
        // The H3 variant is the same statement with H3's cell functions.
        assertSnapshot(try CellAggregation.tileSQL(record(d), index: .h3), "aggregation_h3_4326")
    }

    func testVectorFeatureBboxAndAggregationExp() throws {
        var d = table()
        d.featureBbox = true
        d.columns = ["name"]
        assertSnapshot(try TileSQL.make(record(d), mode: .fast).sql, "tile_feature_bbox_4326")
        assertSnapshot(try TileSQL.make(record(d, schema: SourceSchema(columns: Self.schema.columns, srid: 3857)), mode: .fast).sql,
                       "tile_feature_bbox_3857")
        var a = table()
        a.aggregationExp = "count(*) AS n, sum(pop) AS pop"
        assertSnapshot(try SourceSQL.from(a), "vector_aggregation_from")
    }

    func testAggregationResolutionRespectsLevelReferenceAndBudget() {
        XCTAssertEqual(CellAggregation.resolution(z: 3, level: 6, dataResolution: 26, maxFeatures: 20000), 9)
        XCTAssertEqual(CellAggregation.resolution(z: 3, level: 16, dataResolution: 26, maxFeatures: 20000), 10)
        XCTAssertEqual(CellAggregation.resolution(z: 3, level: 6, dataResolution: 5, maxFeatures: 20000), 5)
        XCTAssertEqual(CellAggregation.resolution(z: 24, level: 6, dataResolution: 26, maxFeatures: 20000), 26)
        XCTAssertEqual(CellAggregation.resolution(z: 0, level: 6, dataResolution: 26, maxFeatures: 1), 0)
    }

    func testStatsForEachKind() throws {
        var d = query("SELECT * FROM places WHERE pop > $1", ["5"])
        d.filters = try filters(#"{"capital": {"in": {"values": [false]}}}"#)
        for (attribute, name) in [("pop", "stats_number"), ("name", "stats_string"), ("geom", "stats_geometry"), ("updated", "stats_timestamp")] {
            assertSnapshot(try StatsSQL.statement(d, schema: Self.schema, attribute: attribute).sql, name)
        }
        assertAPIError(try StatsSQL.statement(d, schema: Self.schema, attribute: "nope"), status: 400, code: "column_not_found")
    }

    // MARK: hostile names

    func testHostileIdentifiersAreQuotedNeverSpliced() throws {
        let weird = #"a"b; DROP TABLE x; --"#
        var d = table(#""we""ird.schema"."Ünï 名""#)
        d.spatialColumn = "g\"eom"
        d.columns = [weird, "名前"]
        let schema = SourceSchema(columns: [("g\"eom", .geometry), (weird, .string), ("名前", .number)], srid: 4326)
        let tile = try TileSQL.make(record(d, schema: schema), mode: .fast)
        assertSnapshot(tile.sql, "tile_hostile_names")
        XCTAssertTrue(tile.text.contains(#"FROM "we""ird.schema"."Ünï 名" AS _src"#))
        XCTAssertTrue(tile.text.contains(#"_src."a""b; DROP TABLE x; --"::text AS "a""b; DROP TABLE x; --""#))

        // A NUL in a name is refused, whichever builder meets it.
        var nul = table("public.pla\u{0}ces")
        assertAPIError(try SourceSQL.from(nul), status: 400, code: "invalid_source")
        nul = table()
        nul.spatialColumn = "ge\u{0}om"
        let nulSchema = SourceSchema(columns: [("ge\u{0}om", .geometry)], srid: 4326)
        XCTAssertThrowsError(try TileSQL.make(record(nul, schema: nulSchema), mode: .fast)) {
            XCTAssertEqual($0 as? SQLError, .invalidIdentifier("ge\u{0}om"))
        }
        for bad in ["", "a..b", "a.b.c.d", "s."] {
            assertAPIError(try SourceSQL.from(table(bad)), status: 400, code: "invalid_source")
        }
        XCTAssertEqual(try SourceSQL.from(table("carto_dw.Public.Places")).text, #""public"."places""#)
    }
}
