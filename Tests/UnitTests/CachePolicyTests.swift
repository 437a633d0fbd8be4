import Foundation
import HTTPKit
import Platform
import XCTest

final class CachePolicyTests: XCTestCase {
    let token = Principal(accountId: "acct", userId: "u1", kind: .apiToken(id: "t1", grants: []))

    private func headers(_ method: String, cacheControl: String? = nil, principal: Principal? = nil,
                         source: String? = nil, shared: Int? = nil) -> [String: String] {
        var h: [String: String] = [:]
        if let cacheControl { h["cache-control"] = cacheControl }
        let pairs = CachePolicy.headers(HTTPRequest(method: method, path: "/", headers: h), principal: principal ?? token,
                                        maxAge: 31_536_000, connection: "carto_dw", source: source, sharedMaxAge: shared)
        return Dictionary(pairs, uniquingKeysWith: { a, _ in XCTFail("duplicate header"); return a })
    }

    func testGetIsCacheableWithVaryAndSurrogateKeys() {
        let h = headers("GET", source: "src1")
        XCTAssertEqual(h["Cache-Control"], "private, max-age=31536000")
        let vary = Set((h["Vary"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        XCTAssertEqual(vary, ["Authorization", "Origin"])
        XCTAssertEqual(h["Surrogate-Control"], "max-age=31536000")
        XCTAssertEqual(h["X-Connection-Key"], "acct:carto_dw")
        XCTAssertEqual(h["X-Credential-Key"], "token:t1")
        XCTAssertEqual(h["X-Source-Key"], "src1")
    }

    func testSharedMaxAgeBoundsOnlyTheHTTPCache() {
        let h = headers("GET", shared: 60)
        XCTAssertEqual(h["Cache-Control"], "private, max-age=31536000")
        XCTAssertEqual(h["Surrogate-Control"], "max-age=60")
    }

    func testClientMaxAgeIsHonouredWithMinimumTen() {
        XCTAssertEqual(headers("GET", cacheControl: "max-age=300")["Cache-Control"], "private, max-age=300")
        XCTAssertEqual(headers("GET", cacheControl: "Max-Age=60, must-revalidate")["Cache-Control"], "private, max-age=60")
        XCTAssertEqual(headers("GET", cacheControl: "max-age=3")["Cache-Control"], "private, max-age=10")
        XCTAssertEqual(headers("GET", cacheControl: "max-age=999999999")["Cache-Control"], "private, max-age=31536000")
        XCTAssertEqual(headers("GET", cacheControl: "max-age=abc")["Cache-Control"], "private, max-age=31536000")
    }

    func testClientNoCacheStoresNothing() {
        for cc in ["no-cache", "no-store", "no-cache, max-age=300"] {
            let h = headers("GET", cacheControl: cc)
            XCTAssertEqual(h["Cache-Control"], "no-cache", cc)
            XCTAssertNil(h["Surrogate-Control"], cc)
        }
    }

    func testAnswersNeverOutliveTheirCredential() {
        var soon = token
        soon.expiresAt = Date().addingTimeInterval(120)
        let age = Int(headers("GET", principal: soon)["Surrogate-Control"]!.dropFirst("max-age=".count))!
        XCTAssertTrue((118...120).contains(age), "\(age)")
        var expired = token
        expired.expiresAt = Date().addingTimeInterval(-1)
        XCTAssertNil(headers("GET", principal: expired)["Surrogate-Control"])
    }

    func testUserCredentialKeysAndPostNeverCached() {
        let user = Principal(accountId: "acct", userId: "u9", kind: .user(role: .viewer, viaSession: true))
        XCTAssertEqual(headers("GET", principal: user)["X-Credential-Key"], "user:u9")
        let h = headers("POST")
        XCTAssertEqual(h["Cache-Control"], "no-store")
        XCTAssertNil(h["Surrogate-Control"])
    }
}
