import Config
import HTTPKit
@testable import LDSAPI
import XCTest

/// LDS parameter checks and result mapping: what reaches a provider is in range, and what comes back
/// has the contract's shape.
final class LDSRequestTests: XCTestCase {
    func p(_ query: [String: String]) -> Parameters { Parameters(query: query) }

    func assertBadRequest(_ body: @autoclosure () throws -> Any, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let e = error as? APIError else { return XCTFail("not an APIError: \(error)", file: file, line: line) }
            XCTAssertEqual(e.status, 400, file: file, line: line)
            XCTAssertTrue(e.message.contains(fragment), "\(e.message) lacks \(fragment)", file: file, line: line)
        }
    }

    func testCoordinatesAreCheckedAndOrdered() throws {
        let c = try Coordinate.parse(" -0.88, 41.65 ", parameter: "origin")
        XCTAssertEqual(c, try Coordinate(longitude: -0.88, latitude: 41.65))
        XCTAssertEqual(try Coordinate.parse("41.65,-0.88", parameter: "waypoints", latFirst: true), c)
        assertBadRequest(try Coordinate(longitude: 0, latitude: 91), "Latitude")
        assertBadRequest(try Coordinate(longitude: 200, latitude: 0), "Longitude")
        assertBadRequest(try Coordinate(longitude: .nan, latitude: 0), "Longitude")
        assertBadRequest(try Coordinate.parse("1;2", parameter: "origin"), "origin must be 'lon,lat'")
        assertBadRequest(try Coordinate.parse("1,2,3", parameter: "origin"), "origin")
        assertBadRequest(try Coordinate.number(p(["lat": "inf"]), "lat"), "lat must be a number")
        assertBadRequest(try Coordinate.number(p([:]), "lat"), "Missing required parameter: lat")
    }

    func testIsolineRequestBounds() throws {
        let r = try IsolineRequest(p(["origin": "-0.88,41.65", "range": "600,1800", "mode": "walk"]))
        XCTAssertEqual(r.ranges, [600, 1800])
        XCTAssertEqual(r.mode, .walk)
        XCTAssertEqual(r.rangeType, .time)
        XCTAssertEqual(try IsolineRequest(p(["origin": "0,0", "range": "200000", "range_type": "distance"])).ranges, [200_000])
        assertBadRequest(try IsolineRequest(p(["origin": "0,0", "range": "0"])), "range must be greater than 0")
        assertBadRequest(try IsolineRequest(p(["origin": "0,0", "range": "7201"])), "at most 7200 seconds")
        assertBadRequest(try IsolineRequest(p(["origin": "0,0", "range": "-5"])), "range")
        assertBadRequest(try IsolineRequest(p(["origin": "0,0", "range": "1e400"])), "range")
        assertBadRequest(try IsolineRequest(p(["origin": "0,0", "range": "60", "range_type": "fuel"])), "range_type")
        assertBadRequest(try IsolineRequest(p(["origin": "0,0", "range": "60", "mode": "boat"])), "mode")
        assertBadRequest(try IsolineRequest(p(["range": "60"])), "origin")
    }

    func testRouteRequestWaypointsAreLatLon() throws {
        let r = try RouteRequest(p(["origin": "-0.88,41.65", "destination": "-0.9,41.6", "waypoints": "41.62,-0.89|41.61,-0.895"]))
        XCTAssertEqual(r.waypoints, [try Coordinate(longitude: -0.89, latitude: 41.62), try Coordinate(longitude: -0.895, latitude: 41.61)])
        XCTAssertEqual(r.mode, .car)
        assertBadRequest(try RouteRequest(p(["origin": "-0.88,41.65"])), "destination")
        assertBadRequest(try RouteRequest(p(["origin": "-0.88,41.65", "destination": "0,0", "waypoints": "95,0"])), "Latitude")
    }

    func testGeocodeQueryChecks() throws {
        XCTAssertEqual(try GeocodingRoutes.query(address: "  Zaragoza ", country: "es", limit: 2),
                       GeocodeQuery(address: "Zaragoza", country: "ES", limit: 2))
        assertBadRequest(try GeocodingRoutes.query(address: " ", country: nil, limit: 1), "address must not be empty")
        assertBadRequest(try GeocodingRoutes.query(address: ", ;", country: nil, limit: 1), "address must not be empty")
        assertBadRequest(try GeocodingRoutes.query(address: nil, country: nil, limit: 1), "address must not be empty")
        assertBadRequest(try GeocodingRoutes.query(address: String(repeating: "a", count: 501), country: nil, limit: 1), "at most 500")
        assertBadRequest(try GeocodingRoutes.country("ESP"), "ISO 3166-1")
        assertBadRequest(try GeocodingRoutes.country("1A"), "ISO 3166-1")
        XCTAssertNil(try GeocodingRoutes.country(" "))
        XCTAssertEqual(try GeocodingRoutes.limit(p([:])), 1)
        assertBadRequest(try GeocodingRoutes.limit(p(["limit": "51"])), "limit")
        assertBadRequest(try GeocodingRoutes.limit(p(["limit": "x"])), "limit")
        // The byte paths of the checks keep the Unicode rules.
        XCTAssertEqual(GeocodingRoutes.trimmed("\u{3000}\t Málaga\u{A0}\n"), "Málaga")
        XCTAssertEqual(GeocodingRoutes.trimmed(" \u{85}"), "")
        XCTAssertEqual(GeocodingRoutes.trimmed("Oslo"), "Oslo")
        XCTAssertEqual(try GeocodingRoutes.query(address: "東京", country: nil, limit: 1).address, "東京")
        XCTAssertEqual(try GeocodingRoutes.query(address: "١٢", country: nil, limit: 1).address, "١٢")
        assertBadRequest(try GeocodingRoutes.query(address: "—「」", country: nil, limit: 1), "address must not be empty")
        assertBadRequest(try GeocodingRoutes.query(address: String(repeating: "é", count: 501), country: nil, limit: 1), "at most 500")
        XCTAssertEqual(try GeocodingRoutes.query(address: String(repeating: "é", count: 500), country: nil, limit: 1).address.count, 500)
        assertBadRequest(try GeocodingRoutes.query(address: "a\0b", country: nil, limit: 1), "at most 500")
    }

    /// The answers are written without building `JSON` values: they must be exactly what the generic encoder
    /// writes for the same value (sorted keys, its number format, its escapes), nulls and optional keys included.
    func testGeocodingAnswersAreTheGenericEncodersBytes() throws {
        var full = Place(latitude: 41.65606, longitude: -0.87734, provider: "local")
        (full.city, full.state, full.county, full.country, full.countryCode) = ("Zaragoza", "Aragón", "Provincia \"Z\"", "Spain", "ES")
        (full.streetName, full.streetNumber, full.postalCode, full.relevance) = ("Calle\tMayor", "3", "50180", 0.123456)
        let bare = Place(latitude: 0, longitude: 12, provider: "nominatim")
        let body = GeocodingRoutes.respond([.success([full, bare]), .success([]), .failure(.badRequest("address must not be empty", code: "invalid_address"))])
        guard case .bytes(let bytes) = body.body else { return XCTFail("not a byte body") }
        XCTAssertEqual(String(decoding: try JSON.decode(bytes).encoded(), as: UTF8.self), String(decoding: bytes, as: UTF8.self))
        let entries = try JSON.decode(bytes).arrayValue ?? []
        XCTAssertEqual(entries.count, 3)
        XCTAssertEqual(entries[0]["value"]?.arrayValue?[0]["relevance"], .number(0.123))
        XCTAssertEqual(entries[0]["value"]?.arrayValue?[1], [
            "latitude": 0, "longitude": 12, "city": nil, "state": nil, "country": nil, "countryCode": nil, "streetName": nil,
            "streetNumber": nil, "provider": "nominatim",
        ])
        XCTAssertEqual(entries[1], ["error": nil, "value": []])
        XCTAssertEqual(entries[2], ["error": "address must not be empty", "code": "invalid_address", "value": nil])
        XCTAssertEqual(body.header("Content-Type"), "application/json")
        XCTAssertEqual(body.header("Cache-Control"), "no-store")
    }

    func testNominatimAnswersMapToTheContract() throws {
        let item = try JSON.decode("""
            {"lat":"41.6563497","lon":"-0.8765603","importance":0.7,"address":{"town":"Utebo","state":"Aragón","country":"España",
             "country_code":"es","road":"Calle Mayor","house_number":"3","postcode":"50180","county":"Zaragoza"}}
            """)
        let place = try NominatimProvider(baseURL: "http://x", apiKey: nil, timeout: 1).place(item)
        var bytes: [UInt8] = []
        place.append(to: &bytes)
        XCTAssertEqual(try JSON.decode(bytes), [
            "latitude": .number(41.6563497), "longitude": .number(-0.8765603), "city": "Utebo", "state": "Aragón", "county": "Zaragoza", "country": "España",
            "countryCode": "ES", "streetName": "Calle Mayor", "streetNumber": "3", "postalCode": "50180", "relevance": .number(0.7),
            "provider": "nominatim",
        ])
        XCTAssertThrowsError(try NominatimProvider(baseURL: "http://x", apiKey: nil, timeout: 1).place(["lat": "1"])) { error in
            XCTAssertEqual((error as? APIError)?.status, 502)
        }
        XCTAssertEqual(try ProviderHTTPClient.url("http://h:1/nominatim//", path: "/search", [("q", "a b&c"), ("key", nil)]).absoluteString,
                       "http://h:1/nominatim/search?q=a%20b%26c")
    }

    func testUnsupportedOperationsAreCARTOsError() {
        XCTAssertThrowsError(try UnsupportedProvider(name: "osrm").geocode(GeocodeQuery(address: "x"))) { error in
            let e = error as? APIError
            XCTAssertEqual(e?.status, 400)
            XCTAssertEqual(e?.message, "Unsupported provider")
            XCTAssertEqual(e?.code, "unsupported_provider")
        }
    }

    func testQuotaDefaultsComeFromTheConfig() throws {
        let config = try TesseraConfig.from(["TESSERA_LDS_QUOTA_ISOLINES": "7"])
        XCTAssertEqual(config.ldsQuotaGeocoding, 100_000)
        XCTAssertEqual(config.ldsQuotaIsolines, 7)
        XCTAssertEqual(config.ldsConnection, "carto_dw")
        XCTAssertThrowsError(try TesseraConfig.from(["TESSERA_LDS_QUOTA_ROUTING": "-1"]))
    }
}
