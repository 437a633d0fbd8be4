import CryptoSupport
import Foundation

/// PBKDF2-HMAC-SHA256 password hashes (OWASP: ≥ 600,000 iterations), stored as
/// `pbkdf2_sha256$<iterations>$<salt b64url>$<hash b64url>` so the cost can be raised later.
public enum PasswordHasher {
    public static let iterations = 600_000
    public static let minimumLength = 12
    public static let maximumLength = 128

    public static func hash(_ password: String, iterations: Int = iterations) throws -> String {
        let salt = Crypto.randomBytes(16)
        let derived = try Crypto.pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: iterations)
        return "pbkdf2_sha256$\(iterations)$\(Encoding.base64URL(salt))$\(Encoding.base64URL(derived))"
    }

    public static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$")
        guard parts.count == 4, parts[0] == "pbkdf2_sha256", let iterations = Int(parts[1]), iterations >= 1,
              let salt = Encoding.base64URLDecode(parts[2]), let expected = Encoding.base64URLDecode(parts[3]),
              let derived = try? Crypto.pbkdf2SHA256(password: Array(password.utf8), salt: salt, iterations: iterations,
                                                     length: expected.count)
        else { return false }
        return Crypto.constantTimeEqual(derived, expected)
    }

    /// Burns the same time as a real verification, so unknown emails answer as slowly as known ones.
    public static func verifyDummy(_ password: String) {
        _ = try? Crypto.pbkdf2SHA256(password: Array(password.utf8), salt: Array(repeating: 0, count: 16), iterations: iterations)
    }

    /// ASVS 2.1: length bounds only (no composition rules), plus a short list of notorious passwords.
    public static func policyViolation(_ password: String) -> String? {
        let count = password.count
        if count < minimumLength { return "Password must have at least \(minimumLength) characters" }
        if count > maximumLength { return "Password must have at most \(maximumLength) characters" }
        if commonPasswords.contains(password.lowercased()) { return "This password is too common" }
        return nil
    }

    static let commonPasswords: Set<String> = [
        "123456789012", "password1234", "passwordpassword", "qwertyuiopas", "111111111111", "aaaaaaaaaaaa",
        "iloveyou1234", "123123123123", "abcdefghijkl", "qwerty123456", "password123!", "changeme1234",
        "letmein12345", "welcome12345", "adminadmin12", "administrator",
    ]
}
