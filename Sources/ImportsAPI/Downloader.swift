import Foundation
import OutboundHTTP
import Spawn

/// Downloads a URL import with curl (argv, never a shell): http(s) only, connected to the address
/// URLGuard checked (`--resolve host:port:address`), no automatic redirects — each Location is
/// resolved, re-checked and followed here — and size/time caps enforced both by curl and by watching
/// the output file.
struct Downloader {
    let guardian: URLGuard
    let maxBytes: Int
    let maxRedirects: Int

    struct Result {
        let path: String
        let bytes: Int
        /// Name hints for format detection: the last path segment of the final URL and any
        /// Content-Disposition filename (used for their extension only, never as a path).
        let nameHints: [String]
        let contentType: String?
        let finalURL: String
    }

    func download(_ urlText: String, into dir: String, deadline: Date, isCancelled: () -> Bool,
                  progress: (Int) -> Void) throws -> Result {
        let curl = try ChildProcess.tool("curl")
        let body = dir + "/download.bin", headers = dir + "/download.headers"
        let out = dir + "/curl.out", err = dir + "/curl.err"
        var current = urlText
        for hop in 0...maxRedirects {
            let target = try guardian.check(current)
            let pinned = target.isIPv6 ? "[\(target.address)]" : target.address
            let remaining = max(1, Int(deadline.timeIntervalSinceNow))
            let argv = [curl, "-q", "--silent", "--show-error", "--globoff", "--proto", "=http,https", "--max-redirs", "0",
                        "--noproxy", "*", "--connect-timeout", "15", "--max-time", String(remaining),
                        "--max-filesize", String(maxBytes)]
                // IP literals are connected to as written (already checked); names are pinned to the checked address.
                + (target.host.contains(":") || target.host == target.address ? [] : ["--resolve", "\(target.host):\(target.port):\(pinned)"])
                + ["--user-agent", "Tessera-Importer/1.0", "--output", body, "--dump-header", headers,
                        "--write-out", "%{http_code}", "--", target.url.absoluteString]
            let child = try ChildProcess(argv, environment: ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": dir],
                                         stdout: out, stderr: err)
            let outcome = child.wait(deadline: deadline, isCancelled: isCancelled, check: {
                fileSize(body) > maxBytes ? "The download is larger than the \(maxBytes)-byte limit" : nil
            }, tick: { progress(fileSize(body)) })
            switch outcome {
            case .exited(0): break
            case .cancelled: throw ImportCancelled()
            case .timedOut: throw ImportFailure("The download did not finish within the import time limit")
            case .aborted(let why): throw ImportFailure(why)
            case .exited(63): throw ImportFailure("The download is larger than the \(maxBytes)-byte limit")
            case .exited(28): throw ImportFailure("The download timed out", permanent: false)
            case .exited(let code):
                let message = ChildProcess.tail(err, limit: 400).trimmingCharacters(in: .whitespacesAndNewlines)
                // Connection-level failures may be transient; the message is curl's (no secrets in it).
                throw ImportFailure("The download failed (curl \(code)): \(message)", permanent: [1, 3, 60].contains(code))
            case .signalled(let sig): throw ImportFailure("The download was interrupted (signal \(sig))", permanent: false)
            }
            let status = Int(ChildProcess.tail(out, limit: 16).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            let header = Downloader.lastHeaderBlock(headers)
            if (300...399).contains(status), let location = header["location"] {
                guard hop < maxRedirects else { throw ImportFailure("Too many redirects (more than \(maxRedirects))") }
                guard let next = URL(string: location, relativeTo: target.url)?.absoluteURL.absoluteString else {
                    throw ImportFailure("The server redirected to an invalid URL")
                }
                current = next
                continue
            }
            guard (200...299).contains(status) else {
                throw ImportFailure("The server answered HTTP \(status)", permanent: status < 500 || status >= 600)
            }
            var hints = [target.url.lastPathComponent]
            if let disposition = header["content-disposition"], let name = Downloader.dispositionFilename(disposition) {
                hints.insert(name, at: 0)
            }
            try? FileManager.default.removeItem(atPath: headers)
            return Result(path: body, bytes: fileSize(body), nameHints: hints, contentType: header["content-type"], finalURL: current)
        }
        throw ImportFailure("Too many redirects (more than \(maxRedirects))")
    }

    /// Headers of the last response in a `--dump-header` file, names lower-cased.
    static func lastHeaderBlock(_ path: String) -> [String: String] {
        let text = ChildProcess.tail(path, limit: 64 * 1024)
        var result: [String: String] = [:]
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let l = line.trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
            if l.hasPrefix("HTTP/") { result = [:]; continue }
            guard let colon = l.firstIndex(of: ":") else { continue }
            result[l[..<colon].lowercased()] = l[l.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return result
    }

    static func dispositionFilename(_ value: String) -> String? {
        for part in value.split(separator: ";") {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, kv[0].lowercased() == "filename" || kv[0].lowercased() == "filename*" else { continue }
            var v = kv[1]
            if let tick = v.range(of: "''") { v = String(v[tick.upperBound...]) }
            return v.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        return nil
    }
}

/// Thrown when the job was cancelled (or its lease lost) while working.
struct ImportCancelled: Error, CustomStringConvertible {
    var description: String { "cancelled" }
}

func fileSize(_ path: String) -> Int {
    var st = stat()
    return lstat(path, &st) == 0 ? Int(st.st_size) : 0
}
