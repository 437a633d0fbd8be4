import Foundation

/// A libpq password file for one external tool run, in a private temporary directory removed by `remove()`.
///
/// Why not PGPASSWORD: some tools (osm2pgrouting) build their own conninfo with an explicit `password=`,
/// empty when no --password is given, and an explicit value overrides PGPASSWORD. libpq still consults the
/// password file whenever the password it ended up with is empty, so a file reaches every libpq tool,
/// and, like the environment, never shows in argv.
public struct PGPassFile {
    /// The private directory holding the file (also a usable HOME for the tool).
    public let directory: String
    public var path: String { directory + "/pgpass" }

    public init(password: String) throws {
        var template = Array((NSTemporaryDirectory() + "/tessera-pgpass-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw PGError(sqlstate: nil, message: "cannot create a directory for the password file: \(String(cString: strerror(errno)))")
        }
        directory = String(cString: made)
        // pgpass fields escape ':' and '\' with a backslash; the wildcards match the one server the tool gets.
        let escaped = password.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ":", with: "\\:")
        let created = FileManager.default.createFile(atPath: directory + "/pgpass", contents: Data("*:*:*:*:\(escaped)\n".utf8),
                                                     attributes: [.posixPermissions: 0o600])
        guard created else {
            remove()
            throw PGError(sqlstate: nil, message: "cannot write the password file in \(directory)")
        }
    }

    /// The environment that makes a libpq tool read this file.
    public var environment: [String: String] { ["PGPASSFILE": path] }

    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}
