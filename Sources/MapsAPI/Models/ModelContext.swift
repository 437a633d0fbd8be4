import Foundation
import HTTPKit
import Platform
import Postgres
import SQLKit

/// Runs a model against the warehouse: reads the facts `ModelSQL` needs (the source's schema, the SRIDs of
/// spatially filtered columns), then runs the statement it builds and shapes the answer.
struct ModelContext {
    let db: PGConnection
    let watch: PGConnection.Watch
    let sql: ModelSQL

    init(db: PGConnection, watch: PGConnection.Watch, request: ModelRequest, allowsRawSQL: Bool) throws {
        self.db = db
        self.watch = watch
        let from = try SourceSQL.from(request.definition)
        let schema = try SourceSchema.describe(from: from, connection: db, watch: watch)
        var srids: [String: Int] = [:]
        // Only shapes on geometry columns need the data's SRID (cells are always in WGS84).
        for (column, filter) in request.spatialFilters where srids[column] == nil {
            guard case .shape = filter, schema.kind(of: column) == .geometry || request.definition.spatialType.index == nil else { continue }
            let r = try db.execute(ModelSQL.sridSQL(from: from, geometry: try ModelSQL.geometryRef(column, schema: schema)), watch: watch)
            srids[column] = r.rowCount == 1 ? (r.int(0, 0) ?? 4326) : 4326
        }
        // Widget requests have no handshake: an H3 source's spatial filters check for the extension here,
        // once per request, rather than failing on "function does not exist".
        if request.definition.spatialType == .h3 && !request.spatialFilters.isEmpty { try WarehouseH3.require(db, watch: watch) }
        sql = try ModelSQL(request: request, schema: schema, srids: srids, allowsRawSQL: allowsRawSQL)
    }

    /// Runs a statement returning one row of JSON text columns and shapes them.
    func run(_ query: ModelQuery) throws -> JSON {
        let r = try db.execute(query.sql, watch: watch)
        guard r.rowCount == 1 else { return try query.shape([]) }
        let row = try (0..<r.columnCount).map { column -> JSON in
            guard let text = r.string(0, column) else { return .null }
            do { return try JSON.decode(Array(text.utf8), maxDepth: 1024) } catch {
                throw APIError.internalError("The warehouse returned a value that is not JSON")
            }
        }
        return try query.shape(row)
    }

    func formula() throws -> JSON { try run(try sql.formula()) }
    func category() throws -> JSON { try run(try sql.category()) }
    func histogram() throws -> JSON { try run(try sql.histogram()) }
    func range() throws -> JSON { try run(try sql.range()) }
    func table() throws -> JSON { try run(try sql.table()) }
    func timeseries() throws -> JSON { try run(try sql.timeseries()) }
    func scatterplot() throws -> JSON { try run(try sql.scatterplot()) }
    func aggregations() throws -> JSON { try run(try sql.aggregations()) }
    func pick() throws -> JSON { try run(try sql.pick()) }
}
