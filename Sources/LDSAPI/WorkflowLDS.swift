import HTTPKit
import Platform
import Workflows

/// Workflows' geocode, isolines and route nodes through the organisation's providers and quotas, the same
/// ones the LDS API meters: each batch is charged before the provider is asked and refunded when the
/// provider fails as a whole (a node retried later is charged again only for work it gets).
public struct WorkflowLDS: WorkflowLocationServices {
    let lds: LDSContext

    public init(services: Services) { lds = LDSContext(services: services) }

    func metered<T>(_ account: String, _ service: LDSService, units: Int, _ work: (LDSProvider) throws -> T) throws -> T {
        let provider = try lds.providers.provider(account: account, service: service)
        try lds.quotas.charge(account: account, service: service, units: units)
        do { return try work(provider) } catch {
            lds.quotas.refund(account: account, service: service, units: units)
            throw error
        }
    }

    public func geocode(account: String, _ queries: [WorkflowGeocodeQuery]) throws -> [WorkflowPlace?] {
        guard !queries.isEmpty else { return [] }
        let answers = try metered(account, .geocoding, units: queries.count) { provider in
            try provider.geocodeBatch(queries.map { GeocodeQuery(address: $0.address, country: $0.country, limit: 1) })
        }
        return answers.map { answer in
            guard case .success(let places) = answer, let p = places.first else { return nil }
            return WorkflowPlace(longitude: p.longitude, latitude: p.latitude, relevance: p.relevance)
        }
    }

    public func isolines(account: String, _ requests: [WorkflowIsolineQuery]) throws -> [String] {
        guard !requests.isEmpty else { return [] }
        let parsed = try requests.map { r in
            IsolineRequest(origin: try Coordinate(longitude: r.longitude, latitude: r.latitude), mode: IsolineRequest.Mode(rawValue: r.mode) ?? .car,
                           ranges: [r.seconds], rangeType: .time)
        }
        return try metered(account, .isolines, units: requests.count) { provider in
            try parsed.map { request in
                let collection = try provider.isoline(request)
                guard let geometry = collection["features"]?.arrayValue?.first?["geometry"], !geometry.isNull else {
                    throw APIError.internalError("The \(provider.name) provider returned no isoline")
                }
                return geometry.text
            }
        }
    }

    public func routes(account: String, _ requests: [WorkflowRouteQuery]) throws -> [WorkflowRoute] {
        guard !requests.isEmpty else { return [] }
        let parsed = try requests.map { r in
            RouteRequest(origin: try Coordinate(longitude: r.origin.longitude, latitude: r.origin.latitude),
                         destination: try Coordinate(longitude: r.destination.longitude, latitude: r.destination.latitude),
                         mode: IsolineRequest.Mode(rawValue: r.mode) ?? .car)
        }
        return try metered(account, .routing, units: requests.count) { provider in
            try parsed.map { request in
                let feature = try provider.route(request)
                guard let geometry = feature["geometry"], !geometry.isNull else {
                    throw APIError.internalError("The \(provider.name) provider returned no route")
                }
                return WorkflowRoute(geometry: geometry.text, distance: feature["properties"]?["distance"]?.doubleValue ?? 0,
                                     duration: feature["properties"]?["duration"]?.doubleValue ?? 0)
            }
        }
    }
}
