/// The file formats of exports and how GDAL writes each. CSV carries the geometry as WKT (a CSV has
/// no CRS); Shapefile is written by GDAL straight into a `.shp.zip` (GDAL >= 3.1), so no zip tool runs.
public enum ExportFormat: String, CaseIterable, Sendable {
    case csv, geojson, gpkg, fgb, shp

    /// Also accepted: the names the UI and GDAL users type.
    public init?(name: String) {
        switch name.lowercased() {
        case "csv": self = .csv
        case "geojson", "json": self = .geojson
        case "gpkg", "geopackage": self = .gpkg
        case "fgb", "flatgeobuf": self = .fgb
        case "shp", "shapefile", "zip", "shz": self = .shp
        default: return nil
        }
    }

    public var driver: String {
        switch self {
        case .csv: return "CSV"
        case .geojson: return "GeoJSON"
        case .gpkg: return "GPKG"
        case .fgb: return "FlatGeobuf"
        case .shp: return "ESRI Shapefile"
        }
    }

    /// The file's extension; GDAL picks the zipped Shapefile writer from `.shp.zip`.
    public var fileExtension: String {
        switch self {
        case .csv: return "csv"
        case .geojson: return "geojson"
        case .gpkg: return "gpkg"
        case .fgb: return "fgb"
        case .shp: return "shp.zip"
        }
    }

    public var contentType: String {
        switch self {
        case .csv: return "text/csv; charset=utf-8"
        case .geojson: return "application/geo+json"
        case .gpkg: return "application/geopackage+sqlite3"
        case .fgb: return "application/octet-stream"
        case .shp: return "application/zip"
        }
    }

    /// Layer creation options: WKT geometry in CSV, RFC 7946 GeoJSON (WGS 84, as the format requires).
    public var layerOptions: [String] {
        switch self {
        case .csv: return ["-lco", "GEOMETRY=AS_WKT"]
        case .geojson: return ["-lco", "RFC7946=YES"]
        case .gpkg, .fgb, .shp: return []
        }
    }
}
