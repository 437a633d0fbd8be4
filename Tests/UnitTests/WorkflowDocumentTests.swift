@testable import Workflows
import Foundation
import HTTPKit
import XCTest

final class WorkflowDocumentTests: XCTestCase {
    func doc(_ nodes: JSON, _ edges: JSON = [], _ variables: JSON = []) throws -> WorkflowDocument {
        try WorkflowDocument(nodes: nodes, edges: edges, variables: variables)
    }

    func refusal(_ body: @autoclosure () throws -> Any) -> APIError? {
        do { _ = try body(); return nil } catch { return error as? APIError }
    }

    func testOrderFollowsEdgesAndCyclesAreRefused() throws {
        let d = try doc([["id": "save", "type": "save_table", "params": ["table": "t"]], ["id": "f", "type": "distinct"],
                         ["id": "t", "type": "table", "params": ["table": "x"]]],
                        [["source": "t", "target": "f"], ["source": "f", "target": "save"]])
        XCTAssertEqual(try d.order().map(\.id), ["t", "f", "save"])
        let cycle = refusal(try doc([["id": "a", "type": "union"], ["id": "b", "type": "distinct"], ["id": "t", "type": "table", "params": ["table": "x"]]],
                                    [["source": "t", "target": "a", "targetPort": "main"], ["source": "b", "target": "a", "targetPort": "secondary"],
                                     ["source": "a", "target": "b"]]))
        XCTAssertEqual(cycle?.status, 400)
        XCTAssertTrue(cycle?.message.contains("cycle") ?? false)
    }

    func testStructuralMistakesNameTheNodeAndParameter() {
        let missing = refusal(try doc([["id": "t", "type": "table", "params": ["table": "x"]], ["id": "j", "type": "join",
                                        "params": ["left_key": "a", "right_key": "b"]]], [["source": "t", "target": "j", "targetPort": "main"]]))
        XCTAssertEqual(missing?.extra["node"], "j")
        XCTAssertEqual(missing?.extra["parameter"], "secondary")
        let required = refusal(try doc([["id": "t", "type": "table"]]))
        XCTAssertEqual(required?.extra["parameter"], "table")
        let unknownParam = refusal(try doc([["id": "t", "type": "table", "params": ["table": "x", "tabel": "y"]]]))
        XCTAssertEqual(unknownParam?.extra["parameter"], "tabel")
        let badPort = refusal(try doc([["id": "t", "type": "table", "params": ["table": "x"]], ["id": "d", "type": "distinct"]],
                                      [["source": "t", "target": "d", "targetPort": "left"]]))
        XCTAssertEqual(badPort?.extra["node"], "d")
        XCTAssertEqual(refusal(try doc([["id": "z", "type": "teleport"]]))?.extra["node"], "z")
    }

    func testVariablesAreTypedAndDefaulted() throws {
        let d = try doc([["id": "t", "type": "table", "params": ["table": "x"]]], [], [["name": "min", "type": "number", "default": 5]])
        XCTAssertEqual(try d.resolveVariables(nil)["min"], 5)
        XCTAssertEqual(try d.resolveVariables(["min": 7])["min"], 7)
        XCTAssertNotNil(refusal(try d.resolveVariables(["min": "seven"])))
        XCTAssertNotNil(refusal(try d.resolveVariables(["max": 1])))
    }

    func testExpressionsAreOneExpression() throws {
        for ok in ["population > 1000000", "name ILIKE 'a;b%'", "coalesce(a, 0) + (SELECT max(x) FROM t)", "E'it\\'s' = name",
                   #""Odd ""col""" IS NULL"#, "extract(year from d) = 2020"] {
            XCTAssertNoThrow(try Expression.compile(ok, variables: [:]), ok)
        }
        for bad in ["1; DROP TABLE t", "1 -- rest", "1 /* x */", "$1", "$$x$$", "1) OR (1", "a FROM t", "1 UNION SELECT 2", "",
                    "'unterminated", "x::regclass", "aE'\\' ; DROP TABLE t; --'", "{{nope}}"] {
            XCTAssertThrowsError(try Expression.compile(bad, variables: [:]), bad)
        }
        let bound = try Expression.compile("population > {{ min }}", variables: ["min": 10])
        XCTAssertEqual(bound.text, "population > $1")
        XCTAssertEqual(bound.parameters, ["10"])
    }

    func testCron() throws {
        func at(_ s: String) -> Date { ISO8601DateFormatter().date(from: s)! }
        XCTAssertEqual(try Cron("*/15 * * * *").next(after: at("2026-12-06T07:31:10Z")), at("2026-12-06T07:45:00Z"))
        XCTAssertEqual(try Cron("0 3 * * 1").next(after: at("2026-12-06T07:31:00Z")), at("2026-12-07T03:00:00Z"))  // next Monday
        XCTAssertEqual(try Cron("0 0 1 1 *").next(after: at("2026-12-06T00:00:00Z")), at("2027-01-01T00:00:00Z"))
        XCTAssertEqual(try Cron("30 12 15 * 0").next(after: at("2026-12-06T13:00:00Z")), at("2026-12-13T12:30:00Z"))  // Sunday or the 15th
        XCTAssertNil(try Cron("0 0 30 2 *").next(after: at("2026-12-06T00:00:00Z")))
        for bad in ["every day", "* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "1-x * * * *", "5-1 * * * *"] {
            XCTAssertThrowsError(try Cron(bad), bad)
        }
    }
}
