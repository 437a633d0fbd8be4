import Foundation
import HTTPKit
import Platform
import Postgres
import SQLKit

/// Pre-generated boundary tilesets for `boundaryTableSource` / `boundaryQuerySource`: `tessera tileset create
/// --boundary` cuts every boundary geometry into the tiles it touches once (ST_AsMVTGeom: clipped, in tile
/// coordinates), keeping `geoid`; a tile is then those stored pieces joined with the properties table or
/// query on `geoid`, so properties can change without re-tiling and the costly geometry work is never
/// repeated. The table is `(z, x, y, geoid, geom)` with the tile as its index.
public enum BoundaryTileset {
    static let halfWorld = 20_037_508.342_789_244
    static let extent = 4096

    /// Pure: the pieces of every boundary for the tiles of the slot `z`; the tile range of each geometry
    /// comes from its Web Mercator box grown by the buffer.
    static func piecesSQL(into building: SQL, from: SQL, geometry: Identifier, extent: Int, buffer: Int) -> SQL {
        let z: SQL = "\(SQL.slot("z"))::int"
        let join = try! Identifier(BoundarySource.joinColumn)
        // Constants of this builder, not input.
        let half = SQL(unsafeRaw: SQL.text(halfWorld)), world = SQL(unsafeRaw: SQL.text(2 * halfWorld))
        return """
            INSERT INTO \(building) (z, x, y, \(join), _carto_feature_id, geom)
            SELECT \(z), tx.x, ty.y, s.\(join), s.fid, g.geom
            FROM (SELECT _src.\(join), md5(ST_AsBinary(_src.\(geometry)::geometry)) AS fid, ST_Transform(ST_SetSRID(_src.\(geometry)::geometry, coalesce(nullif(ST_SRID(_src.\(geometry)::geometry), 0), 4326)), 3857) AS m
                  FROM \(from) AS _src WHERE _src.\(geometry) IS NOT NULL) s
            CROSS JOIN LATERAL (SELECT \(world) / (1 << \(z))::float8 AS size) k
            CROSS JOIN LATERAL (SELECT ST_Expand(s.m, k.size * \(literal: buffer) / \(literal: extent)) AS b) e
            CROSS JOIN LATERAL generate_series(greatest(0, floor((ST_XMin(e.b) + \(half)) / k.size)::int),
                                               least((1 << \(z)) - 1, floor((ST_XMax(e.b) + \(half)) / k.size)::int)) AS tx(x)
            CROSS JOIN LATERAL generate_series(greatest(0, floor((\(half) - ST_YMax(e.b)) / k.size)::int),
                                               least((1 << \(z)) - 1, floor((\(half) - ST_YMin(e.b)) / k.size)::int)) AS ty(y)
            CROSS JOIN LATERAL (SELECT ST_AsMVTGeom(s.m, ST_TileEnvelope(\(z), tx.x, ty.y), \(literal: extent), \(literal: buffer), true) AS geom) g
            WHERE g.geom IS NOT NULL
            """
    }

    /// Pure: one tile, the stored pieces joined with the properties (`_src`, so filters apply to them).
    static func tileSQL(tileset: QualifiedName, properties: SQL, columns: [String], filter: SQL?, extent: Int) throws -> SQL {
        let join = try Identifier(BoundarySource.joinColumn)
        // The feature id dynamic tiles carry (md5 of the source geometry), kept from the build.
        var selects: [SQL] = ["f.geom", "f._carto_feature_id"]
        for c in columns { selects.append("_src.\(try Identifier(c))") }
        var sql: SQL = """
            SELECT ST_AsMVT(t.*, 'default', \(literal: extent), 'geom') FROM (
              SELECT \(selects, joinedBy: ", ") FROM \(tileset) AS f JOIN \(properties) AS _src ON _src.\(join) = f.\(join)
              WHERE f.z = \(SQL.slot("z"))::int AND f.x = \(SQL.slot("x"))::int AND f.y = \(SQL.slot("y"))::int
            """
        if let filter { sql += " AND \(filter)" }
        return sql + " ORDER BY f.\(join)) t"
    }

    public static func build(connection db: PGConnection, options o: TilesetBuilder.Options, progress: (Int, Int) -> Void) throws -> TilesetBuilder.Summary {
        let started = Date()
        guard (0...20).contains(o.minzoom), (o.minzoom...20).contains(o.maxzoom) else {
            throw APIError.badRequest("minzoom/maxzoom must be within 0…20 with minzoom ≤ maxzoom", code: "invalid_parameter")
        }
        var d = SourceDefinition(kind: o.query == nil ? .table : .query, connection: "")
        d.name = o.table
        d.sql = o.query
        d.spatialColumn = o.spatialColumn
        let from = try SourceSQL.from(d)
        let schema = try SourceSchema.describe(from: from, connection: db, watch: .none)
        guard schema.kind(of: BoundarySource.joinColumn) != nil else {
            throw APIError.badRequest("the boundary source has no \(BoundarySource.joinColumn) column", code: "column_not_found")
        }
        guard schema.kind(of: o.spatialColumn) == .geometry else {
            throw APIError.badRequest("--spatial-column \(o.spatialColumn) is not a geometry column", code: "column_not_found")
        }
        let name = try QualifiedName.parameter(o.name, named: "tileset name")
        let building = QualifiedName(schema: name.schema, table: name.table + "__building")
        let join = try Identifier(BoundarySource.joinColumn)
        try db.execute("DROP TABLE IF EXISTS \(building)" as SQL)
        // The join column keeps the source's type, so the join with properties compares like with like.
        try db.execute("CREATE TABLE \(building) AS SELECT 0 AS z, 0 AS x, 0 AS y, _src.\(join), ''::text AS _carto_feature_id, NULL::geometry AS geom FROM \(from) AS _src LIMIT 0" as SQL)
        let extent = Self.extent, buffer = extent / 16
        let insert = piecesSQL(into: building.identifier, from: from, geometry: try Identifier(o.spatialColumn), extent: extent, buffer: buffer)
        var pieces = 0
        for z in o.minzoom...o.maxzoom {
            pieces += try db.execute(insert.text, insert.parameters(filling: ["z": String(z)])!).affectedRows ?? 0
            progress(z, pieces)
        }
        try db.execute("CREATE INDEX ON \(building) (z, x, y)" as SQL)
        let g: SQL = "_src.\(try Identifier(o.spatialColumn))::geometry"
        let box = try db.execute("SELECT ST_Extent(ST_Transform(ST_SetSRID(\(g), coalesce(nullif(ST_SRID(\(g)), 0), 4326)), 4326))::text FROM \(from) AS _src" as SQL).string(0, 0)
        let bounds = TileJSONBuilder.parseBox(box) ?? [-180, -85.0511, 180, 85.0511]
        let tilejson: JSON = [
            "tilejson": "3.0.0", "name": .string(o.name), "scheme": "xyz", "tiles": [], "boundary": true,
            "minzoom": .int(o.minzoom), "maxzoom": .int(o.maxzoom), "tileResolution": .number(Double(extent) / 1024),
            "bounds": .array(bounds.map(JSON.number)),
            "center": [.number((bounds[0] + bounds[2]) / 2), .number((bounds[1] + bounds[3]) / 2), .int(o.minzoom)],
            "schema": SourceSchema(columns: [(BoundarySource.joinColumn, schema.kind(of: BoundarySource.joinColumn) ?? .string)]).json,
        ]
        try TilesetBuilder.publish(connection: db, key: o.name, name: name, building: building, tilejson: tilejson)
        return TilesetBuilder.Summary(tiles: pieces, bytes: 0, seconds: Date().timeIntervalSince(started))
    }

    /// The stored TileJSON when `name` is a boundary tileset; nil when it is no tileset at all (a boundary
    /// table); a tileset without boundary pieces is a 400 naming `tilesetTableName`.
    static func metadata(_ name: String, connection db: PGConnection, watch: PGConnection.Watch) throws -> JSON? {
        guard let (tilejson, _) = try? TilesetSource.metadata(name, connection: db, watch: watch) else { return nil }
        guard tilejson["boundary"]?.boolValue == true else {
            throw APIError.badRequest("tilesetTableName: \(name) is a tileset without boundaries (make it with `tessera tileset create --boundary`)",
                                      code: "invalid_source")
        }
        return tilejson
    }

    /// The handshake of a boundary source over a boundary tileset, or nil when `tilesetTableName` is a table.
    static func handshake(_ d: SourceDefinition, principal: Principal, maps: MapsService, request: HTTPRequest) throws -> HTTPResponse? {
        var d = d
        d.boundaryTileset = true
        d.spatialColumn = "geom"
        let id = d.id(account: principal.accountId)
        let found = try maps.withWarehouse(principal, d.connection, request: request) { db -> (SourceRecord, Int, Int)? in
            let watch = maps.watch(request)
            guard try metadata(d.name ?? "", connection: db, watch: watch) != nil else { return nil }
            try BoundarySource.checkJoin(d, connection: db, watch: watch)
            let properties = try SourceSchema.describe(from: try BoundarySource.properties(d), connection: db, watch: watch)
            let columns = try properties.properties(requested: d.columns, spatialColumn: "geom")
            _ = try FilterSQL.condition(d.filters, or: d.filtersOr, schema: properties)
            let schema = SourceSchema(columns: [("geom", .geometry)] + columns.map { ($0, properties.kind(of: $0) ?? .string) })
            let inspector = SourceInspector(connection: db, watch: watch)
            let plan = try inspector.plan(d)
            var record = SourceRecord(id: id, definition: d, schema: schema, geometryType: nil)
            record.rows = plan.estimatedRows
            return (record, plan.estimatedRows, try inspector.dataVersion(plan: plan))
        }
        guard let (record, rows, version) = found else { return nil }
        try maps.sources.save(record, account: principal.accountId)
        let url = maps.url("/v3/maps/\(d.connection)/boundary", [("source", id), ("format", "tilejson"), ("cache", String(version))])
        return .json(["nrows": .int(rows), "schema": record.schema.json, "tilejson": ["url": [.string(url)]]],
                     headers: [("Cache-Control", "no-store")])
    }

    static func tileJSON(_ record: SourceRecord, tiles: String, maps: MapsService, principal: Principal, request: HTTPRequest) throws -> JSON {
        let stored = try maps.withWarehouse(principal, record.definition.connection, request: request) { db in
            try metadata(record.definition.name ?? "", connection: db, watch: maps.watch(request))
        }
        guard case .object(var t) = stored ?? [:] else { return [:] }
        let properties = record.schema.columns.filter { $0.kind != .geometry }
        let fields = JSON.object(Dictionary(uniqueKeysWithValues: properties.map { ($0.name, JSON.string($0.kind == .number ? "Number" : "String")) }))
        t["tiles"] = [.string(tiles)]
        t["schema"] = nil
        t["boundary"] = nil
        t["vector_layers"] = [["id": "default", "fields": fields, "minzoom": t["minzoom"] ?? 0, "maxzoom": t["maxzoom"] ?? 0]]
        return .object(t)
    }

    static func tile(_ record: SourceRecord, z: Int, x: Int, y: Int, connection db: PGConnection, watch: PGConnection.Watch) throws -> [UInt8] {
        let d = record.definition
        let properties = try SourceSchema.describe(from: try BoundarySource.properties(d), connection: db, watch: watch)
        let columns = record.schema.columns.filter { $0.kind != .geometry }.map(\.name)
        let sql = try tileSQL(tileset: try SourceSQL.table(d), properties: try BoundarySource.properties(d), columns: columns,
                              filter: try FilterSQL.condition(d.filters, or: d.filtersOr, schema: properties), extent: extent)
        let r = try db.execute(sql.text, sql.parameters(filling: ["z": String(z), "x": String(x), "y": String(y)])!, watch: watch,
                               prepare: true, binaryResult: true)
        return r.bytes(0, 0) ?? []
    }
}
