import HTTPKit
import XCTest

final class ParametersTests: XCTestCase {
    private func post(_ body: String, contentType: String? = "application/json", query: String = "",
                      contentLength: Int? = nil) -> HTTPRequest {
        var headers: [String: String] = [:]
        if let contentType { headers["content-type"] = contentType }
        return HTTPRequest(method: "POST", path: "/p", rawQuery: query, headers: headers,
                           contentLength: contentLength, body: MemoryBody(body))
    }

    func testGetAndPostReadTheSame() throws {
        let filters = #"{"and":[{"col":{"in":[1,2]}}]}"#
        let params = #"["a",2,true,null]"#
        let getQuery = "q=select%201&filters=" + FormDecoding.encode(filters) + "&queryParameters=" + FormDecoding.encode(params)
            + "&limit=10&enabled=true"
        let get = try Parameters.from(HTTPRequest(method: "GET", path: "/p", rawQuery: getQuery), bodyLimit: 1 << 20)
        let postBody = #"{"q":"select 1","filters":\#(filters),"queryParameters":\#(params),"limit":10,"enabled":true}"#
        let post = try Parameters.from(post(postBody), bodyLimit: 1 << 20)

        for p in [get, post] {
            XCTAssertEqual(p.string("q"), "select 1")
            XCTAssertEqual(try p.json("filters"), ["and": [["col": ["in": [1, 2]]]]])
            XCTAssertEqual(try p.json("queryParameters"), ["a", 2, true, nil])
            XCTAssertEqual(p.string("limit"), "10")
            XCTAssertEqual(try p.int("limit"), 10)
            XCTAssertEqual(p.bool("enabled"), true)
            XCTAssertTrue(p.has("q"))
            XCTAssertFalse(p.has("nope"))
            XCTAssertNil(p.string("nope"))
            XCTAssertNil(try p.json("nope"))
        }
    }

    func testJSONStringifiedObjectInsideBodyIsDecoded() throws {
        let p = try Parameters.from(post(#"{"filters":"{\"a\":1}","name":"{not json"}"#), bodyLimit: 1024)
        XCTAssertEqual(try p.json("filters"), ["a": 1])
        XCTAssertEqual(try p.json("name"), .string("{not json"))
    }

    func testBodyValuesWinOverQuery() throws {
        let p = try Parameters.from(post(#"{"a":"body"}"#, query: "a=query&b=q"), bodyLimit: 1024)
        XCTAssertEqual(p.string("a"), "body")
        XCTAssertEqual(p.string("b"), "q")
    }

    func testStringOfNonStringBodyValues() throws {
        let p = Parameters(body: ["f": .number(2.5), "i": -3, "b": false, "n": nil, "arr": [1, "x"]])
        XCTAssertEqual(p.string("f"), "2.5")
        XCTAssertEqual(p.string("i"), "-3")
        XCTAssertEqual(p.string("b"), "false")
        XCTAssertNil(p.string("n"))
        XCTAssertEqual(p.string("arr"), #"[1,"x"]"#)
    }

    func testInvalidJSONInQueryIs400() {
        let p = Parameters(query: ["filters": "{oops"])
        assertAPIError(try p.json("filters"), status: 400, code: "invalid_parameter")
    }

    func testNonIntegerIs400() {
        assertAPIError(try Parameters(query: ["limit": "ten"]).int("limit"), status: 400, code: "invalid_parameter")
    }

    func testFormEncodedBodyMergesIntoQuery() throws {
        let p = try Parameters.from(post("q=select+2&x=1", contentType: "application/x-www-form-urlencoded", query: "x=0&y=9"),
                                    bodyLimit: 1024)
        XCTAssertEqual(p.string("q"), "select 2")
        XCTAssertEqual(p.string("x"), "1")
        XCTAssertEqual(p.string("y"), "9")
    }

    func testContentTypeWithCharsetIsJSON() throws {
        let p = try Parameters.from(post(#"{"a":1}"#, contentType: "Application/JSON; charset=utf-8"), bodyLimit: 1024)
        XCTAssertEqual(p.string("a"), "1")
    }

    func testMissingContentTypeIsTreatedAsJSON() throws {
        let p = try Parameters.from(post(#"{"a":"b"}"#, contentType: nil), bodyLimit: 1024)
        XCTAssertEqual(p.string("a"), "b")
    }

    func testWrongContentTypeIs415() {
        assertAPIError(try Parameters.from(post(#"{"a":1}"#, contentType: "text/plain"), bodyLimit: 1024), status: 415)
        assertAPIError(try Parameters.from(post("<a/>", contentType: "application/xml"), bodyLimit: 1024), status: 415)
    }

    func testMalformedJSONBodyIs400() {
        assertAPIError(try Parameters.from(post(#"{"a":1,}"#), bodyLimit: 1024), status: 400, code: "invalid_json")
        assertAPIError(try Parameters.from(post("[1,2]"), bodyLimit: 1024), status: 400, code: "invalid_json")
        assertAPIError(try Parameters.from(post("\"str\""), bodyLimit: 1024), status: 400, code: "invalid_json")
    }

    func testInvalidUTF8BodyIs400() {
        let request = HTTPRequest(method: "POST", path: "/p", headers: ["content-type": "application/json"],
                                  body: MemoryBody([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D]))
        assertAPIError(try Parameters.from(request, bodyLimit: 1024), status: 400, code: "invalid_utf8")
    }

    func testTooDeepJSONBodyIs400() {
        let deep = #"{"a":"# + String(repeating: "[", count: Parameters.maxDepth + 1) + String(repeating: "]", count: Parameters.maxDepth + 1) + "}"
        assertAPIError(try Parameters.from(post(deep), bodyLimit: 1 << 20), status: 400, code: "invalid_json")
    }

    func testStreamedBodyOverLimitIs413() {
        let big = #"{"q":""# + String(repeating: "x", count: 200) + #""}"#
        assertAPIError(try Parameters.from(post(big), bodyLimit: 100), status: 413, code: "payload_too_large")
    }

    func testDeclaredContentLengthOverLimitIs413WithoutReading() {
        let body = MemoryBody(#"{"a":1}"#)
        let request = HTTPRequest(method: "POST", path: "/p", headers: ["content-type": "application/json"],
                                  contentLength: 5000, body: body)
        assertAPIError(try Parameters.from(request, bodyLimit: 100), status: 413)
        XCTAssertEqual(body.reads, 0)
    }

    func testBodyExactlyAtLimitIsAccepted() throws {
        let text = #"{"a":"xyz"}"#
        let p = try Parameters.from(post(text), bodyLimit: text.utf8.count)
        XCTAssertEqual(p.string("a"), "xyz")
    }

    func testWhitespaceOnlyBodyIsNoBody() throws {
        let p = try Parameters.from(post("  \n\t ", contentType: "text/plain", query: "a=1"), bodyLimit: 1024)
        XCTAssertEqual(p.query, ["a": "1"])
        XCTAssertTrue(p.body.isEmpty)
    }

    func testGetIgnoresBody() throws {
        let request = HTTPRequest(method: "GET", path: "/p", rawQuery: "a=1", headers: ["content-type": "text/plain"],
                                  body: MemoryBody("garbage"))
        let p = try Parameters.from(request, bodyLimit: 1024)
        XCTAssertEqual(p.string("a"), "1")
        XCTAssertTrue(p.body.isEmpty)
    }

    func testBodyIsReadOnce() throws {
        let request = post(#"{"a":1}"#)
        XCTAssertEqual(try request.body(limit: 1024), Array(#"{"a":1}"#.utf8))
        XCTAssertEqual(try request.body(limit: 1024), [])
    }

    func testStreamBodyDeliversChunksAndEnforcesLimit() throws {
        var collected: [UInt8] = []
        try post("0123456789abcdef").streamBody(limit: 16) { collected += $0 }
        XCTAssertEqual(String(decoding: collected, as: UTF8.self), "0123456789abcdef")
        assertAPIError(try post("0123456789abcdefg").streamBody(limit: 16) { _ in }, status: 413)
    }

    func testBadQueryStringFailsParameters() {
        let request = HTTPRequest(method: "GET", path: "/p", rawQuery: "a=%zz")
        assertAPIError(try Parameters.from(request, bodyLimit: 1024), status: 400)
    }
}
