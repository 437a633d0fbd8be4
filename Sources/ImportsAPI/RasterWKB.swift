import Foundation

/// PostGIS raster well-known binary (the `raster` type's input, as hex): a block goes to the warehouse as
/// its pixels in the band's own type, a fraction of the size of a float8[] text per band, and PostGIS
/// parses it without evaluating any per-pixel SQL. Layout (little-endian): endian 1, version u16, bands
/// u16, scaleX, scaleY, ipX, ipY, skewX, skewY f64, srid i32, width u16, height u16; then per band one
/// byte (pixel type | 0x40 has-nodata), the nodata value and width × height pixels in the pixel type.
enum RasterWKB {
    struct Band {
        var pixelType: String
        var nodata: Double
        var values: [Double]
    }

    static let pixelCodes: [String: UInt8] = ["8BSI": 3, "8BUI": 4, "16BSI": 5, "16BUI": 6, "32BSI": 7, "32BUI": 8, "32BF": 10, "64BF": 11]

    static func encode(width: Int, height: Int, upperLeft: (x: Double, y: Double), pixelSize: Double, srid: Int32, bands: [Band]) -> [UInt8] {
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

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: bytes.count * 2)
        for (i, b) in bytes.enumerated() {
            out[2 * i] = digits[Int(b >> 4)]
            out[2 * i + 1] = digits[Int(b & 15)]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
