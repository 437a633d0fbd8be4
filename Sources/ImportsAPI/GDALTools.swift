import Foundation
import Spawn

/// How GDAL's command-line tools are run for imports.
///
/// Hardening: the child's environment is built from scratch. GDAL_SKIP disables every registered
/// driver except the one chosen for the input and the one needed for the output, so a file can
/// never be opened by a driver we did not choose (a VRT renamed .csv is read as CSV text, /vsi
/// tricks find no VRT driver). GDAL's own HTTP access goes to a dead proxy and /vsicurl accepts no
/// extension, so no driver can reach the network; plugins are not loaded; XML validation is off.
/// Inputs are always paths we generated; URLs are downloaded by the worker, never given to GDAL.
enum GDALTools {
    struct LayerInfo: Equatable {
        var name: String
        var geometryType = "None"
        var featureCount = -1
        var hasSRS = false
        var fields: [(name: String, type: String)] = []
        /// Read from the file's first bytes (`GeoJSONHead`) rather than by ogrinfo: the fields are not
        /// known, and the file's one layer is loaded without naming it.
        var fromHead = false
        /// Known to be WGS 84 longitude/latitude already: EPSG:4326 is assigned, nothing is transformed.
        var lonLat = false

        static func == (a: LayerInfo, b: LayerInfo) -> Bool {
            a.name == b.name && a.geometryType == b.geometryType && a.featureCount == b.featureCount && a.hasSRS == b.hasSRS
                && a.fields.map(\.name) == b.fields.map(\.name) && a.fields.map(\.type) == b.fields.map(\.type) && a.fromHead == b.fromHead && a.lonLat == b.lonLat
        }

        init(name: String) { self.name = name }

        /// The one layer of a GeoJSON FeatureCollection; GDAL gives GeoJSON WGS 84 when it names no CRS.
        init(head: GeoJSONHead.Head, path: String) {
            name = head.name ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            geometryType = head.geometryType
            hasSRS = true
            lonLat = !head.namesCRS
            fromHead = true
        }

        var hasGeometry: Bool { geometryType != "None" }
        /// Lines and polygons become Multi* so single and multi parts share one column type.
        var promoteToMulti: Bool {
            let t = geometryType.lowercased()
            return t.contains("polygon") || t.contains("line string") || t.contains("linestring")
        }
    }

    private static let registry = DriverRegistry()

    /// GDAL_SKIP value enabling only `keep` (every other registered driver is skipped).
    static func skipList(keeping keep: Set<String>) throws -> String {
        try registry.all().filter { !keep.contains($0) }.joined(separator: ",")
    }

    static func environment(keeping drivers: Set<String>, workDir: String, password: String? = nil) throws -> [String: String] {
        var env = [
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": workDir,
            "CPL_TMPDIR": workDir,
            "GDAL_SKIP": try skipList(keeping: drivers),
            "GDAL_DRIVER_PATH": "disable",
            "GDAL_HTTP_PROXY": "127.0.0.1:9",
            "GDAL_HTTPS_PROXY": "127.0.0.1:9",
            "GDAL_HTTP_TIMEOUT": "1",
            "GDAL_HTTP_CONNECTTIMEOUT": "1",
            "GDAL_HTTP_MAX_RETRY": "0",
            "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tessera-no-remote-access",
            "GDAL_XML_VALIDATION": "NO",
            "GDAL_CACHEMAX": "64",
            "PG_USE_COPY": "YES",
            "PGCONNECT_TIMEOUT": "10",
        ]
        if let password { env["PGPASSWORD"] = password }
        return env
    }

    /// Open options for an input: CSV geometry guessing (lat/lon pairs, WKT / WKB hex / GeoJSON
    /// columns) and type detection when `autoguessing`.
    static func openOptions(for format: ImportFormat, autoguessing: Bool) -> [String] {
        guard format == .csv || format == .tsv else { return [] }
        var oo = [
            "X_POSSIBLE_NAMES=longitude,lon,lng,long,x,*_longitude,*_lon,*_lng,*_long,longitude_*,lon_*,lng_*",
            "Y_POSSIBLE_NAMES=latitude,lat,y,*_latitude,*_lat,latitude_*,lat_*",
            "GEOM_POSSIBLE_NAMES=geom,the_geom,geometry,wkt,wkb,geojson,shape,*_geom,*_geometry,*_wkt,geom_*",
            "KEEP_GEOM_COLUMNS=NO",
            "EMPTY_STRING_AS_NULL=YES",
        ]
        if format == .tsv { oo.append("SEPARATOR=TAB") }
        if autoguessing { oo += ["AUTODETECT_TYPE=YES", "AUTODETECT_SIZE_LIMIT=100000"] }
        return oo.flatMap { ["-oo", $0] }
    }

    /// `ogrinfo -ro -so -al` on our input, parsed. Without `counted`, feature counts (and extents) are
    /// not computed, and `featureCount` stays -1: counting is a full pass over the file.
    static func layers(of path: String, format: ImportFormat, autoguessing: Bool, workDir: String, counted: Bool = true,
                       deadline: Date, isCancelled: () -> Bool) throws -> [LayerInfo] {
        let argv = [try ChildProcess.tool("ogrinfo"), "-ro", "-so", "-al", "-nomd"] + (counted ? [] : ["-nocount", "-noextent"])
            + openOptions(for: format, autoguessing: autoguessing) + [path]
        let out = workDir + "/ogrinfo.out", err = workDir + "/ogrinfo.err"
        let child = try ChildProcess(argv, environment: try environment(keeping: [format.driver], workDir: workDir), stdout: out, stderr: err)
        switch child.wait(deadline: deadline, isCancelled: isCancelled) {
        case .exited(0): break
        case .cancelled: throw ImportCancelled()
        case .timedOut: throw ImportFailure("Reading the file took longer than the import time limit")
        default:
            throw ImportFailure("GDAL could not read the file as \(format.driver): \(gdalMessage(err))")
        }
        let layers = parseLayers(ChildProcess.tail(out, limit: 4 << 20))
        guard !layers.isEmpty else { throw ImportFailure("The file holds no layers") }
        return layers
    }

    /// The first error lines GDAL wrote, without noise; never longer than 500 characters.
    static func gdalMessage(_ errPath: String) -> String {
        let lines = ChildProcess.tail(errPath, limit: 8192).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let errors = lines.filter { $0.hasPrefix("ERROR") || $0.hasPrefix("FAILURE") }
        let chosen = (errors.isEmpty ? lines.filter { !$0.isEmpty && !$0.hasPrefix("Warning") && !$0.hasPrefix("->") } : errors).prefix(3)
        var message = chosen.map { line -> String in
            // "ERROR 1: text" -> "text"
            if line.hasPrefix("ERROR"), let colon = line.firstIndex(of: ":") { return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
            return line
        }.joined(separator: "; ")
        if message.isEmpty { message = "unknown error" }
        return String(message.prefix(500))
    }

    static func parseLayers(_ text: String) -> [LayerInfo] {
        var layers: [LayerInfo] = []
        var inWKT = false
        let fieldPattern = try! NSRegularExpression(pattern: #"^(.+): ([A-Za-z0-9]+(\([A-Za-z0-9]+\))?) \(\d+\.\d+\)( .*)?$"#)
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if line.hasPrefix("Layer name: ") {
                layers.append(LayerInfo(name: String(line.dropFirst("Layer name: ".count))))
                inWKT = false
                continue
            }
            guard !layers.isEmpty else { continue }
            if inWKT {
                if line == "(unknown)" { inWKT = false; continue }
                if line.hasPrefix(" ") || line.contains("[") || line.hasPrefix("]") { layers[layers.count - 1].hasSRS = true; continue }
                inWKT = false
            }
            if line.hasPrefix("Layer SRS WKT:") { inWKT = true; continue }
            if line.hasPrefix("Geometry: ") { layers[layers.count - 1].geometryType = String(line.dropFirst("Geometry: ".count)); continue }
            if line.hasPrefix("Feature Count: ") {
                layers[layers.count - 1].featureCount = Int(line.dropFirst("Feature Count: ".count)) ?? -1
                continue
            }
            if line.hasPrefix("Geometry Column") || line.hasPrefix("FID Column") || line.hasPrefix("Extent:")
                || line.hasPrefix("Data axis") || line.hasPrefix("Coordinate epoch") || line.hasPrefix("  ") { continue }
            let range = NSRange(line.startIndex..., in: line)
            if let m = fieldPattern.firstMatch(in: line, range: range),
               let name = Range(m.range(at: 1), in: line), let type = Range(m.range(at: 2), in: line) {
                layers[layers.count - 1].fields.append((String(line[name]), String(line[type])))
            }
        }
        return layers
    }
}

/// Names of every driver this GDAL registers (raster and vector), read once from the tools.
final class DriverRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var names: [String]?

    func all() throws -> [String] {
        try lock.withLock {
            if let names { return names }
            var found = Set<String>()
            let dir = NSTemporaryDirectory() + "tessera-gdal-formats-\(getpid())"
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            // Literal tool names: packaging/tool_depends.py finds what the code runs by them.
            for (tool, path) in [("ogrinfo", try ChildProcess.tool("ogrinfo")), ("gdalinfo", try ChildProcess.tool("gdalinfo"))] {
                let out = dir + "/\(tool).out"
                let child = try ChildProcess([path, "--formats"], environment: ["PATH": "/usr/bin:/bin", "GDAL_DRIVER_PATH": "disable"],
                                             stdout: out, stderr: dir + "/\(tool).err")
                guard child.wait(deadline: Date().addingTimeInterval(30), isCancelled: { false }) == .exited(0) else {
                    throw ImportFailure("could not list GDAL drivers with \(tool) --formats", permanent: false)
                }
                // "  ESRI Shapefile -vector- (rw+v): ESRI Shapefile"
                for line in ChildProcess.tail(out, limit: 1 << 20).split(separator: "\n") {
                    guard line.hasPrefix("  "), let marker = line.range(of: " -raster") ?? line.range(of: " -vector")
                            ?? line.range(of: " -multidimensional") else { continue }
                    found.insert(line[..<marker.lowerBound].trimmingCharacters(in: .whitespaces))
                }
            }
            guard found.count > 10, found.contains("PostgreSQL") else {
                throw ImportFailure("GDAL's driver list could not be read", permanent: false)
            }
            names = found.sorted()
            return names!
        }
    }
}
