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
    }

    func testNominatimAnswersMapToTheContract() throws {
        let item = try JSON.decode("""
            {"lat":"41.6563497","lon":"-0.8765603","importance":0.7,"address":{"town":"Utebo","state":"Aragón","country":"España",
             "country_code":"es","road":"Calle Mayor","house_number":"3","postcode":"50180","county":"Zaragoza"}}
            """)
        let place = try NominatimProvider(baseURL: "http://x", apiKey: nil, timeout: 1).place(item)
        XCTAssertEqual(place.json, [
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
