import Foundation

/// CARTO's binary raster tile as deck.gl's CartoRasterTileLoader reads it (protobuf, no compression):
/// `Tile { 1: blockSize varint; 2: repeated Band }`, `Band { 1: name string; 2: type string; 3: data bytes }`,
/// data being the band's pixels as a little-endian typed array of `type` (uint8 … float64), row-major
/// from the north-west pixel. `type` must precede `data`: the reader picks the array type from it.
enum RasterTileEncoding {
    static let blockSize = 256

    struct Band {
        var name: String
        var type: String
        var values: [Double]
    }

    static func encode(blockSize: Int, bands: [Band]) -> [UInt8] {
        var out: [UInt8] = []
        out.append(0x08) // field 1, varint
        varint(UInt64(blockSize), into: &out)
        for band in bands {
            var message: [UInt8] = []
            bytesField(1, Array(band.name.utf8), into: &message)
            bytesField(2, Array(band.type.utf8), into: &message)
            bytesField(3, pixels(band.values, type: band.type), into: &message)
            bytesField(2, message, into: &out)
        }
        return out
    }

    static func pixels(_ values: [Double], type: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 8)
        func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func integer<T: FixedWidthInteger>(_ v: Double, _: T.Type) -> T {
            guard v.isFinite else { return 0 }
            return T(exactly: v.rounded()) ?? (v < 0 ? T.min : T.max)
        }
        for v in values {
            switch type {
            case "uint8": append(integer(v, UInt8.self))
            case "int8": append(integer(v, Int8.self))
            case "uint16": append(integer(v, UInt16.self))
            case "int16": append(integer(v, Int16.self))
            case "uint32": append(integer(v, UInt32.self))
            case "int32": append(integer(v, Int32.self))
            case "uint64": append(integer(v, UInt64.self))
            case "int64": append(integer(v, Int64.self))
            case "float32": append(Float(v).bitPattern)
            default: append(v.bitPattern)
            }
        }
        return out
    }

    static func varint(_ value: UInt64, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }

    static func bytesField(_ field: UInt64, _ bytes: [UInt8], into out: inout [UInt8]) {
        varint(field << 3 | 2, into: &out)
        varint(UInt64(bytes.count), into: &out)
        out += bytes
    }
}
