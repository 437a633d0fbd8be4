import HTTPKit
import XCTest

final class RouterTests: XCTestCase {
    private func makeRouter() -> Router {
        let router = Router()
        router.get("/api/v3/sql/{connection}/query") { _ in HTTPResponse(status: 200, body: .bytes(Array("get".utf8))) }
        router.post("/api/v3/sql/{connection}/query") { _ in HTTPResponse(status: 201, body: .bytes(Array("post".utf8))) }
        router.get("/api/v3/tokens") { _ in HTTPResponse(status: 200, body: .bytes(Array("list".utf8))) }
        router.delete("/api/v3/tokens/{id}") { _ in HTTPResponse(status: 204) }
        router.patch("/api/v3/connections/{id}/users/{user}") { _ in HTTPResponse(status: 200) }
        return router
    }

    private func run(_ match: Router.Match) throws -> (HTTPResponse, [String: String])? {
        guard case .found(let handler, let params) = match else { return nil }
        return (try handler(HTTPRequest(method: "GET", path: "/")), params)
    }

    func testPathParameters() throws {
        let router = makeRouter()
        let result = try XCTUnwrap(try run(router.match(method: "GET", path: "/api/v3/sql/carto_dw/query")))
        XCTAssertEqual(result.1, ["connection": "carto_dw"])
        XCTAssertEqual(result.0.bodyBytes, Array("get".utf8))

        let two = try XCTUnwrap(try run(router.match(method: "PATCH", path: "/api/v3/connections/c1/users/u2")))
        XCTAssertEqual(two.1, ["id": "c1", "user": "u2"])
    }

    func testMethodSelectsHandler() throws {
        let router = makeRouter()
        let post = try XCTUnwrap(try run(router.match(method: "POST", path: "/api/v3/sql/pg/query")))
        XCTAssertEqual(post.0.status, 201)
        XCTAssertEqual(post.0.bodyBytes, Array("post".utf8))
    }

    func testTrailingSlashIsSamePath() throws {
        let router = makeRouter()
        XCTAssertNotNil(try run(router.match(method: "GET", path: "/api/v3/tokens/")))
    }

    func testUnknownPathIsNotFound() {
        let router = makeRouter()
        for path in ["/nope", "/api/v3/tokens/x/y", "/api/v3/sql/pg", "/api/v3/sql/pg/query/extra", "/"] {
            guard case .notFound = router.match(method: "GET", path: path) else {
                return XCTFail("\(path) should not match")
            }
        }
    }

    func testWrongMethodIsMethodNotAllowedWithAllowedList() {
        let router = makeRouter()
        guard case .methodNotAllowed(let allowed) = router.match(method: "DELETE", path: "/api/v3/sql/pg/query") else {
            return XCTFail("expected 405")
        }
        XCTAssertEqual(Set(allowed), ["GET", "POST"])
        guard case .methodNotAllowed(let onlyDelete) = router.match(method: "GET", path: "/api/v3/tokens/abc") else {
            return XCTFail("expected 405")
        }
        XCTAssertEqual(onlyDelete, ["DELETE"])
    }

    func testHeadMatchesGet() throws {
        let router = makeRouter()
        let head = try XCTUnwrap(try run(router.match(method: "HEAD", path: "/api/v3/tokens")))
        XCTAssertEqual(head.0.bodyBytes, Array("list".utf8))
        // HEAD does not match routes that only have other methods.
        guard case .methodNotAllowed = router.match(method: "HEAD", path: "/api/v3/tokens/abc") else {
            return XCTFail("HEAD on a DELETE-only route should be 405")
        }
    }

    func testLiteralSegmentsAreExact() {
        let router = makeRouter()
        for path in ["/api/v3/TOKENS", "/api/v3/token", "/api/v3/tokensx", "/api/v3/tokéns"] {
            guard case .notFound = router.match(method: "GET", path: path) else {
                return XCTFail("\(path): segments match byte for byte")
            }
        }
    }

    /// Parameters are whole decoded segments, whatever their characters; empty segments do not count.
    func testParametersKeepNonASCIIAndSkipEmptySegments() throws {
        let router = makeRouter()
        let result = try XCTUnwrap(try run(router.match(method: "PATCH", path: "//api/v3//connections/café ☕/users/ü%2F")))
        XCTAssertEqual(result.1, ["id": "café ☕", "user": "ü%2F"])
    }
}
