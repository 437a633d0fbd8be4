import Foundation
import HTTPKit
import Postgres
import XCTest

/// A warehouse pool wired as the servers wire it runs the check-in reset on the request's own thread after
/// the response; a second checkout on the same thread must not wait for a reset only that thread would run.
final class PooledResetSchedulingTests: XCTestCase {
    var superuser = ""

    override func setUpWithError() throws {
        superuser = try IntegrationEnvironment.require(IntegrationEnvironment.superuserDSN, "STACK_SUPERUSER_DSN")
    }

    /// Runs `body` on a fresh thread marked as a server thread, as FastCGIServer's workers are.
    func onServerThread(_ body: @escaping @Sendable () throws -> Void) throws {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: Error?
        let thread = Thread {
            AfterResponse.serve()
            do { try body() } catch { failure = error }
            AfterResponse.run()
            done.signal()
        }
        thread.start()
        done.wait()
        if let failure { throw failure }
    }

    func testTheResetWaitsForTheResponseButNotForTheSameThreadsNextCheckout() throws {
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        // Waiting for the reset only this thread would run ends in this timeout's 53300, failing the test.
        pool.checkoutTimeout = 5
        pool.scheduleReset = AfterResponse.schedule
        pool.runScheduledResets = AfterResponse.run
        let resetsAfterFirst = Box()
        try onServerThread {
            try pool.withSession(.readOnly) { db in
                _ = try db.execute("SELECT set_config('tessera.poison', 'yes', false)")
                resetsAfterFirst.value = db.resets.readOnly + db.resets.full
            }
            // Checked in, but not reset yet: the reset is this thread's, queued for after the response.
            try pool.withSession(.readOnly) { db in
                XCTAssertEqual(db.resets.readOnly + db.resets.full, resetsAfterFirst.value + 1, "ran before this checkout")
                XCTAssertEqual(try db.execute("SELECT coalesce(current_setting('tessera.poison', true), '')").string(0, 0), "")
            }
        }
        // The second checkout's reset ran when the thread's "response" ended: the pool has an idle connection.
        try pool.withSession(.readOnly) { db in
            XCTAssertEqual(db.resets.readOnly + db.resets.full, resetsAfterFirst.value + 2)
        }
    }

    func testOffAServerThreadTheResetRunsInTheBackground() throws {
        XCTAssertFalse(AfterResponse.schedule {}, "this test's thread serves no requests")
        let pool = PGPool(conninfo: superuser, size: 1, resetsSessions: true)
        pool.scheduleReset = AfterResponse.schedule
        pool.runScheduledResets = AfterResponse.run
        try pool.withSession(.readOnly) { db in _ = try db.execute("SELECT set_config('tessera.poison', 'yes', false)") }
        try pool.withSession(.readOnly) { db in
            XCTAssertEqual(try db.execute("SELECT coalesce(current_setting('tessera.poison', true), '')").string(0, 0), "")
        }
    }
}

private final class Box: @unchecked Sendable {
    var value = 0
}
