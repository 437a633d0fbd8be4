import HTTPKit
@testable import MapsAPI
import XCTest

/// operationExp from API access tokens: the scoped-SQL function allow-list, no subqueries, nothing hidden.
final class OperationExpressionTests: XCTestCase {
    func testAllowsExpressionsOverTheSourceWithListedFunctions() throws {
        for exp in ["sum(pop) / count(*)", "round(avg(\"Mixed Case\")::numeric, 2)", "count(*) FILTER (WHERE name = 'select')",
                    "sum(extract(epoch FROM updated))", "max(ST_Area(geom))", "avg(CASE WHEN capital THEN pop ELSE 0 END)",
                    "sum(pop)::timestamp with time zone IS NULL"] {
            XCTAssertNoThrow(try OperationExpression.validate(exp), exp)
        }
    }

    func testRefusesWithAReason() {
        let cases: [(String, String)] = [
            ("(SELECT 1)", "subqueries"), ("1 + (VALUES (1))", "subqueries"), ("(TABLE secrets)", "subqueries"),
            ("1 + ( with x as (select 1) select 1)", "subqueries"), ("pg_sleep(1)", "pg_sleep"),
            ("\"pg_read_file\"('/etc/passwd')", "pg_read_file"), ("sum(pop) -- x", "comments"), ("sum(pop) /* x */", "comments"),
            ("1; DROP TABLE t", "';'"), ("$1", "dollar"), ("'abc", "quote"), ("e'\\x27'", "backslash"),
        ]
        for (exp, why) in cases {
            XCTAssertThrowsError(try OperationExpression.validate(exp), exp) { error in
                let e = error as? APIError
                XCTAssertEqual(e?.status, 403, exp)
                XCTAssertTrue(e?.message.contains(why) == true, "\(exp): \(e?.message ?? "")")
            }
        }
    }
}
