import HTTPKit
import SQLKit

extension Compiler {
    /// Spatial indexes (the warehouse's tessera_h3 extension and quadbin functions, schema `carto`).
    func indexes() throws -> SQL {
        let i = try input()
        switch node.type {
        case "h3_from_geo":
            let g = try geometry(), res = try requiredInteger("resolution", min: 0, max: 15)
            return "SELECT \(Self.columns(i, alias: "t", excluding: ["h3"])), carto.h3_fromgeogpoint(ST_Centroid(t.\(g)), \(literal: res)) AS \"h3\" FROM \(i.relation) t"
        case "h3_polyfill":
            let g = try geometry(), res = try requiredInteger("resolution", min: 0, max: 15)
            return """
                SELECT \(Self.columns(i, alias: "t", excluding: [g.name, "h3"])), unnest(carto.h3_polyfill(t.\(g), \(literal: res))) AS "h3" \
                FROM \(i.relation) t
                """
        case "h3_boundary":
            let c = try column("column")!
            return "SELECT \(Self.columns(i, alias: "t", excluding: ["geom"])), carto.h3_boundary(t.\(c)) AS \"geom\" FROM \(i.relation) t"
        case "quadbin_from_geo":
            let g = try geometry(), res = try requiredInteger("resolution", min: 0, max: 26)
            return "SELECT \(Self.columns(i, alias: "t", excluding: ["quadbin"])), carto.quadbin_frompoint(ST_Centroid(t.\(g)), \(literal: res)) AS \"quadbin\" FROM \(i.relation) t"
        default: throw fail("cannot be compiled", "type")
        }
    }

    func statistics() throws -> SQL {
        let i = try input()
        let g = try geometry()
        switch node.type {
        case "kmeans":
            let k = try requiredInteger("k", min: 1, max: 1000)
            return "SELECT \(Self.columns(i, alias: "t", excluding: ["cluster"])), ST_ClusterKMeans(t.\(g), \(literal: k)) OVER () AS \"cluster\" FROM \(i.relation) t"
        case "dbscan":
            // eps is metres: clustered in Web Mercator, whose metres stretch by 1/cos(latitude) (taken at the data's mean latitude).
            let eps = try requiredNumber("eps", min: 0, max: 20_000_000)
            let minPoints = try integer("min_points", min: 1, max: 100_000) ?? 5
            return """
                WITH s AS (SELECT greatest(cos(radians(avg(ST_Y(ST_Centroid(\(g)))))), 0.01) AS k FROM \(i.relation))
                SELECT \(Self.columns(i, alias: "t", excluding: ["cluster"])), \
                ST_ClusterDBSCAN(ST_Transform(t.\(g), 3857), eps => \(Self.float(eps)) / s.k, minpoints => \(literal: minPoints)) OVER () AS "cluster"
                FROM \(i.relation) t, s
                """
        case "hotspot":
            // Getis-Ord Gi* over the occupied H3 cells; neighbours are the cells touching (and including) each cell.
            let res = try requiredInteger("resolution", min: 0, max: 15)
            let value: SQL = try column("value", required: false).map { "sum(t.\($0))::float8" } ?? "count(*)::float8"
            return """
                WITH cells AS (
                  SELECT carto.h3_fromgeogpoint(ST_Centroid(t.\(g)), \(literal: res)) AS h3, \(value) AS value
                  FROM \(i.relation) t WHERE t.\(g) IS NOT NULL GROUP BY 1),
                grid AS (SELECT h3, coalesce(value, 0) AS value, carto.h3_boundary(h3) AS geom FROM cells),
                stats AS (SELECT count(*)::float8 AS n, avg(value) AS mean,
                          sqrt(greatest(avg(value * value) - avg(value) ^ 2, 0)) AS s FROM grid),
                w AS (SELECT a.h3, count(*)::float8 AS wi, sum(b.value) AS sx
                      FROM grid a JOIN grid b ON ST_DWithin(a.geom, b.geom, 1e-9) GROUP BY a.h3)
                SELECT grid.h3, grid.value,
                  CASE WHEN s.s = 0 OR s.n < 2 OR s.n * w.wi - w.wi * w.wi <= 0 THEN NULL
                       ELSE (w.sx - s.mean * w.wi) / (s.s * sqrt((s.n * w.wi - w.wi * w.wi) / (s.n - 1))) END AS "gi",
                  grid.geom AS "geom"
                FROM grid JOIN w USING (h3) CROSS JOIN stats s
                """
        case "moran":
            let v = try column("value")!
            let d = try requiredNumber("distance", min: 0, max: 20_000_000)
            return """
                WITH p AS (SELECT row_number() OVER () AS i, t.\(v)::float8 AS x, t.\(g) AS g FROM \(i.relation) t
                           WHERE t.\(v) IS NOT NULL AND t.\(g) IS NOT NULL),
                m AS (SELECT avg(x) AS mean, count(*)::float8 AS n FROM p),
                d AS (SELECT sum((x - m.mean) ^ 2) AS ss FROM p, m),
                w AS (SELECT count(*)::float8 AS wsum, sum((a.x - m.mean) * (b.x - m.mean)) AS xprod
                      FROM p a JOIN p b ON a.i <> b.i AND ST_DWithin(a.g::geography, b.g::geography, \(Self.float(d))) CROSS JOIN m)
                SELECT CASE WHEN w.wsum > 0 AND d.ss > 0 THEN (m.n / w.wsum) * (w.xprod / d.ss) END AS "moran_i",
                       CASE WHEN m.n > 1 THEN -1 / (m.n - 1) END AS "expected", m.n::bigint AS "n", w.wsum::bigint AS "neighbour_pairs"
                FROM m, d, w
                """
        default: throw fail("cannot be compiled", "type")
        }
    }
}
