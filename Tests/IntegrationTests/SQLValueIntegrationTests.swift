import Foundation
import Postgres
import SQLKit
import XCTest

/// The pure quoting and the SQL value against the real thing: libpq's PQescapeIdentifier and the server.
final class SQLValueIntegrationTests: XCTestCase {
    var dsn = ""

    override func setUpWithError() throws {
        dsn = try IntegrationEnvironment.require(IntegrationEnvironment.metadataDSN, "STACK_METADATA_DSN")
    }

    /// A repeatable generator (SplitMix64), so a failure names a string that can be reproduced.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func names(count: Int) -> [String] {
        var fixed = ["", "a", "A", "\"", "\"\"", "a\"b", "\"a\"", "a.b", "a b", "'", "\\", "$1", "--", "/*", ";",
                     "Ünïcode", "名前", "🗺️", "e\u{301}", "\u{200B}", "tab\there", "line\nbreak", "\u{7F}", "\u{1}",
                     String(repeating: "x", count: 200), String(repeating: "\"", count: 40)]
        var rng = Seeded(state: 12)
        let alphabet: [Unicode.Scalar] = Array("abcXYZ_09 .\"'\\$;-*/()".unicodeScalars)
            + ["\u{1}", "\u{1F}", "\u{7F}", "\u{80}", "\u{A0}", "é", "ß", "Ж", "中", "\u{FEFF}", "\u{FFFD}", "😀", "\u{10FFFF}"]
        while fixed.count < count {
            let length = Int.random(in: 0...40, using: &rng)
            var s = String.UnicodeScalarView()
            for _ in 0..<length { s.append(alphabet.randomElement(using: &rng)!) }
            fixed.append(String(s))
        }
        return fixed
    }

    func testPureQuotingMatchesLibpqAndTheServerReadsItBack() throws {
        let c = try PGConnection(dsn)
        for name in Self.names(count: 5000) {
            let pure = try Identifier.quote(name)
            XCTAssertEqual(pure, try c.quoteIdentifier(name), "quoting of \(name.debugDescription)")
        }
        // The server reads every quoted name back as the original (names PostgreSQL would truncate at 63
        // bytes, and the empty name it refuses, aside).
        for name in Self.names(count: 300) where !name.isEmpty && name.utf8.count <= 63 {
            let r = try c.execute("SELECT 1 AS \(try Identifier(name))" as SQL)
            XCTAssertEqual(r.columnName(0), name, "column named \(name.debugDescription)")
        }
    }

    func testComposedValuesRunWithTheirParametersInPlace() throws {
        let c = try PGConnection(dsn)
        let query = SQL(unsafeRaw: "SELECT $1::text AS b, '$1' AS c, $2::int AS d -- $1", parameters: ["from the query", "7"])
        let filter: SQL = "x.d > \(3) AND x.b <> \("it's; DROP TABLE x; --")"
        let sql: SQL = "SELECT \(10)::int AS a, x.* FROM (\n\(query)\n) x WHERE \(filter)"
        XCTAssertEqual(sql.parameters, ["10", "from the query", "7", "3", "it's; DROP TABLE x; --"])
        let r = try c.execute(sql)
        XCTAssertEqual(r.rowCount, 1)
        XCTAssertEqual(r.int(0, 0), 10)
        XCTAssertEqual(r.string(0, 1), "from the query")
        XCTAssertEqual(r.string(0, 2), "$1")
        XCTAssertEqual(r.int(0, 3), 7)
        var rows = 0
        try c.stream(sql) { result in
            rows += result.rowCount
            return true
        }
        XCTAssertEqual(rows, 1)
        // A value with an unfilled slot never reaches the server.
        XCTAssertThrowsError(try c.execute("SELECT \(SQL.slot("z"))::int" as SQL))
        XCTAssertEqual(try c.execute("SELECT 1" as SQL).int(0, 0), 1, "connection stays usable")
    }
}
