import Foundation
import HTTPKit
import Platform

/// The LDS API (contract §9): geocoding, reverse geocoding, batch geocoding, isolines, routing and quota
/// use, served by the lds-api program. Every call needs `lds` among an API token's `allowed_apis`.
public enum LDSAPI {
    public static func register(_ router: Router, services: Services) {
        let lds = LDSContext(services: services)
        router.get("/api/v3/lds/health") { _ in .json(["status": "ok"]) }
        GeocodingRoutes(lds: lds).register(router)
        RoutingRoutes(lds: lds).register(router)
        router.get("/api/v3/lds/stats") { request in try lds.stats(request) }
        GeocodeTableRoutes(lds: lds).register(router)
    }
}

/// What every LDS route shares: authentication for the `lds` API, the provider of a service, quotas.
struct LDSContext: Sendable {
    let services: Services
    let providers: LDSProviders
    let quotas: QuotaStore
    /// Requests charge through blocks this process holds (workers charge `quotas` directly).
    let leases: QuotaLeases

    init(services: Services) {
        self.services = services
        providers = LDSProviders(services: services)
        quotas = QuotaStore(metadata: services.metadata, config: services.config)
        leases = QuotaLeases(store: quotas)
    }

    func authenticate(_ request: HTTPRequest) throws -> Principal {
        try services.auth.authenticate(request, api: "lds")
    }

    func parameters(_ request: HTTPRequest) throws -> Parameters {
        try Parameters.from(request, bodyLimit: services.config.maxBodyBytes)
    }

    /// Charges `units` of the service's quota, runs `work` with the organisation's provider, and gives
    /// the units back when the provider failed as a whole (it did no work the user can use).
    func metered<T>(_ principal: Principal, _ service: LDSService, units: Int, _ work: (LDSProvider) throws -> T) throws -> T {
        let provider = try providers.provider(account: principal.accountId, service: service)
        try leases.charge(account: principal.accountId, service: service, units: units)
        do { return try work(provider) } catch {
            leases.refund(account: principal.accountId, service: service, units: units)
            throw error
        }
    }

    /// `GET /api/v3/lds/stats`: this month's quota and use per service of the caller's organisation.
    func stats(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try authenticate(request)
        leases.flush(account: principal.accountId)
        let usage = try quotas.usage(account: principal.accountId)
        let providerNames = try providers.store.list(account: principal.accountId)
        let rows: [JSON] = usage.map { u in
            let provider = providerNames.first { $0.service == u.service.rawValue }?.provider ?? "local"
            return ["service": .string(u.service.rawValue), "provider": .string(provider), "quota": .int(u.quota),
                    "used": .int(u.used), "remaining": .int(max(u.quota - u.used, 0)), "period": .string(u.period)]
        }
        return .json(["organization": .string(principal.accountId), "period": .optional(usage.first?.period), "services": .array(rows)],
                     headers: [("Cache-Control", "no-store")])
    }
}
