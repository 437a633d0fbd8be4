import CryptoSupport
import Foundation
import Metadata
import Postgres

/// `tessera backup`: dumps the metadata database and the embedded warehouse in one run, adds the role
/// passwords the configuration holds, the secret key and the configuration directory, writes the
/// manifest and checksums, and packs it all into ONE file that appears only when complete (written
/// under a temporary name in the destination directory, then renamed).
public struct BackupWriter {
    public typealias Source = BackupInstallation

    /// The role passwords as the platform knows them (from its conninfos), restored onto the new install.
    struct RolePassword: Codable {
        var role: String
        var password: String?
    }

    public static let version = "0.1.0"
    public static let namePrefix = "tessera-backup-"
    static let workPrefix = ".tessera-backup-work-"

    let source: Source
    public init(source: Source) { self.source = source }

    /// Writes the archive into `out` (a directory: a timestamped name in it; else the file itself).
    /// On any failure nothing is left behind (work directory and partial archive removed), and a full
    /// disk is named as such whichever step ran into it.
    public func write(out: String, passphrase: [UInt8]?, now: Date = Date()) throws -> String {
        let destination = Self.destination(out: out, encrypted: passphrase != nil, now: now)
        let directory = (destination as NSString).deletingLastPathComponent
        do {
            return try write(destination: destination, directory: directory, passphrase: passphrase, now: now)
        } catch let error as BackupError {
            throw BackupError.failed(error.message, detail: "", directory: directory)
        } catch {
            throw BackupError.failed("writing the archive in \(directory)", detail: "\(error)", directory: directory)
        }
    }

    private func write(destination: String, directory: String, passphrase: [UInt8]?, now: Date) throws -> String {
        // Group tessera may list and read archives (0750 / 0640): the admin console (user tessera-admin,
        // in that group) serves them for download; nobody else can.
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        let lock = try Self.lockDirectory(directory)
        defer { close(lock) }
        Self.removeLeftovers(in: directory)
        let work = try Self.makeTemporaryDirectory(in: directory)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let staging = work + "/archive"
        try FileManager.default.createDirectory(atPath: staging + "/db", withIntermediateDirectories: true)

        let metadata = try PGTools.Target(source.databaseURL)
        var targets = [(metadata, false)]
        if !source.warehouseURL.isEmpty { targets.append((try PGTools.Target(source.warehouseURL), true)) }
        let schemaVersion = try Migrator().currentVersion(try PGConnection(source.databaseURL))
        var databases: [BackupManifest.Database] = []
        for (target, embedded) in targets {
            let file = "db/\(embedded ? "warehouse" : "metadata")-\(target.database).dump"
            try PGTools.pgDump(target, file: staging + "/" + file, workDir: work)
            databases.append(.init(name: target.database, role: target.role, file: file, host: target.host,
                                   port: target.port, embeddedWarehouse: embedded))
        }
        let roles = Dictionary(targets.map { ($0.0.role, RolePassword(role: $0.0.role, password: $0.0.password)) }, uniquingKeysWith: { a, _ in a })
        try Self.writePrivate(try JSONEncoder().encode(roles.values.sorted { $0.role < $1.role }), to: staging + "/roles.json")
        guard let secret = FileManager.default.contents(atPath: source.secretKeyFile) else {
            throw BackupError("cannot read the secret key \(source.secretKeyFile)")
        }
        try Self.writePrivate(secret, to: staging + "/secret.key")
        let skipped = try Self.copyConfig(from: source.configDir, to: staging + "/etc")

        let files = try BackupManifest.describe(root: staging)
        var manifest = BackupManifest(version: Self.version, schemaVersion: schemaVersion, createdAt: now, databases: databases, files: files)
        manifest.skipped = skipped
        let manifestData = try manifest.encoded()
        try Self.writePrivate(manifestData, to: staging + "/" + BackupManifest.fileName)
        try Self.writePrivate(Data(BackupManifest.checksums(manifest: manifestData, files: files).utf8), to: staging + "/" + BackupManifest.checksumsName)

        let temporary = directory + "/." + (destination as NSString).lastPathComponent + ".partial"
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        if let passphrase {
            let tar = work + "/archive.tar"
            try PGTools.tarCreate(directory: staging, into: tar, workDir: work)
            try FileManager.default.removeItem(atPath: staging)
            try Self.withNewFile(temporary) { try BackupEnvelope.encrypt(input: tar, output: $0, passphrase: passphrase) }
        } else {
            try PGTools.tarCreate(directory: staging, into: temporary, workDir: work)
            try Self.withNewFile(temporary, create: false) { _ in }
        }
        chmod(temporary, 0o640)
        guard rename(temporary, destination) == 0 else {
            throw BackupError("cannot move the archive into place at \(destination): \(String(cString: strerror(errno)))")
        }
        return destination
    }

    /// Copies the configuration directory. A file this user cannot read (the TLS key is root's, while
    /// the timer runs as the tessera user so PostgreSQL's peer authentication lets pg_dump in) is
    /// named in the manifest and on stderr instead of failing the whole backup.
    static func copyConfig(from directory: String, to destination: String) throws -> [String] {
        guard FileManager.default.fileExists(atPath: directory) else { return [] }
        try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return [] }
        var skipped: [String] = []
        while let relative = walker.nextObject() as? String {
            let path = directory + "/" + relative
            var isDir: ObjCBool = false
            FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
            if isDir.boolValue {
                try FileManager.default.createDirectory(atPath: destination + "/" + relative, withIntermediateDirectories: true)
                if access(path, R_OK | X_OK) != 0 {
                    skipped.append(relative + "/")
                    FileHandle.standardError.write(Data("tessera: warning: \(path)/ is not readable by this user; not in the archive\n".utf8))
                }
            } else if let data = FileManager.default.contents(atPath: path) {
                try writePrivate(data, to: destination + "/" + relative)
            } else {
                skipped.append(relative)
                FileHandle.standardError.write(Data("tessera: warning: \(path) is not readable by this user; not in the archive\n".utf8))
            }
        }
        return skipped.sorted()
    }

    static func destination(out: String, encrypted: Bool, now: Date) -> String {
        var isDir: ObjCBool = false
        let isDirectory = out.hasSuffix("/") || (FileManager.default.fileExists(atPath: out, isDirectory: &isDir) && isDir.boolValue)
        guard isDirectory else { return out }
        let stamp = ISO8601DateFormatter.string(from: now, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withYear, .withMonth, .withDay, .withTime, .withTimeZone])
            .replacingOccurrences(of: ":", with: "").replacingOccurrences(of: "-", with: "")
        let base = out.hasSuffix("/") ? String(out.dropLast()) : out
        return "\(base)/\(namePrefix)\(stamp)\(encrypted ? ".tar.enc" : ".tar")"
    }

    /// Writes through a handle and fsyncs, so a full disk is reported here and not after the rename.
    static func withNewFile(_ path: String, create: Bool = true, _ body: (FileHandle) throws -> Void) throws {
        if create {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw BackupError("cannot create \(path): \(String(cString: strerror(errno)))")
            }
        }
        guard let handle = FileHandle(forUpdatingAtPath: path) else { throw BackupError("cannot open \(path)") }
        defer { try? handle.close() }
        do {
            try body(handle)
            try handle.synchronize()
        } catch {
            throw BackupError.failed("writing \(path) failed", detail: "\(error)", directory: (path as NSString).deletingLastPathComponent)
        }
        chmod(path, 0o600)
    }

    static func writePrivate(_ data: Data, to path: String) throws {
        try withNewFile(path) { try $0.write(contentsOf: data) }
    }

    /// One backup at a time per directory. Holding the lock also proves that any work directory or
    /// partial archive already there belongs to a run that died (SIGKILL, power loss), not a live one.
    /// The directory itself is locked, so nothing new appears in it.
    static func lockDirectory(_ directory: String) throws -> Int32 {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw BackupError("cannot open \(directory): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            let reason = String(cString: strerror(errno))
            close(fd)
            throw BackupError(busy ? "another backup is running in \(directory)" : "cannot lock \(directory): \(reason)")
        }
        return fd
    }

    /// Removes what a killed run left behind: its work directory and its partial archive (only names this
    /// writer makes, so an operator's own files in the directory are never touched).
    static func removeLeftovers(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(workPrefix)
            || (name.hasPrefix("." + namePrefix) && name.hasSuffix(".partial")) {
            do {
                try FileManager.default.removeItem(atPath: directory + "/" + name)
                FileHandle.standardError.write(Data("removed \(name), left in \(directory) by a backup that did not finish\n".utf8))
            } catch {
                FileHandle.standardError.write(Data("cannot remove \(name) in \(directory): \(error)\n".utf8))
            }
        }
    }

    static func makeTemporaryDirectory(in parent: String) throws -> String {
        var template = Array((parent + "/" + workPrefix + "XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw BackupError("cannot create a work directory in \(parent): \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }
}
