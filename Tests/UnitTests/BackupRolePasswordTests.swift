import Foundation
import Postgres
import XCTest

/// The password a configuration holds for a role, as backup, restore and carto_dw registration read it:
/// inline, else the matching line of the conninfo's passfile (the packaged install's shape).
final class BackupRolePasswordTests: XCTestCase {
    func testInlineWinsAndAPassfileIsReadLikeLibpq() throws {
        let file = NSTemporaryDirectory() + "pgpass-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try """
            # comment
            127.0.0.1:5432:tessera:tessera:not-this-one
            127.0.0.1:5433:*:carto_dw:from:a:passfile
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let viaFile = try XCTUnwrap(PGConnection.parseConninfo("host=127.0.0.1 port=5433 dbname=carto_dw user=carto_dw passfile=\(file)"))
        XCTAssertEqual(PGConnection.password(in: viaFile), "from:a:passfile")
        let inline = try XCTUnwrap(PGConnection.parseConninfo("host=127.0.0.1 port=5433 dbname=carto_dw user=carto_dw password=inline passfile=\(file)"))
        XCTAssertEqual(PGConnection.password(in: inline), "inline")
        let otherPort = try XCTUnwrap(PGConnection.parseConninfo("host=127.0.0.1 port=5434 dbname=carto_dw user=carto_dw passfile=\(file)"))
        XCTAssertNil(PGConnection.password(in: otherPort))
        XCTAssertNil(PGConnection.password(in: try XCTUnwrap(PGConnection.parseConninfo("dbname=tessera user=tessera"))))
    }
}
