import Foundation
import HTTPKit
import Platform
import Postgres
import XCTest

/// A new route written with no policy code of its own (it runs whatever `q` says on the principal's
/// connection) still gets them all: read-only for a viewer, a clean connection for the next request, the
/// per-token cap, and the JSON error contract when a database is down.
final class NewRouteInheritsPoliciesTests: XCTestCase {
    var database: TestDatabase!
    var superuser = ""
    var account = ""
    var adminId = ""
    var viewerId = ""

    override func setUpWithError() throws {
        superuser = try IntegrationEnvironment.require(IntegrationEnvironment.superuserDSN, "STACK_SUPERUSER_DSN")
        database = try TestDatabase()
        try PGConnection(superuser).executeScript("""
            DO $$ BEGIN CREATE ROLE it_poison NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$
            """)
        let metadata = PGPool(conninfo: database.conninfo, size: 2)
        let admin = try AccountStore(metadata).createOrganization(name: "it", email: "admin-\(UUID())@example.com", passwordHash: "x")!
        account = admin.accountId
        adminId = admin.id
        viewerId = try metadata.withConnection { db in
            try db.execute("""
                INSERT INTO users (account_id, email, password_hash, role) VALUES ($1, $2, 'x', 'viewer') RETURNING id
                """, [account, "viewer-\(UUID())@example.com"]).string(0, 0)!
        }
        let info = PGConnection.parseConninfo(database.conninfo)!
        let store = ConnectionStore(metadata)
        _ = try store.create(account: account, createdBy: adminId, name: "wh", host: info["host"] ?? "localhost",
                             port: Int(info["port"] ?? "5432")!, database: database.name, username: info["user"] ?? "postgres",
                             passwordSealed: nil, sslmode: "disable", platformManaged: true)
        // Nothing listens on port 1: the warehouse is down.
        _ = try store.create(account: account, createdBy: adminId, name: "down", host: "127.0.0.1", port: 1,
                             database: database.name, username: "nobody", passwordSealed: nil, sslmode: "disable")
    }

    override func tearDown() { database?.drop() }

    let secrets = Secrets(master: Array(repeating: 7, count: 32))

    /// The trivial route, registered the way every feature registers its routes.
    func application(metadataConninfo: String? = nil, poolSize: Int = 1, limits: SessionLimits = SessionLimits()) -> HTTPApplication {
        let metadata = PGPool(conninfo: metadataConninfo ?? database.conninfo, size: 4)
        let cache = Cache(url: "")
        let auth = Authenticator(metadata: metadata, cache: cache, secrets: secrets)
        let warehouses = Warehouses(metadata: metadata, cache: cache, secrets: secrets, poolSize: poolSize, statementTimeoutMs: 60_000,
                                    limits: limits,
                                    policy: ConnectionPolicy(allowedHosts: ["127.0.0.1:1"], platformRoles: []))
        let router = Router()
        router.get("/api/v3/probe/{connection}") { request in
            let principal = try auth.authenticate(request, api: "sql")
            let q = try request.queryParameters()["q"] ?? "SELECT 1"
            let value = try warehouses.withSession(for: principal, connection: request.pathParameters["connection"]!, request: request) {
                try $0.execute(q).string(0, 0)
            }
            return .json(["value": .optional(value)])
        }
        return HTTPApplication(name: "probe", router: router)
    }

    func userToken(_ userId: String) -> String {
        JWT(key: secrets.tokenSigningKey).sign([
            "sub": .string(userId), "aud": .string(JWT.audience), "\(JWT.namespace)/account_id": .string(account),
        ])
    }

    static func get(_ app: HTTPApplication, _ q: String, as bearer: String, connection: String = "wh") throws -> (Int, JSON, HTTPResponse) {
        let request = HTTPRequest(method: "GET", path: "/api/v3/probe/\(connection)", rawQuery: "q=" + FormDecoding.encode(q),
                                  headers: ["authorization": "Bearer \(bearer)"])
        let response = app.handle(request)
        guard case .bytes(let body) = response.body else { XCTFail("not a complete body"); return (0, .null, response) }
        return (response.status, try JSON.decode(body), response)
    }

    func testViewerIsReadOnlyAndLeavesACleanConnection() throws {
        let app = application()
        let viewer = userToken(viewerId), admin = userToken(adminId)
        let (status, body, _) = try Self.get(app, "CREATE TABLE viewer_wrote (x int)", as: viewer)
        XCTAssertEqual(status, 403)
        XCTAssertEqual(body["code"]?.stringValue, "read_only")
        XCTAssertEqual(body["status"]?.intValue, 403)
        XCTAssertNotNil(body["error"]?.stringValue)

        XCTAssertEqual(try Self.get(app, "SELECT set_config('role', 'it_poison', false)", as: viewer).0, 200)
        XCTAssertEqual(try Self.get(app, "SELECT set_config('statement_timeout', '1', false)", as: viewer).0, 200)
        let (_, who, _) = try Self.get(app, "SELECT current_user || ' ' || current_setting('statement_timeout')", as: admin)
        XCTAssertEqual(who["value"]?.stringValue, "\(PGConnection.parseConninfo(database.conninfo)!["user"] ?? "postgres") 1min",
                       "the admin's request runs as the warehouse role with the configured timeout")

        let (written, _, _) = try Self.get(app, "CREATE TABLE admin_wrote (x int)", as: admin)
        XCTAssertEqual(written, 200, "an admin's bearer request may write")
    }

    /// A signed-in browser's cookie alone runs nothing (a cross-site link carries it too): the route gets the
    /// CSRF check from the authenticator, and a cookie GET reads only, whatever the user's role.
    func testACookieNeedsTheCSRFProofAndReadsOnlyOnGET() throws {
        let app = application()
        let session = try SessionStore(PGPool(conninfo: database.conninfo, size: 1)).create(userId: adminId, ttlSeconds: 600)
        func get(_ q: String, _ extra: [String: String]) throws -> (Int, JSON) {
            let request = HTTPRequest(method: "GET", path: "/api/v3/probe/wh", rawQuery: "q=" + FormDecoding.encode(q),
                                      headers: ["cookie": "\(Authenticator.sessionCookie)=\(session.id)"].merging(extra) { $1 })
            let response = app.handle(request)
            guard case .bytes(let body) = response.body else { XCTFail("not a complete body"); return (0, .null) }
            return (response.status, try JSON.decode(body))
        }
        let (bare, bareBody) = try get("SELECT 1", [:])
        XCTAssertEqual(bare, 403)
        XCTAssertEqual(bareBody["code"]?.stringValue, "csrf_failed")
        XCTAssertEqual(try get("SELECT 1", ["x-csrf-token": session.csrfToken]).0, 200)
        let (write, writeBody) = try get("CREATE TABLE cookie_wrote (x int)", ["x-csrf-token": session.csrfToken])
        XCTAssertEqual(write, 403, "an admin's cookie GET is read-only")
        XCTAssertEqual(writeBody["code"]?.stringValue, "read_only")
    }

    func testDatabaseFailuresAnswerTheErrorContract() throws {
        let app = application()
        let (status, body, _) = try Self.get(app, "SELECT 1", as: userToken(adminId), connection: "down")
        XCTAssertEqual(status, 503)
        XCTAssertEqual(body["status"]?.intValue, 503)
        XCTAssertNotNil(body["code"]?.stringValue)
        XCTAssertFalse(body["error"]?.stringValue?.contains("127.0.0.1") ?? true, "no host names reach the client")

        let (syntax, syntaxBody, _) = try Self.get(app, "SELEC 1", as: userToken(adminId))
        XCTAssertEqual(syntax, 400)
        XCTAssertEqual(syntaxBody["code"]?.stringValue, "invalid_query")

        let metadataDown = application(metadataConninfo: "host=127.0.0.1 port=1 dbname=tessera connect_timeout=2")
        let (outage, outageBody, _) = try Self.get(metadataDown, "SELECT 1", as: userToken(adminId))
        XCTAssertEqual(outage, 503, "a metadata database outage is 503, not 500")
        XCTAssertEqual(outageBody["status"]?.intValue, 503)
    }

    func testATokenPastItsCapWaitsThenGets429WithRetryAfter() throws {
        var limits = SessionLimits()
        limits.tokenMaxConcurrent = 1
        limits.queueWaitMs = 200
        limits.poolReserved = 1
        limits.tokenStatementTimeoutMs = 120_000
        let app = application(poolSize: 3, limits: limits)
        let metadata = PGPool(conninfo: database.conninfo, size: 1)
        let token = try TokenStore(metadata).create(account: account, createdBy: adminId, grants: [Grant(connectionName: "wh", source: "*")],
                                                    referers: [], allowedAPIs: ["sql"], expiresAt: nil)
        let bearer = Authenticator(metadata: metadata, cache: Cache(url: ""), secrets: secrets).apiTokenString(account: account, id: token.id)
        let marker = "it_slow_\(UInt32.random(in: 0...UInt32.max))"
        let slow = Thread { _ = try? Self.get(app, "SELECT pg_sleep(30) AS \(marker)", as: bearer) }
        slow.start()
        let watcher = try PGConnection(superuser)
        let running = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%AS \(marker)%' AND pid <> pg_backend_pid()"
        while try watcher.execute(running).int(0, 0) == 0 { usleep(20_000) }

        let (status, body, response) = try Self.get(app, "SELECT 1", as: bearer)
        XCTAssertEqual(status, 429)
        XCTAssertEqual(body["code"]?.stringValue, "concurrency_limit")
        XCTAssertNotNil(response.header("Retry-After"))
        XCTAssertEqual(try Self.get(app, "SELECT 'admin'", as: userToken(adminId)).1["value"]?.stringValue, "admin",
                       "users are not behind the token's cap")
        _ = try watcher.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%AS \(marker)%' AND pid <> pg_backend_pid()")
    }
}
