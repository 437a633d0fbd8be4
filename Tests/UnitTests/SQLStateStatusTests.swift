import HTTPKit
import XCTest

final class SQLStateStatusTests: XCTestCase {
    private func status(_ s: String?) -> Int { SQLStateStatus.map(s).status }

    func testExactStates() {
        XCTAssertEqual(SQLStateStatus.map("57014").status, 429)
        XCTAssertEqual(SQLStateStatus.map("57014").code, "statement_timeout")
        XCTAssertEqual(status("42501"), 403)
        XCTAssertEqual(status("23505"), 409)
        XCTAssertEqual(SQLStateStatus.map("23505").code, "unique_violation")
        XCTAssertEqual(status("57P01"), 503)
        XCTAssertEqual(status("42P01"), 404)
        XCTAssertEqual(status("25006"), 403)
    }

    func testClasses() {
        XCTAssertEqual(status("08006"), 503)
        XCTAssertEqual(status("08001"), 503)
        XCTAssertEqual(status("42601"), 400)
        XCTAssertEqual(SQLStateStatus.map("42601").code, "invalid_query")
        XCTAssertEqual(status("22012"), 400)  // division_by_zero
        XCTAssertEqual(status("23502"), 400)  // not_null_violation (class 23 but not an exact conflict)
        XCTAssertEqual(status("28P01"), 503)
    }

    func testUnknownIsServerError() {
        XCTAssertEqual(status("XX000"), 500)
        XCTAssertEqual(status("99999"), 500)
        XCTAssertEqual(status(nil), 500)
        XCTAssertEqual(status(""), 500)
        XCTAssertEqual(status("4250"), 500)
        XCTAssertEqual(status("425011"), 500)
        XCTAssertEqual(SQLStateStatus.map(nil).code, "database_error")
    }
}
