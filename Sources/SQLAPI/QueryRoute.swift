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
        guard !q.utf8.contains(0) else { throw APIError.badRequest("q must not contain NUL characters") }
        let parameters = try QueryParameters.positional(try p.json("queryParameters"))
        let format = try Self.format(p.string("format"))
        let page = try Self.page(limit: p.int("limit"), offset: p.int("offset"), format: format)

        let access = principal.access(to: connectionName)
        if case .none = access {
            // Existence is not revealed to tokens without any grant on the connection.
            _ = try services.warehouses.connection(account: principal.accountId, name: connectionName)
            throw GrantCheck.denied("The token has no grant on connection \(connectionName)")
        }
        // Resolved before the stream starts, so an unknown connection is a plain 404.
        _ = try services.warehouses.connection(account: principal.accountId, name: connectionName)
        let warehouses = services.warehouses
        let metadata = services.metadata
        let maxRows = services.config.sqlMaxRows
        let deadline = Date().addingTimeInterval(warehouses.statementTimeout(for: principal) + 2)
        let watch = PGConnection.Watch(request: request, deadline: deadline)
        let writes = principal.sessionMode(connection: connectionName, method: request.method) == .readWrite

        return HTTPResponse(status: 200, headers: CachePolicy.headers(request, principal: principal, maxAge: 31_536_000, connection: connectionName, sharedMaxAge: 60), body: .stream { writer in
            // The pool picks read-only or not from the principal and resets the session afterwards.
            try warehouses.withSession(for: principal, connection: connectionName, request: request) { connection in
                if case .granted(let grants) = access {
                    // Its function allow-list already keeps out everything ReadOnlyGuard denies.
                    _ = try GrantCheck.authorize(q, parameters: parameters, grants: grants, connection: connection, watch: watch)
                } else {
                    try ReadOnlyGuard.check(q, parameters, connection: connection, watch: watch)
                }
                let geometryOids = try connection.geometryOids()
                var output = QueryOutput(format: format, writer: writer,
                                         maxRows: format == .json ? min(page.limit ?? maxRows, maxRows) : nil, offset: page.offset)
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
                if writes, !(command.hasPrefix("SELECT") || command.isEmpty) {
                    // A write: cached answers and precomputed levels of this connection may be stale now.
                    try DataChange.record(account: principal.accountId, connection: connectionName, pool: metadata)
                }
                output.finish(command: command)
            }
        })
    }

    /// Runs as a cached prepared statement; a plan invalidated by a schema change is re-prepared once.
    static func run(_ connection: PGConnection, _ sql: String, _ parameters: [String?], watch: PGConnection.Watch,
                    _ onResult: (PGResult) throws -> Bool) throws {
        // The statement ends the checkout: the session reset goes out in the same round trip.
        try connection.streamPrepared(sql, parameters, watch: watch, lastOfCheckout: true, onResult)
    }

    /// `limit`/`offset` page a JSON result without touching the statement: the SQL console asks for the first
    /// rows of any query (the stream stops, and the statement with it, once the page is full) and for later pages
    /// on demand; the text runs as written, so error positions still point into it.
    static func page(limit: Int?, offset: Int?, format: ResultEncoder.Format) throws -> (limit: Int?, offset: Int) {
        if limit == nil, offset == nil { return (nil, 0) }
        guard format == .json else {
            throw APIError.badRequest("limit and offset page JSON results only", code: "invalid_parameter")
        }
        if let limit, limit < 1 { throw APIError.badRequest("limit must be at least 1", code: "invalid_parameter") }
        if let offset, offset < 0 { throw APIError.badRequest("offset must not be negative", code: "invalid_parameter") }
        return (limit, offset ?? 0)
    }

    static func format(_ raw: String?) throws -> ResultEncoder.Format {
        guard let raw, !raw.isEmpty else { return .json }
        guard let f = ResultEncoder.Format(rawValue: raw.lowercased()) else {
            // GDAL's file formats cannot stream: they are export jobs.
            throw APIError.badRequest("format must be json, geojson, csv or ndjson", code: "invalid_parameter",
                                      hint: "GeoPackage, FlatGeobuf and Shapefile: POST /api/v3/sql/{connection}/exports")
        }
        return f
    }

}
