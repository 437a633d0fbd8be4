// swift-tools-version:6.0
// Dependency direction: C system libraries -> wrappers -> plumbing -> features -> executables.
import PackageDescription

let package = Package(
    name: "Tessera",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tessera", targets: ["tessera"]),
        .executable(name: "tessera-workspace-api", targets: ["tessera-workspace-api"]),
        .executable(name: "tessera-maps-api", targets: ["tessera-maps-api"]),
        .executable(name: "tessera-sql-worker", targets: ["tessera-sql-worker"]),
        .executable(name: "tessera-cdn-invalidator", targets: ["tessera-cdn-invalidator"]),
        .executable(name: "tessera-import-api", targets: ["tessera-import-api"]),
        .executable(name: "tessera-import-worker", targets: ["tessera-import-worker"]),
        .executable(name: "tessera-workspace-subscriber", targets: ["tessera-workspace-subscriber"]),
        .executable(name: "tessera-lds-api", targets: ["tessera-lds-api"]),
        .executable(name: "tessera-admin", targets: ["tessera-admin"]),
    ],
    targets: [
        // C system libraries (Debian -dev packages).
        .systemLibrary(name: "CFastCGI", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        // fork + exec with only async-signal-safe calls between them (Swift cannot promise that).
        .target(name: "CSpawn"),

        // Thin wrappers: one owner class per C handle, one error funnel per library.
        .target(name: "Postgres", dependencies: ["CLibPQ", "SQLKit", "Observability"]),
        .target(name: "Redis", dependencies: ["CHiredis"]),
        .target(name: "CryptoSupport", dependencies: ["COpenSSL"]),
        .target(name: "Spawn", dependencies: ["CSpawn"]),

        // Plumbing: no C imports. SQLKit (SQL as a value, identifier quoting, qualified names) is pure and
        // depends on nothing, so even the libpq wrapper can take its values.
        .target(name: "SQLKit"),
        .target(name: "Observability"),
        .target(name: "Config"),
        .target(name: "HTTPKit", dependencies: ["Observability", "SQLKit"]),
        .target(name: "FastCGI", dependencies: ["CFastCGI", "HTTPKit", "SQLKit", "Observability"]),
        .target(name: "Metadata", dependencies: ["Postgres", "Observability"], resources: [.copy("migrations")]),
        .target(name: "Jobs", dependencies: ["Postgres", "SQLKit", "HTTPKit", "Observability"]),
        // The SSRF guard and the guarded POST: every outbound URL a user names goes through it.
        .target(name: "OutboundHTTP", dependencies: ["Spawn"]),
        .target(name: "Platform", dependencies: ["Postgres", "SQLKit", "Redis", "CryptoSupport", "HTTPKit", "Config", "Metadata", "Jobs", "Observability"]),

        // Features: never import FastCGI or a C module.
        .target(name: "WorkspaceAPI", dependencies: ["Platform", "Workflows", "SQLKit", "HTTPKit", "Postgres", "CryptoSupport", "Observability"]),
        .target(name: "SQLAPI", dependencies: ["Platform", "SQLKit", "HTTPKit", "Postgres", "Jobs", "Observability", "CryptoSupport", "MapsAPI"]),
        // The sql-worker's export writer: only the worker runs GDAL, so only its package depends on gdal-bin.
        .target(name: "Exports", dependencies: ["SQLAPI", "Platform", "HTTPKit", "Jobs", "Observability", "Spawn"]),
        .target(name: "MapsAPI", dependencies: ["Platform", "SQLKit", "HTTPKit", "Postgres", "CryptoSupport", "Observability", "Jobs"],
                resources: [.copy("warehouse")]),
        .target(name: "ImportsAPI", dependencies: ["Platform", "SQLKit", "HTTPKit", "Postgres", "Jobs", "Config", "Observability", "Spawn", "OutboundHTTP", "Workflows"]),

        .target(name: "LDSAPI", dependencies: ["Platform", "SQLKit", "HTTPKit", "Postgres", "CryptoSupport", "Jobs", "Config", "Observability", "Spawn", "Workflows"],
                resources: [.copy("warehouse")]),

        // Workflows: the component table, the compiler (pure SQL values), the runner and the scheduler.
        .target(name: "Workflows", dependencies: ["Platform", "SQLKit", "HTTPKit", "Postgres", "Jobs", "CryptoSupport", "Observability", "OutboundHTTP"]),

        // Backup and restore: pg_dump/pg_restore/tar through the one child-process runner (Spawn).
        .target(name: "Backup", dependencies: ["Postgres", "CryptoSupport", "Metadata", "Spawn"]),

        // The admin console (kots): status, configuration from the one table of keys, backups, support bundle.
        .target(name: "AdminConsole", dependencies: ["Config", "HTTPKit", "Platform", "Postgres", "Redis", "CryptoSupport", "Spawn", "Observability"]),

        .target(name: "CacheInvalidator", dependencies: ["Platform", "HTTPKit", "Jobs", "Observability", "Spawn"]),
        .target(name: "WorkspaceSubscriber", dependencies: ["Platform", "HTTPKit", "Jobs", "Postgres", "Observability"]),

        // Executables: args -> config -> wiring -> serve.
        .executableTarget(name: "tessera", dependencies: ["Platform", "Metadata", "Config", "Postgres", "CryptoSupport", "MapsAPI", "Jobs", "LDSAPI",
                                                         "Backup", "AdminConsole"]),
        .executableTarget(name: "tessera-workspace-api", dependencies: ["FastCGI", "WorkspaceAPI", "Platform", "Config"]),
        .executableTarget(name: "tessera-cdn-invalidator", dependencies: ["CacheInvalidator", "Jobs", "Platform", "Config", "Observability"]),
        .executableTarget(name: "tessera-sql-worker", dependencies: ["Jobs", "SQLAPI", "Exports", "LDSAPI", "ImportsAPI", "MapsAPI", "Workflows", "WorkspaceAPI", "Platform", "Config", "Observability"]),
        .executableTarget(name: "tessera-import-api", dependencies: ["FastCGI", "ImportsAPI", "Platform", "Config"]),
        .executableTarget(name: "tessera-import-worker", dependencies: ["Jobs", "ImportsAPI", "Platform", "Config", "Observability"]),
        .executableTarget(name: "tessera-workspace-subscriber", dependencies: ["Jobs", "WorkspaceSubscriber", "Platform"]),
        .executableTarget(name: "tessera-lds-api", dependencies: ["FastCGI", "LDSAPI", "Platform", "Config"]),
        .executableTarget(name: "tessera-admin", dependencies: ["FastCGI", "AdminConsole", "Backup", "Config", "HTTPKit"]),
        .executableTarget(name: "tessera-maps-api", dependencies: ["FastCGI", "SQLAPI", "MapsAPI", "Platform", "Config"]),

        .testTarget(name: "UnitTests", dependencies: ["SQLKit", "HTTPKit", "Config", "CryptoSupport", "Platform", "SQLAPI", "MapsAPI", "Postgres", "ImportsAPI", "LDSAPI", "Backup", "Exports", "Workflows", "WorkspaceAPI", "AdminConsole", "OutboundHTTP", "CacheInvalidator", "Redis"]),
        .testTarget(name: "IntegrationTests", dependencies: ["SQLKit", "Postgres", "Metadata", "Platform", "Redis", "Jobs", "HTTPKit", "WorkspaceSubscriber", "Spawn", "Config", "LDSAPI"]),
    ]
)
