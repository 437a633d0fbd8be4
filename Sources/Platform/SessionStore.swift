import CryptoSupport
import Foundation
import Postgres

/// Browser sessions: a random id in a `__Host-` cookie, stored hashed, with a CSRF token beside it.
public struct SessionStore {
    let pool: PGPool
    public init(_ pool: PGPool) { self.pool = pool }

    public struct Session: Sendable {
        public let id: String
        public let csrfToken: String
    }

    /// A new session id at every login (ASVS 3.2.1).
    public func create(userId: String, ttlSeconds: Int) throws -> Session {
        let id = Encoding.randomToken()
        let csrf = Encoding.randomToken(bytes: 24)
        try pool.withConnection { db in
            try db.execute("""
                INSERT INTO sessions (id_hash, user_id, csrf_token, expires_at)
                VALUES (decode($1, 'hex'), $2, $3, now() + make_interval(secs => $4))
                """, [AccountStore.hash(id), userId, csrf, String(ttlSeconds)])
            // Expired sessions are cleaned opportunistically.
            try db.execute("DELETE FROM sessions WHERE expires_at < now() - interval '1 day'")
        }
        return Session(id: id, csrfToken: csrf)
    }

    public func csrfToken(sessionId: String) throws -> String? {
        try pool.withConnection { db in
            try db.execute("SELECT csrf_token FROM sessions WHERE id_hash = decode($1, 'hex') AND expires_at > now()",
                           [AccountStore.hash(sessionId)]).string(0, 0)
        }
    }

    public func delete(sessionId: String) throws {
        try pool.withConnection { db in
            _ = try db.execute("DELETE FROM sessions WHERE id_hash = decode($1, 'hex')", [AccountStore.hash(sessionId)])
        }
    }
}

/// Login throttling kept in the database so every app VM sees the same counts: at most
/// `perEmail` failures per email per hour and `perIP` per address per 15 minutes.
public struct LoginThrottle {
    let pool: PGPool
    public var perEmail = 20
    public var perIP = 100
    public init(_ pool: PGPool) { self.pool = pool }

    public func isBlocked(email: String, ip: String) throws -> Bool {
        try pool.withConnection { db in
            let r = try db.execute("""
                SELECT (SELECT count(*) FROM login_failures WHERE email_key = $1 AND at > now() - interval '1 hour'),
                       (SELECT count(*) FROM login_failures WHERE ip = $2 AND at > now() - interval '15 minutes')
                """, [AccountStore.normalizeEmail(email), ip])
            return (r.int(0, 0) ?? 0) >= perEmail || (r.int(0, 1) ?? 0) >= perIP
        }
    }

    public func recordFailure(email: String, ip: String) throws {
        try pool.withConnection { db in
            try db.execute("INSERT INTO login_failures (email_key, ip) VALUES ($1, $2)", [AccountStore.normalizeEmail(email), ip])
            try db.execute("DELETE FROM login_failures WHERE at < now() - interval '1 day'")
        }
    }

    public func clear(email: String) throws {
        try pool.withConnection { db in
            _ = try db.execute("DELETE FROM login_failures WHERE email_key = $1", [AccountStore.normalizeEmail(email)])
        }
    }
}

/// Who did what, for admins and incident review.
public struct AuditLog {
    let pool: PGPool
    public init(_ pool: PGPool) { self.pool = pool }

    public func record(account: String?, actor: String, action: String, target: String? = nil, requestId: String? = nil) {
        _ = try? pool.withConnection { db in
            try db.execute("INSERT INTO audit_log (account_id, actor, action, target, request_id) VALUES ($1, $2, $3, $4, $5)",
                           [account, actor, action, target, requestId])
        }
    }
}
