import Foundation
import HTTPKit

/// The formats an import accepts. Each maps to exactly one GDAL driver: every other driver is disabled
/// for the child process (GDAL_SKIP), so a file can only ever be read by the driver we chose.
/// GeoParquet is absent on purpose: Debian 12's GDAL 3.6.2 is built without the Parquet/Arrow driver.
enum ImportFormat: String, Sendable, CaseIterable {
    case csv, tsv, geojson, geojsonseq, shapefile, gpkg, kml, gpx, flatgeobuf

    var driver: String {
        switch self {
        case .csv, .tsv: return "CSV"
        case .geojson: return "GeoJSON"
        case .geojsonseq: return "GeoJSONSeq"
        case .shapefile: return "ESRI Shapefile"
        case .gpkg: return "GPKG"
        case .kml: return "LIBKML"
        case .gpx: return "GPX"
        case .flatgeobuf: return "FlatGeobuf"
        }
    }

    /// The extension we give the input file (drivers look at it; the client's name is never used).
    var fileExtension: String {
        switch self {
        case .csv: return "csv"
        case .tsv: return "tsv"
        case .geojson: return "geojson"
        case .geojsonseq: return "geojsonl"
        case .shapefile: return "shp"
        case .gpkg: return "gpkg"
        case .kml: return "kml"
        case .gpx: return "gpx"
        case .flatgeobuf: return "fgb"
        }
    }

    /// Format by a (lower-cased) file extension, for members of archives.
    static func byExtension(_ ext: String) -> ImportFormat? {
        switch ext {
        case "csv", "txt": return .csv
        case "tsv", "tab": return .tsv
        case "geojson", "json": return .geojson
        case "geojsonl", "geojsons", "ndjson", "jsonl": return .geojsonseq
        case "shp": return .shapefile
        case "gpkg": return .gpkg
        case "kml": return .kml
        case "gpx": return .gpx
        case "fgb": return .flatgeobuf
        default: return nil
        }
    }
}

/// What a file is, decided from its first bytes (and, where content is ambiguous, the extension of the
/// name the client gave — used only as a hint, never as a path).
enum DetectedContent: Equatable {
    case format(ImportFormat)
    case zip
}

enum FormatDetector {
    static let sniffBytes = 64 * 1024

    static func fileExtension(of name: String?) -> String {
        guard let name, let dot = name.lastIndex(of: ".") else { return "" }
        return String(name[name.index(after: dot)...]).lowercased()
    }

    static func sniff(_ path: String) throws -> (bytes: [UInt8], size: Int) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ImportFailure("The uploaded file could not be read", permanent: false) }
        defer { try? handle.close() }
        let size = Int((try? handle.seekToEnd()) ?? 0)
        try? handle.seek(toOffset: 0)
        let data = (try? handle.read(upToCount: sniffBytes)) ?? nil
        return ([UInt8](data ?? Data()), size)
    }

    static func detect(path: String, nameHint: String?) throws -> DetectedContent {
        let (head, size) = try sniff(path)
        if size == 0 { throw ImportFailure("The file is empty") }
        return try detect(head: head, nameHint: nameHint)
    }

    static func detect(head: [UInt8], nameHint: String?) throws -> DetectedContent {
        let ext = fileExtension(of: nameHint)
        func starts(_ magic: [UInt8]) -> Bool { head.count >= magic.count && Array(head.prefix(magic.count)) == magic }
        if starts([0x50, 0x4B, 0x03, 0x04]) || starts([0x50, 0x4B, 0x05, 0x06]) { return .zip }
        if starts(Array("SQLite format 3".utf8) + [0]) { return .format(.gpkg) }
        if starts([0x66, 0x67, 0x62, 0x03, 0x66, 0x67, 0x62]) { return .format(.flatgeobuf) }
        if starts([0x00, 0x00, 0x27, 0x0A]) {
            throw ImportFailure("A Shapefile must be uploaded as a .zip holding its .shp, .shx and .dbf files")
        }
        if starts([0x1F, 0x8B]) { throw ImportFailure("gzip-compressed files are not supported; upload a .zip archive instead") }
        if starts(Array("PAR1".utf8)) {
            throw ImportFailure("GeoParquet is not supported: this server's GDAL has no Parquet driver")
        }
        if starts([0x50, 0x4B, 0x07, 0x08]) || starts([0x50, 0x4B, 0x01, 0x02]) {
            throw ImportFailure("The file is not a valid zip archive (corrupt or truncated)")
        }
        var i = 0
        if starts([0xEF, 0xBB, 0xBF]) { i = 3 }
        while i < head.count, [0x20, 0x09, 0x0A, 0x0D].contains(head[i]) { i += 1 }
        guard i < head.count else { throw ImportFailure("The file holds only whitespace") }
        let text = Array(head[i...])
        switch text[0] {
        case 0x1E:
            return .format(.geojsonseq)
        case UInt8(ascii: "<"):
            return .format(try xmlFormat(text))
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            if ["geojsonl", "geojsons", "ndjson", "jsonl"].contains(ext) { return .format(.geojsonseq) }
            return .format(looksLikeSequence(text) ? .geojsonseq : .geojson)
        default:
            break
        }
        if head.contains(0) { throw ImportFailure("Unrecognised file format (binary content)") }
        if ext == "tsv" || ext == "tab" { return .format(.tsv) }
        let firstLine = text.prefix { $0 != 0x0A && $0 != 0x0D }
        if firstLine.contains(0x09) && !firstLine.contains(UInt8(ascii: ",")) && !firstLine.contains(UInt8(ascii: ";")) {
            return .format(.tsv)
        }
        return .format(.csv)
    }

    /// GeoJSON text sequences: the first line is a complete JSON object and another object follows.
    static func looksLikeSequence(_ text: [UInt8]) -> Bool {
        guard text.first == UInt8(ascii: "{"), let newline = text.firstIndex(of: 0x0A) else { return false }
        guard case .object = try? JSON.decode(Array(text[..<newline])) else { return false }
        let rest = text[(newline + 1)...].drop { [0x20, 0x09, 0x0A, 0x0D, 0x1E].contains($0) }
        return rest.first == UInt8(ascii: "{")
    }

    /// KML and GPX by their root element. Documents with a DOCTYPE are refused outright: neither format
    /// needs one, and it is where external entities (XXE) and entity expansion (billion laughs) live.
    static func xmlFormat(_ text: [UInt8]) throws -> ImportFormat {
        var i = 0
        func has(_ s: String, at p: Int) -> Bool {
            let b = Array(s.utf8)
            return p + b.count <= text.count && Array(text[p..<(p + b.count)]) == b
        }
        while i < text.count {
            guard text[i] == UInt8(ascii: "<") else { i += 1; continue }
            if has("<?", at: i) || has("<!--", at: i) {
                let end = has("<?", at: i) ? "?>" : "-->"
                var j = i + 2
                while j < text.count && !has(end, at: j) { j += 1 }
                i = j + end.utf8.count
                continue
            }
            if has("<!", at: i) {
                throw ImportFailure("XML documents with a DOCTYPE or entity declarations are not accepted")
            }
            var j = i + 1
            var name: [UInt8] = []
            while j < text.count, ![0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: ">"), UInt8(ascii: "/")].contains(text[j]) {
                name.append(text[j]); j += 1
            }
            let qualified = String(decoding: name, as: UTF8.self)
            let local = qualified.split(separator: ":").last.map(String.init) ?? qualified
            switch local {
            case "kml": return .kml
            case "gpx": return .gpx
            case "OGRVRTDataSource", "VRTDataset", "GDALWMS", "WMS_Capabilities":
                throw ImportFailure("GDAL virtual or service description files (VRT) are not accepted")
            default:
                throw ImportFailure("Unsupported XML document (root element <\(local.prefix(40))>); KML and GPX are accepted")
            }
        }
        throw ImportFailure("The XML document's root element was not found in its first 64 KiB")
    }
}
