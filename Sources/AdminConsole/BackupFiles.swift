import Foundation
import HTTPKit

/// The archives in TESSERA_BACKUP_DIR as the Backups screen lists them; names are checked against the
/// writer's pattern before any path is built from one.
public struct BackupFiles {
    let directory: String

    static func isArchiveName(_ name: String) -> Bool {
        name.range(of: #"^tessera-backup-[0-9A-Za-z._-]+\.tar(\.enc)?$"#, options: .regularExpression) != nil && !name.contains("..")
    }

    public func list() -> [JSON] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter(Self.isArchiveName).sorted(by: >).map { name in
            let attrs = try? FileManager.default.attributesOfItem(atPath: "\(directory)/\(name)")
            let date = (attrs?[.modificationDate] as? Date).map { ISO8601DateFormatter().string(from: $0) }
            return ["name": .string(name), "bytes": .int((attrs?[.size] as? Int) ?? 0),
                    "created_at": .optional(date), "encrypted": .bool(name.hasSuffix(".enc"))]
        }
    }

    /// The path of an existing archive, or 404 (a name that is not an archive's is 400).
    public func path(of name: String) throws -> String {
        guard Self.isArchiveName(name) else { throw APIError.badRequest("Not a backup archive name: \(name)", code: "invalid_archive_name") }
        let path = "\(directory)/\(name)"
        guard FileManager.default.fileExists(atPath: path) else { throw APIError.notFound("No backup \(name)", code: "backup_not_found") }
        return path
    }

    /// Streams the archive in 1 MiB chunks.
    public func download(_ name: String) throws -> HTTPResponse {
        let path = try path(of: name)
        guard let handle = FileHandle(forReadingAtPath: path) else { throw APIError.forbidden("Cannot read \(name)", code: "backup_unreadable") }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        var headers = [("Content-Type", "application/octet-stream"), ("Content-Disposition", "attachment; filename=\"\(name)\""),
                       ("Cache-Control", "no-store")]
        if let size { headers.append(("Content-Length", String(size))) }
        return HTTPResponse(status: 200, headers: headers, body: .stream { writer in
            defer { try? handle.close() }
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                if !writer.write([UInt8](chunk)) { return }
            }
        })
    }
}
