import Foundation
import HTTPKit
import Platform
import Postgres

/// Instantiated sources in the metadata database, keyed by their content hash. Definitions never
/// change under an id, so lookups are memoised in-process.
final class SourceStore: Sendable {
    let pool: PGPool
    let memo = LocalMemo<SourceRecord>(ttl: 300)

    init(pool: PGPool) { self.pool = pool }

    func save(_ record: SourceRecord, account: String) throws {
        try pool.withConnection { db in
            try db.execute("""
                INSERT INTO map_sources (id, account_id, connection_name, definition, metadata) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)
                ON CONFLICT (id) DO UPDATE SET last_used_at = now(), metadata = excluded.metadata
                """, [record.id, account, record.definition.connection, record.definition.json.text, record.metadata.text])
        }
        memo.remove("\(account):\(record.id)")
    }

    func load(id: String, account: String) throws -> SourceRecord {
        let found = try memo.value("\(account):\(id)") { () -> SourceRecord? in
            guard id.count <= 64, id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else { return nil }
            return try pool.withConnection { db -> SourceRecord? in
                let r = try db.execute("SELECT definition::text, metadata::text FROM map_sources WHERE id = $1 AND account_id = $2",
                                       [id, account], prepare: true)
                guard r.rowCount == 1, let d = r.string(0, 0), let m = r.string(0, 1) else { return nil }
                return try SourceRecord(id: id, definition: try SourceDefinition(json: try JSON.decode(d)), metadata: try JSON.decode(m))
            }
        }
        guard let found else { throw APIError.notFound("Source not found; instantiate it again", code: "source_not_found") }
        return found
    }
}
