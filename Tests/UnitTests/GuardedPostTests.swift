@testable import OutboundHTTP
import XCTest

/// The workflow POST refuses what URL imports refuse, before any connection is made.
final class GuardedPostTests: XCTestCase {
    func testPrivateAddressesAreRefusedUnlessTheirEndpointIsAllowListed() {
        let post = GuardedPost(guardian: URLGuard(allowlist: []))
        for url in ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "http://[::1]:9/", "http://2130706433:9/"] {
            XCTAssertThrowsError(try post.post(url, json: "{}"), url) { error in
                let refused = error as? URLRefused
                XCTAssertEqual(refused?.permanent, true, url)
                XCTAssertTrue(refused?.message.contains("refused") == true, "\(url): \(String(describing: refused))")
            }
        }
        XCTAssertThrowsError(try post.post("gopher://example.com/", json: "{}")) { XCTAssertTrue($0 is URLRefused) }
        XCTAssertEqual(try URLGuard(allowlist: ["127.0.0.1:9"]).check("http://127.0.0.1:9/hook").address, "127.0.0.1")
    }
}
