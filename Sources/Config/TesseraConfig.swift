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
    /// Varnish's loopback invalidation endpoint (`http://127.0.0.1:6091`); empty when there is no http-cache.
    public var varnishPurgeURL: String
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
    /// Exports: how long one signed download URL is valid (seconds); the job's status hands out fresh ones.
    public var exportURLTTLSeconds: Int = 900
    /// Exports: the largest export file (bytes); an export growing past it fails and leaves no file.
    public var exportMaxBytes: Int = 10 << 30

    static let defaults: [String: String] = [
        "TESSERA_DATABASE_URL": "dbname=tessera",
        "TESSERA_REDIS_URL": "",
        "TESSERA_SECRET_KEY_FILE": "/etc/tessera/secret.key",
        "TESSERA_PUBLIC_URL": "http://localhost:8080",
        "TESSERA_SIGNUP": "invite",
        "TESSERA_WAREHOUSE_URL": "",
        "TESSERA_SQL_STATEMENT_TIMEOUT_MS": "60000",
        "TESSERA_SQL_MAX_ROWS": "200000",
        "TESSERA_SQL_JOB_TIMEOUT_MS": "3600000",
        "TESSERA_WORKER_CONCURRENCY": "2",
        "TESSERA_VARNISH_PURGE_URL": "",
        "TESSERA_TILE_MAX_FEATURES": "20000",
        "TESSERA_TILE_MAX_BYTES": "4194304",
        "TESSERA_MAX_BODY_BYTES": "10485760",
        "TESSERA_THREADS": "16",
        "TESSERA_DB_POOL_SIZE": "8",
        "TESSERA_WAREHOUSE_POOL_SIZE": "16",
        "TESSERA_WAREHOUSE_POOL_RESERVED": "4",
        "TESSERA_TOKEN_MAX_CONCURRENT": "16",
        "TESSERA_TOKEN_STATEMENT_TIMEOUT_MS": "10000",
        "TESSERA_USER_MAX_CONCURRENT": "0",
        "TESSERA_LIMIT_QUEUE_WAIT_MS": "2000",
        "TESSERA_OAUTH_TOKEN_TTL": "3600",
        "TESSERA_SESSION_TTL": "43200",
        "TESSERA_LOG_LEVEL": "info",
        "TESSERA_IMPORT_DIR": "/var/lib/tessera/imports",
        "TESSERA_IMPORT_MAX_BYTES": "5368709120",
        "TESSERA_IMPORT_MAX_UNCOMPRESSED_BYTES": "21474836480",
        "TESSERA_IMPORT_TIMEOUT_S": "7200",
        "TESSERA_IMPORT_MAX_RUNNING": "5",
        "TESSERA_IMPORT_PRIVATE_URL_ALLOWLIST": "",
        "TESSERA_CONNECTION_HOST_ALLOWLIST": "",
        "TESSERA_WORKER_LEASE_S": "30",
        "TESSERA_WORKER_SOFT_STOP_S": "20",
        "TESSERA_BASEMAP_URL": "",
        "TESSERA_BASEMAP_ATTRIBUTION": "",
        "TESSERA_SMTP_URL": "",
        "TESSERA_LDS_CONNECTION": "carto_dw",
        "TESSERA_LDS_QUOTA_GEOCODING": "100000",
        "TESSERA_LDS_QUOTA_ISOLINES": "10000",
        "TESSERA_LDS_QUOTA_ROUTING": "10000",
        "TESSERA_LDS_PROVIDER_TIMEOUT_MS": "10000",
        "TESSERA_BACKUP_DIR": "/var/lib/tessera/backups",
        "TESSERA_BACKUP_KEEP": "7",
        "TESSERA_BACKUP_SCHEDULE": "daily",
        "TESSERA_EXPORT_TTL_S": "86400",
        "TESSERA_EXPORT_URL_TTL_S": "900",
        "TESSERA_EXPORT_MAX_BYTES": "10737418240",
        // Only meaningful to locate the file itself.
        "TESSERA_CONFIG_FILE": "/etc/tessera/tessera.env",
    ]

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
        var problems: [String] = []
        for key in raw.keys.sorted() where key.hasPrefix("TESSERA_") && defaults[key] == nil {
            problems.append("unknown key \(key)")
        }
        func value(_ key: String) -> String { raw[key] ?? defaults[key]! }
        func int(_ key: String, min: Int, max: Int) -> Int {
            guard let n = Int(value(key)), n >= min, n <= max else {
                problems.append("\(key) must be an integer between \(min) and \(max)")
                return Int(defaults[key]!)!
            }
            return n
        }
        let signup = SignupMode(rawValue: value("TESSERA_SIGNUP"))
        if signup == nil { problems.append("TESSERA_SIGNUP must be open, invite or closed") }
        let publicURL = value("TESSERA_PUBLIC_URL").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !(publicURL.hasPrefix("http://") || publicURL.hasPrefix("https://")) {
            problems.append("TESSERA_PUBLIC_URL must start with http:// or https://")
        }
        let redis = value("TESSERA_REDIS_URL")
        if !redis.isEmpty && !(redis.hasPrefix("unix:") || redis.hasPrefix("redis://")) {
            problems.append("TESSERA_REDIS_URL must be unix:/path or redis://host:port")
        }
        let levels = ["debug", "info", "warning", "error"]
        if !levels.contains(value("TESSERA_LOG_LEVEL")) { problems.append("TESSERA_LOG_LEVEL must be one of \(levels)") }
        let importDir = value("TESSERA_IMPORT_DIR")
        if !importDir.hasPrefix("/") { problems.append("TESSERA_IMPORT_DIR must be an absolute path") }
        let allowlist = value("TESSERA_IMPORT_PRIVATE_URL_ALLOWLIST").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let config = TesseraConfig(
            databaseURL: value("TESSERA_DATABASE_URL"),
            redisURL: redis,
            secretKeyFile: value("TESSERA_SECRET_KEY_FILE"),
            publicURL: publicURL,
            signup: signup ?? .invite,
            warehouseURL: value("TESSERA_WAREHOUSE_URL"),
            sqlStatementTimeoutMs: int("TESSERA_SQL_STATEMENT_TIMEOUT_MS", min: 100, max: 86_400_000),
            sqlMaxRows: int("TESSERA_SQL_MAX_ROWS", min: 1, max: 100_000_000),
            sqlJobTimeoutMs: int("TESSERA_SQL_JOB_TIMEOUT_MS", min: 100, max: 7 * 86_400_000),
            workerConcurrency: int("TESSERA_WORKER_CONCURRENCY", min: 1, max: 64),
            varnishPurgeURL: value("TESSERA_VARNISH_PURGE_URL"),
            tileMaxFeatures: int("TESSERA_TILE_MAX_FEATURES", min: 1, max: 10_000_000),
            tileMaxBytes: int("TESSERA_TILE_MAX_BYTES", min: 1024, max: 1 << 30),
            maxBodyBytes: int("TESSERA_MAX_BODY_BYTES", min: 1024, max: 1 << 40),
            threads: int("TESSERA_THREADS", min: 1, max: 1024),
            dbPoolSize: int("TESSERA_DB_POOL_SIZE", min: 1, max: 512),
            warehousePoolSize: int("TESSERA_WAREHOUSE_POOL_SIZE", min: 1, max: 512),
            oauthTokenTTL: int("TESSERA_OAUTH_TOKEN_TTL", min: 60, max: 86_400),
            sessionTTL: int("TESSERA_SESSION_TTL", min: 300, max: 30 * 86_400),
            logLevel: value("TESSERA_LOG_LEVEL"),
            importDir: importDir,
            importMaxBytes: int("TESSERA_IMPORT_MAX_BYTES", min: 1, max: 1 << 44),
            importMaxUncompressedBytes: int("TESSERA_IMPORT_MAX_UNCOMPRESSED_BYTES", min: 1, max: 1 << 46),
            importTimeoutSeconds: int("TESSERA_IMPORT_TIMEOUT_S", min: 1, max: 7 * 86_400),
            importMaxRunning: int("TESSERA_IMPORT_MAX_RUNNING", min: 1, max: 10_000),
            importPrivateURLAllowlist: allowlist,
            workerLeaseSeconds: int("TESSERA_WORKER_LEASE_S", min: 1, max: 86_400),
            workerSoftStopSeconds: int("TESSERA_WORKER_SOFT_STOP_S", min: 0, max: 3600),
            ldsConnection: value("TESSERA_LDS_CONNECTION"),
            ldsQuotaGeocoding: int("TESSERA_LDS_QUOTA_GEOCODING", min: 0, max: Int(Int32.max)),
            ldsQuotaIsolines: int("TESSERA_LDS_QUOTA_ISOLINES", min: 0, max: Int(Int32.max)),
            ldsQuotaRouting: int("TESSERA_LDS_QUOTA_ROUTING", min: 0, max: Int(Int32.max)),
            ldsProviderTimeoutMs: int("TESSERA_LDS_PROVIDER_TIMEOUT_MS", min: 100, max: 600_000),
            source: source)
        var result = config
        result.tokenMaxConcurrent = int("TESSERA_TOKEN_MAX_CONCURRENT", min: 0, max: 10_000)
        result.tokenStatementTimeoutMs = int("TESSERA_TOKEN_STATEMENT_TIMEOUT_MS", min: 100, max: 86_400_000)
        result.userMaxConcurrent = int("TESSERA_USER_MAX_CONCURRENT", min: 0, max: 10_000)
        result.warehousePoolReserved = int("TESSERA_WAREHOUSE_POOL_RESERVED", min: 0, max: 511)
        result.limitQueueWaitMs = int("TESSERA_LIMIT_QUEUE_WAIT_MS", min: 0, max: 60_000)
        result.basemapURL = value("TESSERA_BASEMAP_URL")
        result.basemapAttribution = value("TESSERA_BASEMAP_ATTRIBUTION")
        if !result.basemapURL.isEmpty && !(result.basemapURL.hasPrefix("http://") || result.basemapURL.hasPrefix("https://")) {
            problems.append("TESSERA_BASEMAP_URL must be an http(s) URL")
        }
        result.connectionHostAllowlist = value("TESSERA_CONNECTION_HOST_ALLOWLIST").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for entry in result.connectionHostAllowlist where entry.contains(where: { $0 == "/" || $0 == "@" || $0 == " " }) {
            problems.append("TESSERA_CONNECTION_HOST_ALLOWLIST entries are host names or addresses (socket paths are never allowed): \(entry)")
        }
        result.smtpURL = value("TESSERA_SMTP_URL")
        result.exportTTLSeconds = int("TESSERA_EXPORT_TTL_S", min: 60, max: 30 * 86_400)
        result.exportURLTTLSeconds = int("TESSERA_EXPORT_URL_TTL_S", min: 10, max: 86_400)
        result.exportMaxBytes = int("TESSERA_EXPORT_MAX_BYTES", min: 1024, max: 1 << 44)
        if !result.smtpURL.isEmpty && !result.smtpURL.hasPrefix("smtp://") { problems.append("TESSERA_SMTP_URL must start with smtp://") }
        result.backupDir = value("TESSERA_BACKUP_DIR")
        if !result.backupDir.hasPrefix("/") { problems.append("TESSERA_BACKUP_DIR must be an absolute path") }
        result.backupKeep = int("TESSERA_BACKUP_KEEP", min: 1, max: 10_000)
        result.backupSchedule = value("TESSERA_BACKUP_SCHEDULE")
        if result.backupSchedule.isEmpty || result.backupSchedule.contains(where: { $0.isNewline }) {
            problems.append("TESSERA_BACKUP_SCHEDULE must be a systemd OnCalendar expression")
        }
        if !problems.isEmpty { throw Invalid(problems: problems) }
        return result
    }
}
