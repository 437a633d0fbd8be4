import Foundation
import HTTPKit

/// Uploaded files under `<import dir>/uploads/`, always with generated names (`up-<32 hex>`); the
/// client's filename is kept only as metadata. Bytes are streamed to `<name>.part` and renamed once
/// complete, so a half-received file is never taken for an upload.
struct UploadStore: Sendable {
    let directory: String

    static func newName() -> String {
        var g = SystemRandomNumberGenerator()
        return "up-" + String(format: "%016llx%016llx", g.next() as UInt64, g.next() as UInt64)
    }

    static func isGeneratedName(_ name: String) -> Bool {
        name.count == 35 && name.hasPrefix("up-") && name.dropFirst(3).allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    func path(_ name: String) -> String { directory + "/" + name }

    func remove(_ name: String) {
        guard UploadStore.isGeneratedName(name) else { return }
        unlink(path(name))
        unlink(path(name) + ".part")
    }

    /// A file being written: append chunks, then `finish()` (or `discard()` on any failure).
    final class Writer {
        let name: String
        let path: String
        private var fd: Int32
        private(set) var bytes = 0

        init(store: UploadStore) throws {
            name = UploadStore.newName()
            path = store.path(name)
            fd = open(path + ".part", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw APIError(507, "storage_unavailable", "The upload could not be stored (\(String(cString: strerror(errno))))")
            }
        }

        func write(_ chunk: [UInt8]) throws {
            var offset = 0
            while offset < chunk.count {
                let n = chunk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, chunk.count - offset) }
                if n < 0 {
                    if errno == EINTR { continue }
                    let e = errno
                    discard()
                    if e == ENOSPC || e == EDQUOT {
                        throw APIError(507, "disk_full", "The server has no space left to store the upload (disk full)")
                    }
                    throw APIError(507, "storage_unavailable", "The upload could not be stored (\(String(cString: strerror(e))))")
                }
                offset += n
            }
            bytes += chunk.count
        }

        func finish() throws {
            guard fd >= 0 else { throw APIError.internalError("upload already closed") }
            let synced = fsync(fd) == 0
            close(fd)
            fd = -1
            guard synced, rename(path + ".part", path) == 0 else {
                unlink(path + ".part")
                throw APIError(507, "storage_unavailable", "The upload could not be stored")
            }
        }

        /// Closes and deletes whatever was written (idempotent).
        func discard() {
            if fd >= 0 { close(fd); fd = -1 }
            unlink(path + ".part")
            unlink(path)
        }

        deinit { if fd >= 0 { close(fd); unlink(path + ".part") } }
    }
}

/// CARTO-style column and table names: lower case ASCII letters, digits and `_`, not starting with a
/// digit, not a reserved word, at most 63 bytes.
enum ColumnNames {
    static let reserved: Set<String> = [
        "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case", "cast", "check",
        "collate", "column", "constraint", "create", "current_catalog", "current_date", "current_role", "current_time",
        "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end", "except",
        "false", "fetch", "for", "foreign", "from", "grant", "group", "having", "in", "initially", "intersect", "into",
        "lateral", "leading", "limit", "localtime", "localtimestamp", "not", "null", "offset", "on", "only", "or", "order",
        "placing", "primary", "references", "returning", "select", "session_user", "some", "symmetric", "table", "then",
        "to", "trailing", "true", "union", "unique", "user", "using", "variadic", "when", "where", "window", "with",
    ]

    static func sanitize(_ name: String) -> String {
        var out = ""
        var lastUnderscore = false
        for scalar in name.lowercased().unicodeScalars {
            let ok = (scalar >= "a" && scalar <= "z") || (scalar >= "0" && scalar <= "9")
            if ok {
                out.unicodeScalars.append(scalar)
                lastUnderscore = false
            } else if !lastUnderscore {
                out.append("_")
                lastUnderscore = true
            }
        }
        while out.hasSuffix("_") && out.count > 1 { out.removeLast() }
        while out.hasPrefix("_") && out.count > 1 { out.removeFirst() }
        if out.isEmpty || out == "_" { out = "field" }
        if out.first!.isNumber { out = "_" + out }
        if reserved.contains(out) { out += "_" }
        return String(out.prefix(63))
    }
}
