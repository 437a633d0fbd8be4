import Foundation

/// A bounded pool of connections to one database. Connections the server hung up on (restart,
/// terminate) are noticed at checkout and replaced, so the first request after a restart succeeds.
public final class PGPool: @unchecked Sendable {
    public let conninfo: String
    public let size: Int
    private let setup: (PGConnection) throws -> Void
    private let condition = NSCondition()
    private var idle: [PGConnection] = []
    private var open = 0
    /// How long a checkout waits for a free connection before giving up.
    public var checkoutTimeout: TimeInterval = 15
    /// Connections older than this are closed when returned (bounds server-side memory growth).
    public var maxAge: TimeInterval = 3600

    public init(conninfo: String, size: Int, setup: @escaping (PGConnection) throws -> Void = { _ in }) {
        self.conninfo = conninfo
        self.size = max(1, size)
        self.setup = setup
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

    public func checkout() throws -> PGConnection {
        condition.lock()
        let deadline = Date().addingTimeInterval(checkoutTimeout)
        while true {
            if let connection = idle.popLast() {
                condition.unlock()
                if connection.serverHungUp() {
                    release()
                    return try checkout()
                }
                return connection
            }
            if open < size {
                open += 1
                condition.unlock()
                do {
                    let connection = try PGConnection(conninfo)
                    try setup(connection)
                    return connection
                } catch {
                    release()
                    throw error
                }
            }
            if !condition.wait(until: deadline) {
                condition.unlock()
                throw PGError(sqlstate: "53300", message: "all database connections are busy")
            }
        }
    }

    /// Returns a connection; broken, mid-transaction or old ones are closed instead of reused.
    public func checkin(_ connection: PGConnection) {
        if !connection.isHealthy || !connection.isIdle || -connection.openedAt.timeIntervalSinceNow > maxAge {
            release()
            return
        }
        condition.lock()
        idle.append(connection)
        condition.signal()
        condition.unlock()
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
