import Foundation

/// Sends PURGE requests to one Varnish invalidation endpoint (`-a purge=…`): one small HTTP/1.1 exchange
/// per purge over a fresh TCP connection (no HTTP client library needed for this).
public struct PurgeClient: Sendable {
    public let host: String
    public let port: UInt16

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// `http://127.0.0.1:6091`, `http://10.0.0.12:6091/`, `http://[fd00::2]:6091` → host and port (80 when
    /// absent); nil for anything else (another scheme, user info, a bad port).
    public init?(url: String) {
        guard url.hasPrefix("http://") else { return nil }
        let hostPort = url.dropFirst(7).split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        var host = hostPort, portText = "80"
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { return nil }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let rest = hostPort[hostPort.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return nil }
                portText = String(rest.dropFirst())
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            portText = String(hostPort[hostPort.index(after: colon)...])
        }
        guard !host.isEmpty, !host.contains("@"), !host.contains(":") || hostPort.hasPrefix("["),
              let port = UInt16(portText), port > 0 else { return nil }
        self.host = host
        self.port = port
    }

    /// Purges every object tagged with one of `keys` (xkey); returns how many Varnish removed.
    public func purge(keys: [String]) throws -> Int {
        let request = "PURGE / HTTP/1.1\r\nHost: \(host)\r\nXkey-Purge: \(keys.joined(separator: " "))\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        let response = try exchange(Array(request.utf8))
        guard response.hasPrefix("HTTP/1.1 200") || response.hasPrefix("HTTP/1.0 200") else {
            throw Failure(description: "Varnish answered: \(response.split(separator: "\r\n").first ?? "")")
        }
        if let range = response.range(of: "\"purged\":"), let n = Int(response[range.upperBound...].prefix { $0.isNumber }) { return n }
        return 0
    }

    private func exchange(_ request: [UInt8]) throws -> String {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let info = result else {
            throw Failure(description: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { throw Failure(description: "socket failed") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            throw Failure(description: "cannot connect to Varnish at \(host):\(port): \(String(cString: strerror(errno)))")
        }
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
            throw Failure(description: "sending the purge failed")
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while response.count < 65536 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            response.append(contentsOf: buffer[0..<n])
        }
        guard !response.isEmpty else { throw Failure(description: "Varnish closed the connection without an answer") }
        return String(decoding: response, as: UTF8.self)
    }
}
