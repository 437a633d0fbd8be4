import CryptoSupport
import Foundation
import HTTPKit
@testable import Platform
import XCTest

final class JWTTests: XCTestCase {
    let key = Array("0123456789abcdef0123456789abcdef".utf8)
    lazy var jwt = JWT(key: key)
    let now = Date(timeIntervalSince1970: 1_700_000_000)

    private func expect(_ failure: JWT.Failure, _ token: String, requireAudience: Bool = false,
                        file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try jwt.verify(token, now: now, requireAudience: requireAudience), file: file, line: line) { error in
            XCTAssertEqual(error as? JWT.Failure, failure, "got \(error)", file: file, line: line)
        }
    }

    /// Builds a token with an arbitrary header, correctly signed with `key`.
    private func forge(header: JSON, claims: JSON, key signingKey: [UInt8]? = nil) -> String {
        let input = Encoding.base64URL(header.encoded()) + "." + Encoding.base64URL(claims.encoded())
        let signature = Crypto.hmacSHA256(key: signingKey ?? key, data: Array(input.utf8))
        return input + "." + Encoding.base64URL(signature)
    }

    func testSignVerifyRoundTrip() throws {
        let claims: [String: JSON] = ["sub": "user-1", "aud": .string(JWT.audience), "exp": .number(now.timeIntervalSince1970 + 60),
                                      "\(JWT.namespace)/account_id": "acc", "scope": ["read", "write"]]
        let token = jwt.sign(claims)
        XCTAssertEqual(token.split(separator: ".").count, 3)
        XCTAssertFalse(token.contains("="))
        XCTAssertEqual(try jwt.verify(token, now: now, requireAudience: true), claims)
    }

    func testHeaderIsHS256() throws {
        let token = jwt.sign(["a": 1])
        let headerBytes = try XCTUnwrap(Encoding.base64URLDecode(token.split(separator: ".")[0]))
        let header = try JSON.decode(headerBytes)
        XCTAssertEqual(header["alg"], "HS256")
        XCTAssertEqual(header["typ"], "JWT")
    }

    func testTamperedPayloadIsBadSignature() {
        let token = jwt.sign(["sub": "user-1", "role": "viewer"])
        let parts = token.split(separator: ".").map(String.init)
        let evil = Encoding.base64URL(JSON.object(["sub": "user-1", "role": "admin"]).encoded())
        expect(.badSignature, parts[0] + "." + evil + "." + parts[2])
    }

    func testTamperedSignatureIsBadSignature() {
        let token = jwt.sign(["sub": "x"])
        var parts = token.split(separator: ".").map(String.init)
        var sig = Encoding.base64URLDecode(Substring(parts[2]))!
        sig[0] ^= 0x01
        parts[2] = Encoding.base64URL(sig)
        expect(.badSignature, parts.joined(separator: "."))
        // A truncated signature is not accepted either.
        expect(.badSignature, token.split(separator: ".")[0...1].joined(separator: ".") + "." + Encoding.base64URL(Array(sig.prefix(16))))
    }

    func testOtherKeyIsBadSignature() {
        let other = JWT(key: Array("another-secret-key-of-32-bytes!!".utf8))
        expect(.badSignature, other.sign(["sub": "x"]))
    }

    func testAlgNoneIsMalformed() {
        let header = Encoding.base64URL(JSON.object(["alg": "none", "typ": "JWT"]).encoded())
        let payload = Encoding.base64URL(JSON.object(["sub": "admin"]).encoded())
        expect(.malformed, header + "." + payload + ".")
        // Even "signed" with our key, alg=none is refused.
        expect(.malformed, forge(header: ["alg": "none"], claims: ["sub": "admin"]))
        expect(.malformed, forge(header: ["alg": "None"], claims: ["sub": "admin"]))
    }

    func testRS256IsMalformed() {
        expect(.malformed, forge(header: ["alg": "RS256", "typ": "JWT"], claims: ["sub": "x"]))
        expect(.malformed, forge(header: ["alg": "HS512", "typ": "JWT"], claims: ["sub": "x"]))
        expect(.malformed, forge(header: ["typ": "JWT"], claims: ["sub": "x"]))
    }

    func testKeyLocatingHeadersAreMalformed() {
        expect(.malformed, forge(header: ["alg": "HS256", "jku": "https://evil.example/keys.json"], claims: ["sub": "x"]))
        expect(.malformed, forge(header: ["alg": "HS256", "x5u": "https://evil.example/cert.pem"], claims: ["sub": "x"]))
        expect(.malformed, forge(header: ["alg": "HS256", "jwk": ["kty": "oct", "k": "AAAA"]], claims: ["sub": "x"]))
        expect(.malformed, forge(header: ["alg": "HS256", "crit": ["exp"]], claims: ["sub": "x"]))
        expect(.malformed, forge(header: ["alg": "HS256", "typ": "at+jwt"], claims: ["sub": "x"]))
    }

    func testForgedButCorrectlySignedHS256IsAccepted() throws {
        // Sanity check for the helper above: a plain HS256 header with our key verifies.
        XCTAssertEqual(try jwt.verify(forge(header: ["alg": "HS256"], claims: ["sub": "x"]), now: now)["sub"], "x")
    }

    func testExpired() {
        expect(.expired, jwt.sign(["exp": .number(now.timeIntervalSince1970 - 1)]))
        expect(.expired, jwt.sign(["exp": .number(now.timeIntervalSince1970)]))
        XCTAssertNoThrow(try jwt.verify(jwt.sign(["exp": .number(now.timeIntervalSince1970 + 1)]), now: now))
    }

    func testNotYetValid() {
        expect(.notYetValid, jwt.sign(["nbf": .number(now.timeIntervalSince1970 + 3600)]))
        // A little clock skew is tolerated.
        XCTAssertNoThrow(try jwt.verify(jwt.sign(["nbf": .number(now.timeIntervalSince1970 + 5)]), now: now))
    }

    func testNonNumericTimeClaimsAreMalformed() {
        expect(.malformed, jwt.sign(["exp": "tomorrow"]))
        expect(.malformed, jwt.sign(["nbf": "yesterday"]))
    }

    func testAudience() throws {
        expect(.wrongAudience, jwt.sign(["aud": "someone-else"]))
        expect(.wrongAudience, jwt.sign(["aud": ["a", "b"]]))
        expect(.wrongAudience, jwt.sign(["sub": "x"]), requireAudience: true)
        XCTAssertNoThrow(try jwt.verify(jwt.sign(["aud": ["other", .string(JWT.audience)]]), now: now, requireAudience: true))
        XCTAssertNoThrow(try jwt.verify(jwt.sign(["sub": "no-aud"]), now: now))
    }

    func testGarbageIsMalformed() {
        expect(.malformed, "")
        expect(.malformed, "abc")
        expect(.malformed, "a.b")
        expect(.malformed, "a.b.c.d")
        expect(.malformed, "!!!.???.***")
        let token = jwt.sign(["sub": "x"])
        expect(.malformed, token + "." + "extra")
        expect(.malformed, String(repeating: "a", count: 9000) + ".b.c")
    }

    func testSignedNonObjectPayloadIsMalformed() {
        let header = Encoding.base64URL(JSON.object(["alg": "HS256"]).encoded())
        let payload = Encoding.base64URL(Array("[1,2]".utf8))
        let signature = Crypto.hmacSHA256(key: key, data: Array((header + "." + payload).utf8))
        expect(.malformed, header + "." + payload + "." + Encoding.base64URL(signature))
    }
}
