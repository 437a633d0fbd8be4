import Foundation

/// Where Redis is and how to log in, parsed from `TESSERA_REDIS_URL`:
/// `redis://[[USER]:PASSWORD@]host[:port]` (`[v6]` brackets allowed) or `unix:/path[?password=P[&user=U]]`.
/// The credentials live in the URL, as the database's and SMTP's do, so one key says everything about
/// the endpoint and the key's redaction covers them; a unix socket has no authority part, hence the
/// query (the spelling redis-py uses). User and password are percent-decoded (`%40` for `@`).
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public var endpoint: RedisClient.Endpoint
    /// An ACL user (Redis 6+); nil logs in as `default` with the password alone.
    public var user: String?
    public var password: String?

    public init(endpoint: RedisClient.Endpoint, user: String? = nil, password: String? = nil) {
        self.endpoint = endpoint
        self.user = user
        self.password = password
    }

    public init?(_ url: String) {
        if url.hasPrefix("unix:") {
            let rest = url.dropFirst(5)
            let path = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
            guard let first = path.first, first.hasPrefix("/") else { return nil }
            var user: String?, password: String?
            if path.count == 2 {
                for pair in path[1].split(separator: "&") {
                    let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    guard kv.count == 2, let value = String(kv[1]).removingPercentEncoding else { return nil }
                    switch kv[0] {
                    case "password": password = value
                    case "user": user = value
                    default: return nil
                    }
                }
            }
            if user != nil && password == nil { return nil }
            self.init(endpoint: .unix(String(first)), user: user, password: password)
        } else if url.hasPrefix("redis://") {
            var authority = Substring(url.dropFirst(8).split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            var user: String?, password: String?
            // The last `@` ends the userinfo: a password may hold a raw `@` although it should be encoded.
            if let at = authority.lastIndex(of: "@") {
                let info = authority[..<at]
                authority = authority[authority.index(after: at)...]
                guard let colon = info.firstIndex(of: ":") else {
                    // `redis://PASSWORD@host` is ambiguous; Redis clients read it as a user. Refuse it.
                    return nil
                }
                guard let u = String(info[..<colon]).removingPercentEncoding,
                      let p = String(info[info.index(after: colon)...]).removingPercentEncoding, !p.isEmpty else { return nil }
                user = u.isEmpty ? nil : u
                password = p
            }
            let host: Substring, portText: Substring?
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else { return nil }
                host = authority[authority.index(after: authority.startIndex)..<close]
                let after = authority[authority.index(after: close)...]
                guard after.isEmpty || after.hasPrefix(":") else { return nil }
                portText = after.isEmpty ? nil : after.dropFirst()
            } else {
                let parts = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                host = parts[0]
                portText = parts.count > 1 ? parts[1] : nil
            }
            guard !host.isEmpty else { return nil }
            var port = 6379
            if let portText {
                guard let p = Int(portText), (1...65535).contains(p) else { return nil }
                port = p
            }
            self.init(endpoint: .tcp(host: String(host), port: port), user: user, password: password)
        } else {
            return nil
        }
    }

    /// Never the password: this is what logs and status screens may print.
    public var description: String {
        let login = password == nil ? "" : "\(user ?? ""):<redacted>@"
        switch endpoint {
        case .unix(let path): return "unix:\(path)" + (password == nil ? "" : "?password=<redacted>" + (user.map { "&user=\($0)" } ?? ""))
        case .tcp(let host, let port): return "redis://\(login)\(host.contains(":") ? "[\(host)]" : host):\(port)"
        }
    }
}
