@testable import AdminConsole
import Config
import Foundation
import HTTPKit
import Platform
import XCTest

final class AdminConsoleTests: XCTestCase {
    let file = """
        # Tessera configuration
        TESSERA_DATABASE_URL=host=/run/postgresql dbname=tessera user=tessera
        #TESSERA_TILE_MAX_FEATURES=20000
        TESSERA_SIGNUP=invite

        TESSERA_LOG_LEVEL=info
        """

    func testEnvFileUpdateKeepsCommentsAndOrder() {
        let changes: [String: String?] = ["TESSERA_SIGNUP": "open", "TESSERA_TILE_MAX_FEATURES": "500",
                                          "TESSERA_THREADS": "4", "TESSERA_LOG_LEVEL": nil]
        let out = EnvFile.updating(file, changes)
        XCTAssertEqual(out, """
            # Tessera configuration
            TESSERA_DATABASE_URL=host=/run/postgresql dbname=tessera user=tessera
            #TESSERA_TILE_MAX_FEATURES=20000
            TESSERA_TILE_MAX_FEATURES=500
            TESSERA_SIGNUP=open

            TESSERA_THREADS=4

            """)
        XCTAssertEqual(try EnvFile.parse(out)["TESSERA_SIGNUP"], "open")
    }

    func testPlanNamesEveryBadFieldAndWritesNothing() {
        XCTAssertThrowsError(try ConfigChange.plan(currentText: file, changes: [
            "TESSERA_THREADS": "0", "TESSERA_SIGNUP": "open", "TESSERA_NOPE": "1", "TESSERA_CONFIG_FILE": "/tmp/x",
        ])) { error in
            let fields = (error as? ConfigChange.Rejected)?.fields ?? [:]
            XCTAssertEqual(Set(fields.keys), ["TESSERA_THREADS", "TESSERA_NOPE", "TESSERA_CONFIG_FILE"])
            let api = (error as! ConfigChange.Rejected).apiError(requestId: nil)
            XCTAssertEqual(api.status, 422)
            XCTAssertEqual(api.code, "invalid_config")
            XCTAssertNotNil(api.extra["fields"]?.objectValue?["TESSERA_THREADS"])
        }
    }

    func testPlanRestartsOnlyWhatChanged() throws {
        let change = try ConfigChange.plan(currentText: file, changes: ["TESSERA_TILE_MAX_FEATURES": "500", "TESSERA_SIGNUP": "invite"])
        XCTAssertEqual(change.changedKeys, ["TESSERA_TILE_MAX_FEATURES"])
        XCTAssertEqual(change.units, ["tessera-maps-api"])
        // The root side re-plans from the whole staged file and reaches the same answer.
        let again = try ConfigChange.plan(currentText: file, stagedText: change.newText)
        XCTAssertEqual(again.units, ["tessera-maps-api"])
        XCTAssertEqual(again.newText, change.newText)
        XCTAssertThrowsError(try ConfigChange.plan(currentText: file, stagedText: "TESSERA_THREADS=many\n"))
    }

    func testRedaction() {
        XCTAssertEqual(Redaction.scrub("host=db password=s3cr3t dbname=x"), "host=db password=<redacted> dbname=x")
        XCTAssertEqual(Redaction.scrub("password='a b' user=x"), "password=<redacted> user=x")
        XCTAssertEqual(Redaction.scrub("smtp://mailer:hunter2@mail.example.com:587"), "smtp://mailer:<redacted>@mail.example.com:587")
        XCTAssertEqual(Redaction.value("TESSERA_SIGNUP", "password=x"), "password=x")  // not a secret key
        let env = Redaction.envFile("TESSERA_WAREHOUSE_URL=host=h password=pw\n# password=old\nTESSERA_SMTP_URL=smtp://u:p@h")
        XCTAssertFalse(env.contains("pw") || env.contains("old") || env.contains(":p@"), env)
    }

    func testCount5xxPerAPIWithinTheWindow() {
        let log = """
            127.0.0.1 [2026-12-06T07:00:00+00:00] "GET /api/v3/maps/x/tiles/1/2/3 HTTP/1.1" 502 10 rt=0.1
            127.0.0.1 [2026-12-06T07:10:00+00:00] "GET /api/v3/sql/carto_dw/query HTTP/1.1" 500 10 rt=0.1
            127.0.0.1 [2026-12-06T07:10:00+00:00] "POST /api/v3/imports HTTP/1.1" 503 10 rt=0.1
            127.0.0.1 [2026-12-06T07:10:00+00:00] "GET /api/v3/connections HTTP/1.1" 200 10 rt=0.1
            127.0.0.1 [2026-12-06T05:00:00+00:00] "GET /api/v3/lds/geocoding/geocode HTTP/1.1" 504 10 rt=0.1
            127.0.0.1 [2026-12-06T07:20:00+00:00] "GET /index.html HTTP/1.1" 500 10 rt=0.1
            """
        let counts = StatusReport.count5xx(lines: log, since: "2026-12-06T06:30:00Z")
        XCTAssertEqual(counts, ["maps-api": 2, "import-api": 1, "lds-api": 0, "workspace-api": 0])
    }

    func testArchiveNames() {
        XCTAssertTrue(BackupFiles.isArchiveName("tessera-backup-20261206T031500Z.tar"))
        XCTAssertTrue(BackupFiles.isArchiveName("tessera-backup-20261206T031500Z.tar.enc"))
        XCTAssertFalse(BackupFiles.isArchiveName("../tessera-backup-x.tar"))
        XCTAssertFalse(BackupFiles.isArchiveName("secret.key"))
        XCTAssertFalse(BackupFiles.isArchiveName("tessera-backup-..tar"))
    }

    func testLoginThrottlesAnAddressAfterRepeatedFailures() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("admin-pw-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try (PasswordHasher.hash("right password 123", iterations: 1000) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let login = OperatorLogin(passwordFile: path)
        XCTAssertFalse(try login.login(password: "right password 123", from: "10.0.0.1").isEmpty)
        for _ in 0..<OperatorLogin.maxFailures {
            XCTAssertThrowsError(try login.login(password: "wrong", from: "10.0.0.2")) { XCTAssertEqual(($0 as? APIError)?.status, 401) }
        }
        XCTAssertThrowsError(try login.login(password: "right password 123", from: "10.0.0.2")) { error in
            XCTAssertEqual((error as? APIError)?.status, 429)
            XCTAssertGreaterThan((error as? APIError)?.retryAfter ?? 0, 0)
        }
        // Another address is not locked out by this one's failures.
        XCTAssertNoThrow(try login.login(password: "right password 123", from: "10.0.0.3"))
    }

    func testNoPasswordFileIs503WithTheFix() {
        let login = OperatorLogin(passwordFile: "/nonexistent/\(UUID().uuidString)")
        XCTAssertThrowsError(try login.login(password: "x", from: "a")) { error in
            XCTAssertEqual((error as? APIError)?.status, 503)
            XCTAssertEqual((error as? APIError)?.code, "no_operator_password")
        }
    }

    func testSessionGateNeedsCookieAndHeader() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("admin-pw-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try PasswordHasher.hash("right password 123", iterations: 1000).write(toFile: path, atomically: true, encoding: .utf8)
        let login = OperatorLogin(passwordFile: path)
        let id = try login.login(password: "right password 123", from: "a")
        let cookie = ["cookie": "x=1; \(OperatorLogin.cookieName)=\(id)"]
        XCTAssertNoThrow(try login.requireOperator(HTTPRequest(method: "GET", path: "/admin-api/status", headers: cookie)))
        XCTAssertThrowsError(try login.requireOperator(HTTPRequest(method: "PUT", path: "/admin-api/config", headers: cookie)))
        XCTAssertNoThrow(try login.requireOperator(HTTPRequest(method: "PUT", path: "/admin-api/config",
                                                               headers: cookie.merging(["x-tessera-admin": "1"]) { a, _ in a })))
        XCTAssertThrowsError(try login.requireOperator(HTTPRequest(method: "GET", path: "/admin-api/status",
                                                                   headers: ["cookie": "\(OperatorLogin.cookieName)=forged"])))
    }
}
