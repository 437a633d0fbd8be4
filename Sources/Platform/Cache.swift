import Foundation
import Observability
import Redis

/// The Redis-backed lookup cache. Optional by design: with no Redis configured, or Redis down, every
/// lookup simply goes to the database.
public final class Cache: Sendable {
    private let redis: RedisClient?
    static let prefix = "tessera:"

    public init(url: String) {
        if let parsed = RedisURL(url) {
            let client = RedisClient(parsed)
            let target = parsed.description
            client.onFailure = { reason in
                // A wrong password will not heal by itself: an error, not a passing outage.
                if reason.hasPrefix("authentication failed") {
                    Log.error("redis_auth_failed", [("redis", target), ("reason", reason), ("effect", "serving without the cache")])
                } else {
                    Log.warning("redis_unavailable", [("redis", target), ("reason", reason)])
                }
            }
            redis = client
        } else {
            if !url.isEmpty { Log.error("redis_url_invalid", [("effect", "serving without the cache")]) }
            redis = nil
        }
    }

    public static let disabled = Cache(url: "")

    /// Returns the cached bytes for `key`, or loads, stores (for `ttl` seconds) and returns them.
    /// `nil` from `load` (not found) is not cached, so a newly created object is visible at once.
    /// Entries carry their write time: after a Redis outage, entries written before it are ignored,
    /// because an invalidation attempted during the outage (a deleted token) could not reach Redis.
    public func fetch(_ key: String, ttl: Int, load: () throws -> [UInt8]?) rethrows -> [UInt8]? {
        if let redis, let hit = redis.get(Cache.prefix + key), hit.count >= 8 {
            let written = hit.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            if Double(written) / 1000 > redis.recoveredAt.timeIntervalSince1970 { return Array(hit.dropFirst(8)) }
        }
        guard let value = try load() else { return nil }
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        redis?.set(Cache.prefix + key, (0..<8).reversed().map { UInt8(truncatingIfNeeded: now >> (UInt64($0) * 8)) } + value, ttlSeconds: ttl)
        return value
    }

    public func invalidate(_ keys: String...) {
        redis?.delete(keys.map { Cache.prefix + $0 })
    }
}
