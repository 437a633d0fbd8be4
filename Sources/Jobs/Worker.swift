import Foundation
import HTTPKit
import Observability
import Postgres
import SQLKit

/// What a job handler gets besides the job: progress reporting and cancellation.
public final class JobContext: @unchecked Sendable {
    public let job: Job
    private let lock = NSLock()
    private var cancelled = false
    private var lost = false
    private var finished = false
    private var latestProgress: JSON?
    /// When the lease was last renewed; only the worker's lease thread reads and writes it.
    var lastBeat = Date()

    init(job: Job) { self.job = job }

    /// True once the job was cancelled, its lease lost, or the worker is shutting down past its grace:
    /// handlers check it between units of work and stop.
    public var isCancelled: Bool { lock.withLock { cancelled } }
    func cancel() { lock.withLock { cancelled = true } }

    /// The heartbeat found the job cancelled or its lease taken over: stop, and do not release it.
    func loseLease() { lock.withLock { lost = true; cancelled = true } }
    var leaseLost: Bool { lock.withLock { lost } }

    /// The handler has returned: its lease is no longer renewed.
    func finish() { lock.withLock { finished = true } }
    var isFinished: Bool { lock.withLock { finished } }

    /// Stored with the next heartbeat (so progress costs no extra writes).
    public func report(progress: JSON) { lock.withLock { latestProgress = progress } }
    func takeProgress() -> JSON? { lock.withLock { defer { latestProgress = nil }; return latestProgress } }
}

/// A job failure that retrying cannot fix (bad input): the job is discarded at once with this message.
public struct PermanentJobError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Runs a queue's jobs: `concurrency` threads claim with SKIP LOCKED, woken by LISTEN/NOTIFY and by a
/// poll interval (notifications are only hints). One lease thread renews the leases of all running jobs
/// (a job costs no thread of its own); expired leases are rescued and old jobs pruned. SIGTERM stops claiming, lets running jobs finish within `softStop`,
/// then releases what is left so it runs again at once elsewhere.
public final class Worker: @unchecked Sendable {
    public typealias Handler = @Sendable (Job, JobContext) throws -> JSON?

    public struct Options: Sendable {
        public var queue: String
        public var concurrency = 2
        public var leaseSeconds = 30
        public var pollInterval = 1.0
        public var softStop = 20.0
        public var rescueInterval = 15.0
        public var pruneInterval = 3600.0
        /// Jobs a thread claims per round trip and then runs one after the other. Only for queues whose
        /// jobs take far less than the lease (the later ones of a batch wait, leased, and their
        /// `started_at` is the claim time); claimed jobs not started at SIGTERM are released at once.
        public var claimBatch = 1
        /// The node this worker runs on: it also takes jobs pinned to it (see `JobQueue.NewJob.node`).
        public var node: String?
        /// Kinds that run in the background of the queue (level builds behind a data change): one thread
        /// never claims them, so a burst of them cannot keep a user's job waiting for a free thread. With
        /// one thread there is nothing to keep free, and that thread runs every kind.
        public var backgroundKinds: [String] = []
        public init(queue: String) { self.queue = queue }
    }

    let queue: JobQueue
    let conninfo: String
    let options: Options
    let handler: Handler
    let name: String
    private let identity: WorkerIdentity?
    private let wake = NSCondition()
    private var pending = 0
    private let state = NSLock()
    private var stopping = false
    private var running: [Int64: JobContext] = [:]
    private var threads = 0
    private var workThreads = 0

    public init(queue: JobQueue, conninfo: String, options: Options, handler: @escaping Handler) {
        self.queue = queue
        self.conninfo = conninfo
        self.options = options
        self.handler = handler
        identity = WorkerIdentity.current()
        name = identity?.text ?? "\(ProcessInfo.processInfo.hostName):\(getpid())"
    }

    /// A predecessor on this machine that was killed (kill -9, OOM, crash) held its jobs' leases: take
    /// them back now, so they run again within seconds of the restart instead of after lease + rescue.
    private func reclaimPredecessorsJobs() {
        guard let identity else { return }
        do {
            let ids = try queue.reclaimDead(queue: options.queue, me: identity)
            if !ids.isEmpty { Log.warning("jobs_reclaimed", [("queue", options.queue), ("count", ids.count), ("jobs", ids.map(String.init).joined(separator: ","))]) }
        } catch {
            // The database may still be starting: lease expiry and the rescue pass cover these jobs.
            Log.warning("reclaim_failed", [("queue", options.queue), ("error", String(describing: error))])
        }
    }

    /// Serves until `stop()`; returns when every worker thread has finished.
    public func run() {
        reclaimPredecessorsJobs()
        start(Thread { [self] in listenLoop() })
        start(Thread { [self] in maintenanceLoop() })
        state.withLock { workThreads = options.concurrency }
        start(Thread { [self] in leaseLoop() })
        for n in 0..<options.concurrency {
            let keepsFree = n == 0 && options.concurrency > 1
            start(Thread { [self] in workLoop(excluding: keepsFree ? options.backgroundKinds : []) })
        }
        Log.info("worker_started", [("queue", options.queue), ("concurrency", options.concurrency), ("worker", name)])
        while state.withLock({ threads }) > 0 { usleep(50_000) }
        Log.info("worker_stopped", [("queue", options.queue)])
    }

    private func start(_ thread: Thread) {
        state.withLock { threads += 1 }
        thread.stackSize = 2 << 20
        thread.start()
    }

    private func finished() { state.withLock { threads -= 1 } }

    /// Begins a graceful stop (call from the signal handler thread).
    public func stop() {
        state.withLock { stopping = true }
        wake.lock(); wake.broadcast(); wake.unlock()
        let deadline = Date().addingTimeInterval(options.softStop)
        Thread { [self] in
            while Date() < deadline, state.withLock({ !running.isEmpty }) { usleep(100_000) }
            // Past the grace period: ask handlers to stop; their jobs are released (not failed).
            for context in state.withLock({ Array(running.values) }) { context.cancel() }
        }.start()
    }

    var isStopping: Bool { state.withLock { stopping } }

    private func notify() {
        wake.lock()
        pending += 1
        wake.broadcast()
        wake.unlock()
    }

    // MARK: loops

    private func workLoop(excluding kinds: [String]) {
        var claimed: ArraySlice<Job> = []
        defer {
            // Claimed in a batch but not started: runnable again at once, elsewhere.
            for job in claimed { try? queue.release(job) }
            state.withLock { workThreads -= 1 }
            finished()
        }
        while !isStopping {
            if let job = claimed.popFirst() {
                execute(job)
                continue
            }
            do {
                claimed = ArraySlice(try queue.claim(queue: options.queue, worker: name, leaseSeconds: options.leaseSeconds,
                                                     limit: max(1, options.claimBatch), node: options.node,
                                                     excludingKinds: kinds))
            } catch {
                Log.warning("claim_failed", [("queue", options.queue), ("error", String(describing: error))])
                sleepUntilWoken(options.pollInterval)
                continue
            }
            if claimed.isEmpty { sleepUntilWoken(options.pollInterval) }
        }
    }

    private func sleepUntilWoken(_ seconds: Double) {
        wake.lock()
        if pending == 0 && !isStopping { _ = wake.wait(until: Date().addingTimeInterval(seconds)) }
        if pending > 0 { pending -= 1 }
        wake.unlock()
    }

    private func execute(_ job: Job) {
        let context = JobContext(job: job)
        state.withLock { running[job.id] = context }
        defer { _ = state.withLock { running.removeValue(forKey: job.id) } }
        let started = Date()
        Log.debug("job_started", [("queue", job.queue), ("job", job.id), ("kind", job.kind), ("attempt", job.attempt)])
        var outcome: Result<JSON?, Error>
        do { outcome = .success(try handler(job, context)) } catch { outcome = .failure(error) }
        context.finish()
        // Progress reported after the last beat is kept too.
        if let progress = context.takeProgress() { _ = try? queue.heartbeat(job, leaseSeconds: options.leaseSeconds, progress: progress) }
        // Recording the outcome is fenced by the lease token, so repeating it is safe: retry briefly (the
        // database may be restarting) before leaving the job to lease expiry and the rescuer.
        for attempt in 1...5 {
            do {
                try record(outcome, of: job, context: context, cancelRequested: context.leaseLost, started: started)
                break
            } catch {
                guard attempt < 5 else {
                    Log.error("job_bookkeeping_failed", [("job", job.id), ("error", String(describing: error))])
                    break
                }
                Log.warning("job_bookkeeping_retry", [("job", job.id), ("attempt", attempt), ("error", String(describing: error))])
                Thread.sleep(forTimeInterval: 0.25 * Double(1 << attempt))
            }
        }
    }

    private func record(_ outcome: Result<JSON?, Error>, of job: Job, context: JobContext, cancelRequested: Bool, started: Date) throws {
        let seconds = Date().timeIntervalSince(started)
        func observe(_ outcome: String) {
            Metrics.shared.histogram("tessera_job_duration_seconds", "Time a job's handler ran, by queue, kind and outcome.",
                                     [("queue", job.queue), ("kind", job.kind), ("outcome", outcome)]).observe(seconds)
        }
        switch outcome {
        case .success(let result) where !context.isCancelled:
            // Handlers that commit their side effect together with completion return nil after doing so.
            if let result { _ = try queue.complete(job, result: result) } else if try queue.find(id: job.id)?.state == "running" {
                _ = try queue.complete(job)
            }
            observe("completed")
            Log.info("job_completed", [("job", job.id), ("ms", Int(Date().timeIntervalSince(started) * 1000))])
        case _ where context.isCancelled:
            if try queue.find(id: job.id)?.state == "completed" {
                // The handler committed the completion with its side effect just before it saw the flag
                // (a heartbeat finds such a job no longer running).
                observe("completed")
                Log.info("job_completed", [("job", job.id), ("ms", Int(Date().timeIntervalSince(started) * 1000))])
            } else if isStopping && !cancelRequested {
                try queue.release(job)
                observe("released")
                Log.info("job_released", [("job", job.id)])
            } else {
                try queue.acknowledgeCancel(job)
                observe("cancelled")
                Log.info("job_cancelled", [("job", job.id)])
            }
        case .failure(let error):
            let permanent = error is PermanentJobError
            let message = (error as? PermanentJobError)?.message ?? (error as? APIError)?.message ?? String(describing: error)
            let state = try queue.fail(job, error: message, permanent: permanent)
            observe(state == "discarded" ? "discarded" : "failed")
            Log.warning("job_failed", [("job", job.id), ("state", state), ("error", message)])
        default:
            break
        }
    }

    /// Holds a LISTEN connection; reconnects with capped backoff and wakes the workers after every
    /// (re)connect so jobs enqueued during the gap are picked up.
    private func listenLoop() {
        defer { finished() }
        var backoff = 0.1
        while !isStopping {
            do {
                let connection = try PGConnection(conninfo)
                try connection.execute("LISTEN \(try Identifier.quote(JobQueue.channel(options.queue)))")
                backoff = 0.1
                notify()
                var lastPing = Date()
                while !isStopping {
                    let payloads = try connection.waitForNotifications(timeout: 0.5)
                    for _ in payloads { notify() }
                    if Date().timeIntervalSince(lastPing) > 5 {
                        // A half-open connection only shows itself when used.
                        try connection.execute("SELECT 1")
                        lastPing = Date()
                    }
                }
            } catch {
                Log.warning("listen_failed", [("queue", options.queue), ("error", String(describing: error)), ("retry_in", backoff)])
                Thread.sleep(forTimeInterval: backoff)
                backoff = min(backoff * 2, 5)
            }
        }
    }

    /// Renews running jobs' leases every third of the lease (at most every 2 s, so a cancellation is seen
    /// quickly) and stores their progress; a job found cancelled or no longer this worker's is stopped
    /// through its context. Runs until the work threads and their jobs are done.
    private func leaseLoop() {
        defer { finished() }
        let interval = min(2, Double(options.leaseSeconds) / 3)
        while true {
            let (contexts, done) = state.withLock { (Array(running.values), stopping && workThreads == 0 && running.isEmpty) }
            if done { break }
            let now = Date()
            for context in contexts where !context.isFinished && now.timeIntervalSince(context.lastBeat) >= interval {
                context.lastBeat = now
                let ok = (try? queue.heartbeat(context.job, leaseSeconds: options.leaseSeconds, progress: context.takeProgress())) ?? true
                if !ok && !context.isFinished { context.loseLease() }
            }
            Thread.sleep(forTimeInterval: min(0.1, interval / 4))
        }
    }

    private func maintenanceLoop() {
        defer { finished() }
        var lastRescue = Date.distantPast, lastPrune = Date.distantPast
        while !isStopping {
            do {
                if Date().timeIntervalSince(lastRescue) >= options.rescueInterval {
                    let rescued = try queue.rescueExpired()
                    if rescued > 0 { Log.warning("jobs_rescued", [("count", rescued)]); notify() }
                    lastRescue = Date()
                }
                if Date().timeIntervalSince(lastPrune) >= options.pruneInterval {
                    let pruned = try queue.prune()
                    if pruned > 0 { Log.info("jobs_pruned", [("count", pruned)]) }
                    lastPrune = Date()
                }
            } catch {
                Log.warning("maintenance_failed", [("error", String(describing: error))])
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
    }
}
