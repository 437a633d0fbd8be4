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
}
