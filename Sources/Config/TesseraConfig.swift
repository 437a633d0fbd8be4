import Foundation

/// Every setting Tessera's programs read, loaded once from `/etc/tessera/tessera.env` (or the file named by
/// `TESSERA_CONFIG_FILE` / `--config`) with the process environment taking precedence.
/// Unknown `TESSERA_*` keys are an error, so a typo never silently falls back to a default.
public struct TesseraConfig: Sendable {
    public enum SignupMode: String, Sendable { case open, invite, closed }

    /// libpq conninfo of the metadata database.
    public var databaseURL: String
    /// `unix:/path` or `redis://host:port`; empty disables the cache.
    public var redisURL: String
    /// File holding the hex-encoded master secret (JWT signing and connection-password encryption).
    public var secretKeyFile: String
    /// Absolute base URL clients reach, e.g. `https://maps.example.com`; APIs live under `/api`.
    public var publicURL: String
    public var signup: SignupMode
    /// libpq conninfo for the embedded `carto_dw` warehouse; used by `tessera create-admin`.
    public var warehouseURL: String
    public var sqlStatementTimeoutMs: Int
    public var sqlMaxRows: Int
    /// Per-job statement timeout of SQL batch jobs.
    public var sqlJobTimeoutMs: Int
    /// Jobs each worker process runs at once.
    public var workerConcurrency: Int
    /// Varnish invalidation endpoints, comma-separated (`http://127.0.0.1:6091`; one per cache node when
    /// scaled out); empty when there is no http-cache.
    public var varnishPurgeURL: String
    public var varnishPurgeURLs: [String] { ConfigKey.entries(varnishPurgeURL) }
    /// Per-tile budgets: features beyond them are dropped deterministically.
    public var tileMaxFeatures: Int
    public var tileMaxBytes: Int
    public var maxBodyBytes: Int
    public var threads: Int
    public var dbPoolSize: Int
    public var warehousePoolSize: Int
    /// Per-principal limits the warehouse pool applies (0 = no cap of its own).
    public var tokenMaxConcurrent: Int = 16
    public var tokenStatementTimeoutMs: Int = 10_000
    public var userMaxConcurrent: Int = 0
    /// Connections of each warehouse pool API tokens together cannot take, so users always get one.
    public var warehousePoolReserved: Int = 4
    /// How long a request past a concurrency cap waits before it is 429.
    public var limitQueueWaitMs: Int = 2000
    public var oauthTokenTTL: Int
    public var sessionTTL: Int
    public var logLevel: String
    /// Imports: uploads and per-job work directories live here (shared by import-api and import-worker).
    public var importDir: String
    /// Largest upload or download accepted (bytes); larger is 413 / a failed job.
    public var importMaxBytes: Int
    /// Cap on the declared uncompressed size of an archive's contents.
    public var importMaxUncompressedBytes: Int
    /// Wall-clock limit of one import attempt (download + load), seconds.
    public var importTimeoutSeconds: Int
    /// Imports queued or running per organisation; one more is 429.
    public var importMaxRunning: Int
    /// TEST ONLY: `ip:port` endpoints exempt from the private-address refusal of URL imports
    /// (comma-separated; empty, the default, exempts nothing).
    public var importPrivateURLAllowlist: [String]
    /// Hosts (`name`, `address` or `host:port`, IPv6 as `[::1]:5432`) that user-created connections may reach
    /// although they are this machine (loopback, its own addresses). Empty (default): none.
    public var connectionHostAllowlist: [String] = []
    /// TESSERA_NODE_NAME, or the host name: the queue hands a job pinned to a node (an uploaded
    /// file's import) only to that node's workers.
    public var nodeName: String = TesseraConfig.hostName()
    /// TESSERA_IMPORT_DIR_SHARED: the import directory is the same storage on every VM, so uploads
    /// are not pinned to the node that received them.
    public var importDirShared = false
    /// Lease of a claimed job in seconds (heartbeats renew it; an expired lease is rescued).
    public var workerLeaseSeconds: Int
    /// After SIGTERM, how long running jobs may finish before they are released for a rerun (keep it
    /// below systemd's TimeoutStopSec).
    public var workerSoftStopSeconds: Int
    /// LDS: the connection of each organisation that holds the local gazetteer (and road graph).
    public var ldsConnection: String
    /// LDS: monthly requests per organisation and service unless an organisation has its own quota.
    public var ldsQuotaGeocoding: Int
    public var ldsQuotaIsolines: Int
    public var ldsQuotaRouting: Int
    /// LDS: how long an external provider (Nominatim, OSRM, Valhalla) may take before the request is 504.
    public var ldsProviderTimeoutMs: Int
    /// Where configuration came from, for messages.
    public var source: String
    /// External basemap for the web apps: a raster tile template (`…/{z}/{x}/{y}.png`) or a style URL;
    /// empty (default) = Tessera's own offline world layer.
    public var basemapURL: String = ""
    /// The attribution the licence of TESSERA_BASEMAP_URL's tiles requires (shown on every map using it).
    public var basemapAttribution: String = ""
    /// `smtp://[user:pass@]host[:port]` for password reset emails; empty = no email (admins create reset links).
    public var smtpURL: String = ""
    /// Backups (`tessera backup` without --out, and tessera-backup.timer): where archives go, how many
    /// the timer keeps, and the timer's systemd OnCalendar schedule.
    public var backupDir: String = "/var/lib/tessera/backups"
    public var backupKeep: Int = 7
    public var backupSchedule: String = "daily"
    /// Exports: how long a finished export file is kept (seconds) before the sql-worker's pruner deletes it.
    public var exportTTLSeconds: Int = 86_400
    /// How long a workflow's unused intermediate node results are kept before the sql-worker drops them.
    public var workflowIntermediateTTLSeconds: Int = 604_800
    /// Exports: how long one signed download URL is valid (seconds); the job's status hands out fresh ones.
    public var exportURLTTLSeconds: Int = 900
    /// Exports: the largest export file (bytes); an export growing past it fails and leaves no file.
    public var exportMaxBytes: Int = 10 << 30
    /// Where nginx serves the admin console (`host:port`, loopback-only by default); tessera-setup renders it.
    public var adminListen: [String] = ["127.0.0.1:8800"]
    /// ACME (the console's TLS screen, through certbot): directory URL, contact e-mail(s) and the router's name(s).
    public var acmeServer: String = "https://acme-v02.api.letsencrypt.org/directory"
    public var acmeEmail: [String] = []
    public var acmeDomains: [String] = []
    /// `varnishstat -n` of the cache whose hit ratio the cdn-invalidator exports; empty = the default instance.
    public var varnishWorkdir: String = ""

    /// Defaults come from the one table of keys (`ConfigKeys`).
    static let defaults: [String: String] = Dictionary(uniqueKeysWithValues: ConfigKeys.all.map { ($0.name, $0.defaultValue) })

    public static var knownKeys: Set<String> { Set(defaults.keys) }

    public struct Invalid: Error, CustomStringConvertible {
        public let problems: [String]
        public var description: String { problems.joined(separator: "; ") }
    }

    /// Loads the file (missing is fine when `required` is false) and overlays the environment.
    public static func load(file: String? = nil,
                            environment: [String: String] = ProcessInfo.processInfo.environment,
                            requireFile: Bool = false) throws -> TesseraConfig {
        let path = file ?? environment["TESSERA_CONFIG_FILE"] ?? defaults["TESSERA_CONFIG_FILE"]!
        var values: [String: String] = [:]
        var source = "environment"
        if FileManager.default.fileExists(atPath: path) {
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw Invalid(problems: ["cannot read \(path): \(error.localizedDescription)"])
            }
            do { values = try EnvFile.parse(text) } catch {
                throw Invalid(problems: ["\(path): \(error)"])
            }
            source = path
        } else if requireFile {
            throw Invalid(problems: ["config file \(path) not found"])
        }
        for (key, value) in environment where key.hasPrefix("TESSERA_") { values[key] = value }
        return try from(values, source: source)
    }

    /// Builds a config from `TESSERA_*` values, reporting every problem at once.
    public static func from(_ raw: [String: String], source: String = "values") throws -> TesseraConfig {
        // Each key's own check lives in its row of ConfigKeys; a value that fails it reads as its default
        // below, and the error lists every problem at once.
        let found = ConfigKeys.problems(raw)
        let problems = found.map(\.problem)
        let bad = Set(found.map(\.key))
        func value(_ key: String) -> String { bad.contains(key) ? defaults[key]! : raw[key] ?? defaults[key]! }
        func int(_ key: String) -> Int { Int(value(key))! }
        func list(_ key: String) -> [String] { ConfigKey.entries(value(key)) }
        let signup = SignupMode(rawValue: value("TESSERA_SIGNUP"))
        let publicURL = value("TESSERA_PUBLIC_URL").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let redis = value("TESSERA_REDIS_URL")
        let importDir = value("TESSERA_IMPORT_DIR")
        let allowlist = list("TESSERA_IMPORT_PRIVATE_URL_ALLOWLIST")
        let config = TesseraConfig(
            databaseURL: value("TESSERA_DATABASE_URL"),
            redisURL: redis,
            secretKeyFile: value("TESSERA_SECRET_KEY_FILE"),
            publicURL: publicURL,
            signup: signup ?? .invite,
            warehouseURL: value("TESSERA_WAREHOUSE_URL"),
            sqlStatementTimeoutMs: int("TESSERA_SQL_STATEMENT_TIMEOUT_MS"),
            sqlMaxRows: int("TESSERA_SQL_MAX_ROWS"),
            sqlJobTimeoutMs: int("TESSERA_SQL_JOB_TIMEOUT_MS"),
            workerConcurrency: int("TESSERA_WORKER_CONCURRENCY"),
            varnishPurgeURL: value("TESSERA_VARNISH_PURGE_URL"),
            tileMaxFeatures: int("TESSERA_TILE_MAX_FEATURES"),
            tileMaxBytes: int("TESSERA_TILE_MAX_BYTES"),
            maxBodyBytes: int("TESSERA_MAX_BODY_BYTES"),
            threads: int("TESSERA_THREADS"),
            dbPoolSize: int("TESSERA_DB_POOL_SIZE"),
            warehousePoolSize: int("TESSERA_WAREHOUSE_POOL_SIZE"),
            oauthTokenTTL: int("TESSERA_OAUTH_TOKEN_TTL"),
            sessionTTL: int("TESSERA_SESSION_TTL"),
            logLevel: value("TESSERA_LOG_LEVEL"),
            importDir: importDir,
            importMaxBytes: int("TESSERA_IMPORT_MAX_BYTES"),
            importMaxUncompressedBytes: int("TESSERA_IMPORT_MAX_UNCOMPRESSED_BYTES"),
            importTimeoutSeconds: int("TESSERA_IMPORT_TIMEOUT_S"),
            importMaxRunning: int("TESSERA_IMPORT_MAX_RUNNING"),
            importPrivateURLAllowlist: allowlist,
            workerLeaseSeconds: int("TESSERA_WORKER_LEASE_S"),
            workerSoftStopSeconds: int("TESSERA_WORKER_SOFT_STOP_S"),
            ldsConnection: value("TESSERA_LDS_CONNECTION"),
            ldsQuotaGeocoding: int("TESSERA_LDS_QUOTA_GEOCODING"),
            ldsQuotaIsolines: int("TESSERA_LDS_QUOTA_ISOLINES"),
            ldsQuotaRouting: int("TESSERA_LDS_QUOTA_ROUTING"),
            ldsProviderTimeoutMs: int("TESSERA_LDS_PROVIDER_TIMEOUT_MS"),
            source: source)
        var result = config
        result.tokenMaxConcurrent = int("TESSERA_TOKEN_MAX_CONCURRENT")
        result.tokenStatementTimeoutMs = int("TESSERA_TOKEN_STATEMENT_TIMEOUT_MS")
        result.userMaxConcurrent = int("TESSERA_USER_MAX_CONCURRENT")
        result.warehousePoolReserved = int("TESSERA_WAREHOUSE_POOL_RESERVED")
        result.limitQueueWaitMs = int("TESSERA_LIMIT_QUEUE_WAIT_MS")
        result.basemapURL = value("TESSERA_BASEMAP_URL")
        result.basemapAttribution = value("TESSERA_BASEMAP_ATTRIBUTION")
        result.connectionHostAllowlist = list("TESSERA_CONNECTION_HOST_ALLOWLIST")
        if !value("TESSERA_NODE_NAME").isEmpty { result.nodeName = value("TESSERA_NODE_NAME") }
        result.importDirShared = value("TESSERA_IMPORT_DIR_SHARED") == "true"
        result.smtpURL = value("TESSERA_SMTP_URL")
        result.exportTTLSeconds = int("TESSERA_EXPORT_TTL_S")
        result.workflowIntermediateTTLSeconds = int("TESSERA_WORKFLOW_INTERMEDIATE_TTL_S")
        result.exportURLTTLSeconds = int("TESSERA_EXPORT_URL_TTL_S")
        result.exportMaxBytes = int("TESSERA_EXPORT_MAX_BYTES")
        result.backupDir = value("TESSERA_BACKUP_DIR")
        result.backupKeep = int("TESSERA_BACKUP_KEEP")
        result.backupSchedule = value("TESSERA_BACKUP_SCHEDULE")
        result.adminListen = list("TESSERA_ADMIN_LISTEN")
        result.acmeServer = value("TESSERA_ACME_SERVER")
        result.acmeEmail = list("TESSERA_ACME_EMAIL")
        result.acmeDomains = list("TESSERA_ACME_DOMAIN")
        result.varnishWorkdir = value("TESSERA_VARNISH_WORKDIR")
        if !problems.isEmpty { throw Invalid(problems: problems) }
        return result
    }
}

extension TesseraConfig {
    /// gethostname(2) as is: ProcessInfo's hostName may resolve it through DNS, and both sides of a
    /// node (its import-api and import-worker) must see the same plain name.
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(cString: buffer)
    }
}
