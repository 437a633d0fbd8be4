import Foundation

/// The one table of configuration keys (design 4a). Adding a setting = adding its row here; a unit
/// test fails when the code names a `TESSERA_*` key that is not in it or the README's table is stale.
public enum ConfigKeys {
    static let apis = ["tessera-workspace-api", "tessera-maps-api", "tessera-import-api", "tessera-lds-api"]
    static let workers = ["tessera-sql-worker", "tessera-import-worker", "tessera-cdn-invalidator", "tessera-workspace-subscriber"]
    /// Every program that loads `Services` (the platform plumbing), i.e. all of them.
    public static let programs = apis + workers
    static let imports = ["tessera-import-api", "tessera-import-worker"]
    static let lds = ["tessera-lds-api", "tessera-sql-worker"]

    public static let all: [ConfigKey] = [
        ConfigKey("TESSERA_DATABASE_URL", "dbname=tessera", .text, units: programs, secret: true,
                  "libpq conninfo of the metadata database"),
        ConfigKey("TESSERA_REDIS_URL", "", .url(schemes: ["unix", "redis"], optional: true), units: programs, secret: true,
                  "cache: `unix:/path` or `redis://host:port`; with a password (`requirepass`, or a Redis 6 ACL user) `redis://:PASSWORD@host:port`, `redis://USER:PASSWORD@host:port` or `unix:/path?password=PASSWORD[&user=USER]` (percent-encode `@ : / ? & %`); sent with AUTH on every connect, a wrong one is logged as `redis_auth_failed`; empty = no cache (every API works without it)"),
        ConfigKey("TESSERA_SECRET_KEY_FILE", "/etc/tessera/secret.key", .absolutePath, units: programs,
                  "hex master secret (token signing, connection-password encryption); `tessera init-secret PATH`"),
        ConfigKey("TESSERA_PUBLIC_URL", "http://localhost:8080", .url(schemes: ["http", "https"], optional: false), units: programs,
                  "base URL clients reach; the API is under `/api`"),
        ConfigKey("TESSERA_SIGNUP", "invite", .choice(["open", "invite", "closed"]), units: ["tessera-workspace-api"],
                  "who may create an account: `open`, `invite` or `closed`"),
        ConfigKey("TESSERA_WAREHOUSE_URL", "", .text, units: programs, secret: true,
                  "conninfo of the embedded warehouse (its own role, never the metadata role; the password inline or in a `passfile=`); `create-admin` makes it the first organisation's `carto_dw`, `tessera warehouse-register` rewrites it"),
        ConfigKey("TESSERA_CONNECTION_HOST_ALLOWLIST", "", .list(forbidden: "/@ "), units: programs,
                  "comma-separated `host`, `address` or `host:port` (IPv6 `[::1]:5432`) that user connections may reach although they are this machine; socket paths never"),
        ConfigKey("TESSERA_SQL_STATEMENT_TIMEOUT_MS", "60000", .integer(min: 100, max: 86_400_000), units: programs,
                  "statement timeout of users; exceeding it answers 429"),
        ConfigKey("TESSERA_SQL_MAX_ROWS", "200000", .integer(min: 1, max: 100_000_000), units: ["tessera-maps-api", "tessera-sql-worker"],
                  "row cap of the SQL API's JSON format (streamed formats are uncapped)"),
        ConfigKey("TESSERA_SQL_JOB_TIMEOUT_MS", "3600000", .integer(min: 100, max: 7 * 86_400_000), units: ["tessera-maps-api", "tessera-sql-worker"],
                  "statement timeout of one SQL batch job or export"),
        ConfigKey("TESSERA_WORKER_CONCURRENCY", "2", .integer(min: 1, max: 64), units: workers,
                  "jobs each worker process runs at once"),
        ConfigKey("TESSERA_WORKER_LEASE_S", "30", .integer(min: 1, max: 86_400), units: workers,
                  "lease of a claimed job (heartbeats renew it; an expired lease is rescued)"),
        ConfigKey("TESSERA_WORKER_SOFT_STOP_S", "20", .integer(min: 0, max: 3600), units: workers,
                  "after SIGTERM, how long a worker lets running jobs finish before releasing them (keep below systemd's `TimeoutStopSec`)"),
        ConfigKey("TESSERA_VARNISH_PURGE_URL", "", .urlList(schemes: ["http"]), units: ["tessera-cdn-invalidator"],
                  "Varnish invalidation endpoints (`http://127.0.0.1:6091`), comma-separated: every cache node (one per app VM when scaled out, the same list on each); empty when there is no http-cache"),
        ConfigKey("TESSERA_VARNISH_PURGE_LISTEN", "127.0.0.1:6091", .text, units: ["varnish"],
                  "`address:port` this machine's Varnish takes invalidations on (scaled out: its private address, so the other app VMs reach it)"),
        ConfigKey("TESSERA_VARNISH_INVALIDATORS", "", .list(forbidden: "\"; @{}"), units: ["varnish"],
                  "addresses besides loopback (`10.0.0.12`, or a network `10.0.0.0/24`) whose cdn-invalidator may purge this machine's Varnish: the other app VMs when scaled out"),
        ConfigKey("TESSERA_TILE_MAX_FEATURES", "20000", .integer(min: 1, max: 10_000_000), units: ["tessera-maps-api"],
                  "features per tile; beyond it features are dropped deterministically"),
        ConfigKey("TESSERA_TILE_MAX_BYTES", "4194304", .integer(min: 1024, max: 1 << 30), units: ["tessera-maps-api"],
                  "bytes per tile; beyond it features are dropped deterministically"),
        ConfigKey("TESSERA_MAX_BODY_BYTES", "10485760", .integer(min: 1024, max: 1 << 40), units: apis,
                  "request body limit of the JSON APIs"),
        ConfigKey("TESSERA_THREADS", "16", .integer(min: 1, max: 1024), units: apis,
                  "request threads of each API"),
        ConfigKey("TESSERA_DB_POOL_SIZE", "8", .integer(min: 1, max: 512), units: programs,
                  "metadata database connections of each program"),
        ConfigKey("TESSERA_WAREHOUSE_POOL_SIZE", "16", .integer(min: 1, max: 512), units: programs,
                  "connections of each warehouse pool"),
        ConfigKey("TESSERA_WAREHOUSE_POOL_RESERVED", "4", .integer(min: 0, max: 511), units: programs,
                  "connections of each warehouse pool that API tokens (public maps, apps) together cannot take, so signed-in users always get one"),
        ConfigKey("TESSERA_TOKEN_MAX_CONCURRENT", "16", .integer(min: 0, max: 10_000), units: programs,
                  "concurrent warehouse statements per API token (0 = no cap of its own)"),
        ConfigKey("TESSERA_TOKEN_STATEMENT_TIMEOUT_MS", "10000", .integer(min: 100, max: 86_400_000), units: programs,
                  "statement timeout of API tokens (users get `TESSERA_SQL_STATEMENT_TIMEOUT_MS`); exceeding it answers 429"),
        ConfigKey("TESSERA_USER_MAX_CONCURRENT", "0", .integer(min: 0, max: 10_000), units: programs,
                  "concurrent warehouse statements per user (0 = only the pool bounds them)"),
        ConfigKey("TESSERA_LIMIT_QUEUE_WAIT_MS", "2000", .integer(min: 0, max: 60_000), units: programs,
                  "how long a request past a cap waits in the queue before it answers 429 with `Retry-After`"),
        ConfigKey("TESSERA_OAUTH_TOKEN_TTL", "3600", .integer(min: 60, max: 86_400), units: ["tessera-workspace-api"],
                  "lifetime of an OAuth access token, seconds"),
        ConfigKey("TESSERA_SESSION_TTL", "43200", .integer(min: 300, max: 30 * 86_400), units: ["tessera-workspace-api"],
                  "lifetime of a browser session, seconds"),
        ConfigKey("TESSERA_LOG_LEVEL", "info", .choice(["debug", "info", "warning", "error"]), units: programs,
                  "least severe log line written to the journal"),
        ConfigKey("TESSERA_IMPORT_DIR", "/var/lib/tessera/imports", .absolutePath, units: imports + ["tessera-maps-api", "tessera-sql-worker"],
                  "uploads, per-job work directories and export files (shared by the import-api, import-worker and sql-worker)"),
        ConfigKey("TESSERA_NODE_NAME", "", .entries(pattern: "[A-Za-z0-9][A-Za-z0-9._-]{0,62}", words: "a host-like name", optional: true), units: imports,
                  "this VM's name in the job queue: an uploaded file's import runs on the node that stored it in `TESSERA_IMPORT_DIR` (on any node when `TESSERA_IMPORT_DIR_SHARED=true`); empty = the host name (set it when two VMs share a host name)"),
        ConfigKey("TESSERA_IMPORT_DIR_SHARED", "false", .choice(["true", "false"]), units: ["tessera-import-api"],
                  "`true` when `TESSERA_IMPORT_DIR` is storage every app VM mounts (NFS): an upload's import may then run on any VM instead of the one that received it"),
        ConfigKey("TESSERA_IMPORT_MAX_BYTES", "5368709120", .integer(min: 1, max: 1 << 44), units: imports + ["tessera-sql-worker"],
                  "largest upload or download accepted; larger is 413 or a failed job"),
        ConfigKey("TESSERA_IMPORT_MAX_UNCOMPRESSED_BYTES", "21474836480", .integer(min: 1, max: 1 << 46), units: imports + ["tessera-sql-worker"],
                  "cap on the declared uncompressed size of an archive's contents"),
        ConfigKey("TESSERA_IMPORT_TIMEOUT_S", "7200", .integer(min: 1, max: 7 * 86_400), units: imports + ["tessera-sql-worker"],
                  "wall-clock limit of one import attempt (download + load)"),
        ConfigKey("TESSERA_IMPORT_MAX_RUNNING", "5", .integer(min: 1, max: 10_000), units: imports,
                  "imports queued or running per organisation; one more is 429"),
        ConfigKey("TESSERA_IMPORT_PRIVATE_URL_ALLOWLIST", "", .list(forbidden: "/@ "), units: imports + ["tessera-sql-worker"],
                  "exact `ip:port` (or `[ip6]:port`) endpoints, comma-separated, that URL imports may reach although loopback or private (an internal file server); everything else private stays refused by the SSRF guard"),
        ConfigKey("TESSERA_BASEMAP_URL", "", .url(schemes: ["http", "https"], optional: true), units: ["tessera-workspace-api"],
                  "an XYZ raster template (`{z}/{x}/{y}`) or a style URL: the basemap picker offers it, and the explorer and SQL previews draw it; empty = the offline basemap"),
        ConfigKey("TESSERA_BASEMAP_ATTRIBUTION", "", .text, units: ["tessera-workspace-api"],
                  "the attribution the licence of `TESSERA_BASEMAP_URL`'s tiles requires, shown on maps using it"),
        ConfigKey("TESSERA_SMTP_URL", "", .url(schemes: ["smtp"], optional: true), units: ["tessera-workspace-api"], secret: true,
                  "`smtp://[user:pass@]host[:port][?from=addr]` for password reset emails (sent with curl; STARTTLS required when credentials are given); empty = no email"),
        ConfigKey("TESSERA_LDS_CONNECTION", "carto_dw", .text, units: lds,
                  "the connection (of each organisation) holding the local gazetteer and road graph"),
        ConfigKey("TESSERA_LDS_QUOTA_GEOCODING", "100000", .integer(min: 0, max: Int(Int32.max)), units: lds,
                  "default monthly geocoding quota per organisation (`tessera lds quota set` overrides)"),
        ConfigKey("TESSERA_LDS_QUOTA_ISOLINES", "10000", .integer(min: 0, max: Int(Int32.max)), units: lds,
                  "default monthly isoline quota per organisation"),
        ConfigKey("TESSERA_LDS_QUOTA_ROUTING", "10000", .integer(min: 0, max: Int(Int32.max)), units: lds,
                  "default monthly routing quota per organisation"),
        ConfigKey("TESSERA_LDS_PROVIDER_TIMEOUT_MS", "10000", .integer(min: 100, max: 600_000), units: lds,
                  "external provider deadline; past it the request is 504"),
        ConfigKey("TESSERA_BACKUP_DIR", "/var/lib/tessera/backups", .absolutePath, units: [],
                  "where `tessera backup` (without `--out`) and the timer write archives"),
        ConfigKey("TESSERA_BACKUP_KEEP", "7", .integer(min: 1, max: 10_000), units: [],
                  "archives kept there (older ones are removed after each backup)"),
        ConfigKey("TESSERA_BACKUP_SCHEDULE", "daily", .calendar, units: ["tessera-backup.timer"],
                  "`tessera-backup.timer`'s `OnCalendar` (applied by `/usr/lib/tessera/tessera-backup-schedule`)"),
        ConfigKey("TESSERA_EXPORT_TTL_S", "86400", .integer(min: 60, max: 30 * 86_400), units: ["tessera-sql-worker"],
                  "how long a finished export file is kept; the sql-worker's pruner deletes it after that"),
        ConfigKey("TESSERA_WORKFLOW_INTERMEDIATE_TTL_S", "604800", .integer(min: 0, max: 365 * 86_400), units: ["tessera-sql-worker"],
                  "how long a workflow node result no run uses any more is kept in the workflow's warehouse schema before the sql-worker drops it (0: at the end of the next run)"),
        ConfigKey("TESSERA_EXPORT_URL_TTL_S", "900", .integer(min: 10, max: 86_400), units: ["tessera-maps-api"],
                  "validity of one signed export download URL (the job's status hands out fresh ones)"),
        ConfigKey("TESSERA_EXPORT_MAX_BYTES", "10737418240", .integer(min: 1024, max: 1 << 44), units: ["tessera-sql-worker"],
                  "largest export file; an export growing past it fails and leaves no file"),
        ConfigKey("TESSERA_ADMIN_LISTEN", "127.0.0.1:8800", .list(forbidden: "/@ "), units: ["nginx"],
                  "address(es) `host:port` where nginx serves the admin console over HTTPS (loopback only by default; `0.0.0.0:8800` opens it)"),
        ConfigKey("TESSERA_ACME_SERVER", "https://acme-v02.api.letsencrypt.org/directory", .url(schemes: ["https"], optional: false), units: [],
                  "ACME directory URL the console's TLS screen asks for a certificate (certbot `--server`); renewals keep the one used"),
        ConfigKey("TESSERA_ACME_EMAIL", "", .entries(pattern: "[^@\\s,/]+@[^@\\s,/]+\\.[^@\\s,/]+", words: "comma-separated e-mail addresses", optional: true), units: [],
                  "ACME account contact (expiry and revocation notices); required to obtain a certificate"),
        ConfigKey("TESSERA_ACME_DOMAIN", "", .entries(pattern: "(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9]",
                                                       words: "comma-separated DNS names (no wildcard, no address)", optional: true), units: [],
                  "name(s) of the router's certificate from ACME; each must resolve to this machine, whose port 80 answers the HTTP-01 challenge (`/.well-known/acme-challenge/`)"),
        ConfigKey("TESSERA_VARNISH_WORKDIR", "", .text, units: ["tessera-cdn-invalidator"],
                  "Varnish instance the cdn-invalidator reads hit/miss counters from (`varnishstat -n`); empty = Varnish's default instance"),
        ConfigKey("TESSERA_CONFIG_FILE", "/etc/tessera/tessera.env", .absolutePath, units: [],
                  "the configuration file itself (set in the environment only)"),
    ]

    private static let byName: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    public static func named(_ name: String) -> ConfigKey? { byName[name] }

    /// Every problem of a set of values: unknown `TESSERA_*` keys first, then each known key in table order.
    public static func problems(_ raw: [String: String]) -> [(key: String, problem: String)] {
        var found: [(key: String, problem: String)] = []
        for key in raw.keys.sorted() where key.hasPrefix("TESSERA_") && byName[key] == nil {
            found.append((key, "unknown key \(key)"))
        }
        for key in all {
            if let value = raw[key.name], let problem = key.problem(value) { found.append((key.name, problem)) }
        }
        return found
    }

    /// The programs and units a change from `old` to `new` needs restarted, in table order.
    public static func affectedUnits(old: [String: String], new: [String: String]) -> [String] {
        var units: [String] = []
        for key in all where (old[key.name] ?? key.defaultValue) != (new[key.name] ?? key.defaultValue) {
            for unit in key.units where !units.contains(unit) { units.append(unit) }
        }
        return units
    }

    /// The README's configuration table (`tessera config-docs`).
    public static func markdown() -> String {
        var lines = ["| key | default | accepts | meaning | restarts |", "|---|---|---|---|---|"]
        for key in all {
            let def = key.defaultValue.isEmpty ? "empty" : "`\(key.defaultValue)`"
            let units = key.units.isEmpty ? "—" : key.units == programs ? "all programs"
                : key.units.map { $0.replacingOccurrences(of: "tessera-", with: "") }.joined(separator: ", ")
            lines.append("| `\(key.name)` | \(def) | \(key.rule.replacingOccurrences(of: "|", with: "\\|")) | \(key.meaning) | \(units) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
