@testable import Workflows
import HTTPKit
import SQLKit
import XCTest

/// The compiled SQL of every component that compiles to SQL, as snapshots (`Snapshots/workflow_<type>.sql`),
/// over inputs whose names need quoting, so a quoting or binding regression shows in the diff.
final class WorkflowCompilerSnapshotTests: XCTestCase {
    typealias C = NodeInput.Column
    static let points = NodeInput(relation: #""tessera_wf_x"."In ""Put""""#, columns: [
        C(name: "id", type: "bigint"), C(name: "Name", type: "text"), C(name: "population", type: "bigint"),
        C(name: "lon", type: "double precision"), C(name: "lat", type: "double precision"), C(name: "geom", type: "geometry(Point,4326)"),
    ])
    static let areas = NodeInput(relation: #""tessera_wf_x"."areas""#, columns: [
        C(name: "id", type: "integer"), C(name: "Name", type: "text"), C(name: "geom", type: "geometry(MultiPolygon,4326)"),
    ])
    static let cells = NodeInput(relation: #""tessera_wf_x"."cells""#, columns: [C(name: "h3", type: "text"), C(name: "value", type: "bigint")])

    func node(_ type: String, _ params: [String: JSON] = [:]) -> WorkflowDocument.Node {
        WorkflowDocument.Node(id: "n1", type: type, params: params, position: .null)
    }

    func compile(_ type: String, _ params: [String: JSON] = [:], inputs: [String: NodeInput]? = nil,
                 variables: [String: JSON] = [:]) throws -> SQL {
        let component = ComponentCatalog.byType[type]!
        let given = inputs ?? Dictionary(uniqueKeysWithValues: component.inputs.enumerated().map { i, port in
            (port, i == 0 ? Self.points : Self.areas)
        })
        return try Compiler(node: node(type, params), inputs: given, variables: variables).compile()
    }

    /// (type, params, inputs override) for every component that compiles to SQL.
    var cases: [(String, [String: JSON], [String: NodeInput]?)] {
        [
            ("table", ["table": #"Sales."My Table""#], nil),
            ("sql", ["query": "SELECT 1 AS one, 'a;b' AS s"], nil),
            ("import_url", ["url": "https://example.com/data.geojson?x=1"], nil),
            ("select", ["columns": ["id", "Name"]], nil),
            ("filter", ["column": "population", "operator": ">", "value": "1000000"], nil),
            ("rename", ["columns": ["Name": "name"]], nil),
            ("add_column", ["name": "density", "expression": "population / {{divisor}}"], nil),
            ("join", ["left_key": "id", "right_key": "id", "join_type": "left"], nil),
            ("union", [:], ["main": Self.points, "secondary": Self.points]),
            ("group_by", ["columns": ["Name"], "aggregates": [["op": "count"], ["column": "population", "op": "sum", "alias": "pop"]]], nil),
            ("order_limit", ["order_by": [["column": "population", "direction": "desc"]], "limit": 10], nil),
            ("sample", ["percent": .number(12.5), "seed": 7], nil),
            ("distinct", ["columns": ["Name"]], nil),
            ("point_from_lonlat", ["lon": "lon", "lat": "lat"], nil),
            ("buffer", ["distance": 50000], nil),
            ("centroid", [:], ["in": Self.areas]),
            ("convex_hull", ["group_by": "Name"], nil),
            ("simplify", ["tolerance": .number(0.01)], ["in": Self.areas]),
            ("area_length", [:], ["in": Self.areas]),
            ("spatial_join", ["predicate": "dwithin", "distance": 1000], nil),
            ("spatial_join", ["aggregates": [["op": "count", "alias": "areas"]], "join_type": "left"], nil),
            ("clip", [:], nil),
            ("intersection", [:], nil),
            ("difference", [:], nil),
            ("nearest", ["k": 3, "max_distance": 10000], nil),
            ("distance_matrix", ["origin_id": "id", "destination_id": "id"], nil),
            ("h3_from_geo", ["resolution": 7], nil),
            ("h3_polyfill", ["resolution": 7], ["in": Self.areas]),
            ("h3_boundary", [:], ["in": Self.cells]),
            ("quadbin_from_geo", ["resolution": 10], nil),
            ("geocode", ["address": "Name", "country": "ES"], nil),
            ("isolines", ["mode": "walk", "range": 600], nil),
            ("route", ["mode": "car"], nil),
            ("kmeans", ["k": 5], nil),
            ("dbscan", ["eps": 500, "min_points": 4], nil),
            ("hotspot", ["resolution": 6, "value": "population"], nil),
            ("moran", ["value": "population", "distance": 20000], nil),
            ("save_table", ["table": "public.out"], nil),
            ("create_map", ["title": "Result"], nil),
            ("http_request", ["url": "https://hooks.example.com/tessera?run=1"], nil),
        ]
    }

    func testEveryComponentCompilesToItsSnapshot() throws {
        var seen: [String: Int] = [:]
        for (type, params, inputs) in cases {
            let sql = try compile(type, params, inputs: inputs, variables: ["divisor": 1000])
            seen[type, default: 0] += 1
            assertSnapshot(sql, "workflow_\(type)\(seen[type]! > 1 ? "_\(seen[type]!)" : "")")
        }
        // Every component is either snapshotted here or refused with a 400 until it has an executor.
        let covered = Set(seen.keys).union(ComponentCatalog.unavailable.keys)
        XCTAssertEqual(covered, Set(ComponentCatalog.all.map(\.type)))
    }

    /// The statements that write the LDS providers' answers into a location node's table.
    func testLocationAnswersAreWrittenByCtid() throws {
        for type in ComponentCatalog.locationServices.sorted() {
            let component = ComponentCatalog.byType[type]!
            let inputs = Dictionary(uniqueKeysWithValues: component.inputs.enumerated().map { i, port in (port, i == 0 ? Self.points : Self.areas) })
            let compiler = Compiler(node: node(type, ["address": "Name", "range": 600]), inputs: inputs, variables: [:])
            assertSnapshot(try compiler.locationUpdate(table: #""tessera_wf_x"."n1_abc""#), "workflow_\(type)_answers")
        }
    }

    func testValuesAreBoundAndNamesQuoted() throws {
        let sql = try compile("filter", ["column": "Name", "operator": "=", "value": "x' OR 1=1 --"])
        XCTAssertEqual(sql.parameters, ["x' OR 1=1 --"])
        XCTAssertTrue(sql.text.contains(#"t."Name" = CAST($1 AS text)"#), sql.text)
        let variable = try compile("filter", ["column": "population", "operator": ">", "value": "{{min}}"], variables: ["min": 5])
        XCTAssertEqual(variable.parameters, ["5"])
    }

    func testColumnAndTypeMistakesName400sWithNodeAndParameter() {
        assertInvalid(try compile("filter", ["column": "populaton", "operator": ">", "value": "1"]), parameter: "column")
        assertInvalid(try compile("buffer", ["distance": 10, "geom": "Name"]), parameter: "geom")
        assertInvalid(try compile("buffer", ["distance": 10], inputs: ["in": Self.cells]), parameter: "geom")
        assertInvalid(try compile("buffer", ["distance": "far"]), parameter: "distance")
        assertInvalid(try compile("group_by", ["aggregates": [["op": "median", "column": "population"]]]), parameter: "aggregates")
        assertInvalid(try compile("add_column", ["name": "x", "expression": "1; DROP TABLE t"]), parameter: "expression")
        assertInvalid(try compile("sql", ["query": "DELETE FROM t"]), parameter: "query")
        assertInvalid(try compile("sql", ["query": "SELECT 1) x; DROP TABLE t; SELECT (1"]), parameter: "query")
        assertInvalid(try compile("union", [:], inputs: ["main": Self.points, "secondary": Self.areas]), parameter: "secondary")
        assertInvalid(try compile("isolines", ["range": 99999]), parameter: "range")
        assertInvalid(try compile("isolines", ["range": 600, "mode": "boat"]), parameter: "mode")
        assertInvalid(try compile("geocode", ["address": "Name", "country": "Spain"]), parameter: "country")
        assertInvalid(try compile("route", [:], inputs: ["origins": Self.points, "destinations": Self.cells]), parameter: "secondary_geom")
        assertInvalid(try compile("http_request", ["url": "ftp://example.com/x"]), parameter: "url")
        assertInvalid(try compile("import_url", ["url": "file:///etc/passwd"]), parameter: "url")
        assertInvalid(try compile("http_request", ["url": "http://user:pw@example.com/"]), parameter: "url")
    }

    func assertInvalid<T>(_ body: @autoclosure () throws -> T, parameter: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("expected a 400", file: file, line: line)
        } catch let e as APIError {
            XCTAssertEqual(e.status, 400, file: file, line: line)
            XCTAssertEqual(e.extra["node"], "n1", file: file, line: line)
            XCTAssertEqual(e.extra["parameter"]?.stringValue, parameter, "\(e.message)", file: file, line: line)
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
        }
    }
}
