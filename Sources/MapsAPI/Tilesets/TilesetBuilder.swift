import Foundation
import HTTPKit
import Platform
import Postgres
import SQLKit

/// Pre-generates a tileset table `(z, x, y, data)` from a table or query for a zoom range, the way CARTO's
/// tilesets work: big tables are tiled once, then served as stored bytes. Only children of non-empty
/// tiles are visited, so the work follows the data. The new table replaces the old one in one transaction.
public struct TilesetBuilder {
    public struct Options: Sendable {
        public var name: String
        public var table: String?
        public var query: String?
        public var spatialColumn = "geom"
        public var columns: [String]?
        public var minzoom = 0
        public var maxzoom = 10
        public var tileResolution = 1.0
        public var maxFeatures = 100_000

        public init(name: String) { self.name = name }
    }

    public struct Summary: Sendable {
        public let tiles: Int
        public let bytes: Int
        public let seconds: Double
    }

    public static let metadataTable = "tessera_tilesets"

    /// Builds the tileset; `progress(zoom, tilesDone, tilesWritten)` is called as work proceeds.
    public static func build(connection db: PGConnection, options o: Options,
                             progress: (Int, Int, Int) -> Void) throws -> Summary {
        let started = Date()
        guard (0...20).contains(o.minzoom), (o.minzoom...20).contains(o.maxzoom) else {
            throw APIError.badRequest("zoom range must be within 0…20 with minzoom ≤ maxzoom")
        }
        var d = SourceDefinition(kind: o.query == nil ? .table : .query, connection: "")
        d.name = o.table
        d.sql = o.query
        d.spatialColumn = o.spatialColumn
        d.columns = o.columns
        d.tileResolution = o.tileResolution
        let record = try SourceInspector(connection: db, watch: .none).inspect(d, id: "tileset")
        let tileSQL = try TileSQL.make(record, mode: .ordered)
        var tilejson = try TileJSONBuilder(connection: db, watch: .none).build(record, tiles: "")

        let name = try QualifiedName.parameter(o.name, named: "tileset name")
        let building = QualifiedName(schema: name.schema, table: name.table + "__building")
        let staging = building.identifier
        try db.execute("DROP TABLE IF EXISTS \(staging)" as SQL)
        try db.execute("CREATE TABLE \(staging) (z int NOT NULL, x int NOT NULL, y int NOT NULL, data bytea NOT NULL, PRIMARY KEY (z, x, y))" as SQL)
        // Tiles go straight from ST_AsMVT into the table: no bytes travel to the client.
        let insert: SQL = """
            WITH tile AS (\(tileSQL.sql))
            INSERT INTO \(staging) (z, x, y, data) SELECT \(SQL.slot("z")), \(SQL.slot("x")), \(SQL.slot("y")), st_asmvt FROM tile
            WHERE length(st_asmvt) > 0 RETURNING length(data)
            """

        let bounds = tilejson["bounds"]?.arrayValue?.compactMap(\.doubleValue) ?? [-180, -85.0511, 180, 85.0511]
        var candidates = tiles(covering: bounds, zoom: o.minzoom)
        var written = 0, bytes = 0, done = 0
        for z in o.minzoom...o.maxzoom {
            var nonEmpty: [(Int, Int)] = []
            for (x, y) in candidates {
                done += 1
                guard let box = tileSQL.searchBox(z: z, x: x, y: y),
                      let parameters = insert.parameters(filling: TileSQL.slots(z: z, x: x, y: y, cap: o.maxFeatures, box: box)) else { continue }
                let r = try db.execute(insert.text, parameters, prepare: true)
                if r.rowCount == 1 {
                    nonEmpty.append((x, y))
                    written += 1
                    bytes += r.int(0, 0) ?? 0
                }
                if done % 256 == 0 { progress(z, done, written) }
            }
            progress(z, done, written)
            candidates = []
            for (x, y) in nonEmpty {
                for dx in 0...1 { for dy in 0...1 { candidates.append((2 * x + dx, 2 * y + dy)) } }
            }
        }

        if case .object(var t) = tilejson {
            t["minzoom"] = .int(o.minzoom)
            t["maxzoom"] = .int(o.maxzoom)
            t["name"] = .string(o.name)
            t["vector_layers"] = .array((t["vector_layers"]?.arrayValue ?? []).map { layer in
                guard case .object(var l) = layer else { return layer }
                l["minzoom"] = .int(o.minzoom)
                l["maxzoom"] = .int(o.maxzoom)
                return .object(l)
            })
            t["schema"] = record.schema.json
            t["tiles"] = []
            tilejson = .object(t)
        }
        try publish(connection: db, key: o.name, name: name, building: building, tilejson: tilejson)
        return Summary(tiles: written, bytes: bytes, seconds: Date().timeIntervalSince(started))
    }

    /// Replaces the tileset `name` (recorded under `key`, the name clients give) with the table `building` and records its TileJSON, in one transaction.
    static func publish(connection db: PGConnection, key: String, name: QualifiedName, building: QualifiedName, tilejson: JSON) throws {
        try db.execute("BEGIN")
        do {
            try db.execute("""
                CREATE TABLE IF NOT EXISTS \(metadataTable) (
                    name text PRIMARY KEY, tilejson jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())
                """)
            try db.execute("DROP TABLE IF EXISTS \(name)" as SQL)
            try db.execute("ALTER TABLE \(building) RENAME TO \(try Identifier(name.table))" as SQL)
            try db.execute("""
                INSERT INTO \(metadataTable) (name, tilejson) VALUES ($1, $2::jsonb)
                ON CONFLICT (name) DO UPDATE SET tilejson = excluded.tilejson, created_at = now()
                """, [key, tilejson.text])
            try db.execute("COMMIT")
        } catch {
            _ = try? db.execute("ROLLBACK")
            _ = try? db.execute("DROP TABLE IF EXISTS \(building)" as SQL)
            throw error
        }
    }

    /// Tiles of `zoom` covering a WGS84 bounding box.
    static func tiles(covering b: [Double], zoom: Int) -> [(Int, Int)] {
        let n = Double(1 << zoom)
        func x(_ lon: Double) -> Int { max(0, min(Int(n) - 1, Int((lon + 180) / 360 * n))) }
        func y(_ lat: Double) -> Int {
            let r = max(-85.0511, min(85.0511, lat)) * .pi / 180
            return max(0, min(Int(n) - 1, Int((1 - log(tan(r) + 1 / cos(r)) / .pi) / 2 * n)))
        }
        var out: [(Int, Int)] = []
        for tx in x(b[0])...x(b[2]) { for ty in y(b[3])...y(b[1]) { out.append((tx, ty)) } }
        return out
    }
}
