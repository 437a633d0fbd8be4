@testable import Backup
import Foundation
import XCTest

final class BackupEnvelopeTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "backup-envelope-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func file(_ name: String, _ data: Data = Data()) -> String {
        let path = dir + "/" + name
        FileManager.default.createFile(atPath: path, contents: data)
        return path
    }

    /// 2.5 chunks of patterned bytes, so chunk boundaries and the short last chunk are exercised.
    func plain() -> Data { Data((0..<(BackupEnvelope.chunkSize * 5 / 2)).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }) }

    func encrypt(_ data: Data, passphrase: String = "correct horse") throws -> String {
        let input = file("plain", data), output = file("sealed")
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: output))
        try BackupEnvelope.encrypt(input: input, output: handle, passphrase: Array(passphrase.utf8), iterations: 1000)
        try handle.close()
        return output
    }

    func decrypt(_ path: String, passphrase: String = "correct horse") throws -> Data {
        let output = file("opened")
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: output))
        defer { try? handle.close() }
        try BackupEnvelope.decrypt(input: path, output: handle, passphrase: Array(passphrase.utf8))
        return try Data(contentsOf: URL(fileURLWithPath: output))
    }

    func assertFails(_ path: String, passphrase: String = "correct horse", _ reason: String, line: UInt = #line) {
        XCTAssertThrowsError(try decrypt(path, passphrase: passphrase), line: line) { error in
            XCTAssertTrue((error as? BackupEnvelope.Failure)?.reason.contains(reason) == true, "\(error)", line: line)
        }
    }

    func testRoundTripAcrossChunksAndForEmptyInput() throws {
        let data = plain()
        let sealed = try encrypt(data)
        XCTAssertTrue(BackupEnvelope.isEncrypted(path: sealed))
        XCTAssertFalse(BackupEnvelope.isEncrypted(path: file("tar", Data("ustar".utf8))))
        XCTAssertEqual(try decrypt(sealed), data)
        XCTAssertEqual(try decrypt(try encrypt(Data())), Data())
    }

    func testTheCiphertextDoesNotContainThePlaintext() throws {
        let marker = Data("the-secret-value-in-a-dump".utf8)
        let sealed = try Data(contentsOf: URL(fileURLWithPath: try encrypt(marker + plain())))
        XCTAssertNil(sealed.range(of: marker))
    }

    func testAWrongPassphraseIsRefused() throws {
        assertFails(try encrypt(plain()), passphrase: "wrong horse", "wrong passphrase")
    }

    func testAFlippedByteOrATruncationIsRefused() throws {
        let sealed = try encrypt(plain())
        var bytes = try Data(contentsOf: URL(fileURLWithPath: sealed))
        let original = bytes
        bytes[bytes.count / 2] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: sealed))
        assertFails(sealed, "damaged")
        // Dropping the whole last chunk leaves a well-formed prefix: the missing last flag gives it away.
        let lastChunk = BackupEnvelope.chunkSize / 2 + 9 + 28 + 4
        try original.prefix(original.count - lastChunk).write(to: URL(fileURLWithPath: sealed))
        assertFails(sealed, "truncated")
        try (original + Data([0])).write(to: URL(fileURLWithPath: sealed))
        assertFails(sealed, "after the last chunk")
    }

    func testSwappedChunksAreRefused() throws {
        let sealed = try encrypt(plain())
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: sealed)))
        let header = BackupEnvelope.magic.count + 16 + 4
        let full = BackupEnvelope.chunkSize + 9 + 28 + 4
        let first = Array(bytes[header..<(header + full)]), second = Array(bytes[(header + full)..<(header + 2 * full)])
        let swapped = Array(bytes[0..<header]) + second + first + Array(bytes[(header + 2 * full)...])
        try Data(swapped).write(to: URL(fileURLWithPath: sealed))
        assertFails(sealed, "damaged")
    }
}
