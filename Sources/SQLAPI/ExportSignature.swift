import CryptoSupport
import Foundation

/// Signed download URLs of export files: an HMAC (the platform secret's export key) over the job, the
/// user it was handed to and the expiry, so a URL cannot be stretched, moved to another job or used
/// by another user. Pure; the route checks the session and the job on top.
public struct ExportSignature: Sendable {
    let key: [UInt8]
    public init(key: [UInt8]) { self.key = key }

    public func sign(job: Int64, user: String, expires: Int) -> String {
        Encoding.base64URL(Crypto.hmacSHA256(key: key, data: Array("export:\(job):\(user):\(expires)".utf8)))
    }

    public enum Verdict: Equatable, Sendable { case valid, expired, invalid }

    public func verify(job: Int64, user: String, expires: Int, signature: String, now: Date = Date()) -> Verdict {
        guard let given = Encoding.base64URLDecode(Substring(signature)),
              Crypto.constantTimeEqual(given, Crypto.hmacSHA256(key: key, data: Array("export:\(job):\(user):\(expires)".utf8)))
        else { return .invalid }
        return Double(expires) < now.timeIntervalSince1970 ? .expired : .valid
    }
}
