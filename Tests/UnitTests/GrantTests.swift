@testable import Platform
import XCTest

final class GrantTests: XCTestCase {
    private func grant(_ source: String, _ connection: String = "carto_dw") -> Grant {
        Grant(connectionName: connection, source: source)
    }

    // MARK: queries

    func testQueryGrantMatchesVerbatimModuloOuterWhitespaceAndSemicolons() {
        let g = grant("SELECT name, geom\n  FROM public.cities\tWHERE pop > 1000;")
        XCTAssertTrue(g.isQuery)
        XCTAssertTrue(g.allowsQuery("SELECT name, geom\n  FROM public.cities\tWHERE pop > 1000"))
        XCTAssertTrue(g.allowsQuery("  SELECT name, geom\n  FROM public.cities\tWHERE pop > 1000 ;;\n"))
        // Inside the text every character counts: whitespace runs are not collapsed.
        XCTAssertFalse(g.allowsQuery("SELECT name, geom FROM public.cities WHERE pop > 1000"))
        XCTAssertFalse(g.allowsQuery("SELECT name, geom\r\n  FROM public.cities\tWHERE pop > 1000"))
        XCTAssertFalse(g.allowsQuery("SELECT name, geom\n  FROM public.cities\tWHERE pop > 100"))
        XCTAssertFalse(g.allowsQuery("select name, geom\n  from public.cities\twhere pop > 1000"))
        XCTAssertFalse(g.allowsQuery("SELECT name, geom\n  FROM public.cities\tWHERE pop > 1000; DROP TABLE cities"))
    }

    /// Issue 11, case 6: a grant with a `-- comment` line, sent on one line, turned the rest into a comment.
    func testCommentLineCannotBeFoldedIntoOneLine() {
        let g = grant("SELECT * FROM public.orders -- only this customer\nWHERE customer_id = 42")
        XCTAssertTrue(g.allowsQuery("SELECT * FROM public.orders -- only this customer\nWHERE customer_id = 42"))
        XCTAssertFalse(g.allowsQuery("SELECT * FROM public.orders -- only this customer WHERE customer_id = 42"))
        XCTAssertFalse(g.allowsQuery("SELECT * FROM public.orders -- only this customer\r\nWHERE customer_id = 42"))
        XCTAssertFalse(g.allowsQuery("SELECT * FROM public.orders -- only this customer\n\nWHERE customer_id = 42"))
    }

    func testNormalizeSQL() {
        XCTAssertEqual(Grant.normalizeSQL("  a \n\t b ;; "), "a \n\t b")
        XCTAssertEqual(Grant.normalizeSQL("x"), "x")
        XCTAssertEqual(Grant.normalizeSQL(""), "")
        XCTAssertEqual(Grant.normalizeSQL(" ; ;\n"), "")
    }

    func testTableGrantNeverAllowsQueryText() {
        XCTAssertFalse(grant("public.cities").allowsQuery("public.cities"))
        XCTAssertFalse(grant("*").allowsQuery("*"))
    }

    func testQueryGrantsNeverAllowTables() {
        let g = grant("SELECT * FROM cities")
        XCTAssertFalse(g.allowsTable(schema: "public", table: "cities"))
        XCTAssertTrue(grant("(SELECT 1) UNION (SELECT 2)").isQuery)
        XCTAssertTrue(grant("with t as (select 1) select * from t").isQuery)
        XCTAssertFalse(grant("with t as (select 1) select * from t").allowsTable(schema: "public", table: "t"))
    }

    func testSourceIsTrimmed() {
        XCTAssertEqual(grant("  public.cities \n").source, "public.cities")
        XCTAssertFalse(grant("  public.cities \n").isQuery)
    }

    // MARK: tables

    func testSchemaQualifiedTable() {
        let g = grant("sales.orders")
        XCTAssertFalse(g.isQuery)
        XCTAssertTrue(g.allowsTable(schema: "sales", table: "orders"))
        XCTAssertFalse(g.allowsTable(schema: "public", table: "orders"))
        XCTAssertFalse(g.allowsTable(schema: "sales", table: "orders2"))
        XCTAssertFalse(g.allowsTable(schema: "sales", table: "customers"))
    }

    func testBareTableMeansPublicOnly() {
        let g = grant("cities")
        XCTAssertTrue(g.allowsTable(schema: "public", table: "cities"))
        XCTAssertFalse(g.allowsTable(schema: "private", table: "cities"))
    }

    func testSchemaWildcard() {
        let g = grant("analytics.*")
        XCTAssertTrue(g.allowsTable(schema: "analytics", table: "anything"))
        XCTAssertTrue(g.allowsTable(schema: "analytics", table: "*"))
        XCTAssertFalse(g.allowsTable(schema: "public", table: "anything"))
        XCTAssertFalse(g.allowsTable(schema: "analytics_private", table: "t"))
    }

    func testDatabaseQualifierIsIgnored() {
        let g = grant("carto_dw.sales.orders")
        XCTAssertTrue(g.allowsTable(schema: "sales", table: "orders"))
        XCTAssertFalse(g.allowsTable(schema: "carto_dw", table: "sales"))
        XCTAssertTrue(grant("db.analytics.*").allowsTable(schema: "analytics", table: "x"))
    }

    func testTooManyPartsAllowNothing() {
        XCTAssertFalse(grant("a.b.c.d").allowsTable(schema: "c", table: "d"))
        XCTAssertFalse(grant("a.b.c.d").allowsTable(schema: "b", table: "c"))
    }

    func testUnquotedNamesFoldToLowerCase() {
        XCTAssertTrue(grant("Sales.Orders").allowsTable(schema: "sales", table: "orders"))
        XCTAssertFalse(grant("Sales.Orders").allowsTable(schema: "Sales", table: "Orders"))
    }

    func testQuotedIdentifiers() {
        XCTAssertTrue(grant(#""My.Schema"."Odd""Name""#).allowsTable(schema: "My.Schema", table: #"Odd"Name"#))
        XCTAssertTrue(grant(#"Db."Sales".ORDERS"#).allowsTable(schema: "Sales", table: "orders"))
        XCTAssertTrue(grant("a.*").allowsTable(schema: "a", table: "anything"))
        XCTAssertTrue(grant(#""Sales"."Orders""#).allowsTable(schema: "Sales", table: "Orders"))
        XCTAssertFalse(grant(#""Sales"."Orders""#).allowsTable(schema: "sales", table: "orders"))
        XCTAssertTrue(grant(#""weird.schema".t"#).allowsTable(schema: "weird.schema", table: "t"))
        XCTAssertFalse(grant(#""weird.schema".t"#).allowsTable(schema: "weird", table: "schema"))
    }

    /// PostgreSQL identifiers may contain spaces when quoted; such a grant names a table, not SQL.
    func testQuotedIdentifierWithSpaceIsATable() {
        let g = grant(#""Sales Data".orders"#)
        XCTAssertFalse(g.isQuery, "a quoted identifier containing a space is classified as SQL")
        XCTAssertTrue(g.allowsTable(schema: "Sales Data", table: "orders"))
    }

    func testWildcardAll() {
        XCTAssertTrue(grant("*").isWildcardAll)
        XCTAssertTrue(grant(" * ").isWildcardAll)
        XCTAssertFalse(grant("public.*").isWildcardAll)
        XCTAssertFalse(grant("cities").isWildcardAll)
    }

    // MARK: Principal.access

    func testUserHasEverything() {
        let p = Principal(accountId: "acc", userId: "u", kind: .user(role: .viewer, viaSession: true))
        guard case .everything = p.access(to: "anything") else { return XCTFail("users see every connection") }
        XCTAssertTrue(p.isUser)
        XCTAssertTrue(p.viaSession)
        XCTAssertEqual(p.role, .viewer)
    }

    func testTokenWithoutGrantOnConnectionHasNone() {
        let p = Principal(accountId: "acc", userId: nil, kind: .apiToken(id: "t", grants: [grant("*", "other")]))
        guard case .none = p.access(to: "carto_dw") else { return XCTFail("expected .none") }
        let empty = Principal(accountId: "acc", userId: nil, kind: .apiToken(id: "t", grants: []))
        guard case .none = empty.access(to: "carto_dw") else { return XCTFail("expected .none") }
    }

    func testTokenWithWildcardHasEverything() {
        let p = Principal(accountId: "acc", userId: nil,
                          kind: .apiToken(id: "t", grants: [grant("public.cities"), grant("*"), grant("x", "other")]))
        guard case .everything = p.access(to: "carto_dw") else { return XCTFail("expected .everything") }
    }

    func testTokenWithSpecificGrantsGetsOnlyThatConnection() {
        let grants = [grant("public.cities"), grant("SELECT 1"), grant("*", "other"), grant("secret.t", "third")]
        let p = Principal(accountId: "acc", userId: nil, kind: .apiToken(id: "t", grants: grants))
        guard case .granted(let mine) = p.access(to: "carto_dw") else { return XCTFail("expected .granted") }
        XCTAssertEqual(mine, [grant("public.cities"), grant("SELECT 1")])
        XCTAssertFalse(p.isUser)
        XCTAssertNil(p.role)
    }

    func testRequireUser() throws {
        let token = Principal(accountId: "acc", userId: "creator", kind: .apiToken(id: "t", grants: []))
        XCTAssertThrowsError(try token.requireUser())
        let editor = Principal(accountId: "acc", userId: "u1", kind: .user(role: .editor, viaSession: false))
        XCTAssertEqual(try editor.requireUser().userId, "u1")
        XCTAssertEqual(try editor.requireRole(.admin, .editor), "u1")
        XCTAssertThrowsError(try editor.requireRole(.admin))
    }
}
