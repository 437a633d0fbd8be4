import Config
import Foundation
import HTTPKit

/// The TLS screen's ACME path: the router's certificate from TESSERA_ACME_SERVER through Debian's certbot,
/// run by the fixed root unit tessera-admin-acme.service (packaging/tessera-admin-acme). The console only
/// checks the settings are there and shows what the unit last wrote to `acme-result` (first line
/// `issued` or `failed`, then the message: certbot's own reason on failure).
public struct ACMECertificate {
    public struct NotConfigured: HTTPResponseError {
        let missing: [String]
        public func apiError(requestId: String?) -> APIError {
            var e = APIError(422, "acme_not_configured",
                             "Set \(missing.joined(separator: " and ")) on the Configuration screen before asking for a certificate")
            e.extra["fields"] = .array(missing.map { .string($0) })
            return e
        }
    }

    /// The unit could not get or install a certificate: 502 with certbot's reason; nothing was replaced.
    public struct Failed: HTTPResponseError, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
        public func apiError(requestId: String?) -> APIError { APIError(502, "acme_failed", reason) }
    }

    /// Refuses (422) before any unit starts when the domain or the contact is missing.
    public static func requireSettings(_ config: TesseraConfig) throws {
        var missing: [String] = []
        if config.acmeDomains.isEmpty { missing.append("TESSERA_ACME_DOMAIN") }
        if config.acmeEmail.isEmpty { missing.append("TESSERA_ACME_EMAIL") }
        if !missing.isEmpty { throw NotConfigured(missing: missing) }
    }

    /// The last attempt as the unit recorded it, or nil when there was none.
    public static func lastResult(file: String) -> (status: String, message: String, at: Date?)? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let status = lines.first, ["issued", "failed"].contains(status) else { return nil }
        lines.removeFirst()
        let at = (try? FileManager.default.attributesOfItem(atPath: file))?[.modificationDate] as? Date
        return (status, lines.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines), at)
    }

    static func json(_ config: TesseraConfig, last: (status: String, message: String, at: Date?)?) -> JSON {
        var last_: JSON = .null
        if let last {
            last_ = ["status": .string(last.status), "message": .string(last.message),
                     "at": .optional(last.at.map { ISO8601DateFormatter().string(from: $0) })]
        }
        return ["server": .string(config.acmeServer), "domains": .array(config.acmeDomains.map { .string($0) }),
                "email": .array(config.acmeEmail.map { .string($0) }), "last": last_]
    }
}
