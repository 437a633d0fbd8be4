import Foundation
import HTTPKit
import Jobs
import Postgres
import XCTest

final class JobQueueTests: XCTestCase {
    var db: TestDatabase!
    var pool: PGPool!
    var queue: JobQueue!

    override func setUpWithError() throws {
        db = try TestDatabase()
        pool = PGPool(conninfo: db.conninfo, size: 8)
        queue = JobQueue(pool: pool, retryBaseSeconds: 0.05)
    }

    override func tearDown() {
        pool?.drain()
        db?.drop()
    }

    func newJob(_ key: String? = nil, attempts: Int = 3) -> JobQueue.NewJob {
        var j = JobQueue.NewJob(queue: "test", kind: "noop", payload: ["n": 1], uniqueKey: key)
        j.maxAttempts = attempts
        return j
    }

    func testEnqueueClaimComplete() throws {
        let id = try XCTUnwrap(try queue.enqueue(newJob()))
        let jobs = try queue.claim(queue: "test", worker: "w1", leaseSeconds: 30)
        XCTAssertEqual(jobs.map(\.id), [id])
        XCTAssertEqual(jobs[0].attempt, 1)
        XCTAssertEqual(try queue.claim(queue: "test", worker: "w2", leaseSeconds: 30).count, 0, "a leased job is not claimed twice")
        XCTAssertTrue(try queue.complete(jobs[0], result: ["ok": true]))
        XCTAssertEqual(try queue.find(id: id)?.state, "completed")
        XCTAssertFalse(try queue.complete(jobs[0]), "completing twice changes nothing")
    }

    func testEnqueueIsTransactional() throws {
        let c = try PGConnection(db.conninfo)
        try c.execute("BEGIN")
        let id = try XCTUnwrap(try JobQueue.enqueue(newJob(), on: c))
        XCTAssertEqual(try queue.claim(queue: "test", worker: "w", leaseSeconds: 30).count, 0, "invisible before commit")
        try c.execute("ROLLBACK")
        XCTAssertNil(try queue.find(id: id), "a rolled-back enqueue never runs")
    }

    func testUniqueKeysHoldWhileNotFinal() throws {
        XCTAssertNotNil(try queue.enqueue(newJob("k")))
        XCTAssertNil(try queue.enqueue(newJob("k")))
        let job = try queue.claim(queue: "test", worker: "w", leaseSeconds: 30)[0]
        XCTAssertNil(try queue.enqueue(newJob("k")), "still running")
        _ = try queue.complete(job)
        XCTAssertNotNil(try queue.enqueue(newJob("k")), "a finished job frees its key")
    }

    func testConcurrentClaimsNeverShareAJob() throws {
        for _ in 0..<200 { try queue.enqueue(newJob()) }
        let seen = Counter()
        let queue = self.queue!
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            while let jobs = try? queue.claim(queue: "test", worker: "w\(i)", leaseSeconds: 30, limit: 3), !jobs.isEmpty {
                for job in jobs { seen.add(job.id) }
            }
        }
        XCTAssertEqual(seen.count, 200)
        XCTAssertEqual(seen.distinct, 200)
    }

    func testFailuresRetryWithBackoffThenDiscard() throws {
        let id = try XCTUnwrap(try queue.enqueue(newJob(attempts: 2)))
        var job = try queue.claim(queue: "test", worker: "w", leaseSeconds: 30)[0]
        XCTAssertEqual(try queue.fail(job, error: "boom 1"), "retryable")
        XCTAssertEqual(try queue.claim(queue: "test", worker: "w", leaseSeconds: 30).count, 0, "backing off")
        Thread.sleep(forTimeInterval: 0.3)
        job = try queue.claim(queue: "test", worker: "w", leaseSeconds: 30)[0]
        XCTAssertEqual(job.attempt, 2)
        XCTAssertEqual(try queue.fail(job, error: "boom 2"), "discarded")
        let final = try XCTUnwrap(try queue.find(id: id))
        XCTAssertEqual(final.state, "discarded")
        XCTAssertEqual(final.errors.arrayValue?.count, 2)
        XCTAssertEqual(final.lastError, "boom 2")
    }

    func testStaleLeaseCannotCompleteAfterRescue() throws {
        let id = try XCTUnwrap(try queue.enqueue(newJob()))
        let old = try queue.claim(queue: "test", worker: "dead", leaseSeconds: 1)[0]
        Thread.sleep(forTimeInterval: 1.2)
        XCTAssertEqual(try queue.rescueExpired(), 1)
        XCTAssertEqual(try queue.find(id: id)?.state, "retryable")
        let fresh = try queue.claim(queue: "test", worker: "alive", leaseSeconds: 30)[0]
        XCTAssertFalse(try queue.complete(old), "the partitioned worker's completion is rejected")
        XCTAssertFalse(try queue.heartbeat(old, leaseSeconds: 30))
        XCTAssertTrue(try queue.complete(fresh))
        XCTAssertEqual(try queue.find(id: id)?.errors.arrayValue?.count, 1, "the rescue is recorded")
    }

    func testCancelQueuedAndRunningJobs() throws {
        let queued = try XCTUnwrap(try queue.enqueue(newJob()))
        XCTAssertEqual(try queue.cancel(id: queued), "cancelled")
        let runningId = try XCTUnwrap(try queue.enqueue(newJob()))
        let running = try queue.claim(queue: "test", worker: "w", leaseSeconds: 30)[0]
        XCTAssertEqual(running.id, runningId)
        XCTAssertEqual(try queue.cancel(id: runningId), "running")
        XCTAssertFalse(try queue.heartbeat(running, leaseSeconds: 30), "the worker learns at its next heartbeat")
        try queue.acknowledgeCancel(running)
        XCTAssertEqual(try queue.find(id: runningId)?.state, "cancelled")
        XCTAssertTrue(try queue.retry(id: runningId))
        XCTAssertEqual(try queue.find(id: runningId)?.state, "available")
    }

    func testPruneKeepsRecentAndDiscardedLonger() throws {
        let done = try XCTUnwrap(try queue.enqueue(newJob()))
        _ = try queue.complete(try queue.claim(queue: "test", worker: "w", leaseSeconds: 30)[0])
        XCTAssertEqual(try queue.prune(completedHours: 1), 0)
        try pool.withConnection { _ = try $0.execute("UPDATE jobs SET finished_at = now() - interval '2 hours' WHERE id = $1", [String(done)]) }
        XCTAssertEqual(try queue.prune(completedHours: 1), 1)
        XCTAssertNil(try queue.find(id: done))
    }

    func testWorkerRunsJobsWokenByNotifyAndByPolling() throws {
        let counter = Counter()
        var options = Worker.Options(queue: "test")
        options.pollInterval = 0.5
        options.concurrency = 2
        let worker = Worker(queue: queue, conninfo: db.conninfo, options: options) { job, _ in
            counter.add(job.id)
            return ["done": true]
        }
        Thread { worker.run() }.start()
        defer { worker.stop() }
        for _ in 0..<20 { try queue.enqueue(newJob()) }
        // Without NOTIFY (a direct insert), polling still picks jobs up.
        try pool.withConnection { _ = try $0.execute("INSERT INTO jobs (queue, kind) VALUES ('test', 'silent')") }
        let deadline = Date().addingTimeInterval(10)
        while counter.count < 21 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertEqual(counter.count, 21)
        XCTAssertEqual(counter.distinct, 21, "no job ran twice")
        XCTAssertEqual(try queue.list(queue: "test", state: "completed").count, 21)
    }

    func testPoisonJobIsDiscardedAndOthersFlow() throws {
        let counter = Counter()
        var options = Worker.Options(queue: "test")
        options.pollInterval = 0.2
        let worker = Worker(queue: queue, conninfo: db.conninfo, options: options) { job, _ in
            if job.kind == "poison" { throw PermanentJobError("cannot parse input") }
            if job.kind == "flaky" { throw APIError.internalError("transient") }
            counter.add(job.id)
            return nil
        }
        Thread { worker.run() }.start()
        defer { worker.stop() }
        var poison = JobQueue.NewJob(queue: "test", kind: "poison")
        poison.maxAttempts = 5
        let poisonId = try XCTUnwrap(try queue.enqueue(poison))
        var flaky = JobQueue.NewJob(queue: "test", kind: "flaky")
        flaky.maxAttempts = 3
        let flakyId = try XCTUnwrap(try queue.enqueue(flaky))
        for _ in 0..<5 { try queue.enqueue(newJob()) }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if counter.count == 5, try queue.find(id: flakyId)?.state == "discarded" { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertEqual(counter.count, 5)
        XCTAssertEqual(try queue.find(id: poisonId)?.state, "discarded")
        XCTAssertEqual(try queue.find(id: poisonId)?.attempt, 1, "permanent errors are not retried")
        let flakyJob = try XCTUnwrap(try queue.find(id: flakyId))
        XCTAssertEqual(flakyJob.state, "discarded")
        XCTAssertEqual(flakyJob.attempt, 3)
        XCTAssertEqual(flakyJob.lastError, "transient")
    }

    func testBatchClaimsRunEachJobOnceAndReleaseTheUnstartedOnStop() throws {
        var options = Worker.Options(queue: "test")
        options.claimBatch = 8
        options.concurrency = 1
        options.softStop = 5
        let ran = Counter()
        let gate = Gate()
        let worker = Worker(queue: queue, conninfo: db.conninfo, options: options) { job, _ in
            ran.add(job.id)
            gate.pass()
            return ["ok": true]
        }
        let finished = Counter()
        Thread { worker.run(); finished.add(1) }.start()
        for _ in 0..<20 { try queue.enqueue(newJob()) }
        var deadline = Date().addingTimeInterval(10)
        while ran.count < 20 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        XCTAssertEqual(ran.count, 20)
        XCTAssertEqual(ran.distinct, 20, "no job ran twice")

        // Hold the next batch's first job, stop: the rest of that batch goes back to the queue at once.
        gate.set(open: false)
        try pool.transaction { db in for _ in 0..<5 { try JobQueue.enqueue(newJob(), on: db) } }
        deadline = Date().addingTimeInterval(10)
        while ran.count < 21 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        XCTAssertEqual(try queue.list(queue: "test", state: "running").count, 5, "one batch claimed")
        worker.stop()
        gate.set(open: true)
        deadline = Date().addingTimeInterval(10)
        while finished.count == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        XCTAssertEqual(finished.count, 1)
        XCTAssertEqual(try queue.list(queue: "test", state: "completed").count, 21)
        let released = try queue.list(queue: "test", state: "available")
        XCTAssertEqual(released.count, 4)
        XCTAssertTrue(released.allSatisfy { $0.attempt == 0 }, "a release does not use up an attempt")
    }

    func testStopReleasesLongJobsForImmediateRerun() throws {
        var options = Worker.Options(queue: "test")
        options.softStop = 0.5
        let started = Counter()
        let worker = Worker(queue: queue, conninfo: db.conninfo, options: options) { job, context in
            started.add(job.id)
            while !context.isCancelled { Thread.sleep(forTimeInterval: 0.02) }
            return nil
        }
        let finished = Counter()
        Thread { worker.run(); finished.add(1) }.start()
        let id = try XCTUnwrap(try queue.enqueue(newJob()))
        let deadline = Date().addingTimeInterval(5)
        while started.count == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        worker.stop()
        let stopDeadline = Date().addingTimeInterval(5)
        while finished.count == 0 && Date() < stopDeadline { Thread.sleep(forTimeInterval: 0.02) }
        XCTAssertEqual(finished.count, 1, "the worker exits after its soft stop")
        let job = try XCTUnwrap(try queue.find(id: id))
        XCTAssertEqual(job.state, "available", "released, not left running until its lease expires")
        XCTAssertEqual(job.attempt, 0, "a release does not use up an attempt")
    }

    func testClaimSkipsExcludedKinds() throws {
        let background = try XCTUnwrap(try queue.enqueue(JobQueue.NewJob(queue: "test", kind: "level_build")))
        let user = try XCTUnwrap(try queue.enqueue(JobQueue.NewJob(queue: "test", kind: "batch_query")))
        XCTAssertEqual(try queue.claim(queue: "test", worker: "w", leaseSeconds: 30, limit: 10, excludingKinds: ["level_build"]).map(\.id),
                       [user], "the older background job is passed over")
        XCTAssertEqual(try queue.claim(queue: "test", worker: "w", leaseSeconds: 30, limit: 10).map(\.id), [background])
    }

    /// A burst of background jobs (level builds after a data change) holds every thread but one: a user's
    /// job queued behind the burst still runs at once, on the thread kept free of them.
    func testBackgroundJobsLeaveAThreadForOthers() throws {
        let gate = Gate()
        gate.set(open: false)
        defer { gate.set(open: true) }
        let started = Counter()
        let done = Counter()
        var options = Worker.Options(queue: "test")
        options.pollInterval = 0.2
        options.concurrency = 3
        options.backgroundKinds = ["level_build"]
        let worker = Worker(queue: queue, conninfo: db.conninfo, options: options) { job, _ in
            if job.kind == "level_build" {
                started.add(job.id)
                gate.pass()
            }
            done.add(job.id)
            return nil
        }
        Thread { worker.run() }.start()
        defer { worker.stop() }
        for _ in 0..<6 { try queue.enqueue(JobQueue.NewJob(queue: "test", kind: "level_build")) }
        var deadline = Date().addingTimeInterval(20)
        while started.count < 2 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertEqual(started.count, 2, "two of three threads take background jobs")
        let user = try XCTUnwrap(try queue.enqueue(JobQueue.NewJob(queue: "test", kind: "batch_query")))
        deadline = Date().addingTimeInterval(20)
        while try queue.find(id: user)?.state != "completed" && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertEqual(try queue.find(id: user)?.state, "completed", "the user's job did not wait for the burst")
        XCTAssertEqual(started.count, 2, "the free thread never took a background job")
        gate.set(open: true)
        deadline = Date().addingTimeInterval(20)
        while done.count < 7 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertEqual(done.count, 7, "the burst runs to its end on the other threads")
    }

}

/// Holds job handlers while closed.
final class Gate: @unchecked Sendable {
    private let condition = NSCondition()
    private var open = true
    func pass() {
        condition.lock()
        while !open { condition.wait() }
        condition.unlock()
    }
    func set(open: Bool) {
        condition.lock()
        self.open = open
        condition.broadcast()
        condition.unlock()
    }
}

/// Thread-safe tally for worker tests.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: [Int64] = []
    func add(_ id: Int64) { lock.withLock { ids.append(id) } }
    var count: Int { lock.withLock { ids.count } }
    var distinct: Int { lock.withLock { Set(ids).count } }
}
