import Foundation
import HTTPKit
import Postgres

/// An API Access Token as stored (and cached).
public struct TokenRecord: Sendable {
    public let id: String
    public let accountId: String
    public let createdBy: String?
    public let grants: [Grant]
    public let referers: [String]
    public let allowedAPIs: [String]
    public let expiresAt: Date?
    public let createdAt: Date?
    /// The map this token belongs to (a map's own token), if any.
    public var mapId: String?

    /// The cache form: like the API shape, but dates as epoch seconds (parsing ISO dates per request is costly).
    public func cacheEntry() -> [UInt8] {
        guard case .object(var o) = json(includeAccount: true) else { return [] }
        o["expiration_date"] = expiresAt.map { .number($0.timeIntervalSince1970) } ?? .null
        o["created_at"] = createdAt.map { .number($0.timeIntervalSince1970) } ?? .null
        o["map_id"] = .optional(mapId)
        return JSON.object(o).encoded()
    }

    public init(cacheEntry bytes: [UInt8]) throws {
        let j = try JSON.decode(bytes)
        guard let id = j["id"]?.stringValue, let account = j["account_id"]?.stringValue else { throw JSON.DecodeError() }
        self.id = id
        accountId = account
        createdBy = j["created_by"]?.stringValue
        grants = TokenRecord.parseGrants(j["grants"])
        referers = j["referers"]?.arrayValue?.compactMap(\.stringValue) ?? []
        allowedAPIs = j["allowed_apis"]?.arrayValue?.compactMap(\.stringValue) ?? []
        expiresAt = j["expiration_date"]?.doubleValue.map(Date.init(timeIntervalSince1970:))
        createdAt = j["created_at"]?.doubleValue.map(Date.init(timeIntervalSince1970:))
        mapId = j["map_id"]?.stringValue
    }

    init(id: String, accountId: String, createdBy: String?, grants: [Grant], referers: [String], allowedAPIs: [String],
         expiresAt: Date?, createdAt: Date?, mapId: String? = nil) {
        self.mapId = mapId
        self.id = id
        self.accountId = accountId
        self.createdBy = createdBy
        self.grants = grants
        self.referers = referers
        self.allowedAPIs = allowedAPIs
        self.expiresAt = expiresAt
        self.createdAt = createdAt
    }

    static func parseGrants(_ json: JSON?) -> [Grant] {
        (json?.arrayValue ?? []).compactMap { g in
            guard let c = g["connection_name"]?.stringValue, let s = g["source"]?.stringValue else { return nil }
            return Grant(connectionName: c, source: s)
        }
    }

    nonisolated(unsafe) static let isoFormatter: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f
    }()

    public static func parseDate(_ s: String) -> Date? {
        if let d = isoFormatter.date(from: s) { return d }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: s) { return d }
        f.formatOptions = [.withFullDate]
        return f.date(from: s)
    }

    public static func formatDate(_ d: Date) -> String { isoFormatter.string(from: d) }

    /// The Tokens API shape (contract §7), without the token string itself.
    public func json(includeAccount: Bool = false) -> JSON {
        var o: [String: JSON] = [
            "id": .string(id),
            "grants": .array(grants.map { ["connection_name": .string($0.connectionName), "source": .string($0.source)] }),
            "referers": .array(referers.map { .string($0) }),
            "allowed_apis": .array(allowedAPIs.map { .string($0) }),
            "expiration_date": expiresAt.map { .string(TokenRecord.formatDate($0)) } ?? .null,
            "created_at": createdAt.map { .string(TokenRecord.formatDate($0)) } ?? .null,
        ]
        if includeAccount {
            o["account_id"] = .string(accountId)
            o["created_by"] = .optional(createdBy)
        }
        return .object(o)
    }
}

/// API Access Tokens in the metadata database.
public struct TokenStore {
    let pool: PGPool
    public init(_ pool: PGPool) { self.pool = pool }

    static let columns = """
        id, account_id, created_by, grants::text, referers::text, array_to_json(allowed_apis)::text,
        to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
        (SELECT m.id FROM maps m WHERE m.token_id = api_tokens.id LIMIT 1)
        """

    func record(_ r: PGResult, _ i: Int) -> TokenRecord {
        func json(_ c: Int) -> JSON? { r.string(i, c).flatMap { try? JSON.decode($0) } }
        return TokenRecord(id: r.string(i, 0)!, accountId: r.string(i, 1)!, createdBy: r.string(i, 2),
                           grants: TokenRecord.parseGrants(json(3)),
                           referers: json(4)?.arrayValue?.compactMap(\.stringValue) ?? [],
                           allowedAPIs: json(5)?.arrayValue?.compactMap(\.stringValue) ?? [],
                           expiresAt: r.string(i, 6).flatMap(TokenRecord.parseDate),
                           createdAt: r.string(i, 7).flatMap(TokenRecord.parseDate), mapId: r.string(i, 8))
    }

    public func find(id: String) throws -> TokenRecord? {
        guard UUID(uuidString: id) != nil else { return nil }
        return try pool.withConnection { db in
            let r = try db.execute("SELECT \(TokenStore.columns) FROM api_tokens WHERE id = $1", [id], prepare: true)
            return r.rowCount == 1 ? record(r, 0) : nil
        }
    }

    public func find(id: String, account: String) throws -> TokenRecord? {
        guard let t = try find(id: id), t.accountId == account else { return nil }
        return t
    }

    /// The account's tokens, without the ones maps own (those come and go with their map's datasets).
    public func list(account: String) throws -> [TokenRecord] {
        try pool.withConnection { db in
            let r = try db.execute("""
                SELECT \(TokenStore.columns) FROM api_tokens WHERE account_id = $1
                  AND NOT EXISTS (SELECT 1 FROM maps m WHERE m.token_id = api_tokens.id)
                ORDER BY created_at
                """, [account])
            return (0..<r.rowCount).map { record(r, $0) }
        }
    }

    public func create(account: String, createdBy: String?, grants: [Grant], referers: [String], allowedAPIs: [String],
                       expiresAt: Date?) throws -> TokenRecord {
        try pool.withConnection { db in
            try create(on: db, account: account, createdBy: createdBy, grants: grants, referers: referers,
                       allowedAPIs: allowedAPIs, expiresAt: expiresAt)
        }
    }

    /// The same on a given connection, so a caller can create a token inside its own transaction (maps).
    public func create(on db: PGConnection, account: String, createdBy: String?, grants: [Grant], referers: [String],
                       allowedAPIs: [String], expiresAt: Date?) throws -> TokenRecord {
        let r = try db.execute("""
            INSERT INTO api_tokens (account_id, created_by, grants, referers, allowed_apis, expires_at)
            SELECT $1, $2, $3::jsonb, $4::jsonb, ARRAY(SELECT jsonb_array_elements_text($5::jsonb)), $6::timestamptz
            RETURNING \(TokenStore.columns)
            """, [account, createdBy, Self.encode(grants), Self.encode(referers), Self.encode(allowedAPIs),
                  expiresAt.map(TokenRecord.formatDate)])
        return record(r, 0)
    }

    public func update(id: String, account: String, grants: [Grant]?, referers: [String]?, allowedAPIs: [String]?) throws -> TokenRecord? {
        try pool.withConnection { db in
            let r = try db.execute("""
                UPDATE api_tokens SET grants = coalesce($3::jsonb, grants), referers = coalesce($4::jsonb, referers),
                       allowed_apis = CASE WHEN $5::jsonb IS NULL THEN allowed_apis ELSE ARRAY(SELECT jsonb_array_elements_text($5::jsonb)) END
                WHERE id = $1 AND account_id = $2 RETURNING \(TokenStore.columns)
                """, [id, account, grants.map(Self.encode), referers.map(Self.encode), allowedAPIs.map(Self.encode)])
            return r.rowCount == 1 ? record(r, 0) : nil
        }
    }

    static func encode(_ grants: [Grant]) -> String {
        JSON.array(grants.map { ["connection_name": .string($0.connectionName), "source": .string($0.source)] }).text
    }

    static func encode(_ strings: [String]) -> String { JSON.array(strings.map { .string($0) }).text }

    public func delete(id: String, account: String) throws -> Bool {
        guard UUID(uuidString: id) != nil else { return false }
        return try pool.withConnection { db in
            try db.execute("DELETE FROM api_tokens WHERE id = $1 AND account_id = $2", [id, account]).affectedRows == 1
        }
    }

    /// Drops grants on a connection that no longer exists (its tokens must not reach a new one of the same name).
    public func removeGrants(account: String, connectionName: String) throws {
        _ = try pool.withConnection { try Self.removeGrants(account: account, connectionName: connectionName, on: $0) }
    }

    /// Drops every grant naming the connection from the account's tokens (on `db`, joining its open
    /// transaction); a token left without grants stays and reaches nothing. Returns how many changed.
    @discardableResult
    public static func removeGrants(account: String, connectionName: String, on db: PGConnection) throws -> Int {
        try db.execute("""
            UPDATE api_tokens SET grants = coalesce((SELECT jsonb_agg(g) FROM jsonb_array_elements(grants) g
                                                     WHERE g->>'connection_name' <> $2), '[]')
            WHERE account_id = $1 AND grants @> jsonb_build_array(jsonb_build_object('connection_name', $2::text))
            """, [account, connectionName]).affectedRows ?? 0
    }
}
