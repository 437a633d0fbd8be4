import Foundation

/// PostGIS raster well-known binary (the `raster` type's input, as hex): a block goes to the warehouse as
/// its pixels in the band's own type, a fraction of the size of a float8[] text per band, and PostGIS
/// parses it without evaluating any per-pixel SQL. Layout (little-endian): endian 1, version u16, bands
/// u16, scaleX, scaleY, ipX, ipY, skewX, skewY f64, srid i32, width u16, height u16; then per band one
/// byte (pixel type | 0x40 has-nodata), the nodata value and width × height pixels in the pixel type.
/// Imports write blocks with it and the Maps API reads them back (`ST_AsBinary(rast)`), both without
/// a per-pixel SQL value.
public enum RasterWKB {
    public struct Band: Equatable {
        public var pixelType: String
        public var nodata: Double
        public var values: [Double]

        public init(pixelType: String, nodata: Double, values: [Double]) {
            self.pixelType = pixelType
            self.nodata = nodata
            self.values = values
        }
    }

    public struct DecodeError: Error {}

    static let pixelCodes: [String: UInt8] = ["8BSI": 3, "8BUI": 4, "16BSI": 5, "16BUI": 6, "32BSI": 7, "32BUI": 8, "32BF": 10, "64BF": 11]

    public static func encode(width: Int, height: Int, upperLeft: (x: Double, y: Double), pixelSize: Double, srid: Int32, bands: [Band]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(61 + bands.count * (9 + width * height * 8))
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func put(_ v: Double) { put(v.bitPattern) }
        out.append(1)
        put(UInt16(0))
        put(UInt16(bands.count))
        put(pixelSize); put(-pixelSize); put(upperLeft.x); put(upperLeft.y); put(0.0); put(0.0)
        put(srid)
        put(UInt16(width)); put(UInt16(height))
        for band in bands {
            let code = pixelCodes[band.pixelType] ?? 11
            out.append(code | 0x40)
            append(band.nodata, code: code, into: &out)
            for v in band.values { append(v, code: code, into: &out) }
        }
        return out
    }

    /// One pixel in the pixel type: integers rounded half away from zero and clamped (the raster tile
    /// encoding does the same), NaN in an integer band stored as 0.
    static func append(_ v: Double, code: UInt8, into out: inout [UInt8]) {
        func put<T: FixedWidthInteger>(_ x: T) { withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) } }
        func integer<T: FixedWidthInteger>(_: T.Type) -> T {
            guard v.isFinite else { return 0 }
            return T(exactly: v.rounded()) ?? (v < 0 ? T.min : T.max)
        }
        switch code {
        case 3: put(integer(Int8.self))
        case 4: put(integer(UInt8.self))
        case 5: put(integer(Int16.self))
        case 6: put(integer(UInt16.self))
        case 7: put(integer(Int32.self))
        case 8: put(integer(UInt32.self))
        case 10: put(Float(v).bitPattern)
        default: put(v.bitPattern)
        }
    }

    /// The bands of a little-endian, in-database raster, each pixel as a Double (integers exact).
    public static func decode(_ bytes: [UInt8]) throws -> (width: Int, height: Int, bands: [Band]) {
        var pos = 0
        func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard pos + n <= bytes.count else { throw DecodeError() }
            defer { pos += n }
            return bytes[pos..<(pos + n)]
        }
        func uint(_ n: Int) throws -> UInt64 { try take(n).reversed().reduce(0) { $0 << 8 | UInt64($1) } }
        guard try uint(1) == 1 else { throw DecodeError() } // ST_AsBinary writes the machine's order: little-endian here
        _ = try uint(2)
        let count = Int(try uint(2))
        _ = try take(6 * 8 + 4)
        let width = Int(try uint(2)), height = Int(try uint(2))
        let codes = Dictionary(uniqueKeysWithValues: pixelCodes.map { ($1, $0) })
        var bands: [Band] = []
        for _ in 0..<count {
            let flags = UInt8(try uint(1))
            let code = flags & 0x0F
            guard flags & 0x80 == 0, let type = codes[code] else { throw DecodeError() } // out-of-db bands are not ours
            let size = [3: 1, 4: 1, 5: 2, 6: 2, 7: 4, 8: 4, 10: 4, 11: 8][code] ?? 8
            func value(_ raw: UInt64) -> Double {
                switch code {
                case 3: return Double(Int8(truncatingIfNeeded: raw))
                case 5: return Double(Int16(truncatingIfNeeded: raw))
                case 7: return Double(Int32(truncatingIfNeeded: raw))
                case 10: return Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw)))
                case 11: return Double(bitPattern: raw)
                default: return Double(raw)
                }
            }
            let nodata = value(try uint(size))
            let data = try take(width * height * size)
            var values: [Double] = []
            values.reserveCapacity(width * height)
            var i = data.startIndex
            for _ in 0..<(width * height) {
                var raw: UInt64 = 0
                for k in stride(from: size - 1, through: 0, by: -1) { raw = raw << 8 | UInt64(data[i + k]) }
                values.append(value(raw))
                i += size
            }
            bands.append(Band(pixelType: type, nodata: nodata, values: values))
        }
        return (width, height, bands)
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: bytes.count * 2)
        for (i, b) in bytes.enumerated() {
            out[2 * i] = digits[Int(b >> 4)]
            out[2 * i + 1] = digits[Int(b & 15)]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
