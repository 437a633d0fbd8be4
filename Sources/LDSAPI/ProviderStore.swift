import CryptoSupport
import Foundation
import HTTPKit
import Platform
import Postgres

/// An organisation's choice of provider for one service (`lds_providers`); no row means `local`.
public struct ProviderSettings: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case local, nominatim, osrm, valhalla }

    public var kind: Kind
    public var url: String?
    public var apiKey: String?
    public var timeoutMs: Int?

    public init(kind: Kind, url: String? = nil, apiKey: String? = nil, timeoutMs: Int? = nil) {
        self.kind = kind
        self.url = url
        self.apiKey = apiKey
        self.timeoutMs = timeoutMs
    }

    public static let local = ProviderSettings(kind: .local)
}

/// Reads and writes `lds_providers`. API keys are sealed with the connection-password key.
public struct ProviderStore: Sendable {
    let metadata: PGPool
    let secrets: Secrets
    /// Every request asks which provider serves it; a change (`tessera lds provider set`) is seen within 1 s.
    let memo = LocalMemo<ProviderSettings>(ttl: 1)

    public init(metadata: PGPool, secrets: Secrets) {
        self.metadata = metadata
        self.secrets = secrets
    }

    public func settings(account: String, service: LDSService) throws -> ProviderSettings {
        try memo.value("\(account):\(service.rawValue)") { try load(account: account, service: service) } ?? .local
    }

    func load(account: String, service: LDSService) throws -> ProviderSettings {
        let r = try metadata.withConnection { db in
            try db.execute("SELECT provider, url, encode(api_key_enc, 'hex'), timeout_ms FROM lds_providers WHERE account_id = $1 AND service = $2",
                           [account, service.rawValue], prepare: true)
        }
        guard r.rowCount == 1, let kind = ProviderSettings.Kind(rawValue: r.string(0, 0) ?? "") else { return .local }
        let key = try r.string(0, 2).flatMap(Encoding.fromHex).map {
            String(decoding: try Crypto.open($0, key: secrets.connectionPasswordKey), as: UTF8.self)
        }
        return ProviderSettings(kind: kind, url: r.string(0, 1), apiKey: key, timeoutMs: r.int(0, 3))
    }

    public func set(account: String, service: LDSService, _ s: ProviderSettings) throws {
        let sealed = try s.apiKey.map { Encoding.hex(try Crypto.seal(Array($0.utf8), key: secrets.connectionPasswordKey)) }
        _ = try metadata.withConnection { db in
            try db.execute("""
                INSERT INTO lds_providers (account_id, service, provider, url, api_key_enc, timeout_ms)
                VALUES ($1, $2, $3, $4, decode($5, 'hex'), $6::int)
                ON CONFLICT (account_id, service) DO UPDATE
                SET provider = EXCLUDED.provider, url = EXCLUDED.url, api_key_enc = EXCLUDED.api_key_enc,
                    timeout_ms = EXCLUDED.timeout_ms, updated_at = now()
                """, [account, service.rawValue, s.kind.rawValue, s.url, sealed, s.timeoutMs.map(String.init)])
        }
    }

    /// Every configured service of an organisation (keys never leave: only whether one is set).
    public func list(account: String) throws -> [(service: String, provider: String, url: String?, hasKey: Bool)] {
        let r = try metadata.withConnection { db in
            try db.execute("SELECT service, provider, url, api_key_enc IS NOT NULL FROM lds_providers WHERE account_id = $1 ORDER BY service", [account])
        }
        return (0..<r.rowCount).map { (r.string($0, 0)!, r.string($0, 1)!, r.string($0, 2), r.bool($0, 3) ?? false) }
    }
}
