import CryptoSupport
import HTTPKit
import Platform
import Postgres

/// A Builder map as stored. `config` and `datasets` are nil in listings (they are not read there).
struct MapRecord {
    let id: String
    let accountId: String
    let ownerId: String?
    let ownerEmail: String?
    let title: String
    let description: String
    let privacy: String
    let config: JSON?
    let datasets: JSON?
    let tokenId: String?
    let createdAt: String
    let updatedAt: String
    /// The published version (nil until "Publish" is first pressed; then the public link serves it).
    var published: Published? = nil
    var publishedAt: String? = nil
    var hasUnpublishedChanges = false
    /// PasswordHasher's format; nil when the public map has no password.
    var passwordHash: String? = nil

    struct Published {
        let title: String
        let description: String
        let config: JSON?
        let datasets: JSON?
    }

    /// What the public link, the embed and fetchMap serve: the published version, or the current state
    /// of a map that was never published (maps from before publishing existed, API clients).
    var servedTitle: String { published?.title ?? title }
    var servedDescription: String { published?.description ?? description }
    var servedConfig: JSON? { published.map { $0.config } ?? config }
    var servedDatasets: JSON? { published.map { $0.datasets } ?? datasets }

    var isPublic: Bool { privacy == "public" }
    /// Unknown stored values read as the most restrictive level.
    var privacyLevel: Principal.MapPrivacy { Principal.MapPrivacy(rawValue: privacy) ?? .private }

    /// MapSummary of the workspace API.
    func summary() -> JSON {
        ["id": .string(id), "title": .string(title), "description": .string(description), "privacy": .string(privacy),
         "createdAt": .string(createdAt), "updatedAt": .string(updatedAt),
         "owner": ownerId.map { ["id": .string($0), "email": .optional(ownerEmail)] } ?? .null]
    }

    /// Map: the summary plus the documents, the public link and the publishing state.
    func full() -> JSON {
        guard case .object(var o) = summary() else { return .null }
        o["keplerMapConfig"] = config ?? MapDocument.defaultConfig
        o["datasets"] = datasets ?? .array([])
        o["publicUrl"] = .string("/api/v3/maps/public/\(id)")
        o["publishedAt"] = .optional(publishedAt)
        o["hasUnpublishedChanges"] = .bool(hasUnpublishedChanges)
        o["passwordProtected"] = .bool(passwordHash != nil)
        return .object(o)
    }
}

/// Maps in the metadata database. A map owns one API access token whose grants are its datasets'
/// sources: it is created with the map and replaced (old one deleted) whenever the datasets change.
struct MapStore {
    let pool: PGPool

    static let summaryColumns = """
        m.id, m.account_id, m.owner_id, u.email, m.title, m.description, m.privacy, NULL, NULL, m.token_id,
        to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        to_char(m.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        to_char(m.published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        m.published_at IS NOT NULL AND (m.title, m.description, m.kepler_map_config, m.datasets)
            IS DISTINCT FROM (m.published_title, m.published_description, m.published_config, m.published_datasets),
        m.password_hash, m.published_title, m.published_description, NULL::text, NULL::text
        """
    static let fullColumns = summaryColumns.replacingOccurrences(of: "NULL, NULL", with: "m.kepler_map_config::text, m.datasets::text")
        .replacingOccurrences(of: "NULL::text, NULL::text", with: "m.published_config::text, m.published_datasets::text")
    static let from = "FROM maps m LEFT JOIN users u ON u.id = m.owner_id"

    func record(_ r: PGResult, _ i: Int) -> MapRecord {
        MapRecord(id: r.string(i, 0)!, accountId: r.string(i, 1)!, ownerId: r.string(i, 2), ownerEmail: r.string(i, 3),
                  title: r.string(i, 4)!, description: r.string(i, 5) ?? "", privacy: r.string(i, 6)!,
                  config: r.string(i, 7).flatMap { try? JSON.decode($0) }, datasets: r.string(i, 8).flatMap { try? JSON.decode($0) },
                  tokenId: r.string(i, 9), createdAt: r.string(i, 10)!, updatedAt: r.string(i, 11)!,
                  published: r.string(i, 12) == nil ? nil : MapRecord.Published(
                      title: r.string(i, 15) ?? "", description: r.string(i, 16) ?? "",
                      config: r.string(i, 17).flatMap { try? JSON.decode($0) }, datasets: r.string(i, 18).flatMap { try? JSON.decode($0) }),
                  publishedAt: r.string(i, 12), hasUnpublishedChanges: r.string(i, 13) == "t",
                  passwordHash: r.string(i, 14))
    }

    /// The organisation's maps, most recently updated first.
    func list(account: String) throws -> [MapRecord] {
        try pool.withConnection { db in
            let r = try db.execute("SELECT \(Self.summaryColumns) \(Self.from) WHERE m.account_id = $1 ORDER BY m.updated_at DESC, m.id",
                                   [account])
            return (0..<r.rowCount).map { record(r, $0) }
        }
    }

    /// One map by id; `account` nil finds any organisation's map (the public endpoint decides access itself).
    func find(id: String, account: String?) throws -> MapRecord? {
        guard id.range(of: "^[A-Za-z0-9_-]{6,64}$", options: .regularExpression) != nil else { return nil }
        return try pool.withConnection { db in
            let r = try db.execute("SELECT \(Self.fullColumns) \(Self.from) WHERE m.id = $1 AND ($2::uuid IS NULL OR m.account_id = $2::uuid)",
                                   [id, account], prepare: true)
            return r.rowCount == 1 ? record(r, 0) : nil
        }
    }

    func newToken(on db: PGConnection, account: String, owner: String?, datasets: JSON) throws -> String {
        let connection = MapDocument.basemapGrant.connectionName
        let hasBasemap = try db.execute("SELECT 1 FROM connections WHERE account_id = $1 AND name = $2", [account, connection]).rowCount == 1
        return try TokenStore(pool).create(on: db, account: account, createdBy: owner,
                                           grants: MapDocument.grants(datasets, basemap: hasBasemap), referers: [],
                                           allowedAPIs: ["sql", "maps"], expiresAt: nil).id
    }

    func create(account: String, owner: String, title: String, description: String, privacy: String = "private",
                config: JSON, datasets: JSON) throws -> MapRecord {
        let id = Encoding.randomToken(bytes: 8)
        try pool.transaction { db in
            let token = try newToken(on: db, account: account, owner: owner, datasets: datasets)
            try db.execute("""
                INSERT INTO maps (id, account_id, owner_id, title, description, privacy, kepler_map_config, datasets, token_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9)
                """, [id, account, owner, title, description, privacy, config.text, datasets.text, token])
        }
        return try find(id: id, account: account)!
    }

    struct Changes {
        var title: String?
        var description: String?
        var privacy: String?
        var config: JSON?
        var datasets: JSON?
    }

    /// Applies the changes; new datasets get a new token and the old one is deleted (its grants no longer
    /// match the map). Returns the replaced token id, if any, so caches can forget it.
    func update(_ map: MapRecord, _ c: Changes) throws -> (MapRecord, replacedToken: String?) {
        let replaced: String? = try pool.transaction { db in
            var token = map.tokenId
            // The token is what the public link hands out, so it follows the served datasets: a published
            // map's token changes at the next publish, not with draft edits.
            if map.published == nil, let datasets = c.datasets, datasets != map.datasets || map.tokenId == nil {
                token = try newToken(on: db, account: map.accountId, owner: map.ownerId, datasets: datasets)
            }
            try db.execute("""
                UPDATE maps SET title = coalesce($3, title), description = coalesce($4, description), privacy = coalesce($5, privacy),
                       kepler_map_config = coalesce($6::jsonb, kepler_map_config), datasets = coalesce($7::jsonb, datasets),
                       token_id = $8, updated_at = clock_timestamp()
                WHERE id = $1 AND account_id = $2
                """, [map.id, map.accountId, c.title, c.description, c.privacy, c.config?.text, c.datasets?.text, token])
            guard token != map.tokenId, let old = map.tokenId else { return nil }
            try db.execute("DELETE FROM api_tokens WHERE id = $1", [old])
            return old
        }
        return (try find(id: map.id, account: map.accountId)!, replaced)
    }

    /// Deletes the map and its token; false when it was already gone.
    /// Deletes the map and its token, and queues `map.deleted` in the same transaction so that the
    /// workspace-subscriber purges its datasets' cached responses.
    func delete(_ map: MapRecord, actor: String) throws -> Bool {
        try pool.transaction { db in
            let gone = try db.execute("DELETE FROM maps WHERE id = $1 AND account_id = $2", [map.id, map.accountId]).affectedRows == 1
            guard gone else { return false }
            if let token = map.tokenId { try db.execute("DELETE FROM api_tokens WHERE id = $1", [token]) }
            // The published datasets were served too, and may differ from the draft's.
            let all = (map.datasets?.arrayValue ?? []) + (map.published?.datasets?.arrayValue ?? [])
            let datasets = all.compactMap { d -> WorkspaceEvent.Dataset? in
                guard let connection = d["connectionName"]?.stringValue, let source = d["source"]?.stringValue else { return nil }
                return WorkspaceEvent.Dataset(connection: connection, source: source)
            }.reduce(into: [WorkspaceEvent.Dataset]()) { if !$0.contains($1) { $0.append($1) } }
            try WorkspaceEvents.enqueue(.mapDeleted(accountId: map.accountId, mapId: map.id, datasets: datasets), actor: actor, on: db)
            return true
        }
    }

    /// Copies the draft to the published version, unless the draft changed since `map` was read (then nil:
    /// the caller checked that version's sources, not the new one). The token gets the published datasets'
    /// grants. Returns the updated map and the replaced token id, if any.
    func publish(_ map: MapRecord) throws -> (MapRecord, replacedToken: String?)? {
        let datasets = map.datasets ?? .array([])
        let replaced: String?
        do { replaced = try pool.transaction { db -> String? in
            var token = map.tokenId
            if datasets != (map.servedDatasets ?? .array([])) || token == nil {
                token = try newToken(on: db, account: map.accountId, owner: map.ownerId, datasets: datasets)
            }
            let copied = try db.execute("""
                UPDATE maps SET published_title = title, published_description = description, published_config = kepler_map_config,
                       published_datasets = datasets, published_at = clock_timestamp(), token_id = $7
                WHERE id = $1 AND account_id = $2
                  AND (title, description, kepler_map_config, datasets) IS NOT DISTINCT FROM ($3, $4, $5::jsonb, $6::jsonb)
                """, [map.id, map.accountId, map.title, map.description, (map.config ?? MapDocument.defaultConfig).text,
                      datasets.text, token]).affectedRows == 1
            guard copied else { throw DraftChanged() }  // rolls back the new token too
            guard token != map.tokenId, let old = map.tokenId else { return nil }
            try db.execute("DELETE FROM api_tokens WHERE id = $1", [old])
            return old
        } } catch is DraftChanged { return nil }
        return (try find(id: map.id, account: map.accountId)!, replaced)
    }

    struct DraftChanged: Error {}

    /// Sets or removes (nil) the public password.
    func setPassword(_ map: MapRecord, hash: String?) throws {
        try pool.withConnection { db in
            _ = try db.execute("UPDATE maps SET password_hash = $3 WHERE id = $1 AND account_id = $2", [map.id, map.accountId, hash])
        }
    }

    /// The map's token id, creating one if it was deleted through the Tokens API meanwhile (the row lock
    /// keeps two concurrent viewers from creating two).
    func ensureToken(_ map: MapRecord) throws -> String {
        if let id = map.tokenId { return id }
        return try pool.transaction { db in
            let current = try db.execute("SELECT token_id FROM maps WHERE id = $1 FOR UPDATE", [map.id])
            if let id = current.string(0, 0) { return id }
            let token = try newToken(on: db, account: map.accountId, owner: map.ownerId, datasets: map.servedDatasets ?? .array([]))
            try db.execute("UPDATE maps SET token_id = $2 WHERE id = $1", [map.id, token])
            return token
        }
    }
}
