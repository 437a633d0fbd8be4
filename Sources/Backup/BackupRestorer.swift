import Foundation
import Metadata
import Postgres

/// `tessera restore`: unpacks an archive into a private work directory, verifies it completely
/// (manifest, checksums, schema level) and only then replaces the databases' contents, the role
/// passwords, the secret key and the configuration files; finally applies newer migrations.
public struct BackupRestorer {
    public typealias Target = BackupInstallation

    let target: Target
    let log: (String) -> Void
    public init(target: Target, log: @escaping (String) -> Void = { print($0) }) {
        self.target = target
        self.log = log
    }

    /// Unpacks and verifies without touching anything; returns the manifest and the unpacked root.
    public static func unpack(archive: String, passphrase: [UInt8]?, work: String) throws -> (BackupManifest, String) {
        guard FileManager.default.isReadableFile(atPath: archive) else { throw BackupError("cannot read \(archive)") }
        var tar = archive
        if BackupEnvelope.isEncrypted(path: archive) {
            guard let passphrase else { throw BackupError("the archive is encrypted: give --passphrase-file") }
            tar = work + "/archive.tar"
            try BackupWriter.withNewFile(tar) { handle in
                do { try BackupEnvelope.decrypt(input: archive, output: handle, passphrase: passphrase) } catch let e as BackupEnvelope.Failure {
                    throw BackupError("archive refused: \(e.reason)")
                }
            }
        }
        let root = work + "/archive"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        do { try PGTools.tarExtract(tar, into: root, workDir: work) } catch {
            throw BackupError("archive refused: not a readable Tessera backup (\(error))")
        }
        if tar != archive { try? FileManager.default.removeItem(atPath: tar) }
        do { return (try BackupManifest.verify(root: root), root) } catch let e as BackupManifest.Refused {
            throw BackupError(e.description)
        }
    }

    /// Returns the organisations whose embedded-warehouse connections were re-pointed: their carto_dw
    /// still holds the archived install's password, sealed; the caller re-registers it from
    /// TESSERA_WAREHOUSE_URL (`registerEmbeddedWarehouse`) so it agrees with the role's password.
    @discardableResult
    public func restore(archive: String, passphrase: [UInt8]?) throws -> [String] {
        let work = try BackupWriter.makeTemporaryDirectory(in: ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let (manifest, root) = try Self.unpack(archive: archive, passphrase: passphrase, work: work)
        let migrator = try Migrator()
        guard manifest.schemaVersion <= migrator.latestVersion else {
            throw BackupError("archive refused: it is from a newer Tessera (schema \(manifest.schemaVersion), this one knows \(migrator.latestVersion))")
        }
        let metadata = try PGTools.Target(target.databaseURL)
        let warehouse = target.warehouseURL.isEmpty ? nil : try PGTools.Target(target.warehouseURL)
        var plan: [(BackupManifest.Database, PGTools.Target)] = []
        for database in manifest.databases {
            guard let destination = database.embeddedWarehouse ? warehouse : metadata else {
                throw BackupError("archive refused: it holds an embedded warehouse but TESSERA_WAREHOUSE_URL is not set")
            }
            plan.append((database, destination))
        }
        log("archive verified: Tessera \(manifest.version), schema \(manifest.schemaVersion), created \(manifest.createdAt)")

        for (database, destination) in plan {
            // The fresh install's own objects go first, so the dump's tables are created, not merged.
            let c = try PGConnection(destination.conninfo)
            // Running services hold locks that would make DROP OWNED wait indefinitely.
            try c.execute("SET lock_timeout = '15s'")
            do { try c.execute("DROP OWNED BY CURRENT_USER CASCADE") } catch let e as PGError where e.sqlstate == "55P03" {
                throw BackupError("\(destination.database) is in use: stop the services first (systemctl stop tessera.target)")
            }
            do { try PGTools.pgRestore(destination, dump: root + "/" + database.file, workDir: work) } catch let e as BackupError {
                throw BackupError("\(e.message)\n\(destination.database) was emptied for the restore and is now incomplete: fix the cause and run the restore again")
            }
            log("restored \(database.name) into \(destination.database)")
        }
        let db = try PGConnection(target.databaseURL)
        var repointed: Set<String> = []
        if let old = manifest.databases.first(where: { $0.embeddedWarehouse }), let warehouse {
            let moved = try db.execute("""
                UPDATE connections SET host = $1, port = $2::int, database = $3
                WHERE host = $4 AND port = $5::int AND database = $6
                RETURNING account_id, name
                """, [warehouse.host.isEmpty ? "localhost" : warehouse.host, String(warehouse.port), warehouse.database,
                      old.host.isEmpty ? "localhost" : old.host, String(old.port), old.name])
            for i in 0..<moved.rowCount where moved.string(i, 1) == "carto_dw" { repointed.insert(moved.string(i, 0)!) }
            log("embedded warehouse connections re-pointed: \(moved.rowCount)")
        }
        try restoreRolePasswords(root: root, targets: [metadata] + (warehouse.map { [$0] } ?? []))
        try Self.replaceFile(target.secretKeyFile, with: root + "/secret.key")
        log("secret key restored to \(target.secretKeyFile)")
        try restoreConfig(from: root + "/etc")
        let applied = try migrator.migrate(db)
        log(applied.isEmpty ? "schema is up to date" : "migrations applied: \(applied.joined(separator: ", "))")
        return repointed.sorted()
    }

    /// Each role sets its own password (no superuser needed); quoting is the server's (format %L).
    /// The configuration in effect wins: a role whose password this install's configuration holds
    /// (inline or in its passfile) keeps that one, because every program here logs in with it and the
    /// embedded warehouse's stored connection is re-registered from it. Giving it the archived password
    /// instead locked this install out of its own warehouse (pg_dump: password authentication failed).
    /// The archived password is restored only for a role this configuration holds none for (peer
    /// authentication), so the restored configuration files still log in when copied into place.
    func restoreRolePasswords(root: String, targets: [PGTools.Target]) throws {
        var archived: [String: String] = [:]
        if let data = FileManager.default.contents(atPath: root + "/roles.json") {
            for role in try JSONDecoder().decode([BackupWriter.RolePassword].self, from: data) {
                if let password = role.password { archived[role.role] = password }
            }
        }
        var done: Set<String> = []
        for target in targets where !done.contains(target.role) {
            done.insert(target.role)
            let password: String
            if let inEffect = target.password {
                password = inEffect
            } else if let old = archived[target.role] {
                password = old
            } else {
                continue
            }
            let c = try PGConnection(target.conninfo)
            let statement = try c.execute("SELECT format('ALTER ROLE CURRENT_USER PASSWORD %L', $1::text)", [password])
            try c.execute(statement.string(0, 0)!)
            log(target.password != nil ? "password of role \(target.role) kept: the configuration in effect holds it"
                                       : "password of role \(target.role) restored")
        }
    }

    func restoreConfig(from directory: String) throws {
        guard FileManager.default.fileExists(atPath: directory) else { return }
        try FileManager.default.createDirectory(atPath: target.configDir, withIntermediateDirectories: true)
        guard let walker = FileManager.default.enumerator(atPath: directory) else { return }
        while let relative = walker.nextObject() as? String {
            var isDir: ObjCBool = false
            FileManager.default.fileExists(atPath: directory + "/" + relative, isDirectory: &isDir)
            if isDir.boolValue {
                try FileManager.default.createDirectory(atPath: target.configDir + "/" + relative, withIntermediateDirectories: true)
            } else {
                try Self.replaceFile(target.configDir + "/" + relative, with: directory + "/" + relative)
            }
        }
        log("configuration restored into \(target.configDir)")
    }

    /// Copies next to the destination, then renames over it: a reader sees the old or the new file.
    static func replaceFile(_ destination: String, with source: String) throws {
        guard let data = FileManager.default.contents(atPath: source) else { throw BackupError("cannot read \(source)") }
        let temporary = destination + ".restore-\(getpid())"
        try BackupWriter.writePrivate(data, to: temporary)
        // An existing file keeps its owner and mode (tessera.env is root:tessera 0640 on a VM).
        var existing = stat()
        if stat(destination, &existing) == 0 {
            _ = chown(temporary, existing.st_uid, existing.st_gid)
            _ = chmod(temporary, existing.st_mode & 0o7777)
        }
        guard rename(temporary, destination) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw BackupError("cannot write \(destination): \(reason)")
        }
    }
}
