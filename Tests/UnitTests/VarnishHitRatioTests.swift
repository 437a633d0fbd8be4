@testable import AdminConsole
import CacheInvalidator
import Foundation
import Observability
import XCTest

/// Varnish's hit ratio: what `varnishstat -j` prints becomes the cdn-invalidator's series, and the
/// console's Status reads them back from its metrics file.
final class VarnishHitRatioTests: XCTestCase {
    // Varnish 7.1 (Debian 12), as `varnishstat -j -f MAIN.cache_hit -f MAIN.cache_miss` prints it.
    let v71 = """
        {"version": 1, "timestamp": "2026-12-06T10:37:16", "counters": {
          "MAIN.cache_hit": {"description": "Cache hits", "flag": "c", "format": "i", "value": 30},
          "MAIN.cache_miss": {"description": "Cache misses", "flag": "c", "format": "i", "value": 10}}}
        """

    func testParsesBothVarnishstatLayouts() {
        XCTAssertEqual(VarnishHitRatio.parse(v71), VarnishHitRatio.Counters(hits: 30, misses: 10))
        // Before 6.5 the counters sat at the top level.
        let old = #"{"timestamp": "x", "MAIN.cache_hit": {"value": 1}, "MAIN.cache_miss": {"value": 3}}"#
        XCTAssertEqual(VarnishHitRatio.parse(old)?.ratio, 0.25)
        XCTAssertNil(VarnishHitRatio.parse("Could not get hold of varnishd, is it running?"))
        XCTAssertNil(VarnishHitRatio.parse(#"{"version": 1, "counters": {}}"#))
    }

    func testNoLookupsHasNoRatio() {
        let none = VarnishHitRatio.Counters(hits: 0, misses: 0)
        XCTAssertNil(none.ratio)
        XCTAssertEqual(VarnishHitRatio.samples(none).map(\.name), ["tessera_varnish_cache_hits_total", "tessera_varnish_cache_misses_total"])
    }

    func testTheConsoleReadsWhatTheInvalidatorWrites() throws {
        let registry = Metrics()
        let text = v71
        registry.collect { VarnishHitRatio.samples(VarnishHitRatio.parse(text)!) }
        let values = StatusReport.samples(registry.render() + "# written 1\n")
        XCTAssertEqual(values["tessera_varnish_cache_hit_ratio"], 0.75)
        XCTAssertEqual(values["tessera_varnish_cache_hits_total"], 30)
        XCTAssertEqual(values["tessera_varnish_cache_misses_total"], 10)
    }
}
