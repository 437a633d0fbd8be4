import Foundation
import HTTPKit
import Jobs
import Postgres
import XCTest

/// Scale-out: a job pinned to a node (an upload stored on that VM's disk) is claimed only by that
/// node's workers, and keeps its pin through rescue and retry; unpinned jobs go to anyone.
final class JobAffinityTests: XCTestCase {
    var db: TestDatabase!
    var pool: PGPool!
    var queue: JobQueue!

    override func setUpWithError() throws {
        db = try TestDatabase()
        pool = PGPool(conninfo: db.conninfo, size: 4)
        queue = JobQueue(pool: pool, retryBaseSeconds: 0.05)
    }

    override func tearDown() {
        pool?.drain()
        db?.drop()
    }

    func enqueue(node: String?) throws -> Int64 {
        var job = JobQueue.NewJob(queue: "imports", kind: "import", payload: ["n": 1])
        job.node = node
        return try XCTUnwrap(try queue.enqueue(job))
    }

    func testOnlyTheNamedNodeClaimsAPinnedJob() throws {
        let onB = try enqueue(node: "vm-b")
        let onA = try enqueue(node: "vm-a")
        let anywhere = try enqueue(node: nil)
        let a = try queue.claim(queue: "imports", worker: "a", leaseSeconds: 30, limit: 10, node: "vm-a")
        XCTAssertEqual(Set(a.map(\.id)), [onA, anywhere], "vm-a takes its own and the unpinned, never vm-b's")
        XCTAssertEqual(try queue.claim(queue: "imports", worker: "x", leaseSeconds: 30, limit: 10).count, 0,
                       "a worker of no node takes no pinned job")
        XCTAssertEqual(try queue.claim(queue: "imports", worker: "a", leaseSeconds: 30, limit: 10, node: "vm-a").count, 0)
        XCTAssertEqual(try queue.find(id: onB)?.state, "available", "vm-b's upload waits for vm-b")
        let b = try queue.claim(queue: "imports", worker: "b", leaseSeconds: 30, limit: 10, node: "vm-b")
        XCTAssertEqual(b.map(\.id), [onB])
    }

    func testRescuedAndRetriedJobsKeepTheirNode() throws {
        let id = try enqueue(node: "vm-b")
        // A lease that is already over: the worker "died", the rescue makes the job retryable.
        _ = try XCTUnwrap(try queue.claim(queue: "imports", worker: "b1", leaseSeconds: 0, node: "vm-b").first)
        XCTAssertEqual(try queue.rescueExpired(), 1)
        XCTAssertEqual(try queue.claim(queue: "imports", worker: "a", leaseSeconds: 30, node: "vm-a").count, 0,
                       "a rescued upload does not move to another node")
        let again = try XCTUnwrap(try queue.claim(queue: "imports", worker: "b2", leaseSeconds: 30, node: "vm-b").first)
        XCTAssertEqual(again.id, id)
        XCTAssertEqual(try queue.fail(again, error: "boom", permanent: true), "discarded")
        XCTAssertTrue(try queue.retry(id: id))
        XCTAssertEqual(try queue.claim(queue: "imports", worker: "a", leaseSeconds: 30, node: "vm-a").count, 0,
                       "a retried upload does not move to another node")
        XCTAssertEqual(try queue.claim(queue: "imports", worker: "b3", leaseSeconds: 30, node: "vm-b").map(\.id), [id])
    }
}
