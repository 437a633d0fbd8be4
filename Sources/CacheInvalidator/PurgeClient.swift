import Foundation

/// Sends PURGE requests to Varnish's loopback invalidation endpoint: one small HTTP/1.1 exchange per
/// purge over a fresh TCP connection (no HTTP client library needed for this).
public struct PurgeClient: Sendable {
    public let host: String
    public let port: UInt16

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// `http://127.0.0.1:6091` → host and port; nil for anything else.
    public init?(url: String) {
        guard url.hasPrefix("http://") else { return nil }
        let hostPort = url.dropFirst(7).split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
        let parts = hostPort.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { return nil }
        host = String(parts[0])
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
