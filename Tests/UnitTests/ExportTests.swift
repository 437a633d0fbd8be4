import Foundation
@testable import Exports
@testable import SQLAPI
import XCTest

/// Export URL signatures and the statement an export runs (issue 14).
final class ExportTests: XCTestCase {
    let signer = ExportSignature(key: Array(repeating: 3, count: 32))

    func testSignatureIsBoundToJobUserAndExpiry() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        let sig = signer.sign(job: 7, user: "u1", expires: 1_000_100)
        XCTAssertEqual(signer.verify(job: 7, user: "u1", expires: 1_000_100, signature: sig, now: now), .valid)
        XCTAssertEqual(signer.verify(job: 8, user: "u1", expires: 1_000_100, signature: sig, now: now), .invalid)
        XCTAssertEqual(signer.verify(job: 7, user: "u2", expires: 1_000_100, signature: sig, now: now), .invalid)
        XCTAssertEqual(signer.verify(job: 7, user: "u1", expires: 1_000_200, signature: sig, now: now), .invalid)
        XCTAssertEqual(signer.verify(job: 7, user: "u1", expires: 1_000_100, signature: "x" + sig, now: now), .invalid)
        XCTAssertEqual(signer.verify(job: 7, user: "u1", expires: 1_000_100, signature: sig, now: now.addingTimeInterval(101)), .expired)
        XCTAssertEqual(ExportSignature(key: Array(repeating: 4, count: 32)).verify(job: 7, user: "u1", expires: 1_000_100, signature: sig, now: now), .invalid)
    }

    func testStatementIsOneSelect() throws {
        XCTAssertEqual(try ExportRoutes.query("select 1 ;; ", table: nil), "SELECT * FROM (select 1\n) AS tessera_export")
        XCTAssertEqual(try ExportRoutes.query("select -- comment", table: nil), "SELECT * FROM (select -- comment\n) AS tessera_export")
        // The one qualified-name parser and identifier quoting make the table reference.
        let quoted = try ExportRoutes.query(nil, table: "\"My Schema\".places")
        XCTAssertTrue(quoted.hasPrefix("SELECT * FROM \"My Schema\"."), quoted)
        XCTAssertThrowsError(try ExportRoutes.query(nil, table: "a.b.c.d"))
        XCTAssertThrowsError(try ExportRoutes.query(nil, table: nil))
        XCTAssertThrowsError(try ExportRoutes.query("  ", table: nil))
    }

    func testFormatsAndNames() {
        XCTAssertEqual(ExportFormat(name: "GeoPackage"), .gpkg)
        XCTAssertEqual(ExportFormat(name: "shapefile")?.fileExtension, "shp.zip")
        XCTAssertNil(ExportFormat(name: "xlsx"))
        XCTAssertEqual(ExportRoutes.fileName("../etc/pass wd\""), "etcpasswd")
        XCTAssertEqual(ExportRoutes.fileName("ünï"), "n")
        XCTAssertEqual(ExportRoutes.fileName("///"), "export")
    }

    /// The pruner removes a job folder nothing touched for the TTL (an expired file, a dead worker's
    /// partial output) and keeps the rest.
    func testPrunerRemovesOnlyFoldersUntouchedForTheTTL() throws {
        let root = NSTemporaryDirectory() + "export-prune-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let files = ExportFiles(directory: root)
        let fm = FileManager.default
        for id in [1, 2] as [Int64] {
            try fm.createDirectory(atPath: files.partialDir(id), withIntermediateDirectories: true)
            fm.createFile(atPath: files.jobDir(id) + "/x.csv", contents: Data("a\n".utf8))
        }
        let old = Date().addingTimeInterval(-7200)
        for path in [files.jobDir(1), files.partialDir(1), files.jobDir(1) + "/x.csv"] {
            try fm.setAttributes([.modificationDate: old], ofItemAtPath: path)
        }
        ExportPruner(files: files, ttl: 3600).sweep()
        XCTAssertFalse(fm.fileExists(atPath: files.jobDir(1)))
        XCTAssertTrue(fm.fileExists(atPath: files.jobDir(2) + "/x.csv"))
    }
}
