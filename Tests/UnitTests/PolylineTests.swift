@testable import LDSAPI
import XCTest

/// Valhalla route shapes: Google's encoded polyline, decoded to GeoJSON [lon, lat] order.
final class PolylineTests: XCTestCase {
    func testDecodesTheReferenceExampleAtPrecision5() throws {
        // The worked example of the format's documentation: (38.5, -120.2), (40.7, -120.95), (43.252, -126.453).
        let points = try XCTUnwrap(Polyline.decode("_p~iF~ps|U_ulLnnqC_mqNvxq`@", precision: 5))
        XCTAssertEqual(points.count, 3)
        for (got, want) in zip(points, [[-120.2, 38.5], [-120.95, 40.7], [-126.453, 43.252]]) {
            XCTAssertEqual(got[0], want[0], accuracy: 1e-9)
            XCTAssertEqual(got[1], want[1], accuracy: 1e-9)
        }
    }

    func testRejectsTruncatedAndInvalidText() {
        XCTAssertNil(Polyline.decode("_p~iF~ps|U_ulL", precision: 5), "a latitude without its longitude")
        XCTAssertNil(Polyline.decode("_p~iF~ps|\u{7F}", precision: 5), "a byte outside the alphabet")
        XCTAssertEqual(Polyline.decode("")?.count, 0)
    }
}
