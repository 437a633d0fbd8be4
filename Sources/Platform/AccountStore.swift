import CryptoSupport
import Foundation
import HTTPKit
import Postgres

/// Organisations, users and invitations in the metadata database.
public struct AccountStore {
    let pool: PGPool
    public init(_ pool: PGPool) { self.pool = pool }

    public struct User: Sendable {
        public let id: String
        public let accountId: String
        public let email: String
        public let role: Principal.Role
        public let passwordHash: String
        public let createdAt: String

        public func json() -> JSON {
            ["id": .string(id), "email": .string(email), "role": .string(role.rawValue), "created_at": .string(createdAt)]
        }
    }

    static let userColumns = "id, account_id, email, role, password_hash, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

    func user(_ r: PGResult, _ i: Int) -> User {
        User(id: r.string(i, 0)!, accountId: r.string(i, 1)!, email: r.string(i, 2)!,
             role: Principal.Role(rawValue: r.string(i, 3)!) ?? .viewer, passwordHash: r.string(i, 4)!, createdAt: r.string(i, 5)!)
    }

    public static func normalizeEmail(_ email: String) -> String { email.trimmingCharacters(in: .whitespaces).lowercased() }

    public static func isPlausibleEmail(_ email: String) -> Bool {
        let parts = email.split(separator: "@")
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && email.count <= 320
            && !email.contains(where: { $0.isWhitespace || $0.isNewline })
    }

    /// A new organisation with its first admin; nil if the email is taken.
    public func createOrganization(name: String, email: String, passwordHash: String) throws -> User? {
        try pool.transaction { db in
            let a = try db.execute("INSERT INTO accounts (name) VALUES ($1) RETURNING id", [name])
            let r = try db.execute("""
                INSERT INTO users (account_id, email, password_hash, role) VALUES ($1, $2, $3, 'admin')
                ON CONFLICT DO NOTHING RETURNING \(Self.userColumns)
                """, [a.string(0, 0), Self.normalizeEmail(email), passwordHash])
            guard r.rowCount == 1 else { throw PGError(sqlstate: "23505", message: "email taken") }
            return user(r, 0)
        }
    }

    public func userByEmail(_ email: String) throws -> User? {
        try pool.withConnection { db in
            let r = try db.execute("SELECT \(Self.userColumns) FROM users WHERE lower(email) = $1", [Self.normalizeEmail(email)])
            return r.rowCount == 1 ? user(r, 0) : nil
        }
    }

    public func userById(_ id: String, account: String) throws -> User? {
        guard UUID(uuidString: id) != nil else { return nil }
        return try pool.withConnection { db in
            let r = try db.execute("SELECT \(Self.userColumns) FROM users WHERE id = $1 AND account_id = $2", [id, account])
            return r.rowCount == 1 ? user(r, 0) : nil
        }
    }

    public func users(account: String) throws -> [User] {
        try pool.withConnection { db in
            let r = try db.execute("SELECT \(Self.userColumns) FROM users WHERE account_id = $1 ORDER BY created_at", [account])
            return (0..<r.rowCount).map { user(r, $0) }
        }
    }

    public func accountName(_ account: String) throws -> String? {
        try pool.withConnection { db in try db.execute("SELECT name FROM accounts WHERE id = $1", [account]).string(0, 0) }
    }

    public func renameAccount(_ account: String, name: String) throws {
        try pool.withConnection { db in _ = try db.execute("UPDATE accounts SET name = $2 WHERE id = $1", [account, name]) }
    }

    /// Changes a role, refusing to leave the organisation without an admin.
    public func setRole(userId: String, account: String, role: Principal.Role) throws -> User? {
        try pool.transaction { db in
            let r = try db.execute("UPDATE users SET role = $3 WHERE id = $1 AND account_id = $2 RETURNING \(Self.userColumns)",
                                   [userId, account, role.rawValue])
            guard r.rowCount == 1 else { return nil }
            let admins = try db.execute("SELECT count(*) FROM users WHERE account_id = $1 AND role = 'admin'", [account])
            if admins.int(0, 0) == 0 { throw APIError.conflict("An organisation needs at least one admin", code: "last_admin") }
            return user(r, 0)
        }
    }

    /// Removes a user, revokes their API tokens and OAuth clients, and queues `user.removed` in the same
    /// transaction: the workspace-subscriber then cancels their jobs and moves what the organisation keeps
    /// (connections, maps) to `transferTo` (the admin removing them).
    public func deleteUser(userId: String, account: String, transferTo: String) throws -> Bool {
        try pool.transaction { db in
            let r = try db.execute("DELETE FROM users WHERE id = $1 AND account_id = $2", [userId, account])
            let admins = try db.execute("SELECT count(*) FROM users WHERE account_id = $1 AND role = 'admin'", [account])
            if admins.int(0, 0) == 0 { throw APIError.conflict("An organisation needs at least one admin", code: "last_admin") }
            guard r.affectedRows == 1 else { return false }
            try Self.revokeCredentials(of: userId, account: account, on: db)
            try WorkspaceEvents.enqueue(.userRemoved(accountId: account, userId: userId, transferTo: transferTo), actor: transferTo, on: db)
            return true
        }
    }

    /// Deletes a user's API tokens (not the maps' own tokens, which belong to the maps) and OAuth clients,
    /// on `db` inside the caller's transaction. Idempotent; returns what it deleted.
    @discardableResult
    public static func revokeCredentials(of userId: String, account: String, on db: PGConnection) throws -> JSON {
        let tokens = try db.execute("""
            DELETE FROM api_tokens WHERE created_by = $1 AND account_id = $2
              AND NOT EXISTS (SELECT 1 FROM maps m WHERE m.token_id = api_tokens.id)
            """, [userId, account]).affectedRows ?? 0
        let clients = try db.execute("DELETE FROM oauth_clients WHERE user_id = $1 AND account_id = $2", [userId, account]).affectedRows ?? 0
        return ["tokens": .int(tokens), "oauthClients": .int(clients)]
    }

    public func setPassword(userId: String, hash: String) throws {
        try pool.transaction { try Self.setPassword(on: $0, userId: userId, hash: hash) }
    }

    /// The same inside the caller's transaction (password resets).
    static func setPassword(on db: PGConnection, userId: String, hash: String) throws {
        try db.execute("UPDATE users SET password_hash = $2, password_changed_at = now() WHERE id = $1", [userId, hash])
        // A password change signs every session out (ASVS 3.3.3).
        try db.execute("DELETE FROM sessions WHERE user_id = $1", [userId])
    }

    // MARK: invitations

    /// Creates an invitation and returns its one-time token (only its hash is stored).
    public func invite(account: String, email: String, role: Principal.Role, invitedBy: String?, ttlDays: Int = 7) throws -> (id: String, token: String) {
        let token = Encoding.randomToken()
        let id = try pool.withConnection { db in
            try db.execute("""
                INSERT INTO invitations (account_id, email, role, token_hash, invited_by, expires_at)
                VALUES ($1, $2, $3, decode($4, 'hex'), $5, now() + make_interval(days => $6)) RETURNING id
                """, [account, Self.normalizeEmail(email), role.rawValue, Self.hash(token), invitedBy, String(ttlDays)]).string(0, 0)!
        }
        return (id, token)
    }

    public func invitations(account: String) throws -> [JSON] {
        try pool.withConnection { db in
            let r = try db.execute("""
                SELECT id, email, role, to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), accepted_at IS NOT NULL
                FROM invitations WHERE account_id = $1 ORDER BY created_at DESC
                """, [account])
            return (0..<r.rowCount).map { i in
                ["id": .optional(r.string(i, 0)), "email": .optional(r.string(i, 1)), "role": .optional(r.string(i, 2)),
                 "expires_at": .optional(r.string(i, 3)), "accepted": .bool(r.bool(i, 4) ?? false)]
            }
        }
    }

    public func revokeInvitation(id: String, account: String) throws -> Bool {
        guard UUID(uuidString: id) != nil else { return false }
        return try pool.withConnection { db in
            try db.execute("DELETE FROM invitations WHERE id = $1 AND account_id = $2 AND accepted_at IS NULL", [id, account]).affectedRows == 1
        }
    }

    /// Whether an invitation token can still be redeemed (checked before the costly password hashing;
    /// `acceptInvitation` checks again atomically).
    public func invitationIsLive(token: String) throws -> Bool {
        try pool.withConnection { db in
            try db.execute("""
                SELECT 1 FROM invitations WHERE token_hash = decode($1, 'hex') AND accepted_at IS NULL AND expires_at > now()
                """, [Self.hash(token)]).rowCount == 1
        }
    }

    /// Redeems an invitation once: creates the user in the inviting organisation. Nil if invalid, used,
    /// expired or the email already has an account.
    public func acceptInvitation(token: String, passwordHash: String) throws -> User? {
        struct EmailTaken: Error {}
        do { return try pool.transaction { db in
            let inv = try db.execute("""
                UPDATE invitations SET accepted_at = now()
                WHERE token_hash = decode($1, 'hex') AND accepted_at IS NULL AND expires_at > now()
                RETURNING account_id, email, role
                """, [Self.hash(token)])
            guard inv.rowCount == 1 else { return nil }
            let r = try db.execute("""
                INSERT INTO users (account_id, email, password_hash, role) VALUES ($1, $2, $3, $4)
                ON CONFLICT DO NOTHING RETURNING \(Self.userColumns)
                """, [inv.string(0, 0), inv.string(0, 1), passwordHash, inv.string(0, 2)])
            // Rolling back keeps the invitation usable if the email was taken meanwhile.
            guard r.rowCount == 1 else { throw EmailTaken() }
            return user(r, 0)
        } } catch is EmailTaken { return nil }
    }

    static func hash(_ token: String) -> String { Encoding.hex(Crypto.sha256(Array(token.utf8))) }
}
