import CryptoSupport
import Foundation
import Postgres

/// One-time password reset tokens: stored hashed, valid for an hour, redeemed once. Redeeming sets the
/// password and signs the user out everywhere (like any password change).
public struct PasswordResetStore {
    let pool: PGPool
    public static let ttlSeconds = 3600
    /// A new token for the same user within this time is refused (one email per minute at most).
    public static let minimumIntervalSeconds = 60

    public init(_ pool: PGPool) { self.pool = pool }

    /// The link accounts-www opens (the token travels in the fragment, so it reaches no server log).
    public static func link(base: String, token: String) -> String {
        base.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/acc/#/reset?token=" + token
    }

    /// A fresh token for the user; earlier unused ones stop working, so only the latest link is valid.
    /// Nil when one was issued less than a minute ago (`force` skips that check, for admins' CLI).
    public func create(userId: String, force: Bool = false) throws -> String? {
        let token = Encoding.randomToken()
        return try pool.transaction { db -> String? in
            // Serialises concurrent requests for the same user, so the interval check below holds.
            try db.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", [userId])
            if !force {
                let recent = try db.execute("""
                    SELECT 1 FROM password_resets WHERE user_id = $1 AND created_at > now() - make_interval(secs => $2)
                    """, [userId, String(Self.minimumIntervalSeconds)])
                if recent.rowCount > 0 { return nil }
            }
            try db.execute("DELETE FROM password_resets WHERE user_id = $1 OR expires_at < now() - interval '1 day'", [userId])
            try db.execute("""
                INSERT INTO password_resets (token_hash, user_id, expires_at)
                VALUES (decode($1, 'hex'), $2, now() + make_interval(secs => $3))
                """, [AccountStore.hash(token), userId, String(Self.ttlSeconds)])
            return token
        }
    }

    /// Whether a token can still be redeemed (checked before the costly password hashing; `redeem` checks
    /// again atomically).
    public func isRedeemable(token: String) throws -> Bool {
        try pool.withConnection { db in
            try db.execute("""
                SELECT 1 FROM password_resets WHERE token_hash = decode($1, 'hex') AND used_at IS NULL AND expires_at > now()
                """, [AccountStore.hash(token)]).rowCount == 1
        }
    }

    /// Redeems a token: returns the user id, or nil when the token is unknown, expired or already used.
    public func redeem(token: String, passwordHash: String) throws -> String? {
        try pool.transaction { db -> String? in
            let r = try db.execute("""
                UPDATE password_resets SET used_at = now()
                WHERE token_hash = decode($1, 'hex') AND used_at IS NULL AND expires_at > now() RETURNING user_id
                """, [AccountStore.hash(token)])
            guard r.rowCount == 1, let userId = r.string(0, 0) else { return nil }
            try AccountStore.setPassword(on: db, userId: userId, hash: passwordHash)
            try db.execute("DELETE FROM password_resets WHERE user_id = $1 AND used_at IS NULL", [userId])
            return userId
        }
    }
}
