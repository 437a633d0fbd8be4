import Foundation
import HTTPKit
@testable import Platform
import XCTest

final class TokenRecordTests: XCTestCase {
    func testParseDateInternetDateTime() throws {
        let d = try XCTUnwrap(TokenRecord.parseDate("2024-03-05T06:07:08Z"))
        XCTAssertEqual(d.timeIntervalSince1970, 1_709_618_828)
        let offset = try XCTUnwrap(TokenRecord.parseDate("2024-03-05T08:07:08+02:00"))
        XCTAssertEqual(offset, d)
    }

    func testParseDateFractionalSeconds() throws {
        let d = try XCTUnwrap(TokenRecord.parseDate("2024-03-05T06:07:08.250Z"))
        XCTAssertEqual(d.timeIntervalSince1970, 1_709_618_828.25, accuracy: 0.001)
    }

    func testParseDateOnly() throws {
        let d = try XCTUnwrap(TokenRecord.parseDate("2024-03-05"))
        XCTAssertEqual(d.timeIntervalSince1970, 1_709_596_800)
    }

    func testParseDateRejectsGarbage() {
        XCTAssertNil(TokenRecord.parseDate(""))
        XCTAssertNil(TokenRecord.parseDate("tomorrow"))
        XCTAssertNil(TokenRecord.parseDate("2024-13-45T00:00:00Z"))
        XCTAssertNil(TokenRecord.parseDate("05/03/2024"))
    }

    func testFormatDateRoundTrip() throws {
        let d = Date(timeIntervalSince1970: 1_709_618_828)
        XCTAssertEqual(TokenRecord.formatDate(d), "2024-03-05T06:07:08Z")
        XCTAssertEqual(TokenRecord.parseDate(TokenRecord.formatDate(d)), d)
    }

    func testCacheEntryRoundTrip() throws {
        let record = TokenRecord(id: "22222222-2222-2222-2222-222222222222", accountId: "acc", createdBy: "user-1",
                                 grants: [Grant(connectionName: "carto_dw", source: "public.cities"),
                                          Grant(connectionName: "carto_dw", source: "SELECT 1")],
                                 referers: ["https://*.example.com"], allowedAPIs: ["sql", "maps"],
                                 expiresAt: Date(timeIntervalSince1970: 1_800_000_000), createdAt: Date(timeIntervalSince1970: 1_700_000_000))
        let restored = try TokenRecord(cacheEntry: record.cacheEntry())
        XCTAssertEqual(restored.id, record.id)
        XCTAssertEqual(restored.accountId, "acc")
        XCTAssertEqual(restored.createdBy, "user-1")
        XCTAssertEqual(restored.grants, record.grants)
        XCTAssertEqual(restored.referers, record.referers)
        XCTAssertEqual(restored.allowedAPIs, ["sql", "maps"])
        XCTAssertEqual(restored.expiresAt, record.expiresAt)
        XCTAssertEqual(restored.createdAt, record.createdAt)
        XCTAssertNil(restored.mapId)
    }

    /// A cached map token must stay a map token (it is read-only and never sees jobs because of it).
    func testCacheEntryKeepsTheMap() throws {
        let record = TokenRecord(id: "t", accountId: "acc", createdBy: "owner", grants: [], referers: [], allowedAPIs: ["sql"],
                                 expiresAt: nil, createdAt: nil, mapId: "map-1")
        XCTAssertEqual(try TokenRecord(cacheEntry: record.cacheEntry()).mapId, "map-1")
        XCTAssertNil(record.json()["map_id"], "the Tokens API shape is unchanged")
    }

    func testPublicJSONOmitsAccount() {
        let record = TokenRecord(id: "t", accountId: "acc", createdBy: nil, grants: [], referers: [], allowedAPIs: ["sql"],
                                 expiresAt: nil, createdAt: nil)
        let json = record.json()
        XCTAssertNil(json["account_id"])
        XCTAssertEqual(json["expiration_date"], .null)
        XCTAssertEqual(json["allowed_apis"], ["sql"])
    }
}
