import Backup
import Foundation
import XCTest

final class BackupManifestTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "backup-manifest-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/db", withIntermediateDirectories: true)
        try Data("dump bytes".utf8).write(to: URL(fileURLWithPath: root + "/db/metadata-tessera.dump"))
        try Data("00ff".utf8).write(to: URL(fileURLWithPath: root + "/secret.key"))
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    /// Writes manifest.json and SHA256SUMS the way BackupWriter does.
    func seal(_ mutate: (inout BackupManifest) -> Void = { _ in }) throws {
        var manifest = BackupManifest(
            version: "0.1.0", schemaVersion: 12, createdAt: Date(timeIntervalSince1970: 0),
            databases: [.init(name: "tessera", role: "tessera", file: "db/metadata-tessera.dump", host: "/run/postgresql", port: 5432, embeddedWarehouse: false)],
            files: try BackupManifest.describe(root: root))
        mutate(&manifest)
        let data = try manifest.encoded()
        try data.write(to: URL(fileURLWithPath: root + "/" + BackupManifest.fileName))
        try Data(BackupManifest.checksums(manifest: data, files: manifest.files).utf8)
            .write(to: URL(fileURLWithPath: root + "/" + BackupManifest.checksumsName))
    }

    func assertRefused(_ contains: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try BackupManifest.verify(root: root), file: file, line: line) { error in
            guard let refused = error as? BackupManifest.Refused else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertTrue(refused.reason.contains(contains), refused.reason, file: file, line: line)
        }
    }

    func testAnIntactArchiveVerifiesWithItsFilesAndDigests() throws {
        try seal()
        let manifest = try BackupManifest.verify(root: root)
        XCTAssertEqual(manifest.files.map(\.path), ["db/metadata-tessera.dump", "secret.key"])
        XCTAssertEqual(manifest.files[0].sha256, "03a9624832fd437c526b7e67e49838ba9a05fd0d3a0a7cec321fb5ae39fa710e")
        XCTAssertEqual(manifest.files[0].bytes, 10)
        XCTAssertEqual(manifest.schemaVersion, 12)
        XCTAssertEqual(manifest.createdAt, "1970-01-01T00:00:00Z")
        let sums = try String(contentsOfFile: root + "/SHA256SUMS", encoding: .utf8)
        XCTAssertTrue(sums.hasSuffix("  db/metadata-tessera.dump\n" + manifest.files[1].sha256 + "  secret.key\n"), sums)
    }

    func testAChangedFileIsRefused() throws {
        try seal()
        try Data("dump bytez".utf8).write(to: URL(fileURLWithPath: root + "/db/metadata-tessera.dump"))
        assertRefused("checksum mismatch for db/metadata-tessera.dump")
    }

    func testAMissingOrExtraFileIsRefused() throws {
        try seal()
        try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/intruder"))
        assertRefused("intruder is not in the manifest")
        try FileManager.default.removeItem(atPath: root + "/intruder")
        try FileManager.default.removeItem(atPath: root + "/secret.key")
        assertRefused("secret.key is missing")
    }

    func testAnEditedManifestNoLongerMatchesItsChecksums() throws {
        try seal()
        let path = root + "/" + BackupManifest.fileName
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "\"schemaVersion\" : 12", with: "\"schemaVersion\" : 13")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        assertRefused("SHA256SUMS")
    }

    func testAForeignOrNewerArchiveIsRefused() throws {
        try Data("{\"format\": \"something-else\"}".utf8).write(to: URL(fileURLWithPath: root + "/" + BackupManifest.fileName))
        assertRefused("not a Tessera backup")
        try FileManager.default.removeItem(atPath: root + "/" + BackupManifest.fileName)
        assertRefused("not a Tessera backup")
        try seal { $0.formatVersion = BackupManifest.currentFormatVersion + 1 }
        assertRefused("newer than this Tessera reads")
    }

    func testADatabaseWhoseDumpIsNotListedIsRefused() throws {
        try seal { $0.databases.append(.init(name: "carto_dw", role: "carto_dw", file: "db/warehouse-carto_dw.dump", host: "", port: 5432, embeddedWarehouse: true)) }
        assertRefused("the dump of carto_dw is missing")
    }
}
