import CryptoSupport
import Foundation
import HTTPKit
import Postgres

/// Resolves `{connection}` path segments to warehouse connection pools, per account. Lookups are cached in
/// Redis briefly; pools are kept per connection and replaced when the connection is edited.
public final class Warehouses: @unchecked Sendable {
    let metadata: PGPool
    let cache: Cache
    let secrets: Secrets
    let poolSize: Int
    public let statementTimeoutMs: Int
    /// Every way to a warehouse (pools, the connection test, external tools) passes this first.
    public let policy: ConnectionPolicy
    private let lock = NSLock()
    private var pools: [String: (version: String, pool: PGPool)] = [:]
    static let cacheTTL = 10
    let records = LocalMemo<ConnectionRecord>(ttl: 1)

    public init(metadata: PGPool, cache: Cache, secrets: Secrets, poolSize: Int, statementTimeoutMs: Int,
                policy: ConnectionPolicy) {
        self.policy = policy
        self.metadata = metadata
        self.cache = cache
        self.secrets = secrets
        self.poolSize = poolSize
        self.statementTimeoutMs = statementTimeoutMs
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
    /// give it to the child as `PGPASSWORD` (its environment), never in argv where `ps` shows it.
    /// No statement timeout: the caller bounds the tool's run time itself.
    public func toolConninfo(for record: ConnectionRecord, applicationName: String) throws -> (conninfo: String, password: String?) {
        let checked = try checkPolicy(record)
        var conninfo = record.conninfo(password: nil, statementTimeoutMs: nil, hostaddr: checked.hostaddr)
        conninfo = conninfo.replacingOccurrences(of: "application_name='tessera'", with: "application_name='\(applicationName)'")
        return (conninfo, try password(of: record))
    }

    /// The pool for a connection, created on first use and replaced after edits. The policy is checked
    /// whenever a pool is made (the allow-list is fixed for the process's life; an edit is a new version),
    /// outside the lock since resolving a name may take a while, and the pool connects to the checked
    /// address only.
    public func pool(for record: ConnectionRecord) throws -> PGPool {
        let cached = lock.withLock { pools[record.id].flatMap { $0.version == record.updatedAt ? $0.pool : nil } }
        if let cached { return cached }
        let checked = try checkPolicy(record)
        lock.lock()
        defer { lock.unlock() }
        if let entry = pools[record.id], entry.version == record.updatedAt { return entry.pool }
        let conninfo = record.conninfo(password: try password(of: record), statementTimeoutMs: statementTimeoutMs,
                                       hostaddr: checked.hostaddr)
        let pool = PGPool(conninfo: conninfo, size: poolSize)
        pools[record.id]?.pool.drain()
        pools[record.id] = (record.updatedAt, pool)
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
