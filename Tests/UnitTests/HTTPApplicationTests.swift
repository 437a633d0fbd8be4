import HTTPKit
import XCTest

final class HTTPApplicationTests: XCTestCase {
    struct SecretFailure: Error, CustomStringConvertible {
        var description: String { "connection to host=db.internal password=hunter2 failed" }
    }

    private func makeApp() -> HTTPApplication {
        let router = Router()
        router.get("/ok/{name}") { request in
            .json(["name": .string(request.pathParameters["name"] ?? "")])
        }
        router.get("/teapot") { _ in
            var e = APIError(418, "teapot", "I am a teapot", hint: "try coffee")
            e.columnName = "pot"
            throw e
        }
        router.get("/bad") { _ in throw APIError.badRequest("Missing q", code: "missing_parameter") }
        router.get("/boom") { _ in throw SecretFailure() }
        router.post("/only-post") { _ in .noContent() }
        router.get("/custom-cors") { _ in
            HTTPResponse(status: 200, headers: [("Access-Control-Allow-Origin", "https://app.example.com")])
        }
        return HTTPApplication(name: "test", router: router)
    }

    private func assertCommonHeaders(_ response: HTTPResponse, _ request: HTTPRequest,
                                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(response.header("X-Request-Id"), request.requestId, file: file, line: line)
        XCTAssertFalse(request.requestId.isEmpty, file: file, line: line)
        XCTAssertNotNil(response.header("Access-Control-Allow-Origin"), file: file, line: line)
        XCTAssertEqual(response.headers.filter { $0.0.lowercased() == "x-request-id" }.count, 1, file: file, line: line)
    }

    private func assertErrorContract(_ response: HTTPResponse, status: Int, code: String,
                                     file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(response.status, status, file: file, line: line)
        XCTAssertEqual(response.header("Content-Type"), "application/json", file: file, line: line)
        let body = try XCTUnwrap(response.bodyJSON, "error body must be JSON", file: file, line: line)
        XCTAssertEqual(body["status"]?.intValue, status, file: file, line: line)
        XCTAssertEqual(body["code"]?.stringValue, code, file: file, line: line)
        XCTAssertNotNil(body["error"]?.stringValue, file: file, line: line)
    }

    func testOptionsPreflight() {
        let app = makeApp()
        let request = HTTPRequest(method: "OPTIONS", path: "/ok/x", headers: ["origin": "https://a.example",
                                                                                "access-control-request-method": "GET"])
        let response = app.handle(request)
        XCTAssertEqual(response.status, 204)
        let allowHeaders = (response.header("Access-Control-Allow-Headers") ?? "")
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        XCTAssertTrue(allowHeaders.contains("authorization"), "Authorization must be listed by name, got \(allowHeaders)")
        XCTAssertTrue(allowHeaders.contains("content-type"))
        XCTAssertFalse(allowHeaders.contains("*"))
        let maxAge = Int(response.header("Access-Control-Max-Age") ?? "")
        XCTAssertNotNil(maxAge)
        XCTAssertGreaterThan(maxAge ?? 0, 0)
        XCTAssertTrue((response.header("Access-Control-Allow-Methods") ?? "").contains("POST"))
        XCTAssertEqual(response.header("Access-Control-Allow-Origin"), "*")
        assertCommonHeaders(response, request)
    }

    func testOptionsOnUnknownPathStillPreflights() {
        let response = makeApp().handle(HTTPRequest(method: "OPTIONS", path: "/anything/at/all"))
        XCTAssertEqual(response.status, 204)
    }

    func testSuccessCarriesCORSAndRequestId() throws {
        let request = HTTPRequest(method: "GET", path: "/ok/world", requestId: "req-123")
        let response = makeApp().handle(request)
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("X-Request-Id"), "req-123")
        XCTAssertEqual(response.header("Access-Control-Allow-Origin"), "*")
        XCTAssertTrue((response.header("Access-Control-Expose-Headers") ?? "").contains("X-Request-Id"))
        XCTAssertEqual(response.bodyJSON, ["name": "world"])
    }

    func testGeneratedRequestIdsAreUnique() {
        let ids = Set((0..<50).map { _ in HTTPRequest(method: "GET", path: "/").requestId })
        XCTAssertEqual(ids.count, 50)
    }

    func testAPIErrorBecomesErrorContract() throws {
        let request = HTTPRequest(method: "GET", path: "/bad")
        let response = makeApp().handle(request)
        try assertErrorContract(response, status: 400, code: "missing_parameter")
        XCTAssertEqual(response.bodyJSON?["error"], "Missing q")
        XCTAssertEqual(response.bodyJSON?["request_id"]?.stringValue, request.requestId)
        XCTAssertEqual(response.header("Cache-Control"), "no-store")
        assertCommonHeaders(response, request)
    }

    func testAPIErrorOptionalFields() throws {
        let response = makeApp().handle(HTTPRequest(method: "GET", path: "/teapot"))
        try assertErrorContract(response, status: 418, code: "teapot")
        XCTAssertEqual(response.bodyJSON?["hint"], "try coffee")
        XCTAssertEqual(response.bodyJSON?["column_name"], "pot")
        XCTAssertNil(response.bodyJSON?["details"])
    }

    func testNonAPIErrorIs500WithoutLeakingText() throws {
        let request = HTTPRequest(method: "GET", path: "/boom")
        let response = makeApp().handle(request)
        try assertErrorContract(response, status: 500, code: "internal_error")
        let text = String(decoding: response.bodyBytes, as: UTF8.self)
        XCTAssertFalse(text.contains("hunter2"))
        XCTAssertFalse(text.contains("db.internal"))
        XCTAssertFalse(text.contains("SecretFailure"))
        assertCommonHeaders(response, request)
    }

    func testUnknownRouteIs404Contract() throws {
        let request = HTTPRequest(method: "GET", path: "/missing")
        let response = makeApp().handle(request)
        try assertErrorContract(response, status: 404, code: "route_not_found")
        assertCommonHeaders(response, request)
    }

    func testWrongMethodIs405WithAllow() throws {
        let request = HTTPRequest(method: "GET", path: "/only-post")
        let response = makeApp().handle(request)
        try assertErrorContract(response, status: 405, code: "method_not_allowed")
        let allow = Set((response.header("Allow") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        XCTAssertTrue(allow.contains("POST"))
        XCTAssertTrue(allow.contains("OPTIONS"))
        XCTAssertFalse(allow.contains("GET"))
        assertCommonHeaders(response, request)
    }

    func testHandlerCORSHeaderIsNotOverridden() {
        let response = makeApp().handle(HTTPRequest(method: "GET", path: "/custom-cors"))
        XCTAssertEqual(response.headers.filter { $0.0 == "Access-Control-Allow-Origin" }.map(\.1), ["https://app.example.com"])
    }

    func testStatementTimeoutErrorGetsRetryAfter() {
        let response = HTTPResponse.error(APIError(429, "statement_timeout", "slow"), requestId: nil)
        XCTAssertEqual(response.header("Retry-After"), "1")
        XCTAssertNil(HTTPResponse.error(APIError(429, "rate_limited", "x"), requestId: nil).header("Retry-After"))
    }

    func testSetHeaderReplacesCaseInsensitively() {
        var response = HTTPResponse(headers: [("content-type", "text/plain"), ("X-A", "1")])
        response.setHeader("Content-Type", "application/json")
        XCTAssertEqual(response.headers.filter { $0.0.lowercased() == "content-type" }.count, 1)
        XCTAssertEqual(response.header("CONTENT-TYPE"), "application/json")
        XCTAssertEqual(response.header("x-a"), "1")
    }
}
