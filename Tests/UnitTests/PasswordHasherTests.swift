import CryptoSupport
@testable import Platform
import XCTest

final class PasswordHasherTests: XCTestCase {
    let password = "correct horse battery staple"

    func testHashAndVerify() throws {
        let stored = try PasswordHasher.hash(password, iterations: 1000)
        XCTAssertTrue(PasswordHasher.verify(password, against: stored))
        XCTAssertFalse(PasswordHasher.verify("correct horse battery stapler", against: stored))
        XCTAssertFalse(PasswordHasher.verify("", against: stored))
        XCTAssertFalse(PasswordHasher.verify(password.uppercased(), against: stored))
    }

    func testStoredFormat() throws {
        let stored = try PasswordHasher.hash(password, iterations: 1000)
        XCTAssertTrue(stored.hasPrefix("pbkdf2_sha256$"))
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false)
        XCTAssertEqual(parts.count, 4)
        XCTAssertEqual(parts[1], "1000")
        XCTAssertEqual(Encoding.base64URLDecode(parts[2])?.count, 16)
        XCTAssertEqual(Encoding.base64URLDecode(parts[3])?.count, 32)
    }

    func testDefaultIterationsMeetOWASP() {
        XCTAssertGreaterThanOrEqual(PasswordHasher.iterations, 600_000)
    }

    func testSaltMakesHashesDiffer() throws {
        let a = try PasswordHasher.hash(password, iterations: 1000)
        let b = try PasswordHasher.hash(password, iterations: 1000)
        XCTAssertNotEqual(a, b)
        XCTAssertTrue(PasswordHasher.verify(password, against: a))
        XCTAssertTrue(PasswordHasher.verify(password, against: b))
    }

    func testIterationCountIsReadFromStoredHash() throws {
        let stored = try PasswordHasher.hash(password, iterations: 1000)
        let changed = stored.replacingOccurrences(of: "$1000$", with: "$1001$")
        XCTAssertFalse(PasswordHasher.verify(password, against: changed))
    }

    func testMatchesIndependentPBKDF2() throws {
        // Rebuild the stored form from a known salt and check verify agrees with a direct PBKDF2 computation.
        let salt = Array(repeating: UInt8(7), count: 16)
        let derived = try Crypto.pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: 1000)
        let stored = "pbkdf2_sha256$1000$\(Encoding.base64URL(salt))$\(Encoding.base64URL(derived))"
        XCTAssertTrue(PasswordHasher.verify(password, against: stored))
        XCTAssertFalse(PasswordHasher.verify(password + "!", against: stored))
    }

    func testMalformedStoredHashesNeverVerify() throws {
        let stored = try PasswordHasher.hash(password, iterations: 1000)
        let parts = stored.split(separator: "$").map(String.init)
        for bad in ["", "plain", "pbkdf2_sha256$", "md5$1000$\(parts[2])$\(parts[3])",
                    "pbkdf2_sha256$x$\(parts[2])$\(parts[3])", "pbkdf2_sha256$0$\(parts[2])$\(parts[3])",
                    "pbkdf2_sha256$-5$\(parts[2])$\(parts[3])", "pbkdf2_sha256$1000$!!$\(parts[3])",
                    "pbkdf2_sha256$1000$\(parts[2])", stored + "$extra"] {
            XCTAssertFalse(PasswordHasher.verify(password, against: bad), bad)
        }
    }

    func testEmptyPasswordHashes() throws {
        let stored = try PasswordHasher.hash("", iterations: 1000)
        XCTAssertTrue(PasswordHasher.verify("", against: stored))
        XCTAssertFalse(PasswordHasher.verify("a", against: stored))
    }

    func testPolicy() {
        XCTAssertNotNil(PasswordHasher.policyViolation(String(repeating: "x", count: 11)))
        XCTAssertNil(PasswordHasher.policyViolation("abcdefghijkm"))  // 12 chars, not in the list
        XCTAssertNotNil(PasswordHasher.policyViolation(String(repeating: "y", count: 129)))
        XCTAssertNil(PasswordHasher.policyViolation(String(repeating: "y", count: 128)))
        XCTAssertNil(PasswordHasher.policyViolation(String(repeating: "k7", count: 32)))  // 64 chars
        XCTAssertNotNil(PasswordHasher.policyViolation("password1234"))
        XCTAssertNotNil(PasswordHasher.policyViolation("Password1234"))  // case-insensitive list
        XCTAssertNotNil(PasswordHasher.policyViolation("123456789012"))
        XCTAssertNotNil(PasswordHasher.policyViolation(""))
    }

    func testPolicyCountsCharactersNotBytes() {
        // 12 two-byte characters is 12 characters, not 24.
        XCTAssertNil(PasswordHasher.policyViolation(String(repeating: "é", count: 12)))
        XCTAssertNotNil(PasswordHasher.policyViolation(String(repeating: "é", count: 11)))
    }
}
