import Foundation
import Spawn

/// POSTs a JSON body to a URL a user named (a workflow's http_request output) with curl (argv, never a
/// shell): the URL passes URLGuard and the connection is pinned to the checked address, so DNS rebinding
/// cannot send it elsewhere. Redirects are not followed — a POST is not replayed to a second host.
public struct GuardedPost: Sendable {
    public let guardian: URLGuard
    public let timeout: Double
    public init(guardian: URLGuard, timeout: Double = 30) {
        self.guardian = guardian
        self.timeout = timeout
    }

    /// The HTTP status answered; throws URLRefused when the URL is refused, unreachable or answers non-2xx.
    @discardableResult
    public func post(_ urlText: String, json body: String, isCancelled: () -> Bool = { false }) throws -> Int {
        let target = try guardian.check(urlText)
        let dir = NSTemporaryDirectory() + "tessera-post-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let input = dir + "/body.json", out = dir + "/curl.out", err = dir + "/curl.err"
        try Data(body.utf8).write(to: URL(fileURLWithPath: input))
        let pinned = target.isIPv6 ? "[\(target.address)]" : target.address
        let argv = [try ChildProcess.tool("curl"), "-q", "--silent", "--show-error", "--globoff", "--proto", "=http,https",
                    "--max-redirs", "0", "--noproxy", "*", "--connect-timeout", "10", "--max-time", String(Int(timeout))]
            + (target.host.contains(":") || target.host == target.address ? [] : ["--resolve", "\(target.host):\(target.port):\(pinned)"])
            + ["--user-agent", "Tessera-Workflows/1.0", "--header", "Content-Type: application/json", "--data-binary", "@" + input,
               "--output", "/dev/null", "--write-out", "%{http_code}", "--", target.url.absoluteString]
        let child = try ChildProcess(argv, environment: ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": dir], stdout: out, stderr: err)
        switch child.wait(deadline: Date().addingTimeInterval(timeout + 5), isCancelled: isCancelled, check: { nil }, tick: {}) {
        case .exited(0): break
        case .cancelled: throw URLRefused("The request was cancelled", permanent: false)
        case .timedOut, .exited(28): throw URLRefused("The request to \(target.host) timed out", permanent: false)
        case .aborted(let why): throw URLRefused(why)
        case .exited(let code):
            let message = ChildProcess.tail(err, limit: 400).trimmingCharacters(in: .whitespacesAndNewlines)
            throw URLRefused("The request failed (curl \(code)): \(message)", permanent: false)
        case .signalled(let sig): throw URLRefused("The request was interrupted (signal \(sig))", permanent: false)
        }
        let status = Int(ChildProcess.tail(out, limit: 16).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        guard (200...299).contains(status) else {
            throw URLRefused("\(target.host) answered HTTP \(status)", permanent: status < 500)
        }
        return status
    }
}
