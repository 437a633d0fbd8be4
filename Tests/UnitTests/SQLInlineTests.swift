import SQLKit
import XCTest

/// Bound values written into the text for GDAL's `ogr2ogr -sql` (the export writer binds nothing).
final class SQLInlineTests: XCTestCase {
    func testValuesBecomeConstantsThatReadBackUnchanged() {
        let sql = SQL(unsafeRaw: "SELECT $1::int, $2, '$1', \"$2\", $3 -- $1\n, $$ $1 $$, $10", parameters:
                        ["5", "it's", nil, "4", "5", "6", "7", "8", "9", "a\\b'c"])
        XCTAssertEqual(sql.inlined(), "SELECT '5'::int, 'it''s', '$1', \"$2\", NULL -- $1\n, $$ $1 $$,  E'a\\\\b''c'")
    }

    func testLiteralQuoting() {
        XCTAssertEqual(SQL.literal(""), "''")
        XCTAssertEqual(SQL.literal("O'Brien"), "'O''Brien'")
        XCTAssertEqual(SQL.literal("\\"), " E'\\\\'")
    }

    func testNothingToInline() {
        XCTAssertEqual(SQL(unsafeRaw: "SELECT 1").inlined(), "SELECT 1")
        // A reference past the parameters stays as written, and the server will say so.
        XCTAssertEqual(SQL(unsafeRaw: "SELECT $2", parameters: ["x"]).inlined(), "SELECT $2")
    }

    func testNULAndSlotsAreRefused() {
        XCTAssertNil(SQL(unsafeRaw: "SELECT $1", parameters: ["a\u{0}b"]).inlined())
        XCTAssertNil(SQL.slot("z").inlined())
    }

    func testComposedFragmentsInlineInOrder() {
        let a: SQL = "SELECT \(Optional("x")) AS a"
        let b: SQL = " WHERE b = \(7)"
        XCTAssertEqual((a + b).inlined(), "SELECT 'x' AS a WHERE b = '7'")
    }
}
