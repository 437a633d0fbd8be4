import CryptoSupport
import Foundation
import HTTPKit
import Postgres

/// A PostgreSQL warehouse connection as stored; the password stays encrypted until a pool needs it.
public struct ConnectionRecord: Sendable {
    public var id: String
    public var accountId: String
    public var name: String
    public var host: String
    public var port: Int
    public var database: String
    public var username: String
    public var passwordSealed: [UInt8]?
    public var sslmode: String
    public var createdAt: String?
    public var updatedAt: String
    /// Created by the platform itself (the embedded `carto_dw` from setup): exempt from the host rules of
    /// `ConnectionPolicy`. No API sets it, and any edit of where or as whom it connects clears it.
    public var platformManaged: Bool = false

    /// The API shape: never the password.
    public func json() -> JSON {
        [
            "id": .string(id), "name": .string(name), "provider_type": "postgres", "providerType": "postgres",
            "host": .string(host), "port": .int(port), "database": .string(database), "user": .string(username),
            "sslmode": .string(sslmode), "has_password": .bool(passwordSealed != nil),
            "created_at": .optional(createdAt), "updated_at": .string(updatedAt),
            "platform_managed": .bool(platformManaged),
        ]
    }

    /// libpq conninfo with every value single-quoted and escaped (libpq's own quoting rules).
    public func conninfo(password: String?, statementTimeoutMs: Int?, hostaddr: String? = nil) -> String {
        func q(_ v: String) -> String {
            "'" + v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
        }
        var parts = ["host=\(q(host))", "port=\(port)", "dbname=\(q(database))", "user=\(q(username))",
                     "sslmode=\(q(sslmode))", "connect_timeout=5", "application_name='tessera'"]
        if let hostaddr { parts.append("hostaddr=\(q(hostaddr))") }
        if let password { parts.append("password=\(q(password))") }
        if let ms = statementTimeoutMs { parts.append("options=\(q("-c statement_timeout=\(ms)"))") }
        return parts.joined(separator: " ")
    }

    var cacheEntry: [UInt8] {
        var j = json()
        if case .object(var o) = j {
            o["account_id"] = .string(accountId)
            o["password_enc"] = passwordSealed.map { .string(Encoding.hex($0)) } ?? .null
            j = .object(o)
        }
        return j.encoded()
    }

    public init(id: String, accountId: String, name: String, host: String, port: Int, database: String, username: String,
         passwordSealed: [UInt8]?, sslmode: String, createdAt: String?, updatedAt: String, platformManaged: Bool = false) {
        self.id = id
        self.accountId = accountId
        self.name = name
        self.host = host
        self.port = port
        self.database = database
        self.username = username
        self.passwordSealed = passwordSealed
        self.sslmode = sslmode
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.platformManaged = platformManaged
    }

    init(cacheEntry bytes: [UInt8]) throws {
        let j = try JSON.decode(bytes)
        guard let id = j["id"]?.stringValue, let account = j["account_id"]?.stringValue, let name = j["name"]?.stringValue,
              let host = j["host"]?.stringValue, let port = j["port"]?.intValue, let db = j["database"]?.stringValue,
              let user = j["user"]?.stringValue, let ssl = j["sslmode"]?.stringValue, let updated = j["updated_at"]?.stringValue
        else { throw JSON.DecodeError() }
        self.init(id: id, accountId: account, name: name, host: host, port: port, database: db, username: user,
                  passwordSealed: j["password_enc"]?.stringValue.flatMap(Encoding.fromHex), sslmode: ssl,
                  createdAt: j["created_at"]?.stringValue, updatedAt: updated,
                  platformManaged: j["platform_managed"]?.boolValue ?? false)
    }
}

/// Connections in the metadata database.
public struct ConnectionStore {
    let pool: PGPool
    public init(_ pool: PGPool) { self.pool = pool }

    static let columns = """
        id, account_id, name, host, port, database, username, encode(password_enc, 'hex'), sslmode,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), updated_at::text, platform_managed
        """

    func record(_ r: PGResult, _ i: Int) -> ConnectionRecord {
        ConnectionRecord(id: r.string(i, 0)!, accountId: r.string(i, 1)!, name: r.string(i, 2)!, host: r.string(i, 3)!,
                         port: r.int(i, 4)!, database: r.string(i, 5)!, username: r.string(i, 6)!,
                         passwordSealed: r.string(i, 7).flatMap(Encoding.fromHex), sslmode: r.string(i, 8)!,
                         createdAt: r.string(i, 9), updatedAt: r.string(i, 10)!, platformManaged: r.string(i, 11) == "t")
    }

    public func find(account: String, name: String) throws -> ConnectionRecord? {
        try pool.withConnection { db in
            let r = try db.execute("SELECT \(Self.columns) FROM connections WHERE account_id = $1 AND name = $2",
                                   [account, name], prepare: true)
            return r.rowCount == 1 ? record(r, 0) : nil
        }
    }

    /// By id or by name, within one account (another account's connection is simply not found).
    public func find(account: String, idOrName: String) throws -> ConnectionRecord? {
        if UUID(uuidString: idOrName) != nil {
            let found = try pool.withConnection { db -> ConnectionRecord? in
                let r = try db.execute("SELECT \(Self.columns) FROM connections WHERE account_id = $1 AND id = $2", [account, idOrName])
                return r.rowCount == 1 ? record(r, 0) : nil
            }
            if let found { return found }
        }
        return try find(account: account, name: idOrName)
    }

    public func list(account: String) throws -> [ConnectionRecord] {
        try pool.withConnection { db in
            let r = try db.execute("SELECT \(Self.columns) FROM connections WHERE account_id = $1 ORDER BY name", [account])
            return (0..<r.rowCount).map { record(r, $0) }
        }
    }

    public func create(account: String, createdBy: String?, name: String, host: String, port: Int, database: String,
                       username: String, passwordSealed: [UInt8]?, sslmode: String,
                       platformManaged: Bool = false) throws -> ConnectionRecord {
        try pool.withConnection { db in
            let r = try db.execute("""
                INSERT INTO connections (account_id, created_by, name, host, port, database, username, password_enc, sslmode,
                                         platform_managed)
                VALUES ($1, $2, $3, $4, $5, $6, $7, decode($8, 'hex'), $9, $10) RETURNING \(Self.columns)
                """, [account, createdBy, name, host, String(port), database, username,
                      passwordSealed.map(Encoding.hex), sslmode, platformManaged ? "true" : "false"])
            return record(r, 0)
        }
    }

    public func update(_ c: ConnectionRecord) throws -> ConnectionRecord? {
        try pool.withConnection { db in
            let r = try db.execute("""
                UPDATE connections SET name = $3, host = $4, port = $5, database = $6, username = $7,
                       password_enc = decode($8, 'hex'), sslmode = $9, updated_at = clock_timestamp(),
                       platform_managed = platform_managed AND $10
                WHERE id = $1 AND account_id = $2 RETURNING \(Self.columns)
                """, [c.id, c.accountId, c.name, c.host, String(c.port), c.database, c.username,
                      c.passwordSealed.map(Encoding.hex), c.sslmode, c.platformManaged ? "true" : "false"])
            return r.rowCount == 1 ? record(r, 0) : nil
        }
    }

    /// Deletes a connection, drops the grants naming it (at once, so they cannot apply to a new connection
    /// of the same name) and queues `connection.deleted`, all in one transaction.
    public func delete(account: String, id: String, actor: String? = nil) throws -> Bool {
        try pool.transaction { db in
            let r = try db.execute("DELETE FROM connections WHERE id = $1 AND account_id = $2 RETURNING name", [id, account])
            guard r.rowCount == 1, let name = r.string(0, 0) else { return false }
            try TokenStore.removeGrants(account: account, connectionName: name, on: db)
            try WorkspaceEvents.enqueue(.connectionDeleted(accountId: account, connectionName: name), actor: actor, on: db)
            return true
        }
    }
}
