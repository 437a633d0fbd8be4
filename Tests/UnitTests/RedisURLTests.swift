import AdminConsole
import Config
import Redis
import XCTest

/// TESSERA_REDIS_URL's spellings, with and without credentials, and that none of them leaks a password.
final class RedisURLTests: XCTestCase {
    func testWithoutCredentials() {
        XCTAssertEqual(RedisURL("redis://cache.local:6380"), RedisURL(endpoint: .tcp(host: "cache.local", port: 6380)))
        XCTAssertEqual(RedisURL("redis://10.0.0.10"), RedisURL(endpoint: .tcp(host: "10.0.0.10", port: 6379)))
        XCTAssertEqual(RedisURL("redis://10.0.0.10:6379/0"), RedisURL(endpoint: .tcp(host: "10.0.0.10", port: 6379)))
        XCTAssertEqual(RedisURL("redis://[fd00::10]:6390"), RedisURL(endpoint: .tcp(host: "fd00::10", port: 6390)))
        XCTAssertEqual(RedisURL("unix:/run/redis/redis-server.sock"), RedisURL(endpoint: .unix("/run/redis/redis-server.sock")))
    }

    func testPasswordAndACLUser() {
        XCTAssertEqual(RedisURL("redis://:s3cret@10.0.0.10:6379"),
                       RedisURL(endpoint: .tcp(host: "10.0.0.10", port: 6379), user: nil, password: "s3cret"))
        XCTAssertEqual(RedisURL("redis://tessera:s3cret@10.0.0.10"),
                       RedisURL(endpoint: .tcp(host: "10.0.0.10", port: 6379), user: "tessera", password: "s3cret"))
        // Percent-encoded, and a raw `@` or `:` in the password (the last `@` ends the userinfo).
        XCTAssertEqual(RedisURL("redis://:p%40ss%2Fw%3Ard@h:1")?.password, "p@ss/w:rd")
        XCTAssertEqual(RedisURL("redis://:p@ss:w@h:1"), RedisURL(endpoint: .tcp(host: "h", port: 1), password: "p@ss:w"))
        XCTAssertEqual(RedisURL("unix:/run/redis.sock?password=s3cret"), RedisURL(endpoint: .unix("/run/redis.sock"), password: "s3cret"))
        XCTAssertEqual(RedisURL("unix:/run/redis.sock?password=a%26b&user=tessera"),
                       RedisURL(endpoint: .unix("/run/redis.sock"), user: "tessera", password: "a&b"))
    }

    func testMalformedIsRefused() {
        for bad in ["http://x", "redis://", "redis://:6379", "redis://h:0", "redis://h:65536", "redis://h:port",
                    "redis://s3cret@h", "redis://user:@h", "redis://[::1", "redis://[::1]x",
                    "unix:relative.sock", "unix:/s.sock?pass=x", "unix:/s.sock?user=u", "unix:/s.sock?password"] {
            XCTAssertNil(RedisURL(bad), bad)
        }
    }

    func testNoSpellingShowsThePassword() {
        let urls = ["redis://:s3cret@10.0.0.10:6379", "redis://tessera:s3cret@[fd00::1]:6379", "unix:/r.sock?password=s3cret&user=u",
                    "redis://:p@ss%40s3cret@h"]
        for url in urls {
            let parsed = RedisURL(url)
            XCTAssertNotNil(parsed, url)
            XCTAssertFalse("\(parsed!)".contains("s3cret"), "\(parsed!)")
            XCTAssertFalse(Redaction.scrub("redis=\(url) next").contains("s3cret"), Redaction.scrub(url))
            XCTAssertFalse(Redaction.value("TESSERA_REDIS_URL", url).contains("s3cret"), Redaction.value("TESSERA_REDIS_URL", url))
            XCTAssertFalse(Redaction.envFile("TESSERA_REDIS_URL=\(url)\n").contains("s3cret"))
        }
        XCTAssertEqual("\(RedisURL("redis://tessera:s3cret@db:6379")!)", "redis://tessera:<redacted>@db:6379")
        XCTAssertEqual("\(RedisURL("redis://db:6379")!)", "redis://db:6379")
        // check-config's words about a refused value do not repeat it.
        let problems = ConfigKeys.problems(["TESSERA_REDIS_URL": "rediss://:s3cret@db:6379"])
        XCTAssertEqual(problems.map(\.key), ["TESSERA_REDIS_URL"])
        XCTAssertFalse(problems.map(\.problem).joined().contains("s3cret"))
    }
}
