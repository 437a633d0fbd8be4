import Foundation
import HTTPKit

/// The three metered LDS services; each organisation picks a provider and has a quota per service.
public enum LDSService: String, Sendable, CaseIterable {
    case geocoding, isolines, routing
}

/// One geocoding result in the contract's shape (§9): `latitude`, `longitude`, `country`, `city`, `state`,
/// `streetName`, `streetNumber`, `countryCode`, `provider`.
public struct Place: Sendable, Equatable {
    public var latitude: Double
    public var longitude: Double
    public var city: String?
    public var state: String?
    public var county: String?
    public var country: String?
    public var countryCode: String?
    public var streetName: String?
    public var streetNumber: String?
    public var postalCode: String?
    /// 0…1: how well the text matched (1 = exact after folding accents and case).
    public var relevance: Double?
    public var provider: String

    public init(latitude: Double, longitude: Double, provider: String) {
        self.latitude = latitude
        self.longitude = longitude
        self.provider = provider
    }

    /// The contract's object, written straight into a response body with its keys in sorted order (the order
    /// `JSON.encoded()` writes objects in). Building a `JSON` dictionary per place and sorting its keys cost
    /// about 10% of lds-api's instructions per geocode (callgrind).
    public func append(to out: inout [UInt8]) {
        var separator = UInt8(ascii: "{")
        func name(_ key: StaticString) {
            out.append(separator)
            separator = UInt8(ascii: ",")
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
            out.append(contentsOf: "\":".utf8)
        }
        func text(_ key: StaticString, _ value: String?, orNull: Bool = true) {
            guard value != nil || orNull else { return }
            name(key)
            if let value { JSON.appendString(value, to: &out) } else { out.append(contentsOf: "null".utf8) }
        }
        func number(_ key: StaticString, _ value: Double?) {
            guard let value else { return }
            name(key)
            JSON.appendNumber(value, to: &out)
        }
        text("city", city)
        text("country", country)
        text("countryCode", countryCode)
        text("county", county, orNull: false)
        number("latitude", latitude)
        number("longitude", longitude)
        text("postalCode", postalCode, orNull: false)
        text("provider", provider)
        number("relevance", relevance.map { ($0 * 1000).rounded() / 1000 })
        text("state", state)
        text("streetName", streetName)
        text("streetNumber", streetNumber)
        out.append(UInt8(ascii: "}"))
    }
}

/// What to geocode: free text (`"Zaragoza"`, `"Paris, France"`), optionally narrowed to an ISO country.
public struct GeocodeQuery: Sendable, Hashable {
    public var address: String
    /// ISO 3166-1 alpha-2, upper case.
    public var country: String?
    public var limit: Int
    public init(address: String, country: String? = nil, limit: Int = 1) {
        self.address = address
        self.country = country
        self.limit = limit
    }
}

/// A provider behind the LDS API: the local one in the warehouse, or an external service configured per
/// organisation. Operations a provider does not offer keep the default, which answers
/// 400 `Unsupported provider` as CARTO does.
public protocol LDSProvider: Sendable {
    /// Name reported in results (`provider` field) and errors.
    var name: String { get }
    /// Best matches first, at most `query.limit`; empty when nothing matches.
    func geocode(_ query: GeocodeQuery) throws -> [Place]
    /// Many addresses at once, answered in order; one entry's failure does not fail the others.
    func geocodeBatch(_ queries: [GeocodeQuery]) throws -> [Result<[Place], APIError>]
    /// The nearest known place or address to a point.
    func reverse(latitude: Double, longitude: Double, language: String?) throws -> [Place]
    /// GeoJSON FeatureCollection of polygons, one per range.
    func isoline(_ request: IsolineRequest) throws -> JSON
    /// GeoJSON Feature (LineString) with `distance` (m) and `duration` (s) properties.
    func route(_ request: RouteRequest) throws -> JSON
}

extension LDSProvider {
    public func geocode(_ query: GeocodeQuery) throws -> [Place] { throw LDSErrors.unsupported(name, "geocoding") }
    public func reverse(latitude: Double, longitude: Double, language: String?) throws -> [Place] {
        throw LDSErrors.unsupported(name, "reverse geocoding")
    }
    public func isoline(_ request: IsolineRequest) throws -> JSON { throw LDSErrors.unsupported(name, "isolines") }
    public func route(_ request: RouteRequest) throws -> JSON { throw LDSErrors.unsupported(name, "routing") }

    /// One request per address; providers that can do better (the local one: one SQL statement) override it.
    public func geocodeBatch(_ queries: [GeocodeQuery]) throws -> [Result<[Place], APIError>] {
        try queries.map { q in
            do { return .success(try geocode(q)) } catch let e as APIError where e.status < 500 || e.status == 502 {
                // A bad entry or a provider's refusal of one address stays with that entry; timeouts and
                // outages (504, 503) end the batch, since every later entry would wait for them too.
                return .failure(e)
            }
        }
    }
}

/// The LDS-specific errors, in the one error contract.
public enum LDSErrors {
    /// CARTO's answer for an operation the configured provider does not offer.
    public static func unsupported(_ provider: String, _ operation: String) -> APIError {
        var e = APIError(400, "unsupported_provider", "Unsupported provider",
                         hint: "The \(provider) provider does not offer \(operation); configure another one with `tessera lds provider set`")
        e.extra["provider"] = .string(provider)
        return e
    }

    public static func providerTimeout(_ provider: String, seconds: Double) -> APIError {
        var e = APIError(504, "provider_timeout", "The \(provider) provider did not answer within \(String(format: "%.1f", seconds)) s")
        e.extra["provider"] = .string(provider)
        return e
    }

    public static func providerFailed(_ provider: String, _ why: String) -> APIError {
        var e = APIError(502, "provider_error", "The \(provider) provider failed: \(why)")
        e.extra["provider"] = .string(provider)
        return e
    }
}
