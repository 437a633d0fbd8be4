import Backup
import Config
import Foundation
import Platform

/// `tessera backup` and `tessera restore` (issue 16). The work is in the Backup module; this maps
/// options and configuration onto it.
let defaultConfigDir = "/etc/tessera"

func readPassphrase(_ cli: inout CommandLineArguments) throws -> [UInt8]? {
    guard let file = cli.take("--passphrase-file") else { return nil }
    guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw CLIError(message: "cannot read \(file)", code: 2) }
    let passphrase = text.trimmingCharacters(in: .newlines)
    guard passphrase.count >= 8 else { throw CLIError(message: "the passphrase in \(file) must have at least 8 characters", code: 2) }
    return Array(passphrase.utf8)
}

/// Without --out the archive goes to TESSERA_BACKUP_DIR and only TESSERA_BACKUP_KEEP archives are
/// kept there (what tessera-backup.service runs); with --out nothing is pruned unless --keep is given.
func backup(_ cli: inout CommandLineArguments, _ config: TesseraConfig) throws {
    let out = cli.take("--out")
    let passphrase = try readPassphrase(&cli)
    let configDir = cli.take("--config-dir") ?? defaultConfigDir
    let keepOption = try cli.take("--keep").map { text -> Int in
        guard let n = Int(text), n >= 1 else { throw CLIError(message: "--keep must be a positive integer", code: 2) }
        return n
    }
    try cli.finish()
    let source = BackupWriter.Source(databaseURL: config.databaseURL, warehouseURL: config.warehouseURL,
                                     secretKeyFile: config.secretKeyFile, configDir: configDir)
    let destination = out ?? config.backupDir + "/"
    do {
        let written = try BackupWriter(source: source).write(out: destination, passphrase: passphrase)
        print("backup written: \(written)")
        let keep = keepOption ?? (out == nil ? config.backupKeep : nil)
        if let keep {
            let directory = (written as NSString).deletingLastPathComponent
            for removed in try BackupRetention.prune(directory: directory, keep: keep) { print("removed old backup \(removed)") }
        }
    } catch let e as BackupError {
        throw CLIError(message: "backup failed: \(e.message)")
    }
}

func restore(_ cli: inout CommandLineArguments, _ config: TesseraConfig) throws {
    guard cli.positional.count == 2 else { throw CLIError(message: "usage: tessera restore ARCHIVE [--passphrase-file F] [--config-dir DIR]", code: 2) }
    let archive = cli.positional[1]
    let passphrase = try readPassphrase(&cli)
    let configDir = cli.take("--config-dir") ?? defaultConfigDir
    try cli.finish()
    let target = BackupRestorer.Target(databaseURL: config.databaseURL, warehouseURL: config.warehouseURL,
                                       secretKeyFile: config.secretKeyFile, configDir: configDir)
    do {
        let repointed = try BackupRestorer(target: target).restore(archive: archive, passphrase: passphrase)
        // The restored carto_dw records hold the archived install's password; rewrite them from the
        // configuration in effect (sealed with the restored key), the password the role keeps.
        if !repointed.isEmpty {
            let services = try Services(config: config)
            for account in repointed {
                print("organisation \(account): " + (try registerEmbeddedWarehouse(services, accountId: account, userId: nil)))
            }
        }
        print("restore complete: restart the services (systemctl restart tessera.target) so they read the restored key and data")
    } catch let e as BackupError {
        throw CLIError(message: "restore failed: \(e.message)", code: 3)
    }
}
