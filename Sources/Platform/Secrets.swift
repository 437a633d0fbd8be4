import CryptoSupport
import Foundation

/// Keys derived from the one master secret under /etc/tessera: separate keys per purpose, so a key used
/// to sign tokens never also encrypts passwords.
public struct Secrets: Sendable {
    public let tokenSigningKey: [UInt8]
    public let connectionPasswordKey: [UInt8]
    /// Signs the short-lived grants that open a password-protected public map.
    public let mapGrantKey: [UInt8]
    /// Signs export download URLs.
    public let exportURLKey: [UInt8]

    public init(master: [UInt8]) {
        tokenSigningKey = Crypto.hmacSHA256(key: master, data: Array("tessera/jwt-hs256".utf8))
        connectionPasswordKey = Crypto.hmacSHA256(key: master, data: Array("tessera/connection-passwords".utf8))
        mapGrantKey = Crypto.hmacSHA256(key: master, data: Array("tessera/map-access-grants".utf8))
        exportURLKey = Crypto.hmacSHA256(key: master, data: Array("tessera/export-urls".utf8))
    }

    public struct Missing: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "secret key file \(path): \(reason)" }
    }

    /// Reads a hex-encoded secret of at least 32 bytes.
    public static func load(path: String) throws -> Secrets {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw Missing(path: path, reason: "cannot be read")
        }
        guard let bytes = Encoding.fromHex(text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count >= 32 else {
            throw Missing(path: path, reason: "must hold at least 32 hex-encoded bytes")
        }
        return Secrets(master: bytes)
    }

    /// Writes a fresh secret file readable only by its owner (used by `tessera init-secret`).
    public static func generate(path: String) throws {
        let text = Encoding.hex(Crypto.randomBytes(32)) + "\n"
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw Missing(path: path, reason: "cannot be written")
        }
    }
}
