import Foundation
import HTTPKit
import Spawn

/// The TLS screen's check of an uploaded certificate (PEM, leaf first, then its chain) and key, with
/// Debian's openssl: parse, validity dates, key match, chain against the system CA store. An expired,
/// not-yet-valid or mismatched pair is refused with the reason; an untrusted chain (self-signed, a
/// private CA) is shown but allowed.
public struct TLSCertificate {
    public let certificatePEM: String
    public let keyPEM: String

    public struct Report: Sendable {
        public var subject = "", issuer = "", notAfter = ""
        public var daysLeft = 0
        public var keyMatches = false
        public var chainTrusted = false
        public var chainMessage = ""
        public var problems: [String] = []

        public var json: JSON {
            ["subject": .string(subject), "issuer": .string(issuer), "not_after": .string(notAfter), "days_left": .int(daysLeft),
             "key_matches": .bool(keyMatches), "chain_trusted": .bool(chainTrusted), "chain": .string(chainMessage),
             "problems": .array(problems.map { .string($0) })]
        }
    }

    /// Refused: 422 with the report (reasons in `problems`).
    public struct Refused: HTTPResponseError {
        let report: Report
        public func apiError(requestId: String?) -> APIError {
            var e = APIError(422, "invalid_certificate", "The certificate was not installed: " + report.problems.joined(separator: "; "))
            e.extra["certificate"] = report.json
            return e
        }
    }

    public func check(now: Date = Date()) throws -> Report {
        var report = Report()
        guard certificatePEM.contains("-----BEGIN CERTIFICATE-----") else {
            report.problems.append("the certificate is not PEM (-----BEGIN CERTIFICATE-----)")
            return report
        }
        guard keyPEM.contains("PRIVATE KEY-----") else {
            report.problems.append("the key is not a PEM private key")
            return report
        }
        let openssl = try ChildProcess.tool("openssl")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cert = "\(dir)/cert.pem", key = "\(dir)/key.pem", chain = "\(dir)/chain.pem"
        try certificatePEM.write(toFile: cert, atomically: false, encoding: .utf8)
        try keyPEM.write(toFile: key, atomically: false, encoding: .utf8)
        let blocks = certificatePEM.components(separatedBy: "-----END CERTIFICATE-----").dropFirst()
            .filter { $0.contains("-----BEGIN CERTIFICATE-----") }.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) + "\n-----END CERTIFICATE-----\n" }
        try blocks.joined().write(toFile: chain, atomically: false, encoding: .utf8)

        let info = try runTool([openssl, "x509", "-in", cert, "-noout", "-subject", "-issuer", "-enddate", "-startdate", "-nameopt", "RFC2253"])
        guard info.status == 0 else { report.problems.append("the certificate does not parse"); return report }
        var startDate = ""
        for line in info.output.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "subject": report.subject = parts[1].trimmingCharacters(in: .whitespaces)
            case "issuer": report.issuer = parts[1].trimmingCharacters(in: .whitespaces)
            case "notAfter": report.notAfter = parts[1]
            case "notBefore": startDate = parts[1]
            default: break
            }
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "MMM d HH:mm:ss yyyy 'GMT'"
        let squeeze = { (s: String) in s.split(separator: " ").joined(separator: " ") }
        if let end = formatter.date(from: squeeze(report.notAfter)) {
            report.daysLeft = Int(floor(end.timeIntervalSince(now) / 86_400))
            if end <= now { report.problems.append("the certificate expired on \(report.notAfter)") }
        }
        if let start = formatter.date(from: squeeze(startDate)), start > now {
            report.problems.append("the certificate is not valid before \(startDate)")
        }
        let certKey = try runTool([openssl, "x509", "-in", cert, "-noout", "-pubkey"])
        let privKey = try runTool([openssl, "pkey", "-in", key, "-pubout"])
        if privKey.status != 0 {
            report.problems.append("the key does not parse (an encrypted key is not supported)")
        } else {
            report.keyMatches = certKey.status == 0 && certKey.output == privKey.output
            if !report.keyMatches { report.problems.append("the key does not belong to the certificate") }
        }
        var verify = [openssl, "verify"]
        if !blocks.isEmpty { verify += ["-untrusted", chain] }
        let chained = try runTool(verify + [cert])
        report.chainTrusted = chained.status == 0
        report.chainMessage = chained.output.split(separator: "\n").map { $0.replacingOccurrences(of: cert, with: "certificate") }
            .joined(separator: "; ")
        return report
    }
}
