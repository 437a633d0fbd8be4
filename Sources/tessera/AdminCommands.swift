import AdminConsole
import Config
import Foundation
import Platform
import Spawn

/// `tessera admin-password [--file F] [--password-file P]`: sets the admin console's operator password
/// (read from P, or one line on stdin), stored as a PasswordHasher hash readable by the console only.
func adminPassword(_ cli: inout CommandLineArguments) throws {
    let file = cli.take("--file") ?? "/etc/tessera/admin-password"
    let source = cli.take("--password-file")
    try cli.finish()
    let password: String
    if let source {
        password = try String(contentsOfFile: source, encoding: .utf8).trimmingCharacters(in: .newlines)
    } else {
        guard let line = readLine(strippingNewline: true) else { throw CLIError(message: "give --password-file or the password on stdin", code: 2) }
        password = line
    }
    if let problem = PasswordHasher.policyViolation(password) { throw CLIError(message: problem, code: 2) }
    try EnvFile.writeAtomically(try PasswordHasher.hash(password) + "\n", to: file, mode: 0o640)
    // The console runs as tessera-admin: it must read the hash, nobody else may.
    if let group = getgrnam("tessera-admin") { _ = chown(file, 0, group.pointee.gr_gid); _ = chmod(file, 0o640) }
    print("operator password set in \(file)")
}

/// `tessera admin-apply --staged F [--config /etc/tessera/tessera.env]`: run as root by
/// tessera-admin-apply.service. Re-validates what the unprivileged console staged, installs it
/// atomically and restarts exactly the units the changed keys affect.
func adminApply(_ cli: inout CommandLineArguments, configFile: String?) throws {
    let staged = try cli.require("--staged")
    try cli.finish()
    let target = configFile ?? "/etc/tessera/tessera.env"
    let current = (try? String(contentsOfFile: target, encoding: .utf8)) ?? ""
    let change: ConfigChange
    do {
        change = try ConfigChange.plan(currentText: current, stagedText: try String(contentsOfFile: staged, encoding: .utf8))
    } catch let rejected as ConfigChange.Rejected {
        throw CLIError(message: "refused, nothing written: \(rejected)")
    }
    guard !change.changedKeys.isEmpty else { print("no change"); return }
    try EnvFile.writeAtomically(change.newText, to: target)
    print("wrote \(target): \(change.changedKeys.joined(separator: ", "))")
    let systemctl = try ChildProcess.tool("systemctl")
    for unit in change.units {
        let argv: [String]
        switch unit {
        case "tessera-backup.timer": argv = ["/usr/lib/tessera/tessera-backup-schedule"]
        case "nginx": argv = ["/usr/lib/tessera/tessera-admin-site"]
        default: argv = [systemctl, "try-restart", "\(unit).service"]
        }
        let (status, output) = try runTool(argv, timeout: 300)
        print("\(argv.joined(separator: " ")): \(status == 0 ? "ok" : "exit \(status): \(output)")")
    }
}
