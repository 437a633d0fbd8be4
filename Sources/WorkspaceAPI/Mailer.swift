import Foundation
import Observability

/// Plain-text mail through the configured SMTP server (`TESSERA_SMTP_URL`,
/// `smtp://[user:password@]host[:port][?from=address]`), handed to curl, which Tessera already depends
/// on and which speaks SMTP with STARTTLS; so there is no SMTP or TLS code of our own. Sending runs on its
/// own thread: the HTTP answer must not wait for (or reveal anything through) the mail server.
struct Mailer: Sendable {
    let url: URLComponents
    let from: String

    /// Nil when SMTP is not configured or the URL is unusable.
    init?(smtpURL: String, publicURL: String) {
        guard !smtpURL.isEmpty, var c = URLComponents(string: smtpURL), c.scheme == "smtp", let host = c.host, !host.isEmpty else {
            return nil
        }
        let publicHost = URLComponents(string: publicURL)?.host ?? "localhost"
        from = c.queryItems?.first { $0.name == "from" }?.value ?? "tessera@\(publicHost)"
        c.query = nil
        url = c
    }

    /// Recipient and subject come from our own validated values (an email without whitespace, a fixed
    /// subject), so no header can be injected.
    func send(to recipient: String, subject: String, body: String) {
        let message = """
            From: Tessera <\(from)>\r
            To: <\(recipient)>\r
            Subject: \(subject)\r
            MIME-Version: 1.0\r
            Content-Type: text/plain; charset=utf-8\r
            \r
            \(body.replacingOccurrences(of: "\n", with: "\r\n"))\r

            """
        let server = "smtp://\(url.host!):\(url.port ?? 25)"
        let user = url.user, password = url.password, from = self.from
        Thread.detachNewThread {
            Mailer.run(server: server, user: user, password: password, from: from, to: recipient, message: message)
        }
    }

    /// Credentials go to curl in a private netrc file, never in argv (visible in `ps`), and only over TLS
    /// (STARTTLS is required when there are credentials).
    static func run(server: String, user: String?, password: String?, from: String, to: String, message: String) {
        var args = ["--silent", "--show-error", "--max-time", "30", "--url", server, "--mail-from", from, "--mail-rcpt", to,
                    "--upload-file", "-"]
        var netrc: URL?
        if let user {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-smtp-\(UUID().uuidString)")
            let host = URLComponents(string: server)?.host ?? ""
            let text = "machine \(host) login \(user.removingPercentEncoding ?? user) password \(password?.removingPercentEncoding ?? "")\n"
            _ = FileManager.default.createFile(atPath: file.path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
            netrc = file
            args += ["--netrc-file", file.path, "--ssl-reqd"]
        }
        defer { if let netrc { try? FileManager.default.removeItem(at: netrc) } }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = args
        let input = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
            input.fileHandleForWriting.write(Data(message.utf8))
            try input.fileHandleForWriting.close()
            process.waitUntilExit()
            let detail = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            if process.terminationStatus == 0 {
                Log.info("mail_sent", [("server", server)])
            } else {
                Log.error("mail_failed", [("server", server), ("status", Int(process.terminationStatus)), ("error", detail)])
            }
        } catch {
            Log.error("mail_failed", [("server", server), ("error", String(describing: error))])
        }
    }
}
