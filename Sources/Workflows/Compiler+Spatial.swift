import HTTPKit
import SQLKit

extension Compiler {
    /// The input's columns with `geometry` replaced by `value` (same name, same position).
    func replacing(_ geometry: Identifier, with value: SQL, alias: String = "t", input port: String? = nil) throws -> SQL {
        let i = try input(port)
        let a = try Identifier(alias)
        let list = try i.columns.map { c -> SQL in
            c.name == geometry.name ? "\(value) AS \(geometry)" : "\(a).\(try Identifier(c.name))"
        }
        return SQL.join(list, separator: ", ")
    }

    func spatial() throws -> SQL {
        switch node.type {
        case "point_from_lonlat":
            let lon = try column("lon")!, lat = try column("lat")!
            let out = try newName("output")
            let i = try input()
            return """
                SELECT \(Self.columns(i, alias: "t", excluding: [out.name])), \
                ST_SetSRID(ST_MakePoint(t.\(lon)::float8, t.\(lat)::float8), 4326) AS \(out) FROM \(i.relation) t
                """
        case "buffer":
            let g = try geometry()
            let d = try requiredNumber("distance", min: 0, max: 20_000_000)
            return "SELECT \(try replacing(g, with: "ST_Buffer(t.\(g)::geography, \(Self.float(d)))::geometry")) FROM \(try input().relation) t"
        case "centroid":
            let g = try geometry()
            return "SELECT \(try replacing(g, with: "ST_Centroid(t.\(g))")) FROM \(try input().relation) t"
        case "convex_hull":
            let g = try geometry()
            if let key = try column("group_by", required: false) {
                return "SELECT t.\(key), ST_ConvexHull(ST_Collect(t.\(g))) AS \(g) FROM \(try input().relation) t GROUP BY t.\(key)"
            }
            return "SELECT ST_ConvexHull(ST_Collect(t.\(g))) AS \(g) FROM \(try input().relation) t"
        case "simplify":
            let g = try geometry()
            let tolerance = try requiredNumber("tolerance", min: 0, max: 180)
            return "SELECT \(try replacing(g, with: "ST_SimplifyPreserveTopology(t.\(g), \(Self.float(tolerance)))")) FROM \(try input().relation) t"
        case "area_length":
            let g = try geometry()
            let i = try input()
            return """
                SELECT \(Self.columns(i, alias: "t", excluding: ["area_m2", "length_m"])), ST_Area(t.\(g)::geography) AS "area_m2", \
                ST_Length(t.\(g)::geography) AS "length_m" FROM \(i.relation) t
                """
        case "spatial_join": return try spatialJoin()
        case "clip", "intersection", "difference": return try overlay()
        case "nearest":
            let main = try input("main"), secondary = try input("secondary")
            let g = try geometry(of: "main"), sg = try geometry("secondary_geom", of: "secondary")
            let k = try integer("k", min: 1, max: 1000) ?? 1
            var within: SQL = ""
            if let max = try number("max_distance") { within = " WHERE ST_DWithin(a.\(g)::geography, b.\(sg)::geography, \(Self.float(max)))" }
            return """
                SELECT \(Self.columns(main, alias: "a")), \(Self.secondaryColumns(secondary, alias: "n", main: main, taken: ["nearest_distance"])), \
                n."nearest_distance"
                FROM \(main.relation) a CROSS JOIN LATERAL (
                  SELECT b.*, ST_Distance(a.\(g)::geography, b.\(sg)::geography) AS "nearest_distance" FROM \(secondary.relation) b\(within)
                  ORDER BY a.\(g) <-> b.\(sg) LIMIT \(literal: k)) n
                """
        case "distance_matrix":
            let o = try input("origins"), d = try input("destinations")
            let oid = try column("origin_id", of: "origins")!, did = try column("destination_id", of: "destinations")!
            let g = try geometry(of: "origins"), dg = try geometry("secondary_geom", of: "destinations")
            return """
                SELECT a.\(oid) AS "origin", b.\(did) AS "destination", ST_Distance(a.\(g)::geography, b.\(dg)::geography) AS "distance"
                FROM \(o.relation) a CROSS JOIN \(d.relation) b
                """
        default: throw fail("cannot be compiled", "type")
        }
    }

    func spatialJoin() throws -> SQL {
        let main = try input("main"), secondary = try input("secondary")
        let g = try geometry(of: "main"), sg = try geometry("secondary_geom", of: "secondary")
        let predicate: SQL
        switch try choice("predicate") {
        case "within": predicate = "ST_Within(a.\(g), b.\(sg))"
        case "dwithin": predicate = "ST_DWithin(a.\(g)::geography, b.\(sg)::geography, \(Self.float(try requiredNumber("distance", min: 0, max: 20_000_000))))"
        default: predicate = "ST_Intersects(a.\(g), b.\(sg))"
        }
        let left = try choice("join_type") == "left"
        let aggs = try aggregates("aggregates", of: "secondary", alias: "b", required: false)
        if !aggs.isEmpty {
            // One row per main row with the aggregates of the secondary rows it matches.
            return """
                SELECT \(Self.columns(main, alias: "a")), j.* FROM \(main.relation) a \(unsafeRaw: left ? "LEFT JOIN" : "JOIN") LATERAL (
                  SELECT \(aggs, joinedBy: ", ") FROM \(secondary.relation) b WHERE \(predicate)) j ON true
                """
        }
        return """
            SELECT \(Self.columns(main, alias: "a")), \(Self.secondaryColumns(secondary, alias: "b", main: main))
            FROM \(main.relation) a \(unsafeRaw: left ? "LEFT JOIN" : "JOIN") \(secondary.relation) b ON \(predicate)
            """
    }

    /// clip: main geometries cut to the union of the overlay; intersection: every intersecting pair with
    /// both sides' attributes; difference: main geometries minus the overlay.
    func overlay() throws -> SQL {
        let main = try input("main"), overlay = try input("overlay")
        let g = try geometry(of: "main"), og = try geometry("overlay_geom", of: "overlay")
        switch node.type {
        case "clip":
            return """
                WITH o AS (SELECT ST_Union(\(og)) AS g FROM \(overlay.relation))
                SELECT \(try replacing(g, with: "ST_Intersection(t.\(g), o.g)", input: "main")) FROM \(main.relation) t, o
                WHERE ST_Intersects(t.\(g), o.g)
                """
        case "intersection":
            var rest = overlay
            rest = NodeInput(relation: overlay.relation, columns: overlay.columns.filter { $0.name != og.name })
            return """
                SELECT \(try replacing(g, with: "ST_Intersection(t.\(g), b.\(og))", input: "main")), \
                \(Self.secondaryColumns(rest, alias: "b", main: main))
                FROM \(main.relation) t JOIN \(overlay.relation) b ON ST_Intersects(t.\(g), b.\(og))
                """
        default:
            return """
                WITH o AS (SELECT ST_Union(\(og)) AS g FROM \(overlay.relation))
                SELECT * FROM (SELECT \(try replacing(g, with: "CASE WHEN o.g IS NULL THEN t.\(g) ELSE ST_Difference(t.\(g), o.g) END", input: "main"))
                  FROM \(main.relation) t, o) d WHERE NOT ST_IsEmpty(d.\(g))
                """
        }
    }
}
