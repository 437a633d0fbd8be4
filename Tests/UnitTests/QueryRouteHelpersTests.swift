import HTTPKit
@testable import SQLAPI
import Platform
import XCTest

final class QueryRouteHelpersTests: XCTestCase {
    // MARK: positionalParameters

    func testArrayBecomesTextValues() throws {
        let values = try QueryParameters.positional(["abc", 42, .number(2.5), -1, true, false, nil, ["x", 1], ["k": "v"]])
        XCTAssertEqual(values, ["abc", "42", "2.5", "-1", "true", "false", nil, #"["x",1]"#, #"{"k":"v"}"#])
    }

    func testAbsentOrNullMeansNoParameters() throws {
        XCTAssertEqual(try QueryParameters.positional(nil), [])
        XCTAssertEqual(try QueryParameters.positional(.null), [])
        XCTAssertEqual(try QueryParameters.positional([]), [])
    }

    func testObjectIs400() {
        assertAPIError(try QueryParameters.positional(["a": 1]), status: 400, code: "invalid_parameter")
        assertAPIError(try QueryParameters.positional("a"), status: 400, code: "invalid_parameter")
        assertAPIError(try QueryParameters.positional(1), status: 400, code: "invalid_parameter")
    }

    func testNULIs400() {
        assertAPIError(try QueryParameters.positional(["ok", "bad\u{0}value"]), status: 400)
    }

    func testTooManyIs400() throws {
        let limit = JSON.array(Array(repeating: JSON.int(1), count: 1000))
        XCTAssertEqual(try QueryParameters.positional(limit).count, 1000)
        let over = JSON.array(Array(repeating: JSON.int(1), count: 1001))
        assertAPIError(try QueryParameters.positional(over), status: 400, code: "invalid_parameter")
    }

    func testParametersFromGetQueryString() throws {
        let request = HTTPRequest(method: "GET", path: "/", rawQuery: "queryParameters=" + FormDecoding.encode(#"[1,"two",null]"#))
        let p = try Parameters.from(request, bodyLimit: 1024)
        XCTAssertEqual(try QueryParameters.positional(try p.json("queryParameters")), ["1", "two", nil])
    }

    // MARK: format

    func testFormat() throws {
        XCTAssertEqual(try QueryRoute.format(nil), .json)
        XCTAssertEqual(try QueryRoute.format(""), .json)
        XCTAssertEqual(try QueryRoute.format("json"), .json)
        XCTAssertEqual(try QueryRoute.format("GeoJSON"), .geojson)
        XCTAssertEqual(try QueryRoute.format("CSV"), .csv)
        XCTAssertEqual(try QueryRoute.format("ndjson"), .ndjson)
        assertAPIError(try QueryRoute.format("xml"), status: 400, code: "invalid_parameter")
        assertAPIError(try QueryRoute.format(" csv"), status: 400)
    }
}
