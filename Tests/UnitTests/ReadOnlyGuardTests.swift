import XCTest
@testable import Platform
import Postgres

final class ReadOnlyGuardTests: XCTestCase {
    func testLeadingKeywordSkipsCommentsAndParentheses() {
        XCTAssertEqual(ReadOnlyGuard.leadingKeyword("  -- note\n /* x */ ((SELECT 1))"), "select")
        XCTAssertEqual(ReadOnlyGuard.leadingKeyword("DO $$ BEGIN END $$"), "do")
        XCTAssertEqual(ReadOnlyGuard.leadingKeyword("/* unterminated"), "")
        XCTAssertEqual(ReadOnlyGuard.leadingKeyword("\tExplain analyze select 1"), "explain")
    }

    func testDeniedNamesAreWholeWords() {
        XCTAssertEqual(ReadOnlyGuard.deniedName(inPlan: #"{"Function Name": "pg_stat_get_activity"}"#), "pg_stat_get_activity")
        XCTAssertEqual(ReadOnlyGuard.deniedName(inPlan: "pg_catalog.PG_TERMINATE_BACKEND(t.pid)"), "pg_terminate_backend")
        XCTAssertNil(ReadOnlyGuard.deniedName(inPlan: "my_pg_cancel_backend_log(t.x), pg_terminate_backend_count"))
        XCTAssertNil(ReadOnlyGuard.deniedName(inPlan: #"{"Relation Name": "e2e_places"}"#))
    }

    func testTokensAndViewersAndCookieGetsReadOnly() {
        let viewer = Principal(accountId: "a", userId: "u", kind: .user(role: .viewer, viaSession: false))
        let admin = Principal(accountId: "a", userId: "u", kind: .user(role: .admin, viaSession: false))
        let cookieAdmin = Principal(accountId: "a", userId: "u", kind: .user(role: .admin, viaSession: true))
        let scoped = Principal(accountId: "a", userId: nil, kind: .apiToken(id: "t", grants: [Grant(connectionName: "c", source: "public.t")]))
        let star = Principal(accountId: "a", userId: "u", kind: .apiToken(id: "t", grants: [Grant(connectionName: "c", source: "*")]),
                             creatorRole: .editor)
        let viewersStar = Principal(accountId: "a", userId: "u", kind: .apiToken(id: "t", grants: [Grant(connectionName: "c", source: "*")]),
                                    creatorRole: .viewer)
        XCTAssertEqual(viewer.sessionMode(connection: "c", method: "POST"), .readOnly)
        XCTAssertEqual(admin.sessionMode(connection: "c", method: "GET"), .readWrite)
        XCTAssertEqual(cookieAdmin.sessionMode(connection: "c", method: "GET"), .readOnly)
        XCTAssertEqual(cookieAdmin.sessionMode(connection: "c", method: "POST"), .readWrite)
        XCTAssertEqual(scoped.sessionMode(connection: "c", method: "POST"), .readOnly)
        XCTAssertEqual(star.sessionMode(connection: "c", method: "POST"), .readWrite)
        XCTAssertEqual(star.sessionMode(connection: "other", method: "POST"), .readOnly)
        XCTAssertEqual(viewersStar.sessionMode(connection: "c", method: "POST"), .readOnly)
    }
}
