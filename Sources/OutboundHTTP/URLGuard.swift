import Foundation

/// SSRF protection for every URL the platform fetches or posts to on a user's behalf (URL imports,
/// workflow HTTP requests): http(s) only; the host is resolved here (getaddrinfo, which also
/// reads decimal/hex/octal IPv4 spellings such as 2130706433 or 0x7f000001) and EVERY address must be
/// public. The download then connects to the checked address only (pinned), so DNS rebinding cannot
/// swap it, and each redirect hop goes through the same check.
public struct URLGuard: Sendable {
    /// Exact `ip:port` endpoints exempt from the check (tests only; empty in production).
    public let allowlist: Set<String>
    public init(allowlist: Set<String>) { self.allowlist = allowlist }

    public struct Target: Sendable {
        public let url: URL
        public let scheme: String
        /// As written in the URL (brackets stripped for IPv6 literals).
        public let host: String
        public let port: Int
        /// The checked address the connection must use.
        public let address: String
        public let isIPv6: Bool
    }

    public static func parse(_ text: String) throws -> (url: URL, scheme: String, host: String, port: Int) {
        guard text.utf8.count <= 4096, !text.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } ?? false }),
              let components = URLComponents(string: text), let url = components.url else {
            throw URLRefused("The URL is not valid")
        }
        guard let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw URLRefused("Only http and https URLs are accepted")
        }
        guard components.user == nil, components.password == nil else {
            throw URLRefused("URLs with credentials are not accepted")
        }
        // The raw (still percent-encoded) host: an encoded host name is refused below rather than decoded.
        var host = components.percentEncodedHost ?? ""
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw URLRefused("The URL has no host") }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65535).contains(port) else { throw URLRefused("The URL's port is not valid") }
        // Only plain names and IP literals: curl must parse exactly the host checked here (no parser
        // differentials through percent-encoding, backslashes or userinfo tricks).
        let isV6 = host.contains(":")
        let allowed = isV6 ? "0123456789abcdefABCDEF:." : "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-"
        guard host.allSatisfy({ allowed.contains($0) }) else { throw URLRefused("The URL's host name is not valid") }
        // The URL curl gets is rebuilt from the parsed parts.
        var canonical = "\(scheme)://\(isV6 ? "[\(host)]" : host):\(port)\(components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath)"
        if let query = components.percentEncodedQuery { canonical += "?" + query }
        guard let rebuilt = URL(string: canonical) else { throw URLRefused("The URL is not valid") }
        _ = url
        return (rebuilt, scheme, host, port)
    }

    /// Parses, resolves and checks one URL.
    public func check(_ text: String) throws -> Target {
        let (url, scheme, host, port) = try URLGuard.parse(text)
        let addresses = try URLGuard.resolve(host)
        guard !addresses.isEmpty else { throw URLRefused("The URL's host \(host) does not resolve") }
        for address in addresses {
            let endpoint = address.isV6 ? "[\(address.text)]:\(port)" : "\(address.text):\(port)"
            if let why = URLGuard.forbiddenReason(address.bytes), !allowlist.contains(endpoint) {
                throw URLRefused("The URL's host \(host) resolves to \(address.text), a \(why) address; such URLs are refused")
            }
        }
        let chosen = addresses[0]
        return Target(url: url, scheme: scheme, host: host, port: port, address: chosen.text, isIPv6: chosen.isV6)
    }

    struct Address {
        let bytes: [UInt8]
        let text: String
        var isV6: Bool { bytes.count == 16 }
    }

    static func resolve(_ host: String) throws -> [Address] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &result)
        guard rc == 0, let first = result else {
            throw URLRefused("The URL's host \(host) could not be resolved", permanent: rc == EAI_NONAME)
        }
        defer { freeaddrinfo(first) }
        var out: [Address] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let n = node {
            if let sa = n.pointee.ai_addr {
                if n.pointee.ai_family == AF_INET {
                    var a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    let bytes = withUnsafeBytes(of: &a) { Array($0) }
                    out.append(Address(bytes: bytes, text: bytes.map(String.init).joined(separator: ".")))
                } else if n.pointee.ai_family == AF_INET6 {
                    var a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    let bytes = withUnsafeBytes(of: &a) { Array($0) }
                    var buffer = [UInt8](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                    buffer.withUnsafeMutableBufferPointer { b in
                        b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { _ = inet_ntop(AF_INET6, &a, $0, socklen_t(b.count)) }
                    }
                    out.append(Address(bytes: bytes, text: String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self)))
                }
            }
            node = n.pointee.ai_next
        }
        var seen = Set<String>()
        return out.filter { seen.insert($0.text).inserted }
    }

    /// Why an address may not be fetched (nil when it is public).
    static func forbiddenReason(_ b: [UInt8]) -> String? {
        if b.count == 4 { return forbiddenV4(b) }
        guard b.count == 16 else { return "unknown" }
        if b.allSatisfy({ $0 == 0 }) { return "unspecified" }
        if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return "loopback" }
        // IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d and NAT64 64:ff9b::a.b.c.d carry an IPv4 address.
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF { return forbiddenV4(Array(b[12..<16])).map { "IPv4-mapped \($0)" } }
        if b[0..<12].allSatisfy({ $0 == 0 }) { return "IPv4-compatible" }
        if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xFF && b[3] == 0x9B { return forbiddenV4(Array(b[12..<16])).map { "NAT64 \($0)" } }
        if b[0] == 0x20 && b[1] == 0x02 { return forbiddenV4(Array(b[2..<6])).map { "6to4 \($0)" } }
        if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00 { return "Teredo" }
        if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0D && b[3] == 0xB8 { return "documentation" }
        if b[0] == 0x01 && b[1] == 0x00 && b[2..<8].allSatisfy({ $0 == 0 }) { return "discard-only" }
        if b[0] & 0xFE == 0xFC { return "unique-local (ULA)" }
        if b[0] == 0xFE && b[1] & 0xC0 == 0x80 { return "link-local" }
        if b[0] == 0xFE && b[1] & 0xC0 == 0xC0 { return "site-local" }
        if b[0] == 0xFF { return "multicast" }
        return nil
    }

    static func forbiddenV4(_ b: [UInt8]) -> String? {
        switch (b[0], b[1], b[2]) {
        case (0, _, _): return "unspecified (0.0.0.0/8)"
        case (10, _, _): return "private"
        case (100, 64...127, _): return "carrier-grade NAT"
        case (127, _, _): return "loopback"
        case (169, 254, _): return "link-local (cloud metadata)"
        case (172, 16...31, _): return "private"
        case (192, 0, 0): return "IETF protocol"
        case (192, 0, 2), (198, 51, 100), (203, 0, 113): return "documentation"
        case (192, 88, 99): return "6to4 relay"
        case (192, 168, _): return "private"
        case (198, 18...19, _): return "benchmarking"
        case (224...239, _, _): return "multicast"
        case (240...255, _, _): return "reserved/broadcast"
        default: return nil
        }
    }
}

/// Why a URL was refused, fit for the user. `permanent` ones (bad input) are not worth retrying.
public struct URLRefused: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let permanent: Bool
    public init(_ message: String, permanent: Bool = true) {
        self.message = message
        self.permanent = permanent
    }
    public var description: String { message }
}
