import Config
import Foundation
import HTTPKit
import Observability
import Spawn

/// What the console may not do itself (it runs unprivileged): install a configuration and restart the
/// units it affects, take a backup, restore one. Production starts fixed systemd units over D-Bus
/// (polkit allows exactly those to the tessera-admin user); `make run` and the e2e stack have no
/// systemd, and their harness carries the same requests out (`DevActions`).
public protocol PrivilegedActions: Sendable {
    /// Installs `change.newText` as the configuration file and restarts `change.units`.
    func apply(_ change: ConfigChange, configFile: String) throws
    /// Takes one backup (into TESSERA_BACKUP_DIR, with its retention).
    func backup() throws
    /// Restores the archive `name` of TESSERA_BACKUP_DIR onto this install.
    func restore(archive name: String) throws
    /// Installs a checked certificate and key as the platform's HTTPS certificate and reloads nginx.
    func installTLS(certificate: String, key: String) throws
    /// Obtains the router's certificate with ACME (the TESSERA_ACME_SERVER, _EMAIL, _DOMAIN keys) and installs it; throws
    /// `ACMECertificate.Failed` with certbot's reason, the installed certificate untouched.
    func obtainACMECertificate() throws
    /// Where the ACME unit records its last outcome (nil: this mode has none).
    var acmeResultFile: String? { get }
    /// Unit name -> state (active, failed, …), restart count and main PID.
    func unitStates(_ units: [String]) -> [String: UnitState]
}

public struct UnitState: Sendable {
    public var active: String
    public var sub: String
    public var restarts: Int?
    public var since: String?
    public init(active: String, sub: String = "", restarts: Int? = nil, since: String? = nil) {
        self.active = active; self.sub = sub; self.restarts = restarts; self.since = since
    }
}

struct ActionFailed: HTTPResponseError, CustomStringConvertible {
    let message: String
    var description: String { message }
    func apiError(requestId: String?) -> APIError { APIError(502, "action_failed", message) }
}

/// Runs a fixed command, returns (status, stdout); output goes through files the way ChildProcess wants.
public func runTool(_ argv: [String], timeout: TimeInterval = 120) throws -> (status: Int32, output: String) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-admin-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let child = try ChildProcess(argv, environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "SYSTEMD_COLORS": "0"],
                                 stdout: "\(dir)/out", stderr: "\(dir)/err")
    let outcome = child.wait(deadline: Date().addingTimeInterval(timeout), isCancelled: { false })
    let out = (try? String(contentsOfFile: "\(dir)/out", encoding: .utf8)) ?? ""
    let err = ChildProcess.tail("\(dir)/err", limit: 2000)
    switch outcome {
    case .exited(let code): return (code, code == 0 ? out : out + err)
    default: throw ActionFailed(message: "\((argv[0] as NSString).lastPathComponent) did not finish: \(outcome)")
    }
}

/// Production: fixed units started through systemctl (D-Bus; polkit decides).
public struct SystemdActions: PrivilegedActions {
    /// Where the console stages a validated file for `tessera-admin-apply.service` (its StateDirectory).
    public let stagedFile: String

    public init(stateDirectory: String) { stagedFile = "\(stateDirectory)/staged.env" }

    func start(_ unit: String) throws {
        let systemctl = try ChildProcess.tool("systemctl")
        let (status, output) = try runTool([systemctl, "start", unit], timeout: 3600)
        guard status == 0 else { throw ActionFailed(message: "systemctl start \(unit) failed: \(output.trimmingCharacters(in: .whitespacesAndNewlines))") }
    }

    public func apply(_ change: ConfigChange, configFile: String) throws {
        try EnvFile.writeAtomically(change.newText, to: stagedFile, mode: 0o600)
        // The oneshot re-validates the staged file as root, installs it and restarts what it affects.
        try start("tessera-admin-apply.service")
    }

    public func backup() throws { try start("tessera-backup.service") }

    public func installTLS(certificate: String, key: String) throws {
        let dir = (stagedFile as NSString).deletingLastPathComponent
        try EnvFile.writeAtomically(certificate, to: "\(dir)/staged-tls.crt", mode: 0o600)
        try EnvFile.writeAtomically(key, to: "\(dir)/staged-tls.key", mode: 0o600)
        try start("tessera-admin-tls.service")
    }

    public func restore(archive name: String) throws {
        try start("tessera-admin-restore@\(name).service")
    }

    public var acmeResultFile: String? { (stagedFile as NSString).deletingLastPathComponent + "/acme-result" }

    public func obtainACMECertificate() throws {
        let result = acmeResultFile!
        // A previous attempt's outcome must not stand in for this one's.
        try? FileManager.default.removeItem(atPath: result)
        do {
            try start("tessera-admin-acme.service")
        } catch {
            let reason = ACMECertificate.lastResult(file: result).map { $0.message }
            throw ACMECertificate.Failed(reason: reason ?? "\(error) (no reason recorded; see journalctl -u tessera-admin-acme)")
        }
    }

    public func unitStates(_ units: [String]) -> [String: UnitState] {
        guard !units.isEmpty, let systemctl = try? ChildProcess.tool("systemctl"),
              let (_, output) = try? runTool([systemctl, "show", "--property=Id,ActiveState,SubState,NRestarts,ActiveEnterTimestamp"]
                                              + units.map { $0.contains(".") ? $0 : "\($0).service" }) else { return [:] }
        var states: [String: UnitState] = [:]
        for block in output.components(separatedBy: "\n\n") {
            var props: [String: String] = [:]
            for line in block.split(separator: "\n") {
                if let eq = line.firstIndex(of: "=") { props[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
            }
            guard let id = props["Id"] else { continue }
            let name = id.hasSuffix(".service") ? String(id.dropLast(8)) : id
            states[name] = UnitState(active: props["ActiveState"] ?? "unknown", sub: props["SubState"] ?? "",
                                     restarts: props["NRestarts"].flatMap { Int($0) }, since: props["ActiveEnterTimestamp"])
        }
        return states
    }
}

/// `make run` / e2e: the console writes the file itself (it runs as the developer, like the whole stack)
/// and hands restarts, backups and restores to the harness through request files in `directory`
/// (Tests/harness/admin_dev.py answers them). Nothing else differs from production.
public struct DevActions: PrivilegedActions {
    public let directory: String
    public init(directory: String) { self.directory = directory }

    func request(_ body: JSON, timeout: TimeInterval = 600) throws {
        let id = UUID().uuidString
        let done = "\(directory)/\(id).done"
        try EnvFile.writeAtomically(body.text, to: "\(directory)/\(id).request", mode: 0o600)
        let deadline = Date().addingTimeInterval(timeout)
        while !FileManager.default.fileExists(atPath: done) {
            guard Date() < deadline else { throw ActionFailed(message: "the development harness did not answer \(id)") }
            usleep(100_000)
        }
        let answer = (try? JSON.decode(String(contentsOfFile: done, encoding: .utf8))) ?? .null
        try? FileManager.default.removeItem(atPath: done)
        if let error = answer["error"]?.stringValue { throw ActionFailed(message: error) }
    }

    public func apply(_ change: ConfigChange, configFile: String) throws {
        try EnvFile.writeAtomically(change.newText, to: configFile)
        if !change.units.isEmpty { try request(["action": "restart", "units": .array(change.units.map { .string($0) })]) }
    }

    public func backup() throws { try request(["action": "backup"]) }

    public func installTLS(certificate: String, key: String) throws {
        try EnvFile.writeAtomically(certificate, to: "\(directory)/staged-tls.crt", mode: 0o600)
        try EnvFile.writeAtomically(key, to: "\(directory)/staged-tls.key", mode: 0o600)
        try request(["action": "tls"])
    }

    public func restore(archive name: String) throws { try request(["action": "restore", "archive": .string(name)]) }

    public var acmeResultFile: String? { nil }

    /// certbot answers HTTP-01 on the router's port 80, which the development stack does not have.
    public func obtainACMECertificate() throws {
        throw ACMECertificate.Failed(reason: "ACME runs on the packaged install only (certbot and the router's port 80); upload a certificate here instead")
    }

    public func unitStates(_ units: [String]) -> [String: UnitState] {
        guard let json = try? JSON.decode(String(contentsOfFile: "\(directory)/units.json", encoding: .utf8)),
              let all = json.objectValue else { return [:] }
        var states: [String: UnitState] = [:]
        for unit in units {
            guard let s = all[unit] else { continue }
            states[unit] = UnitState(active: s["active"]?.stringValue ?? "unknown", sub: s["sub"]?.stringValue ?? "",
                                     restarts: s["restarts"]?.intValue, since: s["since"]?.stringValue)
        }
        return states
    }
}
