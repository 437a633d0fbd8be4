import Foundation
import HTTPKit
import Postgres

/// A user's SQL editor history and saved queries (`sql_queries`). Every statement names the owner, so a
/// user reaches only their own entries: ownership is the store's rule, not each route's.
struct SQLQueryStore {
    let pool: PGPool
    let account: String
    let user: String

    enum Kind: String { case history, saved }

    /// The most recent history entries kept per user; older ones are dropped as new runs are recorded.
    static let historyLimit = 100

    static let columns = """
        id, kind, name, connection_name, sql, row_count, duration_ms, error,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
        """

    func entry(_ r: PGResult, _ i: Int) -> JSON {
        var o: [String: JSON] = ["id": .optional(r.string(i, 0)), "kind": .optional(r.string(i, 1)),
                                 "connection": .optional(r.string(i, 3)), "sql": .optional(r.string(i, 4)),
                                 "createdAt": .optional(r.string(i, 8)), "updatedAt": .optional(r.string(i, 9))]
        if let name = r.string(i, 2) { o["name"] = .string(name) }
        if let rows = r.int(i, 5) { o["rowCount"] = .int(rows) }
        if let ms = r.double(i, 6) { o["durationMs"] = .number(ms) }
        if let error = r.string(i, 7) { o["error"] = .string(error) }
        return .object(o)
    }

    func list(_ kind: Kind) throws -> [JSON] {
        try pool.withConnection { db in
            let r = try db.execute("""
                SELECT \(Self.columns) FROM sql_queries WHERE account_id = $1 AND user_id = $2 AND kind = $3
                ORDER BY updated_at DESC, id LIMIT $4
                """, [account, user, kind.rawValue, String(Self.historyLimit)])
            return (0..<r.rowCount).map { entry(r, $0) }
        }
    }

    func find(id: String) throws -> JSON? {
        guard Self.isUUID(id) else { return nil }
        return try pool.withConnection { db in
            let r = try db.execute("SELECT \(Self.columns) FROM sql_queries WHERE id = $1 AND account_id = $2 AND user_id = $3 AND kind = 'saved'",
                                   [id, account, user])
            // JSON is nil-literal expressible: a bare nil here would be a found JSON null.
            return r.rowCount == 1 ? .some(entry(r, 0)) : JSON?.none
        }
    }

    /// Records a run and keeps only the newest `historyLimit` entries, in one transaction.
    func record(connection: String, sql: String, rowCount: Int?, durationMs: Double?, error: String?) throws -> JSON {
        try pool.transaction { db in
            let r = try db.execute("""
                INSERT INTO sql_queries (account_id, user_id, kind, connection_name, sql, row_count, duration_ms, error)
                VALUES ($1, $2, 'history', $3, $4, $5::bigint, $6::double precision, $7) RETURNING \(Self.columns)
                """, [account, user, connection, sql, rowCount.map(String.init), durationMs.map { String($0) }, error])
            try db.execute("""
                DELETE FROM sql_queries WHERE user_id = $1 AND kind = 'history' AND id NOT IN (
                    SELECT id FROM sql_queries WHERE user_id = $1 AND kind = 'history' ORDER BY updated_at DESC, id LIMIT $2)
                """, [user, String(Self.historyLimit)])
            return entry(r, 0)
        }
    }

    func clearHistory() throws {
        _ = try pool.withConnection { db in
            try db.execute("DELETE FROM sql_queries WHERE account_id = $1 AND user_id = $2 AND kind = 'history'", [account, user])
        }
    }

    func save(name: String, connection: String, sql: String) throws -> JSON {
        try pool.withConnection { db in
            let r = try db.execute("""
                INSERT INTO sql_queries (account_id, user_id, kind, name, connection_name, sql)
                VALUES ($1, $2, 'saved', $3, $4, $5) RETURNING \(Self.columns)
                """, [account, user, name, connection, sql])
            return entry(r, 0)
        }
    }

    /// nil fields stay as they are; nil result: no such saved query of this user.
    func update(id: String, name: String?, connection: String?, sql: String?) throws -> JSON? {
        guard Self.isUUID(id) else { return nil }
        return try pool.withConnection { db in
            let r = try db.execute("""
                UPDATE sql_queries SET name = coalesce($4, name), connection_name = coalesce($5, connection_name),
                       sql = coalesce($6, sql), updated_at = now()
                WHERE id = $1 AND account_id = $2 AND user_id = $3 AND kind = 'saved' RETURNING \(Self.columns)
                """, [id, account, user, name, connection, sql])
            // JSON is nil-literal expressible: a bare nil here would be a found JSON null.
            return r.rowCount == 1 ? .some(entry(r, 0)) : JSON?.none
        }
    }

    func delete(id: String) throws -> Bool {
        guard Self.isUUID(id) else { return false }
        return try pool.withConnection { db in
            try db.execute("DELETE FROM sql_queries WHERE id = $1 AND account_id = $2 AND user_id = $3 AND kind = 'saved'",
                           [id, account, user]).affectedRows == 1
        }
    }

    static func isUUID(_ s: String) -> Bool {
        s.range(of: "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", options: .regularExpression) != nil
    }
}
