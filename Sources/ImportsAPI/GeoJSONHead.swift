import Foundation

/// What the loader needs to know about a GeoJSON FeatureCollection, read from its first bytes only.
///
/// GDAL's GeoJSON driver parses the whole file when it opens it, to learn the layer's schema: asking
/// `ogrinfo` first meant a whole extra parse before ogr2ogr made its own two (on a 100 MB file about a
/// third of the import). The loader only needs the geometry kind (lines and polygons are promoted to
/// Multi*) and whether a CRS is named — GDAL gives GeoJSON WGS 84 when none is, the one layer needs no
/// name, and the geometry column is given a temporary name (renamed after the load) since the
/// attributes are not known. The first non-null geometry decides; a file whose kinds are mixed gets a
/// generic column either way. Anything else (a lone Feature, no geometry in the first bytes, text we do
/// not follow) returns nil and the caller asks ogrinfo as before.
enum GeoJSONHead {
    struct Head: Equatable {
        /// The first non-null geometry's `type`, e.g. "Point", "MultiPolygon".
        var geometryType: String
        /// The collection's `name` member when it comes before the first geometry (GDAL's layer name).
        var name: String?
        /// Whether the file may name a CRS (a `crs` member, RFC 7946's predecessor). Without one the
        /// coordinates are WGS 84 longitude/latitude: EPSG:4326 as PostGIS stores it, nothing to transform.
        var namesCRS = false

        init(geometryType: String, name: String? = nil, namesCRS: Bool = false) {
            self.geometryType = geometryType
            self.name = name
            self.namesCRS = namesCRS
        }
    }

    private enum Container { case object, array }

    static let geometryTypes: Set<String> = ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                                             "GeometryCollection"]

    static func read(path: String, limit: Int = 4 << 20) -> Head? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: limit), var head = parse(data) else { return nil }
        // A `crs` member may also come after the features: any mention in the bytes read or the last ones
        // counts (at worst a needless transform).
        let crs = Data(#""crs""#.utf8)
        if data.range(of: crs) != nil { head.namesCRS = true }
        if !head.namesCRS, let end = try? handle.seekToEnd(), end > UInt64(data.count) {
            try? handle.seek(toOffset: end - min(end - UInt64(data.count), 64 << 10))
            if let tail = try? handle.readToEnd(), tail.range(of: crs) != nil { head.namesCRS = true }
        }
        return head
    }

    /// Follows the JSON structure (strings, escapes, nesting) just far enough: the root object's
    /// `type` must be FeatureCollection and its `features` an array of objects whose `geometry` has a
    /// `type`. Stops at the first such geometry; nil when the bytes end first.
    static func parse(_ bytes: Data) -> Head? {
        var stack: [Container] = []
        var path: [String?] = []          // the key each open container was reached by (nil inside arrays)
        var key: String?                  // the last key read in the innermost object
        var expectKey = false
        var rootType: String?, name: String?
        var namesCRS = false
        var inString = false, escaped = false
        var text: [UInt8] = []

        func at(_ keys: [String?]) -> Bool { path == keys }

        for b in bytes {
            if inString {
                if escaped { escaped = false; text.append(b); continue }
                if b == UInt8(ascii: "\\") { escaped = true; text.append(b); continue }
                if b != UInt8(ascii: "\"") { text.append(b); continue }
                inString = false
                let s = String(decoding: text, as: UTF8.self)
                if stack.last == .object && expectKey {
                    key = s
                    expectKey = false
                    if stack.count == 1, s == "crs" { namesCRS = true }
                    continue
                }
                // A string value.
                if stack.count == 1, key == "type" { rootType = s }
                if stack.count == 1, key == "name", !s.contains("\\") { name = s }
                if key == "type", stack.count == 4, at([nil, "features", nil, "geometry"]) {
                    guard rootType == "FeatureCollection", geometryTypes.contains(s) else { return nil }
                    return Head(geometryType: s, name: name, namesCRS: namesCRS)
                }
                continue
            }
            switch b {
            case UInt8(ascii: "\""):
                inString = true
                text.removeAll(keepingCapacity: true)
            case UInt8(ascii: "{"):
                path.append(stack.last == .object ? key : nil)
                stack.append(.object)
                key = nil
                expectKey = true
            case UInt8(ascii: "["):
                if stack.isEmpty { return nil }
                path.append(stack.last == .object ? key : nil)
                stack.append(.array)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard !stack.isEmpty else { return nil }
                stack.removeLast()
                let reachedBy = path.removeLast()
                // Back in the enclosing object: the value just closed belonged to `reachedBy`.
                key = reachedBy
                if stack.isEmpty { return nil }
            case UInt8(ascii: ","):
                if stack.last == .object { expectKey = true; key = nil }
            default:
                break // numbers, true, false, null (a null geometry: the next feature decides), ':' and blanks
            }
        }
        return nil
    }
}
