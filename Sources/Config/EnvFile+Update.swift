import Foundation

extension EnvFile {
    /// `text` with each key of `changes` set (a value) or removed (nil), keeping comments, order and
    /// every other line as the operator wrote them: a key's active line is replaced in place, a
    /// commented-out `#KEY=` example is taken over, anything else is appended.
    public static func updating(_ text: String, _ changes: [String: String?]) -> String {
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline }).map(String.init)
        if lines.last == "" { lines.removeLast() }
        func key(of line: String, commented: Bool) -> String? {
            var l = line.trimmingCharacters(in: .whitespaces)
            if commented { guard l.hasPrefix("#") else { return nil }; l = String(l.dropFirst()).trimmingCharacters(in: .whitespaces) }
            if l.hasPrefix("export ") { l = String(l.dropFirst(7)) }
            guard let eq = l.firstIndex(of: "="), !l.hasPrefix("#") else { return nil }
            return l[..<eq].trimmingCharacters(in: .whitespaces)
        }
        for name in changes.keys.sorted() {
            let value = changes[name]!
            let active = lines.indices.filter { key(of: lines[$0], commented: false) == name }
            if let value {
                let line = "\(name)=\(value)"
                if let first = active.first {
                    lines[first] = line
                    for extra in active.dropFirst().reversed() { lines.remove(at: extra) }
                } else if let example = lines.lastIndex(where: { key(of: $0, commented: true) == name }) {
                    lines.insert(line, at: example + 1)
                } else {
                    lines.append(line)
                }
            } else {
                for index in active.reversed() { lines.remove(at: index) }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes `text` to `path` atomically: a temporary file beside it, fsynced, renamed over it, with
    /// the old file's mode (or `mode` for a new file). A reader sees the old or the new file, never half.
    public static func writeAtomically(_ text: String, to path: String, mode: mode_t = 0o640) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let temp = "\(dir)/.\((path as NSString).lastPathComponent).\(getpid()).tmp"
        var info = stat()
        let keepMode = stat(path, &info) == 0
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, keepMode ? info.st_mode & 0o7777 : mode)
        guard fd >= 0 else { throw WriteError(path: path, reason: String(cString: strerror(errno))) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        if keepMode { _ = fchown(fd, info.st_uid, info.st_gid); _ = fchmod(fd, info.st_mode & 0o7777) }
        close(fd)
        guard written == bytes.count, synced, rename(temp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temp)
            throw WriteError(path: path, reason: reason)
        }
    }

    public struct WriteError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "cannot write \(path): \(reason)" }
    }
}
