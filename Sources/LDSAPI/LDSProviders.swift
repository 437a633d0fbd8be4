import Foundation
import HTTPKit
import Platform
import Postgres

/// Picks the provider that serves a service for an organisation, from `lds_providers` (no row: local).
public struct LDSProviders: Sendable {
    let services: Services
    public let store: ProviderStore

    public init(services: Services) {
        self.services = services
        store = ProviderStore(metadata: services.metadata, secrets: services.secrets)
    }

    public func provider(account: String, service: LDSService) throws -> LDSProvider {
        let settings = try store.settings(account: account, service: service)
        return try make(settings, account: account)
    }

    /// The provider for stored settings. External kinds without an implementation here answer
    /// `Unsupported provider` for everything (the routing side adds OSRM and Valhalla).
    public func make(_ s: ProviderSettings, account: String) throws -> LDSProvider {
        let timeout = Double(s.timeoutMs ?? services.config.ldsProviderTimeoutMs) / 1000
        switch s.kind {
        case .local:
            return LocalProvider(pool: try localPool(account: account), connectionName: services.config.ldsConnection)
        case .nominatim:
            return NominatimProvider(baseURL: s.url ?? "", apiKey: s.apiKey, timeout: timeout)
        case .osrm:
            return OSRMProvider(baseURL: s.url ?? "", apiKey: s.apiKey, timeout: timeout)
        case .valhalla:
            return ValhallaProvider(baseURL: s.url ?? "", apiKey: s.apiKey, timeout: timeout)
        }
    }

    /// The organisation's LDS warehouse pool (fixed lookups only: no reset round trip), or nil when it has no
    /// such connection.
    func localPool(account: String) throws -> PGPool? {
        do {
            return try services.warehouses.statementPool(for: try services.warehouses.connection(account: account, name: services.config.ldsConnection))
        } catch let e as APIError where e.code == "connection_not_found" {
            return nil
        }
    }
}

/// A provider kind with no operation implemented (yet): every call is 400 `Unsupported provider`.
struct UnsupportedProvider: LDSProvider {
    let name: String
}
