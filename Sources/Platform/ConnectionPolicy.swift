import Foundation
import HTTPKit
import Postgres
#if canImport(Glibc)
import Glibc
#endif

/// Which warehouse a user-created connection may reach, checked on the final libpq conninfo (libpq's own
/// parser, so every form libpq accepts — key=value and URI — is judged as libpq will read it) before any
/// socket is opened:
/// - no unix sockets (`host=/dir`, `host=@abstract`, no host at all) and no loopback, unspecified or
///   this-machine addresses, for every host of a `host=a,b` list, after resolving names
///   (`TESSERA_CONNECTION_HOST_ALLOWLIST` names the exceptions an operator allows);
/// - no role the platform itself logs in as (the metadata role, the embedded warehouse's role, `postgres`);
/// - none of the keywords that would let a stored connection pick its target or identity outside
///   these fields (`hostaddr`, `service`, `passfile`, `options`, a dbname that is itself a conninfo).
/// Records the platform created (the embedded `carto_dw`) are exempt: users can never create or edit a
/// record into that state. The addresses that passed are returned so the caller connects to exactly
/// them (`hostaddr`), leaving no window for a DNS answer to change between check and connect.
public struct ConnectionPolicy: Sendable {
    /// `host` or `host:port` entries (lowercased; IPv6 as `[::1]:5432`).
    public let allowedHosts: Set<String>
    public let platformRoles: Set<String>
    let localAddresses: @Sendable () -> Set<String>

    public static let allowlistKey = "TESSERA_CONNECTION_HOST_ALLOWLIST"

    public init(allowedHosts: [String], platformRoles: Set<String>,
                localAddresses: @escaping @Sendable () -> Set<String> = ConnectionPolicy.interfaceAddresses) {
        self.allowedHosts = Set(allowedHosts.map { $0.lowercased() })
        self.platformRoles = platformRoles
        self.localAddresses = localAddresses
    }

    /// Why a connection is refused. The message names the host as given (never what it resolved to),
    /// so a refusal tells a caller nothing it did not already know.
    public struct Refusal: Error, Equatable, CustomStringConvertible {
        public enum Kind: String, Sendable { case socket, loopback, platformRole, keyword, unresolvable, invalid }
        public let kind: Kind
        public let message: String
        public var description: String { message }

        public var apiError: APIError {
            switch kind {
            case .unresolvable:
                return APIError(400, "connection_failed", message)
            default:
                return APIError(403, "connection_not_allowed", message)
            }
        }
    }

    /// Connect to these: `hostaddr` (one per host, in order), or nil when no pinning is needed.
    public struct Checked: Sendable, Equatable {
        public let hostaddr: String?
    }

    static let forbiddenKeywords = ["hostaddr", "service", "servicefile", "passfile", "options", "requiressl",
                                    "gssdelegation", "krbsrvname", "target_session_attrs", "load_balance_hosts"]

    /// Checks a conninfo (key=value or URI) as libpq will read it.
    public func check(conninfo: String, platformManaged: Bool = false) throws -> Checked {
        guard let info = PGConnection.parseConninfo(conninfo) else {
            throw Refusal(kind: .invalid, message: "The connection parameters are not valid")
        }
        return try check(info, platformManaged: platformManaged)
    }

    public func check(_ info: [String: String], platformManaged: Bool = false) throws -> Checked {
        if platformManaged { return Checked(hostaddr: nil) }
        for key in Self.forbiddenKeywords where !(info[key] ?? "").isEmpty {
            throw Refusal(kind: .keyword, message: "Connections may not set \(key)")
        }
        let db = info["dbname"] ?? ""
        if db.contains("=") || db.lowercased().hasPrefix("postgres://") || db.lowercased().hasPrefix("postgresql://") {
            throw Refusal(kind: .keyword, message: "The database name may not be a connection string")
        }
        guard let user = info["user"], !user.isEmpty else {
            throw Refusal(kind: .platformRole, message: "A connection must name its database user")
        }
        if platformRoles.contains(user) || platformRoles.contains(user.lowercased()) {
            throw Refusal(kind: .platformRole, message: "Connections may not log in as one of the platform's own database roles (\(user))")
        }
        let hosts = (info["host"] ?? "").split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let ports = (info["port"] ?? "").split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard hosts.count <= 8 else {
            throw Refusal(kind: .invalid, message: "A connection may name at most 8 hosts")
        }
        var pinned: [String] = []
        let local = localAddresses()
        for (i, host) in hosts.enumerated() {
            let port = ports.count == hosts.count ? ports[i] : (ports.first ?? "")
            pinned.append(try checkHost(host, port: port.isEmpty ? "5432" : port, local: local))
        }
        return Checked(hostaddr: pinned.contains("") ? nil : pinned.joined(separator: ","))
    }

    func allowed(_ host: String, port: String) -> Bool {
        let h = host.lowercased()
        let bracketed = h.contains(":") ? "[\(h)]" : h
        return allowedHosts.contains(h) || allowedHosts.contains(bracketed) || allowedHosts.contains("\(bracketed):\(port)")
    }

    /// The one address to connect to, or "" for an allow-listed host (connect by name as given).
    func checkHost(_ raw: String, port: String, local: Set<String>) throws -> String {
        let host = raw.trimmingCharacters(in: .whitespaces)
        if host.isEmpty || host.hasPrefix("/") || host.hasPrefix("@") || host.contains("\\") {
            throw Refusal(kind: .socket, message:
                "Connections may not use a local socket; use a host name or address (an operator can allow a host on this machine with \(Self.allowlistKey))")
        }
        guard host.count <= 255, Int(port).map({ (1...65535).contains($0) }) == true else {
            throw Refusal(kind: .invalid, message: "The host or port is not valid")
        }
        if allowed(host, port: port) { return "" }
        let refusedLoopback = Refusal(kind: .loopback, message:
            "Connections may not reach this machine (\(host) is a loopback or local address); an operator can allow a host with \(Self.allowlistKey)")
        if host.lowercased() == "localhost" || host.lowercased().hasSuffix(".localhost") { throw refusedLoopback }
        let addresses = Self.resolve(host)
        guard !addresses.isEmpty else {
            throw Refusal(kind: .unresolvable, message: "Could not connect to the server")
        }
        for a in addresses where Self.isLoopbackOrUnspecified(a) || local.contains(a) { throw refusedLoopback }
        return addresses[0]
    }

    // ---- addresses -------------------------------------------------------------------------------

    /// Every address getaddrinfo gives for a name or literal (the same resolver libpq uses), as text.
    static func resolve(_ host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var out: [String] = []
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let ai = p {
            if let text = numeric(ai.pointee.ai_addr), !out.contains(text) { out.append(text) }
            p = ai.pointee.ai_next
        }
        return out
    }

    static func numeric(_ sa: UnsafeMutablePointer<sockaddr>?) -> String? {
        guard let sa else { return nil }
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(sa.pointee.sa_family) {
        case AF_INET:
            var a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            guard inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count)) != nil else { return nil }
        case AF_INET6:
            var a = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
            guard inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count)) != nil else { return nil }
        default:
            return nil
        }
        return String(cString: buf)
    }

    /// 127/8, 0/8, ::1, ::, and their IPv4-mapped/compatible IPv6 forms.
    static func isLoopbackOrUnspecified(_ text: String) -> Bool {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            let first = UInt8(truncatingIfNeeded: UInt32(bigEndian: v4.s_addr) >> 24)
            return first == 127 || first == 0
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return false }
        let b = withUnsafeBytes(of: &v6) { Array($0) }
        if b[0..<15].allSatisfy({ $0 == 0 }) && (b[15] == 0 || b[15] == 1) { return true }
        let mapped = b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff
        let compatible = b[0..<12].allSatisfy({ $0 == 0 })
        if mapped || compatible { return b[12] == 127 || b[12] == 0 }
        return false
    }

    /// Addresses of this machine's interfaces: a connection to any of them is a connection to itself.
    public static let interfaceAddresses: @Sendable () -> Set<String> = {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(first) }
        var out: Set<String> = []
        var p: UnsafeMutablePointer<ifaddrs>? = first
        while let ifa = p {
            if let text = numeric(ifa.pointee.ifa_addr) { out.insert(text.split(separator: "%").first.map(String.init) ?? text) }
            p = ifa.pointee.ifa_next
        }
        return out
    }
}

extension ConnectionPolicy {
    /// The roles the platform logs in as: the metadata database's and the embedded warehouse's users
    /// (libpq's default user is the OS user the services run as), plus the cluster's superuser.
    public static func platformRoles(databaseURL: String, warehouseURL: String) -> Set<String> {
        var roles: Set<String> = ["postgres"]
        let osUser = getpwuid(geteuid()).flatMap { $0.pointee.pw_name.map { String(cString: $0) } }
        for url in [databaseURL, warehouseURL] where !url.isEmpty {
            if let user = PGConnection.parseConninfo(url)?["user"], !user.isEmpty { roles.insert(user) }
            else if let osUser { roles.insert(osUser) }
        }
        if roles.count == 1 { roles.insert("tessera") }
        return roles
    }
}
