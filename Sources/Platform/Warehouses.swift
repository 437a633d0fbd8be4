import CryptoSupport
import Foundation
import HTTPKit
import Postgres

/// Per-principal limits the pool applies at checkout.
public struct SessionLimits: Sendable {
    /// Concurrent statements per API token / per user (0 = only the pool bounds them).
    public var tokenMaxConcurrent = 16
    public var userMaxConcurrent = 0
    /// Statement timeout of API tokens (public maps, embedded apps); users get the warehouse's.
    public var tokenStatementTimeoutMs = 10_000
    /// Connections of each pool that API tokens together cannot take.
    public var poolReserved = 4
    public var queueWaitMs = 2000

    public init() {}
}

/// Resolves `{connection}` path segments to warehouse sessions, per account. Lookups are cached in Redis
/// briefly; pools are kept per connection and replaced when the connection is edited.
///
/// Features get a warehouse connection only through `withSession(for:connection:request:)`: the principal
/// decides the mode (read-only or not) and the limits, and the pool resets the session at check-in.
/// `privilegedPool(for:)` is for the platform's own SQL (workers, CLI, gazetteer lookups) only.
public final class Warehouses: @unchecked Sendable {
    let metadata: PGPool
    let cache: Cache
    let secrets: Secrets
    let poolSize: Int
    public let statementTimeoutMs: Int
    public let limits: SessionLimits
    let limiter: SessionLimiter
    /// Every way to a warehouse (pools, the connection test, external tools) passes this first.
    public let policy: ConnectionPolicy
    private let lock = NSLock()
    private var pools: [String: (version: String, pool: PGPool)] = [:]
    static let cacheTTL = 10
    let records = LocalMemo<ConnectionRecord>(ttl: 1)

    public init(metadata: PGPool, cache: Cache, secrets: Secrets, poolSize: Int, statementTimeoutMs: Int,
                limits: SessionLimits = SessionLimits(), policy: ConnectionPolicy) {
        self.policy = policy
        self.metadata = metadata
        self.cache = cache
        self.secrets = secrets
        self.poolSize = poolSize
        self.statementTimeoutMs = statementTimeoutMs
        self.limits = limits
        limiter = SessionLimiter(maxWait: Double(limits.queueWaitMs) / 1000)
    }

    /// Runs `body` on a pooled connection of the principal's connection `name`, under the principal's session
    /// mode and limits. Whatever `body` does to the session, and however it ends, the pool resets it.
    /// `readsOnly` declares an API that only reads (Maps, models, catalog): it can narrow the principal's
    /// mode to read-only, never widen it.
    public func withSession<T>(for principal: Principal, connection name: String, request: HTTPRequest, readsOnly: Bool = false,
                               _ body: (PGConnection) throws -> T) throws -> T {
        let record = try connection(account: principal.accountId, name: name)
        let pool = try pool(for: record)
        let slots = limitSlots(principal, pool: record.id)
        try limiter.acquire(slots)
        defer { limiter.release(slots) }
        let mode = readsOnly ? .readOnly : principal.sessionMode(connection: name, method: request.method)
        return try pool.withSession(mode) { db in
            if !principal.isUser { db.statementTimeout = Double(limits.tokenStatementTimeoutMs) / 1000 }
            return try body(db)
        }
    }

    /// The statement deadline a route should watch for this principal (the pool enforces it anyway).
    public func statementTimeout(for principal: Principal) -> TimeInterval {
        Double(principal.isUser ? statementTimeoutMs : min(statementTimeoutMs, limits.tokenStatementTimeoutMs)) / 1000
    }

    func limitSlots(_ principal: Principal, pool: String) -> [SessionLimiter.Slot] {
        switch principal.kind {
        case .user:
            return [.init(key: "user:\(principal.userId ?? principal.accountId)", cap: limits.userMaxConcurrent)]
        case .apiToken(let id, _):
            return [.init(key: "token:\(id)", cap: limits.tokenMaxConcurrent),
                    .init(key: "tokens:\(pool)", cap: max(1, poolSize - limits.poolReserved))]
        }
    }

    /// The account's connection by name; another account's connection is "not found", never "forbidden".
    public func connection(account: String, name: String) throws -> ConnectionRecord {
        let record = try records.value("\(account):\(name)") { () -> ConnectionRecord? in
            let bytes = try cache.fetch("conn:\(account):\(name)", ttl: Warehouses.cacheTTL) {
                try ConnectionStore(metadata).find(account: account, name: name)?.cacheEntry
            }
            return bytes.flatMap { try? ConnectionRecord(cacheEntry: $0) }
        }
        guard let record else {
            throw APIError.notFound("Connection not found: \(name)", code: "connection_not_found")
        }
        return record
    }

    public func forget(account: String, name: String) {
        records.remove("\(account):\(name)")
        cache.invalidate("conn:\(account):\(name)")
    }

    public func sealPassword(_ password: String) throws -> [UInt8] {
        try Crypto.seal(Array(password.utf8), key: secrets.connectionPasswordKey)
    }

    func password(of record: ConnectionRecord) throws -> String? {
        guard let sealed = record.passwordSealed else { return nil }
        let plain = try Crypto.open(sealed, key: secrets.connectionPasswordKey)
        return String(decoding: plain, as: UTF8.self)
    }

    /// The policy's verdict on a record, as the API error a refusal answers (403 `connection_not_allowed`).
    /// `allowUnresolvable`: a host that does not resolve now is no reason to refuse saving a connection
    /// (DNS may be down, the server not yet up); it is refused at use like any unreachable server.
    @discardableResult
    public func checkPolicy(_ record: ConnectionRecord, allowUnresolvable: Bool = false) throws -> ConnectionPolicy.Checked {
        do {
            return try policy.check(conninfo: record.conninfo(password: nil, statementTimeoutMs: nil),
                                    platformManaged: record.platformManaged)
        } catch let refusal as ConnectionPolicy.Refusal {
            if allowUnresolvable && refusal.kind == .unresolvable { return ConnectionPolicy.Checked(hostaddr: nil) }
            throw refusal.apiError
        }
    }

    /// conninfo for an external tool (ogr2ogr) WITHOUT the password, plus the decrypted password separately:
    /// give it to the child through its environment, never in argv where `ps` shows it: `PGPASSWORD`, or a
    /// `PGPassFile` for a tool that writes its own `password=` into its conninfo (osm2pgrouting).
    /// No statement timeout: the caller bounds the tool's run time itself.
    public func toolConninfo(for record: ConnectionRecord, applicationName: String) throws -> (conninfo: String, password: String?) {
        let checked = try checkPolicy(record)
        var conninfo = record.conninfo(password: nil, statementTimeoutMs: nil, hostaddr: checked.hostaddr)
        conninfo = conninfo.replacingOccurrences(of: "application_name='tessera'", with: "application_name='\(applicationName)'")
        return (conninfo, try password(of: record))
    }

    /// The raw pool, for the platform's own trusted SQL (workers, CLI): no principal, no read-only mode, no
    /// limits. Request handlers use `withSession`.
    public func privilegedPool(for record: ConnectionRecord) throws -> PGPool {
        try pool(for: record)
    }

    /// A pool for the platform's own fixed statements that leave nothing behind on the session (the LDS
    /// gazetteer and routing functions, called with bound values, outside any transaction): connections are
    /// not reset at check-in, which would cost each lookup a second round trip, and one left mid-transaction
    /// is closed. Never for SQL a caller wrote; separate from the resetting pool so no caller's session is
    /// ever handed to it.
    public func statementPool(for record: ConnectionRecord) throws -> PGPool {
        try pool(for: record, resetsSessions: false)
    }

    /// The pool for a connection, created on first use and replaced after edits. The policy is checked
    /// whenever a pool is made (the allow-list is fixed for the process's life; an edit is a new version),
    /// outside the lock since resolving a name may take a while, and the pool connects to the checked
    /// address only.
    func pool(for record: ConnectionRecord, resetsSessions: Bool = true) throws -> PGPool {
        let key = resetsSessions ? record.id : record.id + "#statements"
        let cached = lock.withLock { pools[key].flatMap { $0.version == record.updatedAt ? $0.pool : nil } }
        if let cached { return cached }
        let checked = try checkPolicy(record)
        lock.lock()
        defer { lock.unlock() }
        if let entry = pools[key], entry.version == record.updatedAt { return entry.pool }
        let conninfo = record.conninfo(password: try password(of: record), statementTimeoutMs: statementTimeoutMs,
                                       hostaddr: checked.hostaddr)
        let pool = PGPool(conninfo: conninfo, size: poolSize, resetsSessions: resetsSessions, warehouse: true)
        pool.scheduleReset = AfterResponse.schedule
        pool.runScheduledResets = AfterResponse.run
        pools[key]?.pool.drain()
        pools[key] = (record.updatedAt, pool)
        return pool
    }

    /// Opens a fresh connection and runs a trivial query: the "test connection" call. A failure says only
    /// its class (unreachable, or refused by the server), never the server's text: which ports answer and
    /// which roles exist is not for callers to learn.
    public func test(_ record: ConnectionRecord) -> (ok: Bool, message: String, serverVersion: String?, postgis: String?) {
        do {
            let checked = try checkPolicy(record)
            let conninfo = record.conninfo(password: try password(of: record), statementTimeoutMs: 5000,
                                           hostaddr: checked.hostaddr)
            let c = try PGConnection(conninfo)
            let r = try c.execute("""
                SELECT current_setting('server_version'),
                       (SELECT extversion FROM pg_extension WHERE extname = 'postgis')
                """)
            return (true, "Connection succeeded", r.string(0, 0), r.string(0, 1))
        } catch let e as PGError {
            return (false, Self.failureClass(e), nil, nil)
        } catch let e as APIError {
            return (false, e.message, nil, nil)
        } catch {
            return (false, "Connection failed", nil, nil)
        }
    }

    static func failureClass(_ e: PGError) -> String {
        // Only an error the server itself sent (libpq prefixes those with their severity) means a PostgreSQL
        // server listens there; anything else (refused, timeout, a non-PostgreSQL answer) is "unreachable".
        let serverAnswered = e.sqlstate.map { !$0.hasPrefix("08") } ?? false || e.message.contains("FATAL:")
        return serverAnswered ? "The server did not accept the login: check the database, user and password"
                              : "Could not connect to the server"
    }
}
