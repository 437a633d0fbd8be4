import HTTPKit
@testable import Platform
import XCTest

final class ConnectionRecordTests: XCTestCase {
    private func record(host: String = "db.example.com", database: String = "analytics", user: String = "reader",
                        sealed: [UInt8]? = [1, 2, 3]) -> ConnectionRecord {
        ConnectionRecord(id: "11111111-1111-1111-1111-111111111111", accountId: "acc", name: "pg", host: host, port: 5433,
                         database: database, username: user, passwordSealed: sealed, sslmode: "require",
                         createdAt: "2024-01-02T03:04:05Z", updatedAt: "2024-01-03 00:00:00+00")
    }

    func testConninfoQuotesEveryValue() {
        let info = record().conninfo(password: "pw", statementTimeoutMs: nil)
        XCTAssertTrue(info.contains("host='db.example.com'"), info)
        XCTAssertTrue(info.contains("port=5433"), info)
        XCTAssertTrue(info.contains("dbname='analytics'"), info)
        XCTAssertTrue(info.contains("user='reader'"), info)
        XCTAssertTrue(info.contains("sslmode='require'"), info)
        XCTAssertTrue(info.contains("password='pw'"), info)
        XCTAssertFalse(info.contains("options="), info)
    }

    func testPasswordWithQuoteAndBackslashIsEscaped() {
        let info = record().conninfo(password: #"a'b\c"#, statementTimeoutMs: nil)
        XCTAssertTrue(info.hasSuffix(#"password='a\'b\\c'"#), info)
    }

    func testInjectionThroughValuesIsNeutralised() {
        let info = record(database: "x' host='evil", user: #"u\"#).conninfo(password: "p' sslmode='disable", statementTimeoutMs: nil)
        XCTAssertTrue(info.contains(#"dbname='x\' host=\'evil'"#), info)
        XCTAssertTrue(info.contains(#"user='u\\'"#), info)
        XCTAssertTrue(info.contains(#"password='p\' sslmode=\'disable'"#), info)
        XCTAssertEqual(info.components(separatedBy: "sslmode='require'").count, 2)
    }

    func testNoPassword() {
        XCTAssertFalse(record().conninfo(password: nil, statementTimeoutMs: nil).contains("password"))
    }

    func testOptionsCarryStatementTimeout() {
        let info = record().conninfo(password: nil, statementTimeoutMs: 15000)
        XCTAssertTrue(info.contains("options='-c statement_timeout=15000'"), info)
    }

    func testJSONNeverIncludesPassword() {
        let json = record().json()
        XCTAssertEqual(json["has_password"], true)
        XCTAssertEqual(json["port"], 5433)
        XCTAssertEqual(json["user"], "reader")
        XCTAssertNil(json["password"])
        XCTAssertNil(json["password_enc"])
        XCTAssertEqual(record(sealed: nil).json()["has_password"], false)
    }

    func testCacheEntryRoundTrip() throws {
        let original = record(sealed: [0xDE, 0xAD, 0xBE, 0xEF])
        let restored = try ConnectionRecord(cacheEntry: original.cacheEntry)
        XCTAssertEqual(restored.id, original.id)
        XCTAssertEqual(restored.accountId, "acc")
        XCTAssertEqual(restored.host, original.host)
        XCTAssertEqual(restored.port, 5433)
        XCTAssertEqual(restored.passwordSealed, [0xDE, 0xAD, 0xBE, 0xEF])
        XCTAssertEqual(restored.createdAt, original.createdAt)
        XCTAssertEqual(restored.updatedAt, original.updatedAt)
        XCTAssertNil(try ConnectionRecord(cacheEntry: record(sealed: nil).cacheEntry).passwordSealed)
        XCTAssertThrowsError(try ConnectionRecord(cacheEntry: Array(#"{"id":"x"}"#.utf8)))
    }
}
