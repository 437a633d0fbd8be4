import Foundation
import Spawn
import Postgres

/// pg_dump / pg_restore / tar runs through the project's child-process runner. Passwords travel in
/// PGPASSWORD (the child's environment, never argv); the conninfo on argv has its password removed.
enum PGTools {
    struct Target {
        let conninfo: String
        let fields: [String: String]
        /// Inline or from the conninfo's passfile: what the configuration holds for this role.
        var password: String? { PGConnection.password(in: fields) }
        var database: String { fields["dbname"] ?? fields["user"] ?? "" }
        var role: String { fields["user"] ?? "" }
        var host: String { fields["host"] ?? "" }
        var port: Int { Int(fields["port"] ?? "") ?? 5432 }

        init(_ conninfo: String) throws {
            guard let fields = PGConnection.parseConninfo(conninfo) else { throw BackupError("not a valid conninfo: a database URL in the configuration") }
            self.conninfo = conninfo
            self.fields = fields
        }

        /// The conninfo without its password, safe for argv.
        var argvConninfo: String {
            fields.filter { $0.key != "password" }.sorted { $0.key < $1.key }
                .map { "\($0.key)='\($0.value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'"))'" }
                .joined(separator: " ")
        }

        var environment: [String: String] {
            var env = ["PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "PGCONNECT_TIMEOUT": "15"]
            if let password { env["PGPASSWORD"] = password }
            return env
        }
    }

    /// Runs a tool to completion; a failure carries the tail of its stderr.
    static func run(_ argv: [String], environment: [String: String] = ["PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"],
                    workDir: String, what: String, timeout: Double = 6 * 3600) throws -> String {
        let out = workDir + "/.\(UUID().uuidString).out", err = workDir + "/.\(UUID().uuidString).err"
        defer { try? FileManager.default.removeItem(atPath: out); try? FileManager.default.removeItem(atPath: err) }
        let child: ChildProcess
        do {
            child = try ChildProcess(argv, environment: environment, stdout: out, stderr: err, addressSpaceLimit: 16 << 30)
        } catch {
            throw BackupError.failed(what, detail: "\(error)", directory: workDir)
        }
        let outcome = child.wait(deadline: Date().addingTimeInterval(timeout), isCancelled: { false })
        let stderr = ChildProcess.tail(err, limit: 4096).trimmingCharacters(in: .whitespacesAndNewlines)
        guard outcome == .exited(0) else {
            throw BackupError.failed("\(what) failed (\(outcome))", detail: stderr, directory: workDir)
        }
        return ChildProcess.tail(out, limit: 1 << 20)
    }

    static func pgDump(_ target: Target, file: String, workDir: String) throws {
        _ = try run([try ChildProcess.tool("pg_dump"), "--format=custom", "--no-password", "--file=\(file)",
                     "--dbname=\(target.argvConninfo)"], environment: target.environment, workDir: workDir,
                    what: "pg_dump of \(target.database)")
    }

    /// The dump's `CREATE EXTENSION IF NOT EXISTS` entries stay: the superuser's extensions (postgis,
    /// tessera_h3) already exist and are skipped, while the trusted ones the owner made itself (unaccent,
    /// pg_trgm for the LDS gazetteer) were removed by the restore's DROP OWNED and must come back before
    /// the functions that use them. Comments on extensions and the rows of their configuration tables
    /// belong to the extension's owner, so those entries go.
    static func restoreList(dump: String, workDir: String) throws -> String {
        let list = try run([try ChildProcess.tool("pg_restore"), "--list", dump], workDir: workDir, what: "pg_restore --list")
        let kept = list.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
            !(line.contains(" spatial_ref_sys ") || line.contains("COMMENT - EXTENSION"))
        }
        let path = workDir + "/restore-\(UUID().uuidString).list"
        try kept.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func pgRestore(_ target: Target, dump: String, workDir: String) throws {
        let list = try restoreList(dump: dump, workDir: workDir)
        defer { try? FileManager.default.removeItem(atPath: list) }
        _ = try run([try ChildProcess.tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                     "--single-transaction", "--no-password", "--use-list=\(list)", "--dbname=\(target.argvConninfo)", dump],
                    environment: target.environment, workDir: workDir, what: "pg_restore of \(target.database)")
    }

    static func tarCreate(directory: String, into file: String, workDir: String) throws {
        _ = try run([try ChildProcess.tool("tar"), "--create", "--file=\(file)", "--directory=\(directory)", "--format=posix", "."],
                    workDir: workDir, what: "tar")
    }

    static func tarExtract(_ file: String, into directory: String, workDir: String) throws {
        _ = try run([try ChildProcess.tool("tar"), "--extract", "--file=\(file)", "--directory=\(directory)",
                     "--no-same-owner", "--no-overwrite-dir"], workDir: workDir, what: "reading the archive (tar)")
    }
}

public struct BackupError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    static let diskFull = "the disk is full (No space left on device)"

    /// A failure while writing under `directory`, said plainly when the disk is full. The tool's own
    /// "No space left on device" may be missing: its stderr is captured on that same full disk.
    static func failed(_ what: String, detail: String, directory: String) -> BackupError {
        let said = what + (detail.isEmpty ? "" : ": " + detail)
        guard !what.hasPrefix(diskFull) else { return BackupError(what) }
        if detail.contains("No space left on device") || noSpaceLeft(at: directory) {
            return BackupError("\(diskFull) in \(directory): \(said)")
        }
        return BackupError(said)
    }

    /// Less than 256 KiB left to this user (root may also use ext4's reserved blocks) where `path` lives.
    static func noSpaceLeft(at path: String) -> Bool {
        var fs = statvfs()
        guard statvfs(path, &fs) == 0 else { return false }
        let blocks = geteuid() == 0 ? UInt64(fs.f_bfree) : UInt64(fs.f_bavail)
        return blocks * UInt64(fs.f_frsize) < 256 << 10
    }
}
