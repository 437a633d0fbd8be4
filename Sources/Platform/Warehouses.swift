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
    private let lock = NSLock()
    private var pools: [String: (version: String, pool: PGPool)] = [:]
    static let cacheTTL = 10
    let records = LocalMemo<ConnectionRecord>(ttl: 1)

    public init(metadata: PGPool, cache: Cache, secrets: Secrets, poolSize: Int, statementTimeoutMs: Int,
                limits: SessionLimits = SessionLimits()) {
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

    /// conninfo for an external tool (ogr2ogr) WITHOUT the password, plus the decrypted password separately:
    /// give it to the child as `PGPASSWORD` (its environment), never in argv where `ps` shows it.
    /// No statement timeout: the caller bounds the tool's run time itself.
    public func toolConninfo(for record: ConnectionRecord, applicationName: String) throws -> (conninfo: String, password: String?) {
        var conninfo = record.conninfo(password: nil, statementTimeoutMs: nil)
        conninfo = conninfo.replacingOccurrences(of: "application_name='tessera'", with: "application_name='\(applicationName)'")
        return (conninfo, try password(of: record))
    }

    /// The raw pool, for the platform's own trusted SQL (workers, CLI): no principal, no read-only mode, no
    /// limits. Request handlers use `withSession`.
    public func privilegedPool(for record: ConnectionRecord) throws -> PGPool {
        try pool(for: record)
    }

    /// The pool for a connection, created on first use and replaced after edits.
    func pool(for record: ConnectionRecord) throws -> PGPool {
        lock.lock()
        defer { lock.unlock() }
        if let entry = pools[record.id], entry.version == record.updatedAt { return entry.pool }
        let conninfo = record.conninfo(password: try password(of: record), statementTimeoutMs: statementTimeoutMs)
        let pool = PGPool(conninfo: conninfo, size: poolSize, resetsSessions: true)
        pools[record.id]?.pool.drain()
        pools[record.id] = (record.updatedAt, pool)
        return pool
    }

    /// Opens a fresh connection and runs a trivial query: the "test connection" call.
    public func test(_ record: ConnectionRecord) -> (ok: Bool, message: String, serverVersion: String?, postgis: String?) {
        do {
            let conninfo = record.conninfo(password: try password(of: record), statementTimeoutMs: 5000)
            let c = try PGConnection(conninfo)
            let r = try c.execute("""
                SELECT current_setting('server_version'),
                       (SELECT extversion FROM pg_extension WHERE extname = 'postgis')
                """)
            return (true, "Connection succeeded", r.string(0, 0), r.string(0, 1))
        } catch let e as PGError {
            return (false, e.message, nil, nil)
        } catch {
            return (false, "Connection failed", nil, nil)
        }
    }
}
