import Config
import HTTPKit
import Postgres
@testable import Platform
import XCTest

/// The host and role policy of user-created connections, judged on conninfo as libpq parses it (key=value and
/// URI forms). Only literals and `localhost` are resolved: no network is needed.
final class ConnectionPolicyTests: XCTestCase {
    let policy = ConnectionPolicy(allowedHosts: ["db.allowed.test", "127.0.0.1:6543", "[::1]:7000"],
                                  platformRoles: ["tessera", "carto_dw", "postgres"],
                                  localAddresses: { ["192.0.2.10", "fe80::1"] })

    private func refusal(_ conninfo: String, file: StaticString = #filePath, line: UInt = #line) -> ConnectionPolicy.Refusal.Kind? {
        do {
            _ = try policy.check(conninfo: conninfo)
            XCTFail("expected a refusal of \(conninfo)", file: file, line: line)
            return nil
        } catch let r as ConnectionPolicy.Refusal {
            return r.kind
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
            return nil
        }
    }

    func testUnixSocketsAreRefusedInEveryForm() {
        for c in ["host=/var/run/postgresql dbname=tessera user=reader",
                  "host='/tmp' user=reader",
                  "host=@abstract user=reader",
                  "dbname=tessera user=reader",                                  // no host: libpq's default socket
                  "host='' user=reader",
                  "host=10.0.0.5,/var/run/postgresql user=reader",              // one socket in a host list
                  "postgresql://reader@%2Fvar%2Frun%2Fpostgresql/tessera",
                  "postgresql:///tessera?host=/var/run/postgresql&user=reader",
                  "postgresql://reader@/tessera"] {
            XCTAssertEqual(refusal(c), .socket, c)
        }
    }

    func testLoopbackAndThisMachineAreRefusedInEveryForm() {
        for c in ["host=127.0.0.1 user=reader", "host=127.0.0.2 user=reader", "host=127.1 user=reader",
                  "host=2130706433 user=reader", "host=0x7f000001 user=reader", "host=0.0.0.0 user=reader",
                  "host=localhost user=reader", "host=LOCALHOST user=reader", "host=db.localhost user=reader",
                  "host=::1 user=reader", "host=:: user=reader", "host=::ffff:127.0.0.1 user=reader",
                  "host=0:0:0:0:0:0:0:1 user=reader",
                  "host=10.0.0.5,127.0.0.1 user=reader",                     // loopback second in a list
                  "host=127.0.0.1 port=5432 user=reader",                    // allowed on 6543 only
                  "host=192.0.2.10 user=reader", "host=fe80::1 user=reader", // this machine's own interfaces
                  "postgresql://reader@localhost/tessera",
                  "postgresql://reader@[::1]:5432/tessera",
                  "postgresql://reader@10.0.0.5,127.0.0.1/tessera",
                  "postgres://reader@127.0.0.1/tessera"] {
            XCTAssertEqual(refusal(c), .loopback, c)
        }
    }

    func testKeywordsThatChooseTargetOrIdentityAreRefused() {
        for c in ["host=10.0.0.5 hostaddr=127.0.0.1 user=reader",
                  "host=10.0.0.5 service=tessera user=reader",
                  "host=10.0.0.5 passfile=/var/lib/tessera/.pgpass user=reader",
                  "host=10.0.0.5 user=reader options='-c role=tessera'",
                  "host=10.0.0.5 user=reader dbname='dbname=tessera host=/var/run/postgresql'",
                  "host=10.0.0.5 user=reader dbname=postgresql://tessera@/tessera",
                  "postgresql://reader@10.0.0.5/tessera?hostaddr=127.0.0.1",
                  "postgresql://reader@10.0.0.5/tessera?service=x",
                  "postgresql://reader@10.0.0.5/tessera?options=-crole%3Dtessera"] {
            XCTAssertEqual(refusal(c), .keyword, c)
        }
    }

    func testPlatformRolesAreRefusedAnywhere() {
        for c in ["host=10.0.0.5 user=tessera", "host=10.0.0.5 user=carto_dw", "host=db.allowed.test user=postgres",
                  "host=10.0.0.5 user=TESSERA", "host=10.0.0.5",
                  "postgresql://carto_dw:pw@10.0.0.5/carto_dw", "postgresql://10.0.0.5/carto_dw"] {
            XCTAssertEqual(refusal(c), .platformRole, c)
        }
    }

    func testPrivateNetworksAndAllowListedHostsPass() throws {
        XCTAssertEqual(try policy.check(conninfo: "host=10.0.0.5 port=5432 user=reader dbname=dw").hostaddr, "10.0.0.5")
        XCTAssertEqual(try policy.check(conninfo: "host=192.168.1.20,172.16.0.3 user=reader").hostaddr, "192.168.1.20,172.16.0.3")
        XCTAssertEqual(try policy.check(conninfo: "postgresql://reader:pw@10.1.2.3:5433/dw?sslmode=require").hostaddr, "10.1.2.3")
        XCTAssertEqual(try policy.check(conninfo: "postgresql://reader@[2001:db8::5]/dw").hostaddr, "2001:db8::5")
        // Allow-listed: connect by name as given (not pinned), and only on the listed port.
        XCTAssertNil(try policy.check(conninfo: "host=127.0.0.1 port=6543 user=reader").hostaddr)
        XCTAssertNil(try policy.check(conninfo: "host=DB.Allowed.Test user=reader").hostaddr)
        XCTAssertNil(try policy.check(conninfo: "host=::1 port=7000 user=reader").hostaddr)
    }

    func testPlatformRecordsAreExempt() throws {
        XCTAssertNoThrow(try policy.check(conninfo: "host=127.0.0.1 user=carto_dw", platformManaged: true))
        XCTAssertEqual(refusal("host=127.0.0.1 user=carto_dw"), .platformRole)
        XCTAssertEqual(refusal("host=127.0.0.1 user=reader"), .loopback)
    }

    func testUnresolvableAndMalformed() {
        XCTAssertEqual(refusal("host=no-such-host.invalid user=reader"), .unresolvable)
        XCTAssertEqual(refusal("host=10.0.0.5 port=0 user=reader"), .invalid)
        XCTAssertEqual(refusal("host=10.0.0.5 user=reader bogus=1"), .invalid)
        XCTAssertEqual(refusal("postgresql://[::1"), .invalid)
    }

    func testRefusalsAreTheErrorContract() {
        let e = ConnectionPolicy.Refusal(kind: .loopback, message: "m").apiError
        XCTAssertEqual(e.status, 403)
        XCTAssertEqual(e.code, "connection_not_allowed")
        XCTAssertEqual(ConnectionPolicy.Refusal(kind: .unresolvable, message: "m").apiError.status, 400)
    }

    /// The stored record's own conninfo quotes every field: a field cannot smuggle keywords, and the
    /// policy sees a host list or a socket path inside a field exactly as libpq will.
    func testRecordFieldsCannotInjectKeywords() throws {
        func record(host: String = "10.0.0.5", db: String = "dw", user: String = "reader") -> ConnectionRecord {
            ConnectionRecord(id: "", accountId: "a", name: "n", host: host, port: 5432, database: db, username: user,
                             passwordSealed: nil, sslmode: "prefer", createdAt: nil, updatedAt: "")
        }
        XCTAssertEqual(refusal(record(host: "10.0.0.5' hostaddr='127.0.0.1").conninfo(password: nil, statementTimeoutMs: nil)), .unresolvable)
        XCTAssertEqual(refusal(record(host: "10.0.0.5,localhost").conninfo(password: nil, statementTimeoutMs: nil)), .loopback)
        let smuggled = record(user: "reader options=-crole=tessera").conninfo(password: nil, statementTimeoutMs: nil)
        XCTAssertNoThrow(try policy.check(conninfo: smuggled), "a quoted user is one (odd) role name, not a keyword")
        XCTAssertNil(PGConnection.parseConninfo(smuggled)?["options"])
        XCTAssertEqual(refusal(record(db: "service=tessera").conninfo(password: nil, statementTimeoutMs: nil)), .keyword)
        let pinned = try policy.check(conninfo: record().conninfo(password: nil, statementTimeoutMs: nil))
        let info = record().conninfo(password: "pw", statementTimeoutMs: 1000, hostaddr: pinned.hostaddr)
        XCTAssertTrue(info.contains("hostaddr='10.0.0.5'"), info)
    }

    func testAllowListConfigKey() throws {
        let c = try TesseraConfig.from(["TESSERA_CONNECTION_HOST_ALLOWLIST": " db1.lan , 127.0.0.1:5432,[::1]:5433 "])
        XCTAssertEqual(c.connectionHostAllowlist, ["db1.lan", "127.0.0.1:5432", "[::1]:5433"])
        XCTAssertEqual(try TesseraConfig.from([:]).connectionHostAllowlist, [])
        XCTAssertThrowsError(try TesseraConfig.from(["TESSERA_CONNECTION_HOST_ALLOWLIST": "/var/run/postgresql"]))
    }

    func testPlatformRolesComeFromTheConfiguredURLs() {
        let roles = ConnectionPolicy.platformRoles(databaseURL: "host=/run/postgresql dbname=tessera user=meta",
                                                   warehouseURL: "postgresql://dw_owner@127.0.0.1/carto_dw")
        XCTAssertTrue(roles.isSuperset(of: ["meta", "dw_owner", "postgres"]), "\(roles)")
    }
}
