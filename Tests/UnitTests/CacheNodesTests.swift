import CacheInvalidator
import Config
import XCTest

/// Scale-out: the cdn-invalidator purges every cache node listed in TESSERA_VARNISH_PURGE_URL.
final class CacheNodesTests: XCTestCase {
    func testPurgeEndpointsParse() {
        let loopback = PurgeClient(url: "http://127.0.0.1:6091")
        XCTAssertEqual(loopback?.host, "127.0.0.1")
        XCTAssertEqual(loopback?.port, 6091)
        XCTAssertEqual(PurgeClient(url: "http://10.0.0.12:6091/")?.host, "10.0.0.12")
        XCTAssertEqual(PurgeClient(url: "http://cache-2.internal")?.port, 80)
        let v6 = PurgeClient(url: "http://[fd00::2]:6091")
        XCTAssertEqual(v6?.host, "fd00::2")
        XCTAssertEqual(v6?.port, 6091)
        for bad in ["https://10.0.0.1:6091", "10.0.0.1:6091", "http://:6091", "http://h:0", "http://h:99999",
                    "http://user@h:6091", "http://fd00::2:6091", "http://[fd00::2", "http://h:port"] {
            XCTAssertNil(PurgeClient(url: bad), bad)
        }
    }

    func testEveryListedNodeBecomesAClient() throws {
        var config = try TesseraConfig.from(["TESSERA_VARNISH_PURGE_URL": "http://10.0.0.11:6091, http://10.0.0.12:6091"])
        XCTAssertEqual(config.varnishPurgeURLs, ["http://10.0.0.11:6091", "http://10.0.0.12:6091"])
        XCTAssertNoThrow(try InvalidationRunner(purgeURLs: config.varnishPurgeURLs))
        config.varnishPurgeURL = ""
        XCTAssertEqual(config.varnishPurgeURLs, [])
        // An entry the client cannot use stops the program at start, naming it.
        XCTAssertThrowsError(try InvalidationRunner(purgeURLs: ["http://10.0.0.11:6091", "http://h:port"])) {
            XCTAssertTrue(String(describing: $0).contains("http://h:port"), String(describing: $0))
        }
    }

    func testPurgeListAndScaleOutKeysAreValidated() {
        let urls = ConfigKeys.named("TESSERA_VARNISH_PURGE_URL")!
        XCTAssertNil(urls.problem(""))
        XCTAssertNil(urls.problem("http://127.0.0.1:6091"))
        XCTAssertNil(urls.problem("http://10.0.0.11:6091,http://10.0.0.12:6091"))
        XCTAssertNotNil(urls.problem("http://10.0.0.11:6091,https://10.0.0.12:6091"))
        XCTAssertNotNil(urls.problem("10.0.0.11:6091"))
        let invalidators = ConfigKeys.named("TESSERA_VARNISH_INVALIDATORS")!
        XCTAssertNil(invalidators.problem("10.0.0.11, 10.0.0.0/24"))
        // A quote or semicolon would write VCL into the ACL.
        XCTAssertNotNil(invalidators.problem("10.0.0.1\"; }"))
        XCTAssertEqual(ConfigKeys.named("TESSERA_VARNISH_PURGE_LISTEN")!.units, ["varnish"])
    }
}
