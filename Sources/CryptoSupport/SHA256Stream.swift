import COpenSSL
import Foundation

/// Incremental SHA-256, for files too large to hold in memory (backup archives and their dumps).
public final class SHA256Stream {
    private let ctx: OpaquePointer

    public init() throws {
        guard let ctx = EVP_MD_CTX_new() else { throw Crypto.CryptoError(operation: "EVP_MD_CTX_new") }
        self.ctx = ctx
        try Crypto.check(EVP_DigestInit_ex(ctx, EVP_sha256(), nil), "DigestInit")
    }

    deinit { EVP_MD_CTX_free(ctx) }

    public func update(_ bytes: [UInt8]) throws {
        try Crypto.check(EVP_DigestUpdate(ctx, bytes, bytes.count), "DigestUpdate")
    }

    public func finish() throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        try Crypto.check(EVP_DigestFinal_ex(ctx, &out, &length), "DigestFinal")
        return out
    }

    /// Hex SHA-256 and size of a file, read in 1 MiB pieces.
    public static func file(_ path: String) throws -> (sha256: String, bytes: Int) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Crypto.CryptoError(operation: "open \(path)") }
        defer { try? handle.close() }
        let stream = try SHA256Stream()
        var total = 0
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            try stream.update([UInt8](chunk))
            total += chunk.count
        }
        return (Encoding.hex(try stream.finish()), total)
    }
}
