import CryptoSupport
import Foundation

/// What a backup archive holds, written as `manifest.json` at its root. Restore trusts nothing in an
/// archive before `verify` has matched every file against it, so a corrupt or foreign archive is
/// refused before any database or file is touched.
public struct BackupManifest: Codable, Equatable, Sendable {
    public static let formatName = "tessera-backup"
    public static let currentFormatVersion = 1
    public static let fileName = "manifest.json"
    /// `sha256sum -c` compatible, so an operator can check an unencrypted archive by hand.
    public static let checksumsName = "SHA256SUMS"

    public struct File: Codable, Equatable, Sendable {
        public var path: String
        public var sha256: String
        public var bytes: Int
        public init(path: String, sha256: String, bytes: Int) {
            self.path = path
            self.sha256 = sha256
            self.bytes = bytes
        }
    }

    /// One pg_dump (custom format) and where it came from; `embeddedWarehouse` marks the database
    /// TESSERA_WAREHOUSE_URL names, whose stored connections restore re-points at the new install.
    public struct Database: Codable, Equatable, Sendable {
        public var name: String
        public var role: String
        public var file: String
        public var host: String
        public var port: Int
        public var embeddedWarehouse: Bool
        public init(name: String, role: String, file: String, host: String, port: Int, embeddedWarehouse: Bool) {
            self.name = name
            self.role = role
            self.file = file
            self.host = host
            self.port = port
            self.embeddedWarehouse = embeddedWarehouse
        }
    }

    public var format: String = formatName
    public var formatVersion: Int = currentFormatVersion
    public var version: String
    public var schemaVersion: Int
    public var createdAt: String
    public var databases: [Database]
    public var files: [File]
    /// Files of the configuration directory the backing-up user could not read.
    public var skipped: [String]?

    public init(version: String, schemaVersion: Int, createdAt: Date, databases: [Database], files: [File]) {
        self.version = version
        self.schemaVersion = schemaVersion
        self.createdAt = ISO8601DateFormatter().string(from: createdAt)
        self.databases = databases
        self.files = files
    }

    public struct Refused: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { "archive refused: \(reason)" }
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// Decodes a manifest, refusing anything that is not a Tessera backup of a format this code reads.
    public static func decode(_ data: Data) throws -> BackupManifest {
        guard let manifest = try? JSONDecoder().decode(BackupManifest.self, from: data), manifest.format == formatName else {
            throw Refused(reason: "not a Tessera backup (no valid \(fileName))")
        }
        guard manifest.formatVersion <= currentFormatVersion else {
            throw Refused(reason: "backup format \(manifest.formatVersion) is newer than this Tessera reads (\(currentFormatVersion))")
        }
        return manifest
    }

    /// Lists every regular file under `root` (relative paths, sorted) with its digest.
    public static func describe(root: String, excluding: Set<String> = [fileName, checksumsName]) throws -> [File] {
        var files: [File] = []
        let base = URL(fileURLWithPath: root).standardizedFileURL.path
        guard let walker = FileManager.default.enumerator(atPath: base) else { return [] }
        while let relative = walker.nextObject() as? String {
            let path = base + "/" + relative
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue,
                  !excluding.contains(relative) else { continue }
            let digest = try SHA256Stream.file(path)
            files.append(File(path: relative, sha256: digest.sha256, bytes: digest.bytes))
        }
        return files.sorted { $0.path < $1.path }
    }

    /// The SHA256SUMS text covering the manifest itself and every file it lists.
    public static func checksums(manifest: Data, files: [File]) -> String {
        let manifestDigest = Encoding.hex(Crypto.sha256([UInt8](manifest)))
        return ([(manifestDigest, fileName)] + files.map { ($0.sha256, $0.path) })
            .map { "\($0.0)  \($0.1)\n" }.joined()
    }

    /// Reads and checks an unpacked archive: the checksums file matches the manifest, and the
    /// directory holds exactly the files the manifest lists, each with its size and digest.
    public static func verify(root: String) throws -> BackupManifest {
        let base = URL(fileURLWithPath: root).standardizedFileURL.path
        guard let data = FileManager.default.contents(atPath: base + "/" + fileName) else {
            throw Refused(reason: "not a Tessera backup (no \(fileName))")
        }
        let manifest = try decode(data)
        guard let sums = try? String(contentsOfFile: base + "/" + checksumsName, encoding: .utf8),
              sums == checksums(manifest: data, files: manifest.files) else {
            throw Refused(reason: "\(checksumsName) is missing or does not match the manifest")
        }
        let found = try describe(root: base)
        let expected = Dictionary(manifest.files.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        for file in found where expected[file.path] == nil {
            throw Refused(reason: "\(file.path) is not in the manifest")
        }
        let present = Dictionary(found.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        for file in manifest.files {
            guard let actual = present[file.path] else { throw Refused(reason: "\(file.path) is missing") }
            guard actual == file else { throw Refused(reason: "checksum mismatch for \(file.path)") }
        }
        for database in manifest.databases where present[database.file] == nil {
            throw Refused(reason: "the dump of \(database.name) is missing")
        }
        return manifest
    }
}
