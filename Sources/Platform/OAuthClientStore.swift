import CryptoSupport
import Foundation
import HTTPKit
import Postgres

/// OAuth2 clients for machine-to-machine `client_credentials`; each acts as the user who created it.
public struct OAuthClientStore {
    let pool: PGPool
    public init(_ pool: PGPool) { self.pool = pool }

    public func create(account: String, userId: String, name: String) throws -> (clientId: String, secret: String) {
        let clientId = Encoding.randomToken(bytes: 16)
        let secret = Encoding.randomToken(bytes: 32)
        try pool.withConnection { db in
            try db.execute("""
                INSERT INTO oauth_clients (account_id, user_id, client_id, secret_hash, name) VALUES ($1, $2, $3, decode($4, 'hex'), $5)
                """, [account, userId, clientId, AccountStore.hash(secret), name])
        }
        return (clientId, secret)
    }

    /// The account and user a valid client acts as.
    public func verify(clientId: String, secret: String) throws -> (account: String, userId: String)? {
        try pool.withConnection { db in
            let r = try db.execute("SELECT account_id, user_id, encode(secret_hash, 'hex') FROM oauth_clients WHERE client_id = $1", [clientId])
            guard r.rowCount == 1, let stored = r.string(0, 2).flatMap(Encoding.fromHex),
                  let given = Encoding.fromHex(AccountStore.hash(secret)), Crypto.constantTimeEqual(stored, given) else { return nil }
            return (r.string(0, 0)!, r.string(0, 1)!)
        }
    }

    public func list(account: String) throws -> [JSON] {
        try pool.withConnection { db in
            let r = try db.execute("""
                SELECT client_id, name, user_id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                FROM oauth_clients WHERE account_id = $1 ORDER BY created_at
                """, [account])
            return (0..<r.rowCount).map { i in
                ["client_id": .optional(r.string(i, 0)), "name": .optional(r.string(i, 1)),
                 "user_id": .optional(r.string(i, 2)), "created_at": .optional(r.string(i, 3))]
            }
        }
    }

    /// The user a client acts as, if the client exists in the account.
    public func owner(account: String, clientId: String) throws -> String?? {
        try pool.withConnection { db in
            let r = try db.execute("SELECT user_id FROM oauth_clients WHERE account_id = $1 AND client_id = $2", [account, clientId])
            return r.rowCount == 1 ? .some(r.string(0, 0)) : nil
        }
    }

    public func delete(account: String, clientId: String) throws -> Bool {
        try pool.withConnection { db in
            try db.execute("DELETE FROM oauth_clients WHERE account_id = $1 AND client_id = $2", [account, clientId]).affectedRows == 1
        }
    }
}
