import Foundation
import Observability
import Redis

/// The Redis-backed lookup cache. Optional by design: with no Redis configured, or Redis down, every
/// lookup simply goes to the database.
public final class Cache: Sendable {
    private let redis: RedisClient?
    static let prefix = "tessera:"

    public init(url: String) {
        if let endpoint = RedisClient.Endpoint(url: url) {
            let client = RedisClient(endpoint: endpoint)
            client.onFailure = { reason in Log.warning("redis_unavailable", [("reason", reason)]) }
            redis = client
        } else {
            redis = nil
        }
    }

    public static let disabled = Cache(url: "")

    /// Returns the cached bytes for `key`, or loads, stores (for `ttl` seconds) and returns them.
    /// `nil` from `load` (not found) is not cached, so a newly created object is visible at once.
    public func fetch(_ key: String, ttl: Int, load: () throws -> [UInt8]?) rethrows -> [UInt8]? {
        if let redis, let hit = redis.get(Cache.prefix + key) { return hit }
        guard let value = try load() else { return nil }
        redis?.set(Cache.prefix + key, value, ttlSeconds: ttl)
        return value
    }

    public func invalidate(_ keys: String...) {
        redis?.delete(keys.map { Cache.prefix + $0 })
    }
}
