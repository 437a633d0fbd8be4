import SQLKit
import XCTest

final class SQLValueTests: XCTestCase {
    func testInterpolationBindsValuesAndQuotesIdentifiers() throws {
        let column = try Identifier("Name")
        let sql: SQL = "SELECT \(column) FROM t WHERE a = \("x'; DROP TABLE t; --") AND b > \(5) AND c = \(2.5) AND d = \(true)"
        XCTAssertEqual(sql.text, #"SELECT "Name" FROM t WHERE a = $1 AND b > $2 AND c = $3 AND d = $4"#)
        XCTAssertEqual(sql.parameters, ["x'; DROP TABLE t; --", "5", "2.5", "true"])
        let nothing: String? = nil
        XCTAssertEqual(("SELECT \(nothing)" as SQL).parameters, [nil])
    }

    func testAppendingRenumbersPlaceholders() {
        let a: SQL = "a = \("1") AND b = \("2")"
        let b: SQL = "c = \("3") OR d = \("4")"
        let both: SQL = "\(a) AND (\(b))"
        XCTAssertEqual(both.text, "a = $1 AND b = $2 AND (c = $3 OR d = $4)")
        XCTAssertEqual(both.parameters, ["1", "2", "3", "4"])
        // The same fragment twice binds its value twice.
        let twice: SQL = "\(b) AND \(b)"
        XCTAssertEqual(twice.text, "c = $1 OR d = $2 AND c = $3 OR d = $4")
        XCTAssertEqual(twice.parameters, ["3", "4", "3", "4"])
        XCTAssertEqual((a + b).text, "a = $1 AND b = $2c = $3 OR d = $4")
        XCTAssertEqual(SQL.join([a, b], separator: " | ").text, "a = $1 AND b = $2 | c = $3 OR d = $4")
    }

    /// A raw query's own `$n` shift too, but never inside literals, quoted names, dollar quotes or comments.
    func testRenumberingSkipsWhatIsNotAParameter() {
        let raw = SQL(unsafeRaw: #"SELECT $1, '$1', E'\'$1', "$1", $$ $1 $$, $q$ $1 $q$, a$1, -- $1"# + "\n" + "/* $1 /* $1 */ $1 */ $2::int",
                      parameters: ["p1", "p2"])
        let shifted: SQL = "\("first") \(raw)"
        XCTAssertEqual(shifted.text, "$1 " + #"SELECT $2, '$1', E'\'$1', "$1", $$ $1 $$, $q$ $1 $q$, a$1, -- $1"# + "\n" + "/* $1 /* $1 */ $1 */ $3::int")
        XCTAssertEqual(shifted.parameters, ["first", "p1", "p2"])
        let doubled = SQL(unsafeRaw: "SELECT 'it''s $1', \"a\"\"$1\", $1", parameters: ["x"])
        XCTAssertEqual(("\(5) \(doubled)" as SQL).text, "$1 SELECT 'it''s $1', \"a\"\"$1\", $2")
        let big = SQL(unsafeRaw: "$10 + $9", parameters: Array(repeating: "v", count: 10))
        XCTAssertEqual(("\(1) \(big)" as SQL).text, "$1 $11 + $10")
    }

    func testUnsafeRawAndLiteralsAreExplicit() {
        let sql: SQL = "SELECT \(SQL(unsafeRaw: "count(*)")) LIMIT \(literal: 10) -- \(unsafeRaw: "x")"
        XCTAssertEqual(sql.text, "SELECT count(*) LIMIT 10 -- x")
        XCTAssertEqual(sql.parameters, [])
    }

    func testSlotsAreFilledPerExecution() {
        let sql: SQL = "SELECT \(SQL.slot("z")), \("fixed"), \(SQL.slot("x")), \(SQL.slot("z"))"
        XCTAssertEqual(sql.text, "SELECT $1, $2, $3, $4")
        XCTAssertEqual(sql.parameters(filling: ["z": "3", "x": "4"]), ["3", "fixed", "4", "3"])
        XCTAssertNil(sql.parameters(filling: ["z": "3"]), "a slot without a value")
        XCTAssertTrue(sql.hasSlots)
        XCTAssertFalse(("SELECT \("x")" as SQL).hasSlots)
    }

    func testIdentifierQuoting() throws {
        XCTAssertEqual(try Identifier.quote("abc"), #""abc""#)
        XCTAssertEqual(try Identifier.quote(#"a"b"#), #""a""b""#)
        XCTAssertEqual(try Identifier.quote(#"""#), #""""""#)
        XCTAssertEqual(try Identifier.quote("a.b"), #""a.b""#)
        XCTAssertEqual(try Identifier.quote("Ünïcode 名前 🗺"), "\"Ünïcode 名前 🗺\"")
        XCTAssertEqual(try Identifier.quote(""), #""""#)
        XCTAssertThrowsError(try Identifier("a\u{0}b")) { XCTAssertEqual($0 as? SQLError, .invalidIdentifier("a\u{0}b")) }
    }

    func testQualifiedNameParsing() throws {
        func parts(_ text: String) throws -> [String?] {
            let n = try QualifiedName(parsing: text)
            return [n.database, n.schema, n.table]
        }
        XCTAssertEqual(try parts("Places"), [nil, nil, "places"])
        XCTAssertEqual(try parts("Sales.Orders"), [nil, "sales", "orders"])
        XCTAssertEqual(try parts(#"Db."Sales".ORDERS"#), ["db", "Sales", "orders"])
        XCTAssertEqual(try parts(#""My.Schema"."Odd""Name""#), [nil, "My.Schema", #"Odd"Name"#])
        XCTAssertEqual(try parts("carto-dw-ac-1.shared.t"), ["carto-dw-ac-1", "shared", "t"])
        XCTAssertEqual(try parts("a.*"), [nil, "a", "*"])
        XCTAssertEqual(try parts("Été.Ä"), [nil, "Été", "Ä"], "only ASCII letters fold, as in PostgreSQL")
        for bad in ["", ".", "a.", ".a", "a..b", "a.b.c.d", #""unterminated"#, #""""#, #"ab"c""#, #""a"b"#, "a\u{0}b"] {
            XCTAssertThrowsError(try QualifiedName(parsing: bad), bad)
        }
    }

    func testQualifiedNameRendering() throws {
        XCTAssertEqual(try QualifiedName(parsing: "db.s.t").identifier.text, #""s"."t""#, "the database never reaches SQL")
        XCTAssertEqual(try QualifiedName(parsing: "t").identifier.text, #""t""#)
        XCTAssertEqual(try QualifiedName(parsing: "t").qualifiedIdentifier.text, #""public"."t""#)
        XCTAssertEqual(try QualifiedName(parsing: #""a.b"."x""y""#).identifier.text, #""a.b"."x""y""#)
        for text in ["t", "s.t", #""A b"."c.d""#, #"db."x""y".t"#, "_x1.t2"] {
            let name = try QualifiedName(parsing: text)
            XCTAssertEqual(try QualifiedName(parsing: name.description), name, "round trip of \(text)")
        }
    }
}
