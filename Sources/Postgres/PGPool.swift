import Foundation
import Observability

/// A bounded pool of connections to one database. Connections the server hung up on (restart,
/// terminate) are noticed at checkout and replaced, so the first request after a restart succeeds.
///
/// With `resetsSessions` (warehouse pools, which run client SQL) the pool owns the session policy: a
/// checked-in connection is reset off the client's critical path (see `scheduleReset`), before it is idle
/// again (see `PGConnection.resetSession`), or closed when that fails; checkouts ask for a mode.
public final class PGPool: @unchecked Sendable {
    public let conninfo: String
    public let size: Int
    public let resetsSessions: Bool
    private let setup: (PGConnection) throws -> Void
    private static let resetQueue = DispatchQueue(label: "tessera.pgpool.reset", attributes: .concurrent)
    /// Where a check-in's reset runs: given the work, returns false to leave it to the background queue. A
    /// server wires this to run the reset on the request's own thread once its response is finished, which
    /// saves waking another thread per request.
    public var scheduleReset: @Sendable (@escaping () -> Void) -> Bool = { _ in false }
    /// Runs the resets this thread scheduled and has not run yet; returns whether there were any. A checkout
    /// that finds the pool exhausted calls it first: the connection it waits for may be one of them.
    public var runScheduledResets: @Sendable () -> Bool = { false }
    /// How long a READ ONLY transaction opened in the background may be handed out (`now()` is its start).
    public var maxPrimedAge: TimeInterval = 1
    private let condition = NSCondition()
    private var idle: [PGConnection] = []
    private var open = 0
    /// How long a checkout waits for a free connection before giving up.
    public var checkoutTimeout: TimeInterval = 15
    /// Connections older than this are closed when returned (bounds server-side memory growth).
    public var maxAge: TimeInterval = 3600
    private let metrics: PoolMetrics

    /// `warehouse` (default: `resetsSessions`) picks the metrics label for pools that reach a warehouse
    /// without resetting sessions (the LDS lookup pool).
    public init(conninfo: String, size: Int, resetsSessions: Bool = false, warehouse: Bool? = nil,
                setup: @escaping (PGConnection) throws -> Void = { _ in }) {
        self.conninfo = conninfo
        self.size = max(1, size)
        self.resetsSessions = resetsSessions
        self.setup = setup
        // Warehouse pools are summed under one label; the metadata pool has its own.
        self.metrics = (warehouse ?? resetsSessions) ? PoolMetrics.warehouse : PoolMetrics.metadata
    }

    /// Checks out a connection in `mode`; whatever the body does to the session is undone at check-in.
    public func withSession<T>(_ mode: PGSessionMode, _ body: (PGConnection) throws -> T) throws -> T {
        let connection = try checkout(mode)
        defer { checkin(connection) }
        return try body(connection)
    }

    /// A connection in `mode`: idle connections already primed for it are preferred (no round trip).
    public func checkout(_ mode: PGSessionMode) throws -> PGConnection {
        var attempts = 0
        while true {
            let connection = try checkout(preferring: mode)
            do {
                try connection.enter(mode, maxPrimedAge: maxPrimedAge)
                return connection
            } catch let error as PGError where error.connectionLost && attempts < size {
                // Terminated while idle (restart, pg_terminate_backend): nothing of the caller's ran yet.
                discard(connection)
                attempts += 1
            } catch {
                discard(connection)
                throw error
            }
        }
    }

    public func withConnection<T>(_ body: (PGConnection) throws -> T) throws -> T {
        let connection = try checkout()
        do {
            let value = try body(connection)
            checkin(connection)
            return value
        } catch {
            checkin(connection)
            throw error
        }
    }

    /// Whether a checkout now would not wait (an idle connection, or room to open one): for optional
    /// parallel work that must not hold up its caller when the pool is busy. Only a hint: another thread
    /// may take it first.
    public var hasFreeConnection: Bool {
        condition.lock()
        defer { condition.unlock() }
        return !idle.isEmpty || open < size
    }

    public func checkout() throws -> PGConnection {
        let connection = try checkout(preferring: .readWrite)
        if connection.primedMode != .readWrite {
            do { try connection.prime(.readWrite) } catch { discard(connection); throw error }
        }
        return connection
    }

    private func checkout(preferring mode: PGSessionMode) throws -> PGConnection {
        let connection = try take(preferring: mode)
        metrics.inUse.add(1)
        metrics.checkouts.add()
        connection.roundTripsAtCheckout = connection.roundTrips
        return connection
    }

    private func take(preferring mode: PGSessionMode) throws -> PGConnection {
        condition.lock()
        let deadline = Date().addingTimeInterval(checkoutTimeout)
        while true {
            if !idle.isEmpty {
                let index = idle.lastIndex { $0.primedMode == mode } ?? idle.count - 1
                let connection = idle.remove(at: index)
                condition.unlock()
                if connection.serverHungUp() {
                    release()
                    return try take(preferring: mode)
                }
                return connection
            }
            if open < size {
                open += 1
                condition.unlock()
                do {
                    let connection = try PGConnection(conninfo)
                    connection.resetsAtCheckin = resetsSessions
                    if resetsSessions { try connection.prepareResetStatements() }
                    try setup(connection)
                    return connection
                } catch {
                    release()
                    throw error
                }
            }
            condition.unlock()
            let ranResets = runScheduledResets()
            condition.lock()
            if ranResets || !idle.isEmpty || open < size { continue }
            // Only a checkout that finds the pool exhausted pays for the clock reads and the observation.
            let waitStarted = DispatchTime.now().uptimeNanoseconds
            let woken = condition.wait(until: deadline)
            metrics.waits.observe(Double(DispatchTime.now().uptimeNanoseconds - waitStarted) / 1e9)
            if !woken {
                condition.unlock()
                metrics.timeouts.add()
                throw PGError(sqlstate: "53300", message: "all database connections are busy")
            }
        }
    }

    /// Returns a connection; broken or old ones are closed instead of reused. Pools that reset sessions do so
    /// in the background and keep the connection counted as open until it is idle again; others close
    /// connections left mid-transaction.
    public func checkin(_ connection: PGConnection) {
        metrics.inUse.add(-1)
        metrics.requestRoundTrips.add(connection.roundTrips - connection.roundTripsAtCheckout)
        if !connection.isHealthy || -connection.openedAt.timeIntervalSinceNow > maxAge {
            release()
            return
        }
        guard resetsSessions else {
            if connection.isIdle { makeIdle(connection) } else { release() }
            return
        }
        let mode = connection.primedMode
        let reset: @Sendable () -> Void = {
            if connection.takeResetBehind() {
                // Already reset in the last statement's round trip (PGConnection+ResetBehind).
                connection.statementTimeout = nil
                (mode == .readOnly ? self.metrics.readOnlyResets : self.metrics.fullResets).add()
                self.makeIdle(connection)
                return
            }
            do {
                let before = connection.roundTrips
                let short = try connection.resetSession(priming: mode)
                self.metrics.resetRoundTrips.add(connection.roundTrips - before)
                (short ? self.metrics.readOnlyResets : self.metrics.fullResets).add()
                self.makeIdle(connection)
            } catch {
                self.release()
            }
        }
        if !scheduleReset(reset) { Self.resetQueue.async(execute: reset) }
    }

    private func makeIdle(_ connection: PGConnection) {
        condition.lock()
        idle.append(connection)
        condition.signal()
        condition.unlock()
    }

    /// Drops a checked-out connection that was never checked in.
    private func discard(_ connection: PGConnection) {
        metrics.inUse.add(-1)
        release()
    }

    private func release() {
        condition.lock()
        open -= 1
        condition.signal()
        condition.unlock()
    }

    /// Closes idle connections (used by tests and on shutdown).
    public func drain() {
        condition.lock()
        open -= idle.count
        idle.removeAll()
        condition.unlock()
    }

    /// Runs `body` inside BEGIN/COMMIT, rolling back on error.
    public func transaction<T>(_ body: (PGConnection) throws -> T) throws -> T {
        try withConnection { connection in
            try connection.execute("BEGIN")
            do {
                let value = try body(connection)
                try connection.execute("COMMIT")
                return value
            } catch {
                if connection.isHealthy { _ = try? connection.execute("ROLLBACK") }
                throw error
            }
        }
    }
}
