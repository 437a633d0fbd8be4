import HTTPKit
import SQLKit

/// Location services (geocode, isolines, route). Their answers come from the organisation's LDS providers,
/// not from SQL, so a node compiles to its output table with the answer columns still NULL plus helper
/// columns `_tessera_*` holding what each row asks (address, origin, mode, range). The runner materialises
/// that, asks the providers (charging the quotas), fills the answers and drops the helpers in the same
/// transaction. The questions are in the SQL, so the node's table hash (its cache key) covers them.
extension Compiler {
    static let helperPrefix = "_tessera_"

    func location() throws -> SQL {
        switch node.type {
        case "geocode":
            let i = try input()
            let address = try column("address")!
            let country = try string("country").map { $0.trimmingWhitespace.uppercased() }.flatMap { $0.isEmpty ? nil : $0 }
            if let country, country.count != 2 || !country.allSatisfy(\.isLetter) { throw fail("must be an ISO 3166-1 alpha-2 code", "country") }
            return """
                SELECT \(Self.columns(i, alias: "t", excluding: ["geom", "geocode_relevance"])), \
                NULL::geometry(Point, 4326) AS "geom", NULL::float8 AS "geocode_relevance", \
                t.\(address)::text AS "_tessera_address", CAST(\(country) AS text) AS "_tessera_country"
                FROM \(i.relation) t
                """
        case "isolines":
            let i = try input()
            let g = try geometry()
            let mode = try choice("mode")
            let range = try requiredInteger("range", min: 1, max: 7200)
            return """
                SELECT \(Self.columns(i, alias: "t", excluding: [g.name])), NULL::geometry(Geometry, 4326) AS \(g), \
                ST_X(ST_PointOnSurface(t.\(g))) AS "_tessera_lon", ST_Y(ST_PointOnSurface(t.\(g))) AS "_tessera_lat", \
                CAST(\(mode) AS text) AS "_tessera_mode", CAST(\(range) AS integer) AS "_tessera_range"
                FROM \(i.relation) t WHERE t.\(g) IS NOT NULL
                """
        case "route":
            let o = try input("origins"), d = try input("destinations")
            let g = try geometry("geom", of: "origins"), dg = try geometry("secondary_geom", of: "destinations")
            let mode = try choice("mode")
            let answers: Set<String> = ["geom", "distance", "duration"]
            let destinations = NodeInput(relation: d.relation, columns: d.columns.filter { $0.name != dg.name })
            return """
                SELECT \(Self.columns(o, alias: "o", excluding: answers.union([g.name]))), \
                \(Self.secondaryColumns(destinations, alias: "d", main: NodeInput(relation: o.relation, columns: o.columns.filter { $0.name != g.name }),
                                        taken: answers)), \
                NULL::geometry(LineString, 4326) AS "geom", NULL::float8 AS "distance", NULL::float8 AS "duration", \
                ST_X(ST_PointOnSurface(o.\(g))) AS "_tessera_lon", ST_Y(ST_PointOnSurface(o.\(g))) AS "_tessera_lat", \
                ST_X(ST_PointOnSurface(d.\(dg))) AS "_tessera_lon2", ST_Y(ST_PointOnSurface(d.\(dg))) AS "_tessera_lat2", \
                CAST(\(mode) AS text) AS "_tessera_mode"
                FROM \(o.relation) o CROSS JOIN \(d.relation) d WHERE o.\(g) IS NOT NULL AND d.\(dg) IS NOT NULL
                """
        default: throw fail("cannot be compiled", "type")
        }
    }

    /// The statement that writes the providers' answers into a location node's table; the slot `answers` is a
    /// JSON array of `{ctid, …}` (geocode: lon, lat, relevance; isolines and route: geometry as GeoJSON text,
    /// route also distance and duration).
    func locationUpdate(table: SQL) throws -> SQL {
        let set: SQL, record: SQL
        switch node.type {
        case "geocode":
            set = """
                "geom" = CASE WHEN v.lon IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326) END, \
                "geocode_relevance" = v.relevance
                """
            record = "v(ctid text, lon float8, lat float8, relevance float8)"
        case "isolines":
            set = "\(try geometry()) = ST_SetSRID(ST_GeomFromGeoJSON(v.geometry), 4326)"
            record = "v(ctid text, geometry text)"
        case "route":
            set = """
                "geom" = ST_SetSRID(ST_GeomFromGeoJSON(v.geometry), 4326), "distance" = v.distance, "duration" = v.duration
                """
            record = "v(ctid text, geometry text, distance float8, duration float8)"
        default: throw fail("is not a location service", "type")
        }
        return "UPDATE \(table) AS t SET \(set) FROM json_to_recordset(\(SQL.slot("answers"))::json) AS \(record) WHERE t.ctid = v.ctid::tid"
    }
}
