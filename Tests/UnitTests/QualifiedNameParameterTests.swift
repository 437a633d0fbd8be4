import HTTPKit
import SQLKit
import XCTest

final class QualifiedNameParameterTests: XCTestCase {
    func testMalformedNamesAre400sNamingTheParameter() {
        for bad in ["", "a..b", "a.b.c.d", #""open"#] {
            do {
                _ = try QualifiedName.parameter(bad, named: "destination", code: "invalid_destination")
                XCTFail("accepted \(bad)")
            } catch {
                XCTAssertEqual(error.status, 400)
                XCTAssertEqual(error.code, "invalid_destination")
                XCTAssertTrue(error.message.contains("destination"), error.message)
            }
        }
        XCTAssertEqual(APIError(SQLError.invalidIdentifier("a\u{0}")).status, 400)
    }

    /// A name that cannot become SQL (NUL) reaching the HTTP layer is the client's 400, not a 500.
    func testSQLErrorsRenderAsTheErrorContract() throws {
        let router = Router()
        router.get("/t") { _ in _ = try Identifier("a\u{0}b"); return .noContent() }
        let response = HTTPApplication(name: "test", router: router).handle(HTTPRequest(method: "GET", path: "/t"))
        XCTAssertEqual(response.status, 400)
        let body = try XCTUnwrap(response.bodyJSON)
        XCTAssertEqual(body["code"]?.stringValue, "invalid_identifier")
        XCTAssertEqual(body["status"]?.doubleValue, 400)
        XCTAssertNotNil(body["error"]?.stringValue)
    }
}
