@testable import Platform
import HTTPKit
import XCTest

final class RefererTests: XCTestCase {
    private func matches(_ sent: String, _ pattern: String) -> Bool {
        Authenticator.refererMatches(sent, pattern: pattern)
    }

    func testExactHost() {
        XCTAssertTrue(matches("https://app.example.com", "https://app.example.com"))
        XCTAssertTrue(matches("https://app.example.com/maps/1?x=y", "https://app.example.com/"))
        XCTAssertTrue(matches("https://APP.Example.com/", "https://app.example.com"))
        XCTAssertFalse(matches("https://other.example.com", "https://app.example.com"))
        XCTAssertFalse(matches("https://app.example.com.evil.net", "https://app.example.com"))
        XCTAssertFalse(matches("https://evilapp.example.com", "https://app.example.com"))
    }

    func testUserinfoDoesNotFoolHostMatching() {
        XCTAssertFalse(matches("https://app.example.com@evil.net/", "https://app.example.com"))
    }

    func testBareHostPatternMatchesAnyScheme() {
        XCTAssertTrue(matches("https://app.example.com/x", "app.example.com"))
        XCTAssertTrue(matches("http://app.example.com/x", "app.example.com"))
        XCTAssertFalse(matches("https://example.com", "app.example.com"))
    }

    func testWildcardSubdomain() {
        XCTAssertTrue(matches("https://a.example.com", "https://*.example.com"))
        XCTAssertTrue(matches("https://a.b.example.com/page", "https://*.example.com"))
        XCTAssertTrue(matches("https://tenant.example.com", "*.example.com"))
        XCTAssertFalse(matches("https://example.com", "https://*.example.com"))
        XCTAssertFalse(matches("https://evilexample.com", "https://*.example.com"))
        XCTAssertFalse(matches("https://a.example.com.evil.net", "https://*.example.com"))
    }

    func testSchemeMismatch() {
        XCTAssertFalse(matches("http://app.example.com", "https://app.example.com"))
        XCTAssertFalse(matches("http://a.example.com", "https://*.example.com"))
        XCTAssertTrue(matches("http://app.example.com", "http://app.example.com"))
    }

    func testPort() {
        XCTAssertTrue(matches("https://app.example.com:8443/x", "https://app.example.com:8443"))
        XCTAssertFalse(matches("https://app.example.com/x", "https://app.example.com:8443"))
        XCTAssertFalse(matches("https://app.example.com:9999/x", "https://app.example.com:8443"))
    }

    func testGarbage() {
        XCTAssertFalse(matches("", "https://app.example.com"))
        XCTAssertFalse(matches("not a url", "https://app.example.com"))
        XCTAssertFalse(matches("app.example.com", "https://app.example.com"))  // no scheme: no host
        XCTAssertFalse(matches("https://app.example.com", ""))
        XCTAssertFalse(matches("https://app.example.com", "://"))
        XCTAssertFalse(matches("null", "app.example.com"))
    }

    func testCookieParsing() {
        let request = HTTPRequest(method: "GET", path: "/", headers: ["cookie": "a=1; \(Authenticator.sessionCookie)=abc=def ; b=2"])
        XCTAssertEqual(Authenticator.cookie(request, named: Authenticator.sessionCookie), "abc=def")
        XCTAssertEqual(Authenticator.cookie(request, named: "b"), "2")
        XCTAssertNil(Authenticator.cookie(request, named: "c"))
        XCTAssertNil(Authenticator.cookie(HTTPRequest(method: "GET", path: "/"), named: "a"))
    }

    func testBearerToken() throws {
        let header = HTTPRequest(method: "GET", path: "/", rawQuery: "access_token=fromquery", headers: ["authorization": "Bearer abc.def"])
        XCTAssertEqual(try Authenticator.bearerToken(header), "abc.def")
        XCTAssertEqual(try Authenticator.bearerToken(HTTPRequest(method: "GET", path: "/", rawQuery: "access_token=q1")), "q1")
        XCTAssertNil(try Authenticator.bearerToken(HTTPRequest(method: "GET", path: "/")))
        assertAPIError(try Authenticator.bearerToken(HTTPRequest(method: "GET", path: "/", headers: ["authorization": "Basic dXNlcg=="])),
                       status: 401, code: "invalid_token")
        assertAPIError(try Authenticator.bearerToken(HTTPRequest(method: "GET", path: "/", headers: ["authorization": "Bearer"])),
                       status: 401)
    }
}
