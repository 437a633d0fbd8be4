import Foundation

/// A tiny in-process memo in front of Redis for the per-request lookups (tokens, users, connections).
/// Entries live `ttl` seconds at most, so together with the Redis TTL a revocation is still seen within
/// the promised 5 seconds; the table is emptied when full rather than tracking recency.
public final class LocalMemo<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: (value: Value, expires: UInt64)] = [:]
    private let ttlNanos: UInt64
    private let capacity: Int

    public init(ttl: Double, capacity: Int = 4096) {
        ttlNanos = UInt64(ttl * 1e9)
        self.capacity = capacity
    }

    public func value(_ key: String, load: () throws -> Value?) rethrows -> Value? {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock()
        if let hit = entries[key], hit.expires > now {
            lock.unlock()
            return hit.value
        }
        lock.unlock()
        guard let value = try load() else { return nil }
        lock.lock()
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        entries[key] = (value, now + ttlNanos)
        lock.unlock()
        return value
    }

    public func remove(_ key: String) {
        lock.lock()
        entries[key] = nil
        lock.unlock()
    }
}
