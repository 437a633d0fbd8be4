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

/// When a sign-in may be tried again: each (email, client address) pair gets a few free failures, then
/// a delay after each further failure that doubles up to a cap. The failures of one address never delay
/// another, so an attacker cannot lock an email out for its rightful owner (who signs in from elsewhere).
public struct LoginThrottlePolicy: Sendable, Equatable {
    public var freeFailures = 5
    public var firstDelay = 1.0
    public var maxDelay = 900.0

    public init() {}

    /// The wait after the `failures`-th failure of a pair (0 while failures are free).
    public func delay(afterFailures failures: Int) -> Double {
        guard failures >= freeFailures else { return 0 }
        let doublings = min(failures - freeFailures, 30)
        return min(firstDelay * Double(1 << doublings), maxDelay)
    }

    /// Seconds left to wait, or nil when an attempt is allowed now.
    public func retryAfter(failures: Int, secondsSinceLastFailure: Double) -> Double? {
        let wait = delay(afterFailures: failures) - secondsSinceLastFailure
        return wait > 0 ? wait : nil
    }
}

/// Login throttling kept in the database so every app VM sees the same counts: the (email, address)
/// policy above over the last hour, and at most `perIP` failures per address per 15 minutes (one
/// address guessing many emails).
public struct LoginThrottle {
    let pool: PGPool
    public var policy = LoginThrottlePolicy()
    public var perIP = 100
    public init(_ pool: PGPool) { self.pool = pool }

    /// Seconds this pair must still wait, or nil when it may try now.
    public func retryAfter(email: String, ip: String) throws -> Double? {
        try pool.withConnection { db in
            let r = try db.execute("""
                SELECT count(*) FILTER (WHERE email_key = $1),
                       coalesce(extract(epoch FROM now() - max(at) FILTER (WHERE email_key = $1)), 0)::float8,
                       count(*) FILTER (WHERE at > now() - interval '15 minutes')
                FROM login_failures WHERE ip = $2 AND at > now() - interval '1 hour'
                """, [AccountStore.normalizeEmail(email), ip])
            if (r.int(0, 2) ?? 0) >= perIP { return 900 }
            return policy.retryAfter(failures: r.int(0, 0) ?? 0, secondsSinceLastFailure: r.double(0, 1) ?? 0)
        }
    }

    public func recordFailure(email: String, ip: String) throws {
        try pool.withConnection { db in
            try db.execute("INSERT INTO login_failures (email_key, ip) VALUES ($1, $2)", [AccountStore.normalizeEmail(email), ip])
            try db.execute("DELETE FROM login_failures WHERE at < now() - interval '1 day'")
        }
    }

    /// A successful sign-in forgets this address's failures for the email.
    public func clear(email: String, ip: String) throws {
        try pool.withConnection { db in
            _ = try db.execute("DELETE FROM login_failures WHERE email_key = $1 AND ip = $2", [AccountStore.normalizeEmail(email), ip])
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
