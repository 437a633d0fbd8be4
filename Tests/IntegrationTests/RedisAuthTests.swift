import Foundation
import Platform
import Redis
import XCTest

/// A real redis-server with `requirepass` and an ACL user (as the scale-out's database VM runs it):
/// the right credentials cache, wrong ones are logged once as an error and every lookup still answers
/// from the loader, and the password is never in the log line.
final class RedisAuthTests: XCTestCase {
    static let password = "pw-9f3k@s3cret"
    static let userPassword = "u-77s3cret"
    var server: Process?
    var dir = ""
    var socket: String { dir + "/redis.sock" }

    override func setUpWithError() throws {
        _ = try IntegrationEnvironment.require(IntegrationEnvironment.redisSocket, "STACK_REDIS_SOCKET")
        let binary = "/usr/bin/redis-server"
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw XCTSkip("redis-server not installed") }
        dir = "/tmp/tessera-redis-auth-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let conf = """
            port 0
            unixsocket \(socket)
            daemonize no
            dir \(dir)
            save ""
            appendonly no
            requirepass \(Self.password)
            user tessera on >\(Self.userPassword) ~tessera:* +@all

            """
        try conf.write(toFile: dir + "/redis.conf", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = [dir + "/redis.conf"]
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        server = p
        // Ready when its socket accepts a connection (a readiness wait, not a timing assertion): the file
        // appears at bind(), before listen(), and a loaded machine can connect in between and be refused.
        for _ in 0..<200 where !Self.accepts(socket) { usleep(50_000) }
        XCTAssertTrue(Self.accepts(socket), "redis-server does not accept on \(socket)")
    }

    static func accepts(_ path: String) -> Bool {
        let fd = Foundation.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[i] = byte }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
    }

    override func tearDown() {
        server?.terminate()
        server?.waitUntilExit()
        try? FileManager.default.removeItem(atPath: dir)
    }

    func testTheRightPasswordOrACLUserCaches() throws {
        for url in ["unix:\(socket)?password=\(Self.password.replacingOccurrences(of: "@", with: "%40"))",
                    "unix:\(socket)?password=\(Self.userPassword)&user=tessera"] {
            let client = RedisClient(try XCTUnwrap(RedisURL(url)))
            let failures = Failures()
            client.onFailure = { failures.add($0) }
            let key = "tessera:auth:\(UInt32.random(in: 0...UInt32.max))"
            client.set(key, [1, 2, 3], ttlSeconds: 30)
            XCTAssertEqual(client.get(key), [1, 2, 3], url)
            XCTAssertEqual(failures.all, [], url)
        }
    }

    func testWithoutOrWithAWrongPasswordNothingIsCachedAndTheReasonSaysSo() throws {
        let open = RedisClient(endpoint: .unix(socket))
        open.set("tessera:k", [1], ttlSeconds: 30)
        XCTAssertNil(open.get("tessera:k"), "a client without the password must not be served")

        let wrong = RedisClient(RedisURL(endpoint: .unix(socket), password: "not-it"))
        let failures = Failures()
        wrong.onFailure = { failures.add($0) }
        wrong.set("tessera:k", [1], ttlSeconds: 30)
        XCTAssertNil(wrong.get("tessera:k"))
        XCTAssertEqual(failures.all.count, 1, "one report per outage: \(failures.all)")
        XCTAssertTrue(failures.all.first?.hasPrefix("authentication failed: WRONGPASS") == true, "\(failures.all)")
        XCTAssertFalse(failures.all.joined().contains("not-it"))
    }

    func testTheCacheWithAWrongPasswordLogsAnErrorAndStillServes() throws {
        var loads = 0
        let (log, values) = try capturingStderr { () -> [[UInt8]?] in
            let cache = Cache(url: "unix:\(socket)?password=wrong-s3cret")
            return (0..<2).map { _ in cache.fetch("auth:lookup", ttl: 30) { loads += 1; return [42] } }
        }
        XCTAssertEqual(values, [[42], [42]], "answers come from the loader")
        XCTAssertEqual(loads, 2, "nothing was cached")
        XCTAssertTrue(log.contains("level=error event=redis_auth_failed"), log)
        XCTAssertTrue(log.contains("WRONGPASS"), log)
        XCTAssertFalse(log.contains("wrong-s3cret"), log)

        let (okLog, cached) = try capturingStderr { () -> [[UInt8]?] in
            let cache = Cache(url: "unix:\(socket)?password=\(Self.userPassword)&user=tessera")
            var calls = 0
            return (0..<2).map { _ in cache.fetch("auth:lookup", ttl: 30) { calls += 1; return [UInt8(calls)] } }
        }
        XCTAssertEqual(cached, [[1], [1]], "the second lookup is a cache hit")
        XCTAssertFalse(okLog.contains("redis_"), okLog)
    }

    /// Runs `body` with fd 2 sent to a file; returns what was written there and the body's result.
    private func capturingStderr<T>(_ body: () throws -> T) throws -> (String, T) {
        let path = dir + "/stderr.log"
        let fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let saved = dup(2)
        dup2(fd, 2)
        defer { dup2(saved, 2); close(saved); close(fd) }
        let result = try body()
        return (try String(contentsOfFile: path, encoding: .utf8), result)
    }
}

private final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var reasons: [String] = []
    func add(_ reason: String) { lock.withLock { reasons.append(reason) } }
    var all: [String] { lock.withLock { reasons } }
}
