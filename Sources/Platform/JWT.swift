import CryptoSupport
import Foundation
import HTTPKit

/// HS256 JSON Web Tokens. The algorithm allow-list is exactly ["HS256"]: `none`, RS256 (key confusion) and
/// anything else is refused, as are `jku`/`x5u`/`jwk`/`kid` headers pointing anywhere.
public struct JWT: Sendable {
    public static let audience = "carto-cloud-native-api"
    public static let namespace = "http://app.carto.com"

    let key: [UInt8]

    public init(key: [UInt8]) { self.key = key }

    public func sign(_ claims: [String: JSON]) -> String {
        let header: JSON = ["alg": "HS256", "typ": "JWT"]
        let signingInput = Encoding.base64URL(header.encoded()) + "." + Encoding.base64URL(JSON.object(claims).encoded())
        let signature = Crypto.hmacSHA256(key: key, data: Array(signingInput.utf8))
        return signingInput + "." + Encoding.base64URL(signature)
    }

    public enum Failure: Error, Equatable { case malformed, badSignature, expired, notYetValid, wrongAudience }

    /// Verifies the signature first, then the time and audience claims; returns the claims.
    public func verify(_ token: String, now: Date = Date(), requireAudience: Bool = false) throws -> [String: JSON] {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, token.utf8.count < 8192,
              let headerBytes = Encoding.base64URLDecode(parts[0]),
              case .object(let header)? = try? JSON.decode(headerBytes),
              header["alg"]?.stringValue == "HS256",
              header["jku"] == nil, header["x5u"] == nil, header["jwk"] == nil, header["crit"] == nil, header["kid"] == nil,
              header["typ"] == nil || header["typ"]?.stringValue?.uppercased() == "JWT",
              let signature = Encoding.base64URLDecode(parts[2])
        else { throw Failure.malformed }
        let expected = Crypto.hmacSHA256(key: key, data: Array("\(parts[0]).\(parts[1])".utf8))
        guard Crypto.constantTimeEqual(signature, expected) else { throw Failure.badSignature }
        guard let payload = Encoding.base64URLDecode(parts[1]), case .object(let claims)? = try? JSON.decode(payload) else {
            throw Failure.malformed
        }
        let t = now.timeIntervalSince1970
        if let exp = claims["exp"] {
            guard let e = exp.doubleValue else { throw Failure.malformed }
            if t >= e { throw Failure.expired }
        }
        if let nbf = claims["nbf"] {
            guard let n = nbf.doubleValue else { throw Failure.malformed }
            if t + 30 < n { throw Failure.notYetValid }
        }
        if requireAudience || claims["aud"] != nil {
            let audiences: [String]
            switch claims["aud"] {
            case .string(let s)?: audiences = [s]
            case .array(let a)?: audiences = a.compactMap(\.stringValue)
            default: audiences = []
            }
            guard audiences.contains(JWT.audience) else { throw Failure.wrongAudience }
        }
        return claims
    }
}
