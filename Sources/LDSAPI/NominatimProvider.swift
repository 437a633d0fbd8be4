import Foundation
import HTTPKit

/// Nominatim (OpenStreetMap's geocoder, an open protocol): `/search` and `/reverse` with `format=jsonv2`
/// and address details. A `key` is sent when configured (hosted Nominatim services such as LocationIQ
/// take one). Routing and isolines are not Nominatim's: those stay `Unsupported provider`.
public struct NominatimProvider: LDSProvider {
    public let name = "nominatim"
    let baseURL: String
    let apiKey: String?
    let client: ProviderHTTPClient

    public init(baseURL: String, apiKey: String?, timeout: TimeInterval) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        client = ProviderHTTPClient(provider: "nominatim", timeout: timeout)
    }

    public func geocode(_ q: GeocodeQuery) throws -> [Place] {
        let url = try ProviderHTTPClient.url(baseURL, path: "/search", [
            ("q", q.address), ("format", "jsonv2"), ("addressdetails", "1"), ("limit", String(q.limit)),
            ("countrycodes", q.country?.lowercased()), ("key", apiKey),
        ])
        guard let items = try client.getJSON(url).arrayValue else { throw LDSErrors.providerFailed(name, "expected a JSON array") }
        return try items.prefix(q.limit).map(place)
    }

    public func reverse(latitude: Double, longitude: Double, language: String?) throws -> [Place] {
        let url = try ProviderHTTPClient.url(baseURL, path: "/reverse", [
            ("lat", String(latitude)), ("lon", String(longitude)), ("format", "jsonv2"), ("addressdetails", "1"),
            ("accept-language", language), ("key", apiKey),
        ])
        let answer = try client.getJSON(url)
        // Nominatim says "nothing here" (open sea) with 200 and {"error": "Unable to geocode"}.
        if answer["error"] != nil { return [] }
        return [try place(answer)]
    }

    func place(_ item: JSON) throws -> Place {
        func number(_ key: String) -> Double? { item[key]?.stringValue.flatMap(Double.init) ?? item[key]?.doubleValue }
        guard let lat = number("lat"), let lon = number("lon") else { throw LDSErrors.providerFailed(name, "a result has no lat/lon") }
        let a = item["address"]
        func field(_ keys: String...) -> String? { keys.lazy.compactMap { a?[$0]?.stringValue }.first }
        var p = Place(latitude: lat, longitude: lon, provider: name)
        p.city = field("city", "town", "village", "hamlet", "municipality")
        p.state = field("state", "region", "province")
        p.county = field("county")
        p.country = field("country")
        p.countryCode = field("country_code")?.uppercased()
        p.streetName = field("road", "pedestrian", "street")
        p.streetNumber = field("house_number")
        p.postalCode = field("postcode")
        p.relevance = item["importance"]?.doubleValue
        return p
    }
}
