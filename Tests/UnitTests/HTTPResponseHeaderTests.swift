import HTTPKit
import XCTest

/// Header names match ASCII case-insensitively, and only letters fold (the lookup compares bytes, no copies).
final class HTTPResponseHeaderTests: XCTestCase {
    func testLookupIgnoresLetterCase() {
        let response = HTTPResponse(status: 200, headers: [("Content-Type", "application/json"), ("X-Request-Id", "abc")])
        XCTAssertEqual(response.header("content-type"), "application/json")
        XCTAssertEqual(response.header("CONTENT-TYPE"), "application/json")
        XCTAssertEqual(response.header("x-request-id"), "abc")
        XCTAssertNil(response.header("Content-Typ"))
        XCTAssertNil(response.header("Content-Types"))
        XCTAssertNil(response.header(""))
    }

    func testOnlyLettersFold() {
        // '@' (0x40) and '`' (0x60) differ by the case bit but are not letters; '[' (0x5B) and '{' (0x7B) too.
        let response = HTTPResponse(status: 200, headers: [("X-@", "at"), ("X-[", "bracket")])
        XCTAssertNil(response.header("x-`"))
        XCTAssertNil(response.header("x-{"))
        XCTAssertEqual(response.header("x-@"), "at")
    }

    func testSetHeaderReplacesEveryCaseVariant() {
        var response = HTTPResponse(status: 200, headers: [("cache-control", "no-store"), ("Cache-Control", "max-age=1"),
                                                            ("Content-Type", "text/plain")])
        response.setHeader("CACHE-CONTROL", "public")
        XCTAssertEqual(response.headers.filter { $0.0.lowercased() == "cache-control" }.map(\.1), ["public"])
        XCTAssertEqual(response.header("content-type"), "text/plain")
    }
}
