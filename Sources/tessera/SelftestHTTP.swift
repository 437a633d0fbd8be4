import Foundation
import HTTPKit

/// The selftest's HTTP client: curl(1) (a Depends of tessera-common), so requests go through nginx
/// exactly as a user's would, over HTTPS with the installed (possibly self-signed) certificate.
struct SelftestHTTP {
    struct Response {
        let status: Int
        /// Lower-cased names; the last value of a repeated header.
        let headers: [String: String]
        let body: Data
        var text: String { String(decoding: body.prefix(600), as: UTF8.self) }
        var json: JSON? { try? JSON.decode(Array(body)) }
        func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    let base: String
    let dir: String
    /// Sent as a cookie when set (the session the workspace-api gave at login).
    var cookie: String?

    /// `path` is percent-encoded by the caller; a body is JSON, a form, or a file streamed as is.
    func request(_ method: String, _ path: String, token: String? = nil, json: JSON? = nil, form: String? = nil,
                 file: String? = nil, contentType: String? = nil, headers: [String: String] = [:]) throws -> Response {
        let id = UUID().uuidString
        let bodyOut = "\(dir)/\(id).body", headOut = "\(dir)/\(id).head", bodyIn = "\(dir)/\(id).in"
        defer { for f in [bodyOut, headOut, bodyIn] { try? FileManager.default.removeItem(atPath: f) } }
        var args = ["-ksS", "-g", "--max-time", "120", "-X", method, "-o", bodyOut, "-D", headOut, "-w", "%{http_code}", "-H", "Expect:"]
        var all = headers
        if let token { all["Authorization"] = "Bearer \(token)" }
        if let cookie { all["Cookie"] = cookie }
        if let json {
            try Data(json.text.utf8).write(to: URL(fileURLWithPath: bodyIn))
            all["Content-Type"] = "application/json"
            args += ["--data-binary", "@\(bodyIn)"]
        } else if let form {
            try Data(form.utf8).write(to: URL(fileURLWithPath: bodyIn))
            all["Content-Type"] = "application/x-www-form-urlencoded"
            args += ["--data-binary", "@\(bodyIn)"]
        } else if let file {
            all["Content-Type"] = contentType ?? "application/octet-stream"
            args += ["--data-binary", "@\(file)"]
        }
        for (name, value) in all.sorted(by: { $0.key < $1.key }) { args += ["-H", "\(name): \(value)"] }
        args.append(base + path)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = args
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let code = out.fileHandleForReading.readDataToEndOfFile()
        let problem = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let status = Int(String(decoding: code, as: UTF8.self)) else {
            throw SelftestFailure("\(method) \(path): curl failed: \(String(decoding: problem, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        // With redirects or 100-continue there are several header blocks: the last one is the answer's.
        let head = (try? String(contentsOfFile: headOut, encoding: .utf8)) ?? ""
        var parsed: [String: String] = [:]
        for line in head.components(separatedBy: "\r\n") {
            if line.hasPrefix("HTTP/") { parsed = [:]; continue }
            guard let colon = line.firstIndex(of: ":") else { continue }
            parsed[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = (try? Data(contentsOf: URL(fileURLWithPath: bodyOut))) ?? Data()
        return Response(status: status, headers: parsed, body: body)
    }

    /// The path (and query) of a URL the platform built from its public URL, for requests to `base`.
    static func localPath(_ url: String) -> String {
        guard let c = URLComponents(string: url) else { return url }
        return c.percentEncodedPath + (c.percentEncodedQuery.map { "?" + $0 } ?? "")
    }

    static func query(_ items: [(String, String)]) -> String {
        var c = URLComponents()
        c.queryItems = items.map { URLQueryItem(name: $0.0, value: $0.1) }
        // URLComponents leaves "+" alone, which a server reads as a space.
        return c.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B") ?? ""
    }
}

struct SelftestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// A check that cannot run on this installation (e.g. no gazetteer loaded): reported, not failed.
struct SelftestSkip: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}
