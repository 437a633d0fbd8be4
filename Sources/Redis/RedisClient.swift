import CHiredis
import Foundation

/// A best-effort cache client owning one hiredis context. Every failure degrades to a miss: callers fall
/// back to the database, so Redis being down, slow or flushed never fails a request.
public final class RedisClient: @unchecked Sendable {
    public enum Endpoint: Sendable {
        case unix(String)
        case tcp(host: String, port: Int)

        /// Parses `unix:/path` or `redis://host:port`.
        public init?(url: String) {
            if url.hasPrefix("unix:") {
                self = .unix(String(url.dropFirst(5)))
            } else if url.hasPrefix("redis://") {
                let rest = url.dropFirst(8).split(separator: "/").first.map(String.init) ?? ""
                let parts = rest.split(separator: ":")
                guard let host = parts.first else { return nil }
                self = .tcp(host: String(host), port: parts.count > 1 ? Int(parts[1]) ?? 6379 : 6379)
            } else {
                return nil
            }
        }
    }

    private let endpoint: Endpoint
    private let lock = NSLock()
    private var context: UnsafeMutablePointer<redisContext>?
    private var retryAfter = Date.distantPast
    private let timeout = timeval(tv_sec: 0, tv_usec: 250_000)
    /// Called once per outage with a short reason (for logging).
    public var onFailure: (@Sendable (String) -> Void)?
    private var failing = false
    private var recovered = Date.distantPast
    /// When Redis last came back after a failure. Entries written before it may be stale: a delete
    /// attempted during the outage could not reach Redis.
    public var recoveredAt: Date { lock.withLock { recovered } }

    public init(endpoint: Endpoint) { self.endpoint = endpoint }

    deinit { if let context { redisFree(context) } }

    public func get(_ key: String) -> [UInt8]? {
        guard let reply = command(["GET", key]) else { return nil }
        defer { freeReplyObject(reply) }
        let r = reply.assumingMemoryBound(to: redisReply.self).pointee
        guard r.type == REDIS_REPLY_STRING, let str = r.str else { return nil }
        return Array(UnsafeRawBufferPointer(start: str, count: Int(r.len)))
    }

    public func set(_ key: String, _ value: [UInt8], ttlSeconds: Int) {
        if let reply = command(["SET", key], binary: value, suffix: ["EX", String(ttlSeconds)]) { freeReplyObject(reply) }
    }

    public func delete(_ keys: [String]) {
        guard !keys.isEmpty else { return }
        if let reply = command(["DEL"] + keys) { freeReplyObject(reply) }
    }

    /// Sends one command as an argv vector (binary-safe, never formatted); nil on any failure.
    private func command(_ args: [String], binary: [UInt8]? = nil, suffix: [String] = []) -> UnsafeMutableRawPointer? {
        lock.lock()
        defer { lock.unlock() }
        guard let context = connectedContext() else {
            if !failing { failing = true; onFailure?("unreachable") }
            return nil
        }
        var parts: [[UInt8]] = args.map { Array($0.utf8) }
        if let binary { parts.append(binary) }
        parts += suffix.map { Array($0.utf8) }
        let buffers = parts.map { bytes -> UnsafeMutablePointer<CChar> in
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: max(1, bytes.count))
            bytes.withUnsafeBytes { raw in
                if let base = raw.baseAddress { p.withMemoryRebound(to: UInt8.self, capacity: bytes.count) { $0.update(from: base.assumingMemoryBound(to: UInt8.self), count: bytes.count) } }
            }
            return p
        }
        defer { buffers.forEach { $0.deallocate() } }
        var argv: [UnsafePointer<CChar>?] = buffers.map { UnsafePointer($0) }
        var lengths: [Int] = parts.map(\.count)
        let reply = redisCommandArgv(context, Int32(parts.count), &argv, &lengths)
        guard let reply else {
            fail(String(cString: withUnsafeBytes(of: context.pointee.errstr) { $0.baseAddress!.assumingMemoryBound(to: CChar.self) }))
            return nil
        }
        if reply.assumingMemoryBound(to: redisReply.self).pointee.type == REDIS_REPLY_ERROR {
            freeReplyObject(reply)
            return nil
        }
        if failing {
            failing = false
            recovered = Date()
        }
        return reply
    }

    private func connectedContext() -> UnsafeMutablePointer<redisContext>? {
        if let context { return context }
        guard Date() >= retryAfter else { return nil }
        let c: UnsafeMutablePointer<redisContext>?
        switch endpoint {
        case .unix(let path): c = redisConnectUnixWithTimeout(path, timeout)
        case .tcp(let host, let port): c = redisConnectWithTimeout(host, Int32(port), timeout)
        }
        guard let c, c.pointee.err == 0 else {
            if let c { redisFree(c) }
            fail("connect failed")
            return nil
        }
        redisSetTimeout(c, timeout)
        context = c
        return c
    }

    /// Drops the context and backs off for a second before trying again.
    private func fail(_ reason: String) {
        if let context { redisFree(context) }
        context = nil
        retryAfter = Date().addingTimeInterval(1)
        if !failing {
            failing = true
            onFailure?(reason)
        }
    }
}
