import XCTest
@testable import HTTPKit
@testable import Observability

final class MetricsTests: XCTestCase {
    func testHistogramRendersCumulativeBucketsSumAndCount() {
        let registry = Metrics()
        let h = registry.histogram("t_seconds", "help", [("route", "GET /a")], buckets: [0.1, 1])
        h.observe(0.05)
        h.observe(0.5)
        h.observe(3)
        XCTAssertEqual(registry.render(), """
            # HELP t_seconds help
            # TYPE t_seconds histogram
            t_seconds_bucket{route="GET /a",le="0.1"} 1
            t_seconds_bucket{route="GET /a",le="1"} 2
            t_seconds_bucket{route="GET /a",le="+Inf"} 3
            t_seconds_sum{route="GET /a"} 3.55
            t_seconds_count{route="GET /a"} 3

            """)
    }

    func testSameLabelsAreOneSeriesAndLabelValuesAreEscaped() {
        let registry = Metrics()
        registry.counter("c_total", "help", [("q", "a\"b\\c\nd")]).add()
        registry.counter("c_total", "help", [("q", "a\"b\\c\nd")]).add(2)
        XCTAssertEqual(registry.render(), "# HELP c_total help\n# TYPE c_total counter\nc_total{q=\"a\\\"b\\\\c\\nd\"} 3\n")
    }

    func testEmptyHistogramsAreLeftOut() {
        let registry = Metrics()
        _ = registry.histogram("unused_seconds", "help")
        XCTAssertEqual(registry.render(), "# HELP unused_seconds help\n# TYPE unused_seconds histogram\n")
    }

    func testRequestsAreLabelledByRoutePatternNotPath() {
        let registry = Metrics()
        let router = Router()
        router.get("/api/v3/x/{id}") { _ in HTTPResponse(status: 200) }
        let metrics = RequestMetrics(routes: router.routeLabels, registry: registry)
        let (_, route) = router.lookup(method: "GET", path: "/api/v3/x/42")
        metrics.observe(route: route, status: 200, seconds: 0.01, bytes: 10)
        metrics.observe(route: route, status: 200, seconds: 0.02, bytes: 10)
        metrics.observe(route: nil, status: 404, seconds: 0.001, bytes: 5)
        metrics.observe(route: route, status: 418, seconds: 0.001, bytes: 5)
        let text = registry.render()
        XCTAssertTrue(text.contains("tessera_http_request_duration_seconds_count{route=\"GET /api/v3/x/{id}\",status=\"200\"} 2\n"), text)
        XCTAssertTrue(text.contains("tessera_http_request_duration_seconds_count{route=\"unmatched\",status=\"404\"} 1\n"), text)
        XCTAssertTrue(text.contains("tessera_http_request_duration_seconds_count{route=\"GET /api/v3/x/{id}\",status=\"418\"} 1\n"), text)
        XCTAssertFalse(text.contains("42"), text)
    }

    func testConcurrentObservationsAreAllCounted() {
        let registry = Metrics()
        let counter = registry.counter("n_total", "help")
        DispatchQueue.concurrentPerform(iterations: 8) { _ in for _ in 0..<10_000 { counter.add() } }
        XCTAssertEqual(counter.current, 80_000)
    }
}
