import HTTPKit
import Platform
import Postgres
import XCTest

/// Errors that know their HTTP meaning render themselves through the one contract, with no call site
/// translating them; only unknown errors are 500.
final class ErrorContractTests: XCTestCase {
    struct Teapot: HTTPResponseError {
        func apiError(requestId: String?) -> APIError { APIError(418, "teapot", "short and stout") }
    }

    func app(_ error: Error) -> HTTPApplication {
        let router = Router()
        router.get("/fail") { _ in throw error }
        return HTTPApplication(name: "test", router: router)
    }

    func render(_ error: Error) throws -> (Int, JSON, HTTPResponse) {
        let response = app(error).handle(HTTPRequest(method: "GET", path: "/fail"))
        let body = try XCTUnwrap(response.bodyJSON)
        XCTAssertEqual(body["status"]?.intValue, response.status)
        XCTAssertNotNil(body["error"]?.stringValue)
        return (response.status, body, response)
    }

    func testConformingErrorsRenderThemselves() throws {
        XCTAssertEqual(try render(Teapot()).1["code"]?.stringValue, "teapot")
    }

    func testDatabaseErrorsRenderThroughTheSQLStateTable() throws {
        let lost = PGError(sqlstate: "08006", message: "server closed the connection host=db.internal", connectionLost: true)
        let (status, body, _) = try render(lost)
        XCTAssertEqual(status, 503)
        XCTAssertFalse(body["error"]?.stringValue?.contains("db.internal") ?? true)
        XCTAssertEqual(try render(PGError(sqlstate: "25006", message: "read-only")).0, 403)
        XCTAssertEqual(try render(PGError(sqlstate: "42601", message: "syntax")).1["code"]?.stringValue, "invalid_query")
        let (timeout, _, response) = try render(PGError(sqlstate: "57014", message: "canceled"))
        XCTAssertEqual(timeout, 429)
        XCTAssertNotNil(response.header("Retry-After"))
    }

    func testRetryAfterTravelsWithTheError() throws {
        var e = APIError.tooManyRequests("busy", code: "concurrency_limit")
        e.retryAfter = 2
        XCTAssertEqual(try render(e).2.header("Retry-After"), "2")
    }

    func testUnknownErrorsAre500() throws {
        struct Unknown: Error {}
        XCTAssertEqual(try render(Unknown()).0, 500)
    }
}
