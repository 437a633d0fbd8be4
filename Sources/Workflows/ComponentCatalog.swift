import HTTPKit

/// Every component a workflow may use, by `type`. Parameters named `geom` pick the geometry column (the
/// input's first geometry column when absent); distances are metres, measured on the geography.
public enum ComponentCatalog {
    typealias P = Component.Param
    static let geom = P("geom", .column, title: "Geometry column (default: the first geometry column)")
    static let joinType = P("join_type", .choice, default: "inner", options: ["inner", "left"], title: "Join type")
    static let resolution = P("resolution", .integer, required: true, title: "Resolution")

    public static let all: [Component] = [
        // Inputs
        Component("table", .input, "Table", inputs: [], [P("table", .table, required: true, title: "Table (schema.table)")]),
        Component("sql", .input, "Custom SQL", inputs: [], [P("query", .sql, required: true, title: "One SELECT query")]),
        Component("import_url", .input, "Import from URL", inputs: [],
                  [P("url", .url, required: true, title: "URL of a CSV, GeoJSON, GeoPackage, KML, Shapefile (zip)… file")]),
        // Data preparation
        Component("select", .preparation, "Select columns", [P("columns", .columns, required: true, title: "Columns to keep")]),
        Component("filter", .preparation, "Filter", [
            P("column", .column, title: "Column (expression builder)"),
            P("operator", .choice, default: "=", options: Compiler.filterOperators, title: "Operator"),
            P("value", .string, title: "Value"),
            P("expression", .expression, title: "Raw SQL condition (instead of column/operator/value)"),
        ]),
        Component("rename", .preparation, "Rename columns", [P("columns", .mapping, required: true, title: "Old name → new name")]),
        Component("add_column", .preparation, "Add column", [
            P("name", .string, required: true, title: "New column"), P("expression", .expression, required: true, title: "SQL expression"),
        ]),
        Component("join", .preparation, "Join", inputs: ["main", "secondary"], [
            joinType, P("left_key", .column, required: true, title: "Key in main"),
            P("right_key", .column, required: true, title: "Key in secondary"),
        ]),
        Component("union", .preparation, "Union", inputs: ["main", "secondary"],
                  [P("all", .boolean, default: true, title: "Keep duplicates (UNION ALL)")]),
        Component("group_by", .preparation, "Group by", [
            P("columns", .columns, title: "Group by columns"),
            P("aggregates", .aggregates, required: true, title: "Aggregates [{column, op, alias}]"),
        ]),
        Component("order_limit", .preparation, "Order and limit", [
            P("order_by", .sort, title: "[{column, direction}]"), P("limit", .integer, title: "Row limit"),
        ]),
        Component("sample", .preparation, "Sample", [
            P("percent", .number, required: true, title: "Percent of rows (0-100)"), P("seed", .integer, default: 0, title: "Seed"),
        ]),
        Component("distinct", .preparation, "Distinct", [P("columns", .columns, title: "Distinct on (default: whole rows)")]),
        // Spatial operations
        Component("point_from_lonlat", .spatial, "Point from lon/lat", [
            P("lon", .column, required: true, title: "Longitude column"), P("lat", .column, required: true, title: "Latitude column"),
            P("output", .string, default: "geom", title: "Output column"),
        ]),
        Component("buffer", .spatial, "Buffer", [P("distance", .number, required: true, title: "Distance (metres)"), geom]),
        Component("centroid", .spatial, "Centroid", [geom]),
        Component("convex_hull", .spatial, "Convex hull", [geom, P("group_by", .column, title: "One hull per value of")]),
        Component("simplify", .spatial, "Simplify", [
            P("tolerance", .number, required: true, title: "Tolerance (degrees)"), geom,
        ]),
        Component("area_length", .spatial, "Area and length", [geom]),
        Component("spatial_join", .spatial, "Spatial join", inputs: ["main", "secondary"], [
            P("predicate", .choice, default: "intersects", options: ["intersects", "within", "dwithin"], title: "Predicate"),
            P("distance", .number, title: "Distance for dwithin (metres)"), joinType,
            P("aggregates", .aggregates, title: "Aggregate the secondary rows per main row [{column, op, alias}]"),
            geom, P("secondary_geom", .column, title: "Geometry column of secondary"),
        ]),
        Component("clip", .spatial, "Clip", inputs: ["main", "overlay"], [geom, P("overlay_geom", .column, title: "Overlay geometry")]),
        Component("intersection", .spatial, "Intersection", inputs: ["main", "overlay"],
                  [geom, P("overlay_geom", .column, title: "Overlay geometry")]),
        Component("difference", .spatial, "Difference", inputs: ["main", "overlay"],
                  [geom, P("overlay_geom", .column, title: "Overlay geometry")]),
        Component("nearest", .spatial, "K nearest", inputs: ["main", "secondary"], [
            P("k", .integer, default: 1, title: "Neighbours per row"), P("max_distance", .number, title: "Max distance (metres)"),
            geom, P("secondary_geom", .column, title: "Geometry column of secondary"),
        ]),
        Component("distance_matrix", .spatial, "Distance matrix", inputs: ["origins", "destinations"], [
            P("origin_id", .column, required: true, title: "Origin id column"),
            P("destination_id", .column, required: true, title: "Destination id column"),
            geom, P("secondary_geom", .column, title: "Geometry column of destinations"),
        ]),
        // Spatial indexes
        Component("h3_from_geo", .indexes, "H3 from geometry", [resolution, geom]),
        Component("h3_polyfill", .indexes, "H3 polyfill", [resolution, geom]),
        Component("h3_boundary", .indexes, "H3 boundary", [P("column", .column, default: "h3", title: "H3 column")]),
        Component("quadbin_from_geo", .indexes, "Quadbin from geometry", [resolution, geom]),
        // Location services
        Component("geocode", .location, "Geocode", [
            P("address", .column, required: true, title: "Address column"), P("country", .string, title: "ISO country code"),
        ]),
        Component("isolines", .location, "Isolines", [
            P("mode", .choice, default: "car", options: ["car", "walk"], title: "Mode"),
            P("range", .integer, required: true, title: "Range (seconds)"), geom,
        ]),
        Component("route", .location, "Route", inputs: ["origins", "destinations"], [
            P("mode", .choice, default: "car", options: ["car", "walk"], title: "Mode"), geom,
            P("secondary_geom", .column, title: "Geometry column of destinations"),
        ]),
        // Statistics
        Component("kmeans", .statistics, "K-means clusters", [P("k", .integer, required: true, title: "Clusters"), geom]),
        Component("dbscan", .statistics, "DBSCAN clusters", [
            P("eps", .number, required: true, title: "Neighbourhood distance (metres)"),
            P("min_points", .integer, default: 5, title: "Minimum points"), geom,
        ]),
        Component("hotspot", .statistics, "Hotspots (Getis-Ord Gi*)", [
            resolution, P("value", .column, title: "Value to sum per cell (default: count of rows)"), geom,
        ]),
        Component("moran", .statistics, "Global Moran's I", [
            P("value", .column, required: true, title: "Value column"),
            P("distance", .number, required: true, title: "Neighbour distance (metres)"), geom,
        ]),
        // Outputs
        Component("save_table", .output, "Save as table", outputs: [], [
            P("table", .table, required: true, title: "Destination (schema.table)"),
            P("mode", .choice, default: "replace", options: ["replace", "append"], title: "Create or replace / append"),
        ]),
        Component("create_map", .output, "Create map", outputs: [], [P("title", .string, required: true, title: "Map title")]),
        Component("http_request", .output, "HTTP request", outputs: [], [P("url", .url, required: true, title: "URL to POST the summary to")]),
    ]

    public static let byType: [String: Component] = Dictionary(uniqueKeysWithValues: all.map { ($0.type, $0) })

    /// Components whose work is not one SQL query but a side effect the runner performs (or, for the
    /// ones listed in `unavailable`, will perform): their compiled SQL is the rows they act on.
    public static let sideEffects: Set<String> = ["save_table", "create_map", "http_request"]
    /// Listed so documents and the canvas know them, but refused at validation with a clear 400 until their
    /// executor exists (they need the LDS API's HTTP providers or the import worker).
    public static let unavailable: [String: String] = [:]

    /// Components whose rows the runner completes by calling the organisation's LDS providers (metered by
    /// its quotas) after materialising the compiled SQL; see `Compiler.location()`.
    public static let locationServices: Set<String> = ["geocode", "isolines", "route"]

    public static var json: JSON { ["results": .array(all.map(\.json))] }
}
