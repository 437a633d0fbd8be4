import Config
import Foundation

/// The import settings of one program, taken from its config once.
public struct ImportSettings: Sendable {
    /// Root of uploads (`uploads/`), per-job work directories (`work/job-<id>/`) and previews (`preview/`).
    public var directory: String
    public var maxBytes: Int
    public var maxUncompressedBytes: Int
    public var timeoutSeconds: Int
    public var maxRunningPerAccount: Int
    /// TESSERA_IMPORT_PRIVATE_URL_ALLOWLIST: exact `ip:port` / `[ip6]:port` endpoints that URL imports
    /// may reach although they are loopback or private (an operator's internal file server; the install
    /// test's). Empty by default: the SSRF guard then refuses every such address.
    public var privateURLAllowlist: Set<String>
    /// This VM in the job queue: uploads live on its disk, so their imports are pinned to it.
    public var nodeName: String
    /// The import directory is shared storage (TESSERA_IMPORT_DIR_SHARED): every VM sees an upload.
    public var directoryShared: Bool
    /// The node an upload's import must run on; nil = any.
    public var uploadNode: String? { directoryShared ? nil : nodeName }
    /// Most entries an archive may list (bombs with 100k tiny entries are refused from the directory).
    public var maxArchiveEntries = 10_000
    /// Redirect hops a URL import follows (each re-checked).
    public var maxRedirects = 5
    /// Rows shown by a preview.
    public var previewRows = 10

    public init(config: TesseraConfig) {
        directory = config.importDir
        maxBytes = config.importMaxBytes
        maxUncompressedBytes = config.importMaxUncompressedBytes
        timeoutSeconds = config.importTimeoutSeconds
        maxRunningPerAccount = config.importMaxRunning
        privateURLAllowlist = Set(config.importPrivateURLAllowlist)
        nodeName = config.nodeName
        directoryShared = config.importDirShared
    }

    public var uploadsDir: String { directory + "/uploads" }
    public var workDir: String { directory + "/work" }
    public var previewDir: String { directory + "/preview" }

    /// Creates the directories (mode 0700) when missing.
    public func ensureDirectories() throws {
        for dir in [directory, uploadsDir, workDir, previewDir] {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) {
                if !isDir.boolValue { throw ImportFailure("\(dir) exists and is not a directory") }
                continue
            }
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
    }
}

/// An import problem with a message fit for the user. `permanent` ones (bad input) are not retried.
public struct ImportFailure: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let permanent: Bool
    public init(_ message: String, permanent: Bool = true) {
        self.message = message
        self.permanent = permanent
    }
    public var description: String { message }
}
