import CHiredis
import Foundation

/// A best-effort cache client owning one hiredis context. Every failure degrades to a miss: callers fall
/// back to the database, so Redis being down, slow or flushed never fails a request.
public final class RedisClient: @unchecked Sendable {
    public enum Endpoint: Sendable, Equatable {
        case unix(String)
        case tcp(host: String, port: Int)

        /// Parses `unix:/path` or `redis://host:port`, ignoring any credentials (see `RedisURL`).
        public init?(url: String) {
            guard let parsed = RedisURL(url) else { return nil }
            self = parsed.endpoint
        }
    }

    private let endpoint: Endpoint
    private let user: String?
    private let password: String?
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

    public convenience init(endpoint: Endpoint) { self.init(RedisURL(endpoint: endpoint)) }

    /// Logs in with the URL's credentials, if any, on every (re)connect.
    public init(_ url: RedisURL) {
        endpoint = url.endpoint
        user = url.user
        password = url.password
    }

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
        guard let reply = send(context, parts) else {
            fail(String(cString: withUnsafeBytes(of: context.pointee.errstr) { $0.baseAddress!.assumingMemoryBound(to: CChar.self) }))
            return nil
        }
        if let error = Self.errorText(reply) {
            freeReplyObject(reply)
            // The server restarted with a password, or ours was changed: log in again on reconnect.
            if error.hasPrefix("NOAUTH") || error.hasPrefix("WRONGPASS") { fail(authFailure(error)) }
            return nil
        }
        if failing {
            failing = false
            recovered = Date()
        }
        return reply
    }

    private func send(_ context: UnsafeMutablePointer<redisContext>, _ parts: [[UInt8]]) -> UnsafeMutableRawPointer? {
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
        return redisCommandArgv(context, Int32(parts.count), &argv, &lengths)
    }

    private static func errorText(_ reply: UnsafeMutableRawPointer) -> String? {
        let r = reply.assumingMemoryBound(to: redisReply.self).pointee
        guard r.type == REDIS_REPLY_ERROR else { return nil }
        guard let str = r.str else { return "error" }
        return String(decoding: UnsafeRawBufferPointer(start: str, count: Int(r.len)), as: UTF8.self)
    }

    /// The server's words, which never echo the password; scrubbed of it all the same.
    private func authFailure(_ error: String) -> String {
        var text = error
        if let password, !password.isEmpty { text = text.replacingOccurrences(of: password, with: "<redacted>") }
        return "authentication failed: " + text
    }

    /// AUTH [user] password on a fresh connection; the failure reason, or nil when logged in (or none needed).
    private func authenticate(_ context: UnsafeMutablePointer<redisContext>) -> String? {
        guard let password else { return nil }
        let args = ["AUTH"] + (user.map { [$0] } ?? []) + [password]
        guard let reply = send(context, args.map { Array($0.utf8) }) else { return "authentication failed: no reply" }
        defer { freeReplyObject(reply) }
        return Self.errorText(reply).map(authFailure)
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
        if let problem = authenticate(c) {
            redisFree(c)
            fail(problem)
            return nil
        }
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
