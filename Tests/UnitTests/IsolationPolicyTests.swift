import HTTPKit
@testable import Platform
import XCTest

/// The pure policies of issue 11: redirect validation after sign-in, the login throttle's growing delays,
/// and who is read-only / may see which token, map or job.
final class IsolationPolicyTests: XCTestCase {
    // MARK: redirects

    func testSameSitePathsAreKept() {
        for path in ["/", "/maps", "/#/maps/abc", "/workspace/?x=1#y", "/map/abc-DEF_12", "/a/b%3Fc"] {
            XCTAssertTrue(SafeRedirect.isSafe(path), path)
            XCTAssertEqual(SafeRedirect.path(path), path)
        }
    }

    func testEscapesFromTheSiteFallBackToRoot() {
        let attacks = [
            "//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/evil.example", "/%09/evil.example",
            "/%0a/evil.example", "/%2F/evil.example", "/%5cevil.example", "https://evil.example", "javascript:alert(1)",
            "evil.example", "", " /maps", "/ /evil", "\\\\evil", "/\u{0085}/evil", "/\u{200B}/evil", "/acc/#/login",
            "/acc", String(repeating: "/a", count: 2000),
        ]
        for next in attacks {
            XCTAssertFalse(SafeRedirect.isSafe(next), next.debugDescription)
            XCTAssertEqual(SafeRedirect.path(next), "/", next.debugDescription)
        }
        XCTAssertEqual(SafeRedirect.path(nil), "/")
    }

    // MARK: CSRF (one check, in the authenticator, for every method)

    private func request(_ method: String, _ headers: [String: String]) -> HTTPRequest {
        HTTPRequest(method: method, path: "/api/v3/sql/carto_dw/query", headers: headers)
    }

    func testCookieRequestsNeedTheProofWhateverTheMethod() {
        let token = "csrf-token-123"
        for method in ["GET", "HEAD", "POST", "PATCH", "DELETE"] {
            XCTAssertTrue(Authenticator.csrfSatisfied(request(method, ["x-csrf-token": token]), sessionToken: token), method)
            for headers in [[:], ["x-csrf-token": "wrong"], ["sec-fetch-site": "cross-site"], ["sec-fetch-site": "same-site"],
                            ["origin": "https://evil.example", "host": "tessera.example"], ["origin": "null", "host": "tessera.example"]] {
                XCTAssertFalse(Authenticator.csrfSatisfied(request(method, headers), sessionToken: token), "\(method) \(headers)")
            }
        }
        // Reads may rely on the browser's same-origin signal instead (a page learns its token from /me).
        XCTAssertTrue(Authenticator.csrfSatisfied(request("GET", ["sec-fetch-site": "same-origin"]), sessionToken: token))
        XCTAssertTrue(Authenticator.csrfSatisfied(request("GET", ["origin": "https://tessera.example:8443", "host": "tessera.example:8443"]),
                                                  sessionToken: token))
        XCTAssertFalse(Authenticator.csrfSatisfied(request("POST", ["sec-fetch-site": "same-origin"]), sessionToken: token),
                       "writes always need the token itself")
        XCTAssertFalse(Authenticator.csrfSatisfied(request("GET", ["x-csrf-token": ""]), sessionToken: ""))
    }

    func testSignInFormsFromAnotherSiteAreRefused() {
        XCTAssertThrowsError(try Authenticator.requireSameOriginForm(request("POST", ["origin": "https://evil.example", "host": "t.example"])))
        XCTAssertThrowsError(try Authenticator.requireSameOriginForm(request("POST", ["sec-fetch-site": "cross-site"])))
        XCTAssertNoThrow(try Authenticator.requireSameOriginForm(request("POST", ["sec-fetch-site": "same-origin"])))
        XCTAssertNoThrow(try Authenticator.requireSameOriginForm(request("POST", [:])), "API clients send neither header")
    }

    // MARK: login throttle

    func testFirstFailuresAreFreeThenDelaysGrowAndAreCapped() {
        let p = LoginThrottlePolicy()
        for n in 0..<p.freeFailures { XCTAssertEqual(p.delay(afterFailures: n), 0) }
        XCTAssertEqual(p.delay(afterFailures: p.freeFailures), 1)
        XCTAssertEqual(p.delay(afterFailures: p.freeFailures + 1), 2)
        XCTAssertEqual(p.delay(afterFailures: p.freeFailures + 4), 16)
        XCTAssertEqual(p.delay(afterFailures: 1000), p.maxDelay)
        var last = 0.0
        for n in 0...40 {
            let d = p.delay(afterFailures: n)
            XCTAssertGreaterThanOrEqual(d, last)
            last = d
        }
    }

    func testAWaitEndsAfterItsDelayInsteadOfLockingOut() {
        let p = LoginThrottlePolicy()
        XCTAssertNil(p.retryAfter(failures: 4, secondsSinceLastFailure: 0))
        XCTAssertEqual(p.retryAfter(failures: 7, secondsSinceLastFailure: 1), 3)
        XCTAssertNil(p.retryAfter(failures: 7, secondsSinceLastFailure: 4))
        // Even after a thousand failures the pair may try again once the capped delay passed.
        XCTAssertNil(p.retryAfter(failures: 1000, secondsSinceLastFailure: p.maxDelay))
        XCTAssertNotNil(p.retryAfter(failures: 1000, secondsSinceLastFailure: p.maxDelay - 1))
    }

    // MARK: read-only principals

    private func token(_ grants: [String], creator: Principal.Role?, map: String? = nil) -> Principal {
        Principal(accountId: "acc", userId: "creator", kind: .apiToken(id: "t", grants: grants.map { Grant(connectionName: "c", source: $0) }),
                  creatorRole: creator, mapId: map)
    }

    func testWhoIsReadOnly() {
        XCTAssertTrue(Principal(accountId: "acc", userId: "u", kind: .user(role: .viewer, viaSession: true)).isReadOnly)
        XCTAssertFalse(Principal(accountId: "acc", userId: "u", kind: .user(role: .editor, viaSession: true)).isReadOnly)
        XCTAssertFalse(token(["*"], creator: .editor).isReadOnly)
        XCTAssertTrue(token(["*"], creator: .viewer).isReadOnly, "a demoted editor's * token writes no more")
        XCTAssertTrue(token(["*"], creator: nil).isReadOnly, "a token whose creator is unknown reads only")
        XCTAssertTrue(token(["*"], creator: .admin, map: "m1").isReadOnly, "a map's token always reads only")
        XCTAssertTrue(token(["public.cities"], creator: .admin).isReadOnly, "scoped tokens read only")
        let mixed = Principal(accountId: "acc", userId: "creator",
                              kind: .apiToken(id: "t", grants: [Grant(connectionName: "a", source: "*"), Grant(connectionName: "b", source: "t")]),
                              creatorRole: .editor)
        XCTAssertFalse(mixed.isReadOnly(on: "a"))
        XCTAssertTrue(mixed.isReadOnly(on: "b"), "scoped on b even though * elsewhere")
        XCTAssertTrue(mixed.isReadOnly(on: "c"))
    }

    func testRequireWrite() {
        XCTAssertNoThrow(try token(["*"], creator: .editor).requireWrite(to: "c", "write"))
        XCTAssertThrowsError(try token(["*"], creator: .viewer).requireWrite(to: "c", "write"))
        XCTAssertThrowsError(try token(["*"], creator: .admin, map: "m").requireWrite(to: "c", "write"))
        XCTAssertThrowsError(try token(["public.t"], creator: .admin).requireWrite(to: "c", "write"))
        // Without a connection (imports), grants are checked per table by the caller; the role still counts.
        XCTAssertNoThrow(try token(["public.t"], creator: .admin).requireWrite(to: nil, "import"))
        XCTAssertThrowsError(try token(["public.t"], creator: .viewer).requireWrite(to: nil, "import"))
    }

    // MARK: objects

    private func user(_ role: Principal.Role, _ id: String = "me", account: String = "acc") -> Principal {
        Principal(accountId: account, userId: id, kind: .user(role: role, viaSession: false))
    }

    func testTokensAreTheirCreatorsAndAdmins() {
        XCTAssertTrue(user(.viewer).mayRead(token: "me", account: "acc"))
        XCTAssertFalse(user(.viewer).mayRead(token: "other", account: "acc"))
        XCTAssertFalse(user(.editor).mayRead(token: "other", account: "acc"))
        XCTAssertTrue(user(.admin).mayRead(token: "other", account: "acc"))
        XCTAssertFalse(user(.admin).mayRead(token: "other", account: "another-org"))
        XCTAssertThrowsError(try user(.editor).authorize(token: "other", account: "acc", .change))
        XCTAssertNoThrow(try user(.editor).authorize(token: "me", account: "acc", .change))
        XCTAssertThrowsError(try user(.viewer).authorize(token: "me", account: "acc", .change))
        XCTAssertThrowsError(try token(["*"], creator: .admin).authorize(token: "creator", account: "acc", .read), "tokens never manage tokens")
    }

    func testMapPrivacyLevels() {
        XCTAssertNoThrow(try user(.viewer).authorize(map: "acc", owner: "me", privacy: .private, .read))
        XCTAssertThrowsError(try user(.viewer).authorize(map: "acc", owner: "other", privacy: .private, .read))
        XCTAssertThrowsError(try user(.editor).authorize(map: "acc", owner: "other", privacy: .private, .write))
        XCTAssertNoThrow(try user(.admin).authorize(map: "acc", owner: "other", privacy: .private, .write))
        XCTAssertNoThrow(try user(.viewer).authorize(map: "acc", owner: "other", privacy: .organization, .read))
        XCTAssertThrowsError(try user(.viewer).authorize(map: "acc", owner: "other", privacy: .organization, .write))
        XCTAssertThrowsError(try user(.admin, account: "another").authorize(map: "acc", owner: "x", privacy: .organization, .read))
        XCTAssertThrowsError(try token([], creator: .admin, map: "m").authorize(map: "acc", owner: "x", privacy: .organization, .read))
        XCTAssertNoThrow(try token([], creator: nil, map: "m").authorize(map: "other-acc", owner: nil, privacy: .public, .read))
    }

    func testJobsArePerOwnerAndNeverForMapTokens() {
        XCTAssertTrue(user(.editor).mayRead(job: "acc", createdBy: "me"))
        XCTAssertFalse(user(.editor).mayRead(job: "acc", createdBy: "other"))
        XCTAssertTrue(user(.admin).mayRead(job: "acc", createdBy: "other"))
        XCTAssertFalse(user(.admin).mayRead(job: "another", createdBy: "other"))
        XCTAssertFalse(token(["*"], creator: .admin, map: "m").mayRead(job: "acc", createdBy: "creator"))
        XCTAssertThrowsError(try token(["*"], creator: .admin, map: "m").requireJobAccess())
        XCTAssertTrue(token(["*"], creator: .editor).mayRead(job: "acc", createdBy: "creator"))
    }
}
