import Config
import Foundation
import HTTPKit
@testable import LDSAPI
import Postgres
import XCTest

/// Requests charge LDS quotas from blocks a process holds (one quota round trip per block, not per
/// request). The quota must stay exact: two processes racing for it hand out exactly the quota, never
/// more, and every unit a block did not hand out goes back.
final class QuotaLeasesTests: XCTestCase {
    var database: TestDatabase!
    var account = ""

    override func setUpWithError() throws {
        database = try TestDatabase()
        account = try PGConnection(database.conninfo).execute("INSERT INTO accounts (name) VALUES ('it') RETURNING id::text").string(0, 0)!
    }

    override func tearDown() {
        database?.drop()
    }

    func store() throws -> QuotaStore {
        QuotaStore(metadata: PGPool(conninfo: database.conninfo, size: 4), config: try TesseraConfig.from([:]))
    }

    func used() throws -> Int {
        try PGConnection(database.conninfo).execute("SELECT COALESCE(sum(used), 0)::bigint FROM lds_usage WHERE service = 'geocoding'").int(0, 0)!
    }

    func testTwoProcessesRacingForAQuotaHandOutExactlyTheQuota() throws {
        let quota = 300
        try store().setQuota(account: account, service: .geocoding, quota: quota)
        let processes = [QuotaLeases(store: try store()), QuotaLeases(store: try store())]
        let tally = Tally()
        let account = self.account
        DispatchQueue.concurrentPerform(iterations: 12) { worker in
            let leases = processes[worker % 2]
            while true {
                do {
                    try leases.charge(account: account, service: .geocoding, units: 1)
                    tally.lock.withLock { tally.granted += 1 }
                } catch {
                    tally.lock.withLock { tally.refusals.append(error) }
                    return
                }
            }
        }
        let granted = tally.granted
        let refusals = tally.refusals.map { $0 as? APIError }
        XCTAssertEqual(granted, quota)
        XCTAssertEqual(refusals.count, 12, "every worker ends on a refusal")
        XCTAssertEqual(Set(refusals.map { $0?.code }), ["quota_exceeded"])
        XCTAssertEqual(Set(refusals.map { $0?.status }), [429])
        processes.forEach { $0.flush(account: account) }
        XCTAssertEqual(try used(), quota)
    }

    func testUnusedUnitsOfABlockGoBackAndRefundsReturnToTheBlock() throws {
        let leases = QuotaLeases(store: try store(), idleSeconds: 3600)  // only the explicit flush gives back
        try leases.charge(account: account, service: .geocoding, units: 1)
        XCTAssertGreaterThan(try used(), 1, "the first charge takes a block")
        try leases.charge(account: account, service: .geocoding, units: 2)
        leases.refund(account: account, service: .geocoding, units: 2)
        leases.flush(account: account)
        XCTAssertEqual(try used(), 1)
    }

    func testTheLastUnitsAreChargedOneRequestAtATimeAndABatchLargerThanTheRestTakesNothing() throws {
        try store().setQuota(account: account, service: .geocoding, quota: 5)
        let leases = QuotaLeases(store: try store())
        try leases.charge(account: account, service: .geocoding, units: 3)
        XCTAssertEqual(try used(), 3, "a block is at most an eighth of what is left")
        XCTAssertThrowsError(try leases.charge(account: account, service: .geocoding, units: 3)) { error in
            let e = error as? APIError
            XCTAssertEqual(e?.status, 429)
            XCTAssertEqual(e?.extra["used"], .int(3))
            XCTAssertEqual(e?.extra["quota"], .int(5))
        }
        try leases.charge(account: account, service: .geocoding, units: 2)
        XCTAssertEqual(try used(), 5)
    }
}

/// What the racing workers saw, behind one lock.
private final class Tally: @unchecked Sendable {
    let lock = NSLock()
    var granted = 0
    var refusals: [Error] = []
}
