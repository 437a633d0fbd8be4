import COpenSSL
import Foundation

/// OpenSSL primitives Tessera needs, with one error funnel (`CryptoError`).
public enum Crypto {
    public struct CryptoError: Error, CustomStringConvertible {
        public let operation: String
        public var description: String { "crypto operation failed: \(operation)" }
    }

    /// Every OpenSSL call goes through here: 1 is success, anything else throws.
    @discardableResult
    static func check(_ rc: Int32, _ operation: String) throws -> Int32 {
        guard rc == 1 else {
            ERR_clear_error()
            throw CryptoError(operation: operation)
        }
        return rc
    }

    public static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        // RAND_bytes failing means the process has no entropy source: nothing safe can continue.
        precondition(RAND_bytes(&bytes, Int32(count)) == 1, "RAND_bytes failed")
        return bytes
    }

    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = EVP_Digest(data, data.count, &out, &length, EVP_sha256(), nil)
        return out
    }

    public static func hmacSHA256(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = HMAC(EVP_sha256(), key, Int32(key.count), data, data.count, &out, &length)
        return out
    }

    public static func pbkdf2SHA256(password: [UInt8], salt: [UInt8], iterations: Int, length: Int = 32) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        let bytes = password.isEmpty ? [0] : password
        let rc = bytes.withUnsafeBytes { p in
            PKCS5_PBKDF2_HMAC(p.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(password.count),
                              salt, Int32(salt.count), Int32(iterations), EVP_sha256(), Int32(length), &out)
        }
        try check(rc, "PBKDF2")
        return out
    }

    /// Compares without early exit so timing reveals nothing about where secrets differ.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return CRYPTO_memcmp(a, b, a.count) == 0
    }

    /// AES-256-GCM: output is nonce(12) | ciphertext | tag(16).
    public static func seal(_ plaintext: [UInt8], key: [UInt8]) throws -> [UInt8] {
        guard key.count == 32 else { throw CryptoError(operation: "AES key length") }
        let nonce = randomBytes(12)
        guard let ctx = EVP_CIPHER_CTX_new() else { throw CryptoError(operation: "EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        try check(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce), "EncryptInit")
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        var length: Int32 = 0
        try check(EVP_EncryptUpdate(ctx, &out, &length, plaintext, Int32(plaintext.count)), "EncryptUpdate")
        var total = Int(length)
        try out.withUnsafeMutableBufferPointer { p in
            try check(EVP_EncryptFinal_ex(ctx, p.baseAddress! + total, &length), "EncryptFinal")
        }
        total += Int(length)
        var tag = [UInt8](repeating: 0, count: 16)
        try check(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, &tag), "GetTag")
        return nonce + out[0..<total] + tag
    }

    public static func open(_ sealed: [UInt8], key: [UInt8]) throws -> [UInt8] {
        guard key.count == 32, sealed.count >= 28 else { throw CryptoError(operation: "AES input") }
        let nonce = Array(sealed[0..<12])
        let ciphertext = Array(sealed[12..<(sealed.count - 16)])
        var tag = Array(sealed[(sealed.count - 16)...])
        guard let ctx = EVP_CIPHER_CTX_new() else { throw CryptoError(operation: "EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        try check(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce), "DecryptInit")
        var out = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var length: Int32 = 0
        try check(EVP_DecryptUpdate(ctx, &out, &length, ciphertext, Int32(ciphertext.count)), "DecryptUpdate")
        let total = Int(length)
        try check(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &tag), "SetTag")
        try out.withUnsafeMutableBufferPointer { p in
            try check(EVP_DecryptFinal_ex(ctx, p.baseAddress! + total, &length), "DecryptFinal (authentication)")
        }
        return Array(out[0..<total])
    }
}
