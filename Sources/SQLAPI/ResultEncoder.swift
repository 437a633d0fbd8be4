import HTTPKit
import Platform

/// Encodes result rows for each output format, appending to a byte buffer.
struct ResultEncoder {
    enum Format: String { case json, geojson, csv, ndjson }

    let names: [String]
    let kinds: [ColumnKind]
    /// Each column's `{"name":` (the first) or `,"name":` in one flat buffer, `keyEnds[i]` where column i's ends:
    /// a row appends one slice per column, without touching an array of arrays (a retain and release each).
    private let keys: [UInt8]
    private let keyEnds: [Int]

    init(names: [String], kinds: [ColumnKind]) {
        self.names = names
        self.kinds = kinds
        var keys: [UInt8] = [], ends: [Int] = []
        for (i, name) in names.enumerated() {
            keys.append(UInt8(ascii: i == 0 ? "{" : ","))
            JSON.appendString(name, to: &keys)
            keys.append(UInt8(ascii: ":"))
            ends.append(keys.count)
        }
        self.keys = keys
        keyEnds = ends
    }

    /// `[{"name":…,"type":…},…]`, written directly rather than through a `JSON` value (a dictionary per column).
    func appendSchema(to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (i, (name, kind)) in zip(names, kinds).enumerated() {
            out.append(contentsOf: (i == 0 ? #"{"name":"# : #",{"name":"#).utf8)
            JSON.appendString(name, to: &out)
            out.append(contentsOf: #","type":""#.utf8)
            out.append(contentsOf: kind.schemaType.utf8)
            out.append(contentsOf: #""}"#.utf8)
        }
        out.append(UInt8(ascii: "]"))
    }

    /// `{"col": value, ...}` for one row, where `value(i)` yields column i's raw text bytes or nil for NULL.
    func appendObject(to out: inout [UInt8], value: (Int) -> UnsafeBufferPointer<UInt8>?) {
        if kinds.isEmpty { out.append(UInt8(ascii: "{")) }
        keys.withUnsafeBufferPointer { keys in
            var start = 0
            for i in 0..<keyEnds.count {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: keys[start..<keyEnds[i]]))
                start = keyEnds[i]
                ResultEncoder.appendJSONValue(value(i), kind: kinds[i], to: &out)
            }
        }
        out.append(UInt8(ascii: "}"))
    }

    static func appendJSONValue(_ bytes: UnsafeBufferPointer<UInt8>?, kind: ColumnKind, to out: inout [UInt8]) {
        guard let bytes else { out.append(contentsOf: "null".utf8); return }
        switch kind {
        case .number:
            // NaN and ±Infinity have no JSON form.
            if let first = bytes.first, first == UInt8(ascii: "N") || first == UInt8(ascii: "I") || (first == UInt8(ascii: "-") && bytes.count > 1 && bytes[1] == UInt8(ascii: "I")) {
                out.append(contentsOf: "null".utf8)
            } else {
                out.append(contentsOf: bytes)
            }
        case .boolean:
            out.append(contentsOf: (bytes.first == UInt8(ascii: "t") ? "true" : "false").utf8)
        case .json:
            out.append(contentsOf: bytes)
        default:
            JSON.appendString(utf8: bytes, to: &out)
        }
    }

    func appendCSVHeader(to out: inout [UInt8]) {
        for (i, name) in names.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            ResultEncoder.appendCSVField(Array(name.utf8), to: &out)
        }
        out.append(contentsOf: [0x0D, 0x0A])
    }

    func appendCSVRow(to out: inout [UInt8], value: (Int) -> UnsafeBufferPointer<UInt8>?) {
        for i in 0..<names.count {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            if let bytes = value(i) { ResultEncoder.appendCSVField(bytes, to: &out) }
        }
        out.append(contentsOf: [0x0D, 0x0A])
    }

    /// RFC 4180: quote fields holding separators, quotes or line breaks; double embedded quotes.
    static func appendCSVField<C: Collection>(_ bytes: C, to out: inout [UInt8]) where C.Element == UInt8 {
        let needsQuotes = bytes.contains { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }
        guard needsQuotes else { out.append(contentsOf: bytes); return }
        out.append(0x22)
        for b in bytes {
            if b == 0x22 { out.append(0x22) }
            out.append(b)
        }
        out.append(0x22)
    }
}
