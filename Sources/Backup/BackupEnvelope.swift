import CryptoSupport
import Foundation

/// The passphrase encryption of a backup archive, done in-process so the passphrase never reaches a
/// child's argv or environment:
///   magic | salt(16) | PBKDF2 iterations (UInt32 BE) | chunk*
///   chunk = length (UInt32 BE) | AES-256-GCM(nonce | ciphertext | tag) of: index (UInt64 BE) | last (UInt8) | data
/// Each chunk carries its index and a last-chunk flag inside the authenticated plaintext, so reordered,
/// dropped or truncated chunks fail to open like a wrong passphrase does.
public enum BackupEnvelope {
    public static let magic = Array("TESSERA-BACKUP-AES256GCM-1\n".utf8)
    public static let defaultIterations = 600_000
    static let chunkSize = 1 << 20

    public struct Failure: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Whether a file starts with the envelope's magic (an encrypted archive).
    public static func isEncrypted(path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: magic.count)).map { [UInt8]($0) == magic } ?? false
    }

    static func key(passphrase: [UInt8], salt: [UInt8], iterations: Int) throws -> [UInt8] {
        try Crypto.pbkdf2SHA256(password: passphrase, salt: salt, iterations: iterations)
    }

    public static func encrypt(input: String, output: FileHandle, passphrase: [UInt8], iterations: Int = defaultIterations) throws {
        guard let reader = FileHandle(forReadingAtPath: input) else { throw Failure(reason: "cannot read \(input)") }
        defer { try? reader.close() }
        let salt = Crypto.randomBytes(16)
        let key = try key(passphrase: passphrase, salt: salt, iterations: iterations)
        try output.write(contentsOf: Data(magic + salt + bigEndian(UInt32(iterations))))
        var index: UInt64 = 0
        var pending = [UInt8](try reader.read(upToCount: chunkSize) ?? Data())
        while true {
            let next = [UInt8](try reader.read(upToCount: chunkSize) ?? Data())
            let last: UInt8 = next.isEmpty ? 1 : 0
            let sealed = try Crypto.seal(bigEndian(index) + [last] + pending, key: key)
            try output.write(contentsOf: Data(bigEndian(UInt32(sealed.count)) + sealed))
            if last == 1 { return }
            pending = next
            index += 1
        }
    }

    /// Decrypts `input` into `output`; a wrong passphrase or any damage throws before the end.
    public static func decrypt(input: String, output: FileHandle, passphrase: [UInt8]) throws {
        guard let reader = FileHandle(forReadingAtPath: input) else { throw Failure(reason: "cannot read \(input)") }
        defer { try? reader.close() }
        func read(_ count: Int) throws -> [UInt8] {
            let bytes = [UInt8](try reader.read(upToCount: count) ?? Data())
            guard bytes.count == count else { throw Failure(reason: "the encrypted archive is truncated") }
            return bytes
        }
        guard try read(magic.count) == magic else { throw Failure(reason: "not an encrypted Tessera backup") }
        let salt = try read(16)
        let iterations = Int(uint32(try read(4)))
        guard (1000...10_000_000).contains(iterations) else { throw Failure(reason: "the encrypted archive header is damaged") }
        let key = try key(passphrase: passphrase, salt: salt, iterations: iterations)
        var index: UInt64 = 0
        while true {
            let length = Int(uint32(try read(4)))
            guard length >= 28 + 9, length <= chunkSize + 64 else { throw Failure(reason: "the encrypted archive is damaged") }
            let sealed = try read(length)
            guard let plain = try? Crypto.open(sealed, key: key) else {
                throw Failure(reason: index == 0 ? "wrong passphrase (or a damaged archive)" : "the encrypted archive is damaged")
            }
            guard plain.count >= 9, uint64(Array(plain[0..<8])) == index else { throw Failure(reason: "the encrypted archive is damaged") }
            try output.write(contentsOf: Data(plain[9...]))
            if plain[8] == 1 {
                guard try reader.read(upToCount: 1)?.isEmpty ?? true else { throw Failure(reason: "data after the last chunk") }
                return
            }
            index += 1
        }
    }

    static func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    static func uint32(_ bytes: [UInt8]) -> UInt32 { bytes.reduce(0) { $0 << 8 | UInt32($1) } }
    static func uint64(_ bytes: [UInt8]) -> UInt64 { bytes.reduce(0) { $0 << 8 | UInt64($1) } }
}
