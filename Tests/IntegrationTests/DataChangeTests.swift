import Foundation
import HTTPKit
import Jobs
import Platform
import Postgres
import XCTest

/// DataChange.record is what every writer calls after a write: both consequences, the connection's cache purge
/// and its levels refresh, are queued, and they commit or vanish with the caller's transaction.
final class DataChangeTests: XCTestCase {
    var db: TestDatabase!
    var pool: PGPool!
    var account = ""

    override func setUpWithError() throws {
        db = try TestDatabase()
        pool = PGPool(conninfo: db.conninfo, size: 2)
        account = try pool.withConnection { try $0.execute("INSERT INTO accounts (name) VALUES ('org') RETURNING id").string(0, 0) ?? "" }
    }

    override func tearDown() {
        pool?.drain()
        db?.drop()
    }

    func jobs() throws -> String {
        try pool.withConnection {
            try $0.execute("""
                SELECT coalesce(string_agg(queue || '/' || kind || '/' || (payload->>'connection') || '/' || coalesce(payload->>'table', '-')
                                           || '/' || (account_id::text = $1)::text, ' ' ORDER BY id), '') FROM jobs
                """, [account]).string(0, 0) ?? ""
        }
    }

    func testARecordQueuesThePurgeWithItsRepeatsAndTheLevelsRefresh() throws {
        try DataChange.record(account: account, connection: "dw", table: "public.t", pool: pool)
        XCTAssertEqual(try jobs(), [
            "cdn/data_changed/dw/public.t/true", "cdn/data_changed/dw/public.t/true", "cdn/data_changed/dw/public.t/true",
            "sql/levels_refresh/dw/-/true", "sql/levels_refresh/dw/-/true",
        ].joined(separator: " "))
    }

    func testARolledBackWriteQueuesNothing() throws {
        struct Abort: Error {}
        XCTAssertThrowsError(try pool.transaction { meta in
            try DataChange.record(account: account, connection: "dw", on: meta)
            throw Abort()
        })
        XCTAssertEqual(try jobs(), "")
    }
}
