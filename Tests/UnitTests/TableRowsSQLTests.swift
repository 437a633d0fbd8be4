import SQLKit
import WorkspaceAPI
import XCTest

/// The data explorer's table page (issue 14): identifiers quoted, the search bound with LIKE's wildcards
/// escaped, order and page as literals.
final class TableRowsSQLTests: XCTestCase {
    func testPageSnapshots() throws {
        var page = TableRowsSQL(table: QualifiedName(schema: "public", table: "world \"countries\""), columns: ["name", "pop_est", "Weird\"Col"])
        assertSnapshot(try page.rows(), "explorer_rows_plain")
        page.orderBy = "pop_est"
        page.descending = true
        page.search = "50%_off\\"
        page.limit = 25
        page.offset = 75
        assertSnapshot(try page.rows(), "explorer_rows_sorted_searched")
        assertSnapshot(try page.count(), "explorer_rows_count")
    }

    func testLikePatternEscapesWildcards() {
        XCTAssertEqual(TableRowsSQL.likePattern("a%b_c\\d"), "%a\\%b\\_c\\\\d%")
        XCTAssertEqual(TableRowsSQL.likePattern(""), "%%")
    }

    func testPageIsClampedAndNULRefused() throws {
        var page = TableRowsSQL(table: QualifiedName(schema: "s", table: "t"), columns: ["a"])
        page.limit = 1_000_000
        page.offset = -5
        XCTAssertTrue(try page.rows().text.hasSuffix("LIMIT \(TableRowsSQL.maxLimit) OFFSET 0) AS p"))
        page.orderBy = "a\u{0}b"
        XCTAssertThrowsError(try page.rows())
    }
}
