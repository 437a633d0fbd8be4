import Foundation
import HTTPKit
import Platform
import Postgres

/// `GET|POST /api/v3/sql/{connection}/query` (contract §4.1): runs `q` with positional `queryParameters`
/// and streams `{rows, schema, meta}`, or GeoJSON, CSV or NDJSON with `format=`.
struct QueryRoute: Sendable {
    let services: Services
    /// The largest `q` accepted (the body limit bounds it too).
    static let maxQueryBytes = 1 << 20

    func handle(_ request: HTTPRequest) throws -> HTTPResponse {
        let principal = try services.auth.authenticate(request, api: "sql")
        let connectionName = request.pathParameters["connection"]!
        let p = try Parameters.from(request, bodyLimit: services.config.maxBodyBytes)
        guard let q = p.string("q"), q.utf8.contains(where: { $0 > 32 }) else {
            throw APIError.badRequest("Missing required parameter: q", code: "missing_parameter")
        }
        guard q.utf8.count <= Self.maxQueryBytes else { throw APIError(413, "query_too_large", "q exceeds \(Self.maxQueryBytes) bytes") }
        guard !q.contains("\0") else { throw APIError.badRequest("q must not contain NUL characters") }
        let parameters = try QueryParameters.positional(try p.json("queryParameters"))
        let format = try Self.format(p.string("format"))

        let access = principal.access(to: connectionName)
        if case .none = access {
            // Existence is not revealed to tokens without any grant on the connection.
            _ = try services.warehouses.connection(account: principal.accountId, name: connectionName)
            throw GrantCheck.denied("The token has no grant on connection \(connectionName)")
        }
        let record = try services.warehouses.connection(account: principal.accountId, name: connectionName)
        let pool = try services.warehouses.pool(for: record)
        let maxRows = services.config.sqlMaxRows
        let deadline = Date().addingTimeInterval(Double(services.warehouses.statementTimeoutMs) / 1000 + 2)
        let requestId = request.requestId
        let watch = PGConnection.Watch(abortDescriptor: request.abortDescriptor, isAborted: request.isClientGone, deadline: deadline)

        return HTTPResponse(status: 200, headers: CachePolicy.headers(request, principal: principal, maxAge: 31_536_000, connection: connectionName, sharedMaxAge: 60), body: .stream { writer in
            try APIError.mapping(requestId: requestId) {
                let connection = try pool.checkout()
                defer { pool.checkin(connection) }
                // Scoped tokens and viewers read only, in a transaction that is rolled back: no writes, and no
                // session state (set_config, SET) survives into the next request on this pooled connection.
                var readOnly = principal.isReadOnly(on: connectionName)
                if case .granted(let grants) = access {
                    _ = try GrantCheck.authorize(q, parameters: parameters, grants: grants, connection: connection, watch: watch)
                    readOnly = true
                }
                if readOnly { try connection.execute("BEGIN READ ONLY") }
                defer { if readOnly, connection.isHealthy { _ = try? connection.execute("ROLLBACK") } }
                let geometryOids = try connection.geometryOids()
                var output = QueryOutput(format: format, writer: writer, maxRows: format == .json ? maxRows : nil)
                // PostGIS writes a NULL geometry as {"type": null}; RFC 7946 wants null. Inside JSON string
                // values quotes are escaped, so this exact text can only be the geometry member.
                let sql = format == .geojson
                    ? "SELECT replace(ST_AsGeoJSON(t.*)::text, '\"geometry\": {\"type\": null}', '\"geometry\": null') AS feature FROM (\(q)) AS t"
                    : q
                var command = ""
                try Self.run(connection, sql, parameters, watch: watch) { result in
                    if output.encoder == nil {
                        output.begin(ResultEncoder(
                            names: (0..<result.columnCount).map(result.columnName),
                            kinds: (0..<result.columnCount).map { ColumnKind.of(oid: result.columnType($0), geometryOids: geometryOids) }))
                    }
                    if !result.isSingleRow { command = result.commandStatus }
                    return output.rows(result)
                }
                if !readOnly {
                    // Never let one request's session state reach the next: SET, PREPARE, LISTEN and temp tables
                    // need DISCARD ALL; a SELECT can still call set_config() or take advisory locks.
                    if command.hasPrefix("SELECT") || command.isEmpty {
                        try connection.executeScript("RESET ALL; SELECT pg_advisory_unlock_all()")
                    } else {
                        try connection.execute("DISCARD ALL")
                        connection.forgetPrepared()
                        // A write: cached answers of this connection may be stale now.
                        try CacheInvalidation.purge(keys: [CacheInvalidation.connection(account: principal.accountId, name: connectionName)],
                                                    account: principal.accountId, pool: services.metadata)
                    }
                }
                output.finish(command: command)
            }
        })
    }

    /// Runs as a cached prepared statement; a plan invalidated by a schema change is re-prepared once.
    static func run(_ connection: PGConnection, _ sql: String, _ parameters: [String?], watch: PGConnection.Watch,
                    _ onResult: (PGResult) throws -> Bool) throws {
        do {
            try connection.stream(sql, parameters, watch: watch, prepare: true, onResult)
        } catch let e as PGError where e.sqlstate == "0A000" && connection.isIdle {
            connection.forgetPrepared()
            try connection.execute("DEALLOCATE ALL")
            try connection.stream(sql, parameters, watch: watch, prepare: false, onResult)
        }
    }

    static func format(_ raw: String?) throws -> ResultEncoder.Format {
        guard let raw, !raw.isEmpty else { return .json }
        guard let f = ResultEncoder.Format(rawValue: raw.lowercased()) else {
            throw APIError.badRequest("format must be json, geojson, csv or ndjson", code: "invalid_parameter")
        }
        return f
    }

}
