import Config
import Foundation
import HTTPKit
import Spawn

/// The Support bundle: one .tar.gz with the last N hours of logs, versions, the configuration with
/// every secret redacted, unit states and the status report, everything scrubbed of passwords.
public struct SupportBundle {
    let configFile: String
    let status: StatusReport
    /// Development: the harness's log directory instead of the journal.
    let devLogs: String?

    public func build(hours: Int) throws -> HTTPResponse {
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("tessera-support-\(UUID().uuidString)").path
        let dir = "\(root)/tessera-support"
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? fm.removeItem(atPath: root) }
        func put(_ name: String, _ text: String) throws {
            try Redaction.scrub(text).write(toFile: "\(dir)/\(name)", atomically: false, encoding: .utf8)
        }
        let configText = (try? String(contentsOfFile: configFile, encoding: .utf8)) ?? "# \(configFile) is not readable\n"
        try Redaction.envFile(configText).write(toFile: "\(dir)/tessera.env.redacted", atomically: false, encoding: .utf8)
        try put("status.json", status.json().text)
        try put("versions.txt", versions())
        try put("logs.txt", logs(hours: hours))
        let tar = try ChildProcess.tool("tar")
        let out = "\(root)/bundle.tar.gz"
        let (code, output) = try runTool([tar, "-czf", out, "-C", root, "tessera-support"])
        guard code == 0 else { throw ActionFailed(message: "tar failed: \(output)") }
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: out)))
        let stamp = ISO8601DateFormatter().string(from: Date()).filter { $0.isNumber || $0 == "T" }
        return HTTPResponse(status: 200, headers: [
            ("Content-Type", "application/gzip"), ("Cache-Control", "no-store"),
            ("Content-Disposition", "attachment; filename=\"tessera-support-\(stamp).tar.gz\""),
        ], body: .bytes(bytes))
    }

    func versions() -> String {
        var text = "tessera \(status.version)\n"
        if let dpkg = try? ChildProcess.tool("dpkg-query"),
           let (code, out) = try? runTool([dpkg, "-W", "-f", "${Package} ${Version}\\n", "tessera*", "nginx*", "postgresql-1*", "redis-server", "varnish"]),
           code == 0 || !out.isEmpty { text += out }
        return text
    }

    func logs(hours: Int) -> String {
        if let devLogs {
            // The harness's per-program log files; each file's tail stands in for "the last N hours".
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: devLogs)) ?? []).filter { $0.hasSuffix(".log") }.sorted()
            return files.map { "===== \($0)\n" + ChildProcess.tail("\(devLogs)/\($0)", limit: 256 * 1024) }.joined(separator: "\n")
        }
        guard let journalctl = try? ChildProcess.tool("journalctl"),
              let (_, out) = try? runTool([journalctl, "--no-pager", "-o", "short-iso", "--since", "-\(hours)h",
                                           "-u", "tessera*", "-u", "nginx", "-u", "postgresql*", "-u", "redis-server", "-u", "varnish"],
                                          timeout: 300) else { return "journalctl is not available\n" }
        return out
    }
}
