@testable import Config
import Foundation
import XCTest

final class ConfigTests: XCTestCase {
    private func problems(_ raw: [String: String], file: StaticString = #filePath, line: UInt = #line) -> [String] {
        do {
            _ = try TesseraConfig.from(raw)
            XCTFail("expected TesseraConfig.Invalid", file: file, line: line)
            return []
        } catch let e as TesseraConfig.Invalid {
            return e.problems
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return []
        }
    }

    func testDefaultsLoad() throws {
        let config = try TesseraConfig.from([:])
        XCTAssertEqual(config.databaseURL, "dbname=tessera")
        XCTAssertEqual(config.redisURL, "")
        XCTAssertEqual(config.publicURL, "http://localhost:8080")
        XCTAssertEqual(config.signup, .invite)
        XCTAssertEqual(config.sqlStatementTimeoutMs, 60_000)
        XCTAssertEqual(config.sqlMaxRows, 200_000)
        XCTAssertEqual(config.maxBodyBytes, 10_485_760)
        XCTAssertEqual(config.threads, 16)
        XCTAssertEqual(config.dbPoolSize, 8)
        XCTAssertEqual(config.warehousePoolSize, 16)
        XCTAssertEqual(config.oauthTokenTTL, 3600)
        XCTAssertEqual(config.sessionTTL, 43_200)
        XCTAssertEqual(config.logLevel, "info")
        XCTAssertEqual(config.source, "values")
    }

    func testValuesOverrideDefaults() throws {
        let config = try TesseraConfig.from([
            "TESSERA_DATABASE_URL": "host=/run/postgresql dbname=meta",
            "TESSERA_REDIS_URL": "unix:/run/redis/redis.sock",
            "TESSERA_PUBLIC_URL": "https://maps.example.com/",
            "TESSERA_SIGNUP": "closed",
            "TESSERA_THREADS": "4",
            "TESSERA_LOG_LEVEL": "debug",
            "PATH": "/usr/bin",  // non-TESSERA keys are ignored
        ], source: "test")
        XCTAssertEqual(config.databaseURL, "host=/run/postgresql dbname=meta")
        XCTAssertEqual(config.redisURL, "unix:/run/redis/redis.sock")
        XCTAssertEqual(config.publicURL, "https://maps.example.com")
        XCTAssertEqual(config.signup, .closed)
        XCTAssertEqual(config.threads, 4)
        XCTAssertEqual(config.logLevel, "debug")
        XCTAssertEqual(config.source, "test")
    }

    func testUnknownKeyIsNamed() {
        let found = problems(["TESSERA_THREDS": "4"])
        XCTAssertEqual(found.count, 1)
        XCTAssertTrue(found[0].contains("TESSERA_THREDS"), found[0])
    }

    func testBadValuesAreAllReportedTogether() {
        let found = problems([
            "TESSERA_THREADS": "many",
            "TESSERA_DB_POOL_SIZE": "0",
            "TESSERA_SIGNUP": "everyone",
            "TESSERA_LOG_LEVEL": "verbose",
            "TESSERA_PUBLIC_URL": "maps.example.com",
            "TESSERA_REDIS_URL": "localhost:6379",
            "TESSERA_TYPO": "x",
        ])
        let text = found.joined(separator: "\n")
        XCTAssertEqual(found.count, 7, text)
        for key in ["TESSERA_THREADS", "TESSERA_DB_POOL_SIZE", "TESSERA_SIGNUP", "TESSERA_LOG_LEVEL",
                    "TESSERA_PUBLIC_URL", "TESSERA_REDIS_URL", "TESSERA_TYPO"] {
            XCTAssertTrue(text.contains(key), "\(key) missing from: \(text)")
        }
    }

    func testIntegerBounds() {
        XCTAssertEqual(problems(["TESSERA_SQL_STATEMENT_TIMEOUT_MS": "99"]).count, 1)
        XCTAssertEqual(problems(["TESSERA_MAX_BODY_BYTES": "-5"]).count, 1)
        XCTAssertEqual(problems(["TESSERA_SESSION_TTL": "12.5"]).count, 1)
        XCTAssertEqual(problems(["TESSERA_OAUTH_TOKEN_TTL": ""]).count, 1)
        XCTAssertNoThrow(try TesseraConfig.from(["TESSERA_SQL_STATEMENT_TIMEOUT_MS": "100", "TESSERA_THREADS": "1024"]))
    }

    func testInvalidDescriptionListsProblems() {
        let error = TesseraConfig.Invalid(problems: ["a", "b"])
        XCTAssertEqual(error.description, "a; b")
    }

    func testKnownKeys() {
        XCTAssertTrue(TesseraConfig.knownKeys.contains("TESSERA_DATABASE_URL"))
        XCTAssertTrue(TesseraConfig.knownKeys.contains("TESSERA_CONFIG_FILE"))
        XCTAssertFalse(TesseraConfig.knownKeys.contains("TESSERA_NOPE"))
    }

    func testLoadFromFileWithEnvironmentOverride() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-test-\(UUID().uuidString).env").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "TESSERA_THREADS=3\nTESSERA_SIGNUP=open\n".write(toFile: path, atomically: true, encoding: .utf8)
        let config = try TesseraConfig.load(file: path, environment: ["TESSERA_THREADS": "5", "HOME": "/root"])
        XCTAssertEqual(config.threads, 5)
        XCTAssertEqual(config.signup, .open)
        XCTAssertEqual(config.source, path)
    }

    func testLoadRequiredMissingFileFails() {
        XCTAssertThrowsError(try TesseraConfig.load(file: "/nonexistent/tessera-\(UUID().uuidString).env",
                                                    environment: [:], requireFile: true))
        XCTAssertNoThrow(try TesseraConfig.load(file: "/nonexistent/tessera-\(UUID().uuidString).env", environment: [:]))
    }

    // MARK: EnvFile

    func testEnvFileParsing() throws {
        let text = """
            # Tessera settings
            TESSERA_DATABASE_URL="host=/run/postgresql dbname=tessera"

              TESSERA_SIGNUP = 'open'
            export TESSERA_THREADS=8
            TESSERA_PUBLIC_URL=https://maps.example.com/path?a=b
            EMPTY=
            QUOTE_INSIDE="say "hi""
            HASH_VALUE=abc#def
               # indented comment
            """
        let values = try EnvFile.parse(text)
        XCTAssertEqual(values["TESSERA_DATABASE_URL"], "host=/run/postgresql dbname=tessera")
        XCTAssertEqual(values["TESSERA_SIGNUP"], "open")
        XCTAssertEqual(values["TESSERA_THREADS"], "8")
        XCTAssertEqual(values["TESSERA_PUBLIC_URL"], "https://maps.example.com/path?a=b")
        XCTAssertEqual(values["EMPTY"], "")
        XCTAssertEqual(values["QUOTE_INSIDE"], #"say "hi""#)
        XCTAssertEqual(values["HASH_VALUE"], "abc#def")
        XCTAssertEqual(values.count, 7)
        XCTAssertNil(values["export TESSERA_THREADS"])
    }

    func testEnvFileMismatchedQuotesAreKept() throws {
        XCTAssertEqual(try EnvFile.parse("A=\"abc'")["A"], "\"abc'")
        XCTAssertEqual(try EnvFile.parse("A=\"")["A"], "\"")
    }

    func testEnvFileErrorsNameTheLine() {
        XCTAssertThrowsError(try EnvFile.parse("A=1\nB=2\njust words\n")) { error in
            let e = error as? EnvFile.ParseError
            XCTAssertEqual(e?.line, 3)
            XCTAssertTrue(e?.description.hasPrefix("line 3") == true)
        }
        XCTAssertThrowsError(try EnvFile.parse("BAD-KEY=1")) { error in
            XCTAssertEqual((error as? EnvFile.ParseError)?.line, 1)
        }
        XCTAssertThrowsError(try EnvFile.parse("=value"))
    }

    func testEnvFileWithCRLF() throws {
        let values = try EnvFile.parse("A=1\r\nB=\"two\"\r\n")
        XCTAssertEqual(values["A"], "1")
        XCTAssertEqual(values["B"], "two")
    }

    func testBasemapAndSMTPURLs() throws {
        let defaults = try TesseraConfig.from([:])
        XCTAssertEqual(defaults.basemapURL, "")
        XCTAssertEqual(defaults.smtpURL, "")
        let set = try TesseraConfig.from(["TESSERA_BASEMAP_URL": "https://tiles.example.com/{z}/{x}/{y}.png",
                                          "TESSERA_SMTP_URL": "smtp://user:pw@mail.example.com:587?from=a@example.com"])
        XCTAssertEqual(set.basemapURL, "https://tiles.example.com/{z}/{x}/{y}.png")
        XCTAssertEqual(set.smtpURL, "smtp://user:pw@mail.example.com:587?from=a@example.com")
        let found = problems(["TESSERA_BASEMAP_URL": "file:///etc/passwd", "TESSERA_SMTP_URL": "mail.example.com"])
        XCTAssertEqual(found, ["TESSERA_BASEMAP_URL must be http://… or https://… (or empty)", "TESSERA_SMTP_URL must be smtp://… (or empty)"])
    }
}
