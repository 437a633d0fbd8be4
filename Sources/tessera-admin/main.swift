import AdminConsole
import Backup
import Config
import Foundation
import FastCGI
import HTTPKit

// The admin console's API. Production (systemd): privileged actions start fixed units; with
// --dev-actions DIR (make run, e2e) the harness carries them out instead.
FastCGIProgram.run(name: "tessera-admin", options: ["--password-file", "--state-dir", "--dev-actions", "--dev-logs", "--access-log", "--database-user", "--tls-cert", "--metrics-dir"]) { args in
    // No config load here: the console must start with a broken file, to fix it.
    let configFile = args.configFile ?? ProcessInfo.processInfo.environment["TESSERA_CONFIG_FILE"] ?? "/etc/tessera/tessera.env"
    let actions: PrivilegedActions = args.options["--dev-actions"].map { DevActions(directory: $0) }
        ?? SystemdActions(stateDirectory: args.options["--state-dir"] ?? "/var/lib/tessera-admin")
    let console = AdminConsole(settings: .init(
        configFile: configFile,
        passwordFile: args.options["--password-file"] ?? "/etc/tessera/admin-password",
        accessLog: args.options["--access-log"] ?? "/var/log/nginx/tessera-access.log",
        devLogs: args.options["--dev-logs"],
        version: BackupWriter.version,
        databaseUser: args.options["--database-user"],
        tlsCertificate: args.options["--tls-cert"] ?? "/etc/tessera/tls/tessera.crt",
        metricsDir: args.options["--metrics-dir"] ?? "/run/tessera/metrics"), actions: actions)
    let router = Router()
    console.register(router)
    // The console is one operator's tool: a few threads are plenty.
    return (HTTPApplication(name: "admin", router: router), 4)
}
