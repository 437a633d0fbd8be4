import Config
import Foundation
import Observability
import Postgres

/// What every API program shares, built once from its config and passed down (no globals).
public final class Services: Sendable {
    public let config: TesseraConfig
    public let metadata: PGPool
    public let cache: Cache
    public let secrets: Secrets
    public let auth: Authenticator
    public let warehouses: Warehouses

    public init(config: TesseraConfig) throws {
        self.config = config
        Log.minimumLevel = ["debug": .debug, "info": .info, "warning": .warning, "error": .error][config.logLevel] ?? .info
        secrets = try Secrets.load(path: config.secretKeyFile)
        metadata = PGPool(conninfo: config.databaseURL, size: config.dbPoolSize)
        cache = Cache(url: config.redisURL)
        auth = Authenticator(metadata: metadata, cache: cache, secrets: secrets)
        var limits = SessionLimits()
        limits.tokenMaxConcurrent = config.tokenMaxConcurrent
        limits.userMaxConcurrent = config.userMaxConcurrent
        limits.tokenStatementTimeoutMs = config.tokenStatementTimeoutMs
        limits.poolReserved = config.warehousePoolReserved
        limits.queueWaitMs = config.limitQueueWaitMs
        warehouses = Warehouses(metadata: metadata, cache: cache, secrets: secrets,
                                poolSize: config.warehousePoolSize, statementTimeoutMs: config.sqlStatementTimeoutMs,
                                limits: limits,
                                policy: ConnectionPolicy(allowedHosts: config.connectionHostAllowlist,
                                                         platformRoles: ConnectionPolicy.platformRoles(
                                                            databaseURL: config.databaseURL, warehouseURL: config.warehouseURL)))
    }

    /// The absolute API base clients use: `<public URL>/api`.
    public var apiBaseURL: String { config.publicURL + "/api" }
}
