import Backup
import Foundation
import XCTest

final class BackupRetentionTests: XCTestCase {
    func testKeepsTheNewestArchivesAndNothingElseIsRemoved() throws {
        let dir = NSTemporaryDirectory() + "backup-retention-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let names = ["tessera-backup-20261201T031500Z.tar", "tessera-backup-20261202T031500Z.tar.enc",
                     "tessera-backup-20261203T031500Z.tar", "tessera-backup-20261204T031500Z.tar.enc",
                     ".tessera-backup-20261205T031500Z.tar.partial", "notes.txt", "tessera-backup-manual.zip"]
        for name in names { FileManager.default.createFile(atPath: dir + "/" + name, contents: Data()) }
        XCTAssertEqual(try BackupRetention.prune(directory: dir, keep: 2),
                       ["tessera-backup-20261201T031500Z.tar", "tessera-backup-20261202T031500Z.tar.enc"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(),
                       [".tessera-backup-20261205T031500Z.tar.partial", "notes.txt", "tessera-backup-20261203T031500Z.tar",
                        "tessera-backup-20261204T031500Z.tar.enc", "tessera-backup-manual.zip"])
        XCTAssertEqual(try BackupRetention.prune(directory: dir, keep: 5), [])
    }
}
