import Redis
import XCTest

final class RedisTests: XCTestCase {
    func testRoundTripBinarySafeAndExpiry() throws {
        let socket = try IntegrationEnvironment.require(IntegrationEnvironment.redisSocket, "STACK_REDIS_SOCKET")
        let client = RedisClient(endpoint: .unix(socket))
        let key = "tessera:test:\(UInt32.random(in: 0...UInt32.max))"
        let value: [UInt8] = [0, 1, 2, 255, 10, 13, 32]
        client.set(key, value, ttlSeconds: 1)
        XCTAssertEqual(client.get(key), value)
        client.delete([key])
        XCTAssertNil(client.get(key))
    }

    func testUnreachableRedisIsAMissNotAFailure() {
        let client = RedisClient(endpoint: .unix("/nonexistent/redis.sock"))
        client.set("k", [1], ttlSeconds: 5)
        XCTAssertNil(client.get("k"))
        XCTAssertEqual(RedisClient.Endpoint(url: "redis://cache.local:6380").map { "\($0)" }, "tcp(host: \"cache.local\", port: 6380)")
        XCTAssertNil(RedisClient.Endpoint(url: "http://x"))
    }
}
