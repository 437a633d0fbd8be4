import Config
import Foundation
import HTTPKit
import Observability

/// The admin console's API (`/admin-api/…`, behind nginx's HTTPS server on port 8800). Every route but
/// login goes through `OperatorLogin.requireOperator`, registered once in `register`.
public struct AdminConsole: Sendable {
    public struct Settings: Sendable {
        public var configFile: String
        public var passwordFile: String
        public var accessLog: String?
        public var devLogs: String?
        public var version: String
        /// Production: the console's own read-only role (peer authentication as the OS user tessera-admin).
        public var databaseUser: String?
        /// The platform's HTTPS certificate (nginx's main site), shown and replaced by the TLS screen.
        public var tlsCertificate: String
        /// The workers' metrics files (Status: Varnish's hit ratio from the cdn-invalidator's).
        public var metricsDir: String
        public init(configFile: String, passwordFile: String, accessLog: String?, devLogs: String?, version: String,
                    databaseUser: String? = nil, tlsCertificate: String = "/etc/tessera/tls/tessera.crt",
                    metricsDir: String = "/run/tessera/metrics") {
            self.configFile = configFile; self.passwordFile = passwordFile; self.accessLog = accessLog
            self.devLogs = devLogs; self.version = version; self.databaseUser = databaseUser
            self.tlsCertificate = tlsCertificate; self.metricsDir = metricsDir
        }
    }

    let settings: Settings
    let actions: PrivilegedActions
    let login: OperatorLogin

    public init(settings: Settings, actions: PrivilegedActions) {
        self.settings = settings
        self.actions = actions
        login = OperatorLogin(passwordFile: settings.passwordFile)
    }

    /// The configuration in effect now (file + environment), read per request so a save shows at once.
    func config() throws -> TesseraConfig {
        do {
            var c = try TesseraConfig.load(file: settings.configFile)
            // libpq takes the last of a repeated keyword.
            if let user = settings.databaseUser { c.databaseURL += " user='\(user)'" }
            return c
        } catch {
            throw APIError.unavailable("The configuration does not load: \(error)", code: "config_invalid")
        }
    }

    public func register(_ router: Router) {
        router.post("/admin-api/login") { request in
            let body = try Self.jsonBody(request)
            guard let password = body["password"]?.stringValue else { throw APIError.badRequest("password is required", code: "invalid_parameter") }
            let id = try login.login(password: password, from: request.remoteAddress)
            return .json(["ok": true], headers: [("Set-Cookie", OperatorLogin.cookie(id)), ("Cache-Control", "no-store")])
        }
        func gated(_ method: String, _ path: String, _ handler: @escaping Router.Handler) {
            router.add(method, path) { request in
                try login.requireOperator(request)
                var response = try handler(request)
                if response.header("Cache-Control") == nil { response.headers.append(("Cache-Control", "no-store")) }
                return response
            }
        }
        gated("POST", "/admin-api/logout") { request in
            login.logout(request)
            return .json(["ok": true], headers: [("Set-Cookie", "\(OperatorLogin.cookieName)=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")])
        }
        gated("GET", "/admin-api/session") { _ in .json(["operator": true]) }
        gated("GET", "/admin-api/status") { _ in
            .json(StatusReport(config: try config(), actions: actions, accessLog: settings.accessLog, version: settings.version,
                         metricsDir: settings.metricsDir).json())
        }
        gated("GET", "/admin-api/config") { _ in try configScreen() }
        gated("PUT", "/admin-api/config") { request in try saveConfig(request) }
        gated("GET", "/admin-api/backups") { _ in
            let c = try config()
            return .json(["directory": .string(c.backupDir), "schedule": .string(c.backupSchedule), "keep": .int(c.backupKeep),
                          "archives": .array(BackupFiles(directory: c.backupDir).list())])
        }
        gated("POST", "/admin-api/backups") { _ in
            try actions.backup()
            Log.info("admin_backup_taken", [])
            return .json(["archives": .array(BackupFiles(directory: try config().backupDir).list())], status: 201)
        }
        gated("GET", "/admin-api/backups/{name}") { request in
            try BackupFiles(directory: try config().backupDir).download(request.pathParameters["name"] ?? "")
        }
        gated("POST", "/admin-api/backups/{name}/restore") { request in
            let name = request.pathParameters["name"] ?? ""
            _ = try BackupFiles(directory: try config().backupDir).path(of: name)
            Log.warning("admin_restore", [("archive", name)])
            try actions.restore(archive: name)
            return .json(["restored": .string(name)])
        }
        gated("GET", "/admin-api/tls") { _ in
            let acme = ACMECertificate.json(try config(), last: actions.acmeResultFile.flatMap(ACMECertificate.lastResult(file:)))
            return .json(["file": .string(settings.tlsCertificate), "certificate": try installedCertificate(), "acme": acme])
        }
        gated("POST", "/admin-api/tls/acme") { _ in
            try ACMECertificate.requireSettings(try config())
            Log.info("admin_acme_requested", [])
            do { try actions.obtainACMECertificate() } catch {
                Log.warning("admin_acme_failed", [("error", String(describing: error))])
                throw error
            }
            Log.info("admin_acme_installed", [])
            return .json(["file": .string(settings.tlsCertificate), "certificate": try installedCertificate()])
        }
        gated("POST", "/admin-api/tls/check") { request in
            .json(try Self.tlsUpload(request).check().json)
        }
        gated("PUT", "/admin-api/tls") { request in
            let upload = try Self.tlsUpload(request)
            let report = try upload.check()
            guard report.problems.isEmpty else { throw TLSCertificate.Refused(report: report) }
            try actions.installTLS(certificate: upload.certificatePEM, key: upload.keyPEM)
            Log.info("admin_tls_installed", [("subject", report.subject), ("not_after", report.notAfter)])
            return .json(report.json)
        }
        gated("GET", "/admin-api/support-bundle") { request in
            let hours = Int(try request.queryParameters()["hours"] ?? "24") ?? -1
            guard (1...720).contains(hours) else { throw APIError.badRequest("hours must be between 1 and 720", code: "invalid_parameter") }
            let status = StatusReport(config: try config(), actions: actions, accessLog: settings.accessLog, version: settings.version,
                         metricsDir: settings.metricsDir)
            return try SupportBundle(configFile: settings.configFile, status: status, devLogs: settings.devLogs).build(hours: hours)
        }
    }

    /// The facts of the certificate nginx serves (null when there is none). The key stays where nginx
    /// reads it: only the certificate's own facts are shown.
    func installedCertificate() throws -> JSON {
        guard let pem = try? String(contentsOfFile: settings.tlsCertificate, encoding: .utf8) else { return .null }
        var report = try TLSCertificate(certificatePEM: pem, keyPEM: "-----BEGIN PRIVATE KEY-----").check()
        report.problems.removeAll { $0.contains("key") }
        return report.json
    }

    /// Every key of the one table, with its value in the file (secrets redacted) and what it restarts.
    func configScreen() throws -> HTTPResponse {
        let text = try currentFileText()
        let values = (try? EnvFile.parse(text)) ?? [:]
        let keys: [JSON] = ConfigKeys.all.filter { !ConfigChange.notEditable.contains($0.name) }.map { key in
            [
                "name": .string(key.name), "meaning": .string(key.meaning), "default": .string(key.defaultValue),
                "rule": .string(key.rule), "units": .array(key.units.map { .string($0) }), "secret": .bool(key.secret),
                "value": values[key.name].map { .string(Redaction.value(key.name, $0)) } ?? .null,
            ]
        }
        return .json(["file": .string(settings.configFile), "keys": .array(keys)])
    }

    /// `{"values": {"KEY": "value" | null}}`: all valid or nothing written (422 names each bad field).
    func saveConfig(_ request: HTTPRequest) throws -> HTTPResponse {
        guard let values = try Self.jsonBody(request)["values"]?.objectValue, !values.isEmpty else {
            throw APIError.badRequest("values must be an object of KEY: value (or null to reset)", code: "invalid_parameter")
        }
        let current = try currentFileText()
        var changes: [String: String?] = [:]
        for (key, value) in values {
            switch value {
            case .string(let s):
                // A redacted secret sent back unchanged keeps the stored value.
                if s.contains(Redaction.mark) { continue }
                changes[key] = s
            case .number: changes[key] = value.intValue.map(String.init) ?? value.text
            case .null: changes[key] = .some(nil)
            default: throw ConfigChange.Rejected(fields: [key: "must be a string, a number or null"])
            }
        }
        let change = try ConfigChange.plan(currentText: current, changes: changes)
        if change.changedKeys.isEmpty { return .json(["changed": [], "restarted": []]) }
        try actions.apply(change, configFile: settings.configFile)
        Log.info("admin_config_saved", [("keys", change.changedKeys.joined(separator: ",")), ("restarted", change.units.joined(separator: ","))])
        return .json(["changed": .array(change.changedKeys.map { .string($0) }), "restarted": .array(change.units.map { .string($0) })])
    }

    /// The file as it is; a file that exists but cannot be read is an error, never "empty": a save
    /// planned from nothing would stage a file without every other key.
    func currentFileText() throws -> String {
        guard FileManager.default.fileExists(atPath: settings.configFile) else { return "" }
        guard let text = try? String(contentsOfFile: settings.configFile, encoding: .utf8) else {
            throw APIError.unavailable("Cannot read \(settings.configFile)", code: "config_unreadable")
        }
        return text
    }

    static func tlsUpload(_ request: HTTPRequest) throws -> TLSCertificate {
        let body = try jsonBody(request)
        guard let cert = body["certificate"]?.stringValue, let key = body["key"]?.stringValue else {
            throw APIError.badRequest("certificate and key (PEM text) are required", code: "invalid_parameter")
        }
        return TLSCertificate(certificatePEM: cert, keyPEM: key)
    }

    static func jsonBody(_ request: HTTPRequest) throws -> JSON {
        let bytes = try request.body(limit: 1 << 20)
        guard let json = try? JSON.decode(bytes), json.objectValue != nil else {
            throw APIError.badRequest("The body must be a JSON object", code: "invalid_json")
        }
        return json
    }
}
