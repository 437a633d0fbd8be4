import Foundation
import Jobs
import Postgres
import XCTest

/// A restarted worker takes back, at start, the running jobs its dead predecessor on this machine
/// held — and only those: live siblings' and other machines' jobs stay theirs.
final class WorkerReclaimTests: XCTestCase {
    var db: TestDatabase!
    var pool: PGPool!
    var queue: JobQueue!
    var me: WorkerIdentity!
    var sleepers: [Process] = []

    override func setUpWithError() throws {
        db = try TestDatabase()
        pool = PGPool(conninfo: db.conninfo, size: 4)
        queue = JobQueue(pool: pool, retryBaseSeconds: 0.05)
        me = try XCTUnwrap(WorkerIdentity.current(), "this machine has an /etc/machine-id")
    }

    override func tearDown() {
        for p in sleepers where p.isRunning { p.terminate(); p.waitUntilExit() }
        pool?.drain()
        db?.drop()
    }

    /// A real process of this machine as a worker identity (alive until killed).
    func sleeper() throws -> (Process, WorkerIdentity) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sleep")
        p.arguments = ["600"]
        try p.run()
        sleepers.append(p)
        let start = try XCTUnwrap(WorkerIdentity.startTime(of: p.processIdentifier))
        return (p, WorkerIdentity(machine: me.machine, boot: me.boot, pidNamespace: me.pidNamespace, pid: p.processIdentifier, start: start,
                                  host: "sibling"))
    }

    /// A job of `queue` claimed by `holder` with a lease far too long to expire during the test.
    func runningJob(held holder: String, queue name: String = "test") throws -> Int64 {
        let id = try XCTUnwrap(try queue.enqueue(JobQueue.NewJob(queue: name, kind: "noop")))
        let claimed = try queue.claim(queue: name, worker: holder, leaseSeconds: 3600)
        XCTAssertEqual(claimed.map(\.id), [id])
        return id
    }

    func testIdentityRoundTripsThroughLockedBy() throws {
        XCTAssertEqual(WorkerIdentity(parsing: me.text), me)
        XCTAssertNil(WorkerIdentity(parsing: "oldhost:1234"), "the older host:pid form is left to lease expiry")
        XCTAssertFalse(me.isGone(seenFrom: me))
        XCTAssertNotEqual(me.pidNamespace, "-", "this system's PID namespace is readable")
        XCTAssertTrue(WorkerIdentity(parsing: "m:t1700000000:4026531836:12:34:h").map { $0.boot == "t1700000000" && $0.host == "h" } ?? false)
    }

    func testReclaimsOnlyJobsOfDeadProcessesOfThisMachineAndQueue() throws {
        let (dead, deadIdentity) = try sleeper()
        dead.terminate()
        dead.waitUntilExit()
        let (_, live) = try sleeper()
        let reused = WorkerIdentity(machine: me.machine, boot: me.boot, pidNamespace: me.pidNamespace, pid: live.pid, start: live.start + 1,
                                    host: "old")
        // Same pid and start time as the dead process, but not provably this system's: left to lease expiry.
        func like(_ d: WorkerIdentity, machine: String? = nil, boot: String? = nil, pidNamespace: String? = nil) -> WorkerIdentity {
            WorkerIdentity(machine: machine ?? d.machine, boot: boot ?? d.boot, pidNamespace: pidNamespace ?? d.pidNamespace, pid: d.pid,
                           start: d.start, host: "elsewhere")
        }
        let elsewhere = like(deadIdentity, machine: "0123456789abcdef0123456789abcdef")
        let otherBoot = like(deadIdentity, boot: me.boot.hasPrefix("t") ? "t1" : "00000000-0000-4000-8000-000000000000")
        let otherContainer = like(deadIdentity, pidNamespace: "1")

        let ofDead = try runningJob(held: deadIdentity.text)
        let ofReusedPid = try runningJob(held: reused.text)
        let ofLiveSibling = try runningJob(held: live.text)
        let ofOtherMachine = try runningJob(held: elsewhere.text)
        let ofOtherBoot = try runningJob(held: otherBoot.text)
        let ofOtherContainer = try runningJob(held: otherContainer.text)
        let ofOldFormat = try runningJob(held: "somehost:\(deadIdentity.pid)")
        let ofOtherQueue = try runningJob(held: deadIdentity.text, queue: "other")

        let reclaimed = try queue.reclaimDead(queue: "test", me: me)
        XCTAssertEqual(Set(reclaimed), [ofDead, ofReusedPid])
        for id in [ofDead, ofReusedPid] {
            let job = try XCTUnwrap(try queue.find(id: id))
            XCTAssertEqual(job.state, "retryable")
            XCTAssertTrue(job.lastError?.contains("reclaimed by its successor") ?? false, "\(job.errors)")
        }
        for id in [ofLiveSibling, ofOtherMachine, ofOtherBoot, ofOtherContainer, ofOldFormat, ofOtherQueue] {
            XCTAssertEqual(try queue.find(id: id)?.state, "running", "job \(id) is not the dead predecessor's")
        }
        let again = try queue.claim(queue: "test", worker: me.text, leaseSeconds: 30, limit: 10)
        XCTAssertEqual(Set(again.map(\.id)), [ofDead, ofReusedPid], "runnable at once")
    }

    func testStartingWorkerRunsItsDeadPredecessorsJob() throws {
        let (dead, predecessor) = try sleeper()
        dead.terminate()
        dead.waitUntilExit()
        // A 1-hour lease: only the reclaim at start can get this job running during the test.
        let id = try runningJob(held: predecessor.text)
        let ran = Counter()
        let worker = Worker(queue: queue, conninfo: db.conninfo, options: Worker.Options(queue: "test")) { job, _ in
            ran.add(job.id)
            return ["ok": true]
        }
        Thread { worker.run() }.start()
        defer { worker.stop() }
        let deadline = Date().addingTimeInterval(60)
        while try queue.find(id: id)?.state != "completed" && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertEqual(try queue.find(id: id)?.state, "completed")
        XCTAssertEqual(ran.count, 1)
    }
}
