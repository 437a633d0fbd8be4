import Foundation
import HTTPKit
import Jobs
import Platform
import Postgres
import SQLKit
import Spawn

/// Raster imports (GeoTIFF / COG) into a CARTO-style raster table: one row per quadbin-aligned block of
/// 256×256 Web Mercator pixels, `block bigint` (the block's quadbin cell) and `rast raster` (PostGIS
/// raster, EPSG:3857, every band). The band metadata the client reads (`raster_metadata`) is computed
/// here once and stored as the table's comment, so the Maps API never scans pixels to answer a TileJSON.
///
/// GDAL reprojects into a grid whose pixels are exactly the quadbin cells at `pixelResolution` (nearest
/// neighbour, never coarser than the source), written as raw Float64 (ENVI) that is cut into blocks here.
enum RasterImport {
    static let blockSize = 256
    static let maxBlocks = 4096
    static let worldSize = 40_075_016.685_578_49
    static let commentPrefix = "tessera_raster:"

    /// TIFF and BigTIFF, both byte orders.
    static func isTIFF(_ head: [UInt8]) -> Bool {
        let magic = Array(head.prefix(4))
        return magic == [0x49, 0x49, 0x2A, 0x00] || magic == [0x4D, 0x4D, 0x00, 0x2A]
            || magic == [0x49, 0x49, 0x2B, 0x00] || magic == [0x4D, 0x4D, 0x00, 0x2B]
    }

    static func isRasterName(_ name: String?) -> Bool {
        ["tif", "tiff", "geotiff", "cog"].contains(FormatDetector.fileExtension(of: name))
    }

    struct Band: Equatable {
        var name: String
        var gdalType: String
        /// The source's nodata; bands without one get NaN (float types) or 0, which also fills the padding.
        var nodata: Double
        var nodataJSON: JSON { nodata.isNaN ? "nan" : .number(nodata) }

        /// The client's band type names (`RasterBandType`) and PostGIS pixel types.
        var clientType: String? {
            ["Byte": "uint8", "Int8": "int8", "UInt16": "uint16", "Int16": "int16", "UInt32": "uint32", "Int32": "int32",
             "Float32": "float32", "Float64": "float64"][gdalType]
        }
        var pixelType: String? {
            ["Byte": "8BUI", "Int8": "8BSI", "UInt16": "16BUI", "Int16": "16BSI", "UInt32": "32BUI", "Int32": "32BSI",
             "Float32": "32BF", "Float64": "64BF"][gdalType]
        }
    }

    /// The grid chosen for a source extent (EPSG:3857 metres) and pixel size.
    struct Grid: Equatable {
        var pixelResolution: Int
        var blockResolution: Int { pixelResolution - 8 }
        var x0: Int, y0: Int, x1: Int, y1: Int // block tile range at blockResolution, inclusive
        var blocksWide: Int { x1 - x0 + 1 }
        var blocksHigh: Int { y1 - y0 + 1 }
        var pixelSize: Double { RasterImport.worldSize / Double(1 << pixelResolution) }
        var tileSize: Double { pixelSize * Double(RasterImport.blockSize) }
        /// West, south, east, north of the grid in EPSG:3857.
        var extent: [Double] {
            let half = RasterImport.worldSize / 2
            return [Double(x0) * tileSize - half, half - Double(y1 + 1) * tileSize, Double(x1 + 1) * tileSize - half, half - Double(y0) * tileSize]
        }

        /// The finest quadbin resolution whose pixels are no coarser than the source's, clamped to 8…26.
        static func choose(mercatorExtent e: [Double], pixelSize: Double) throws -> Grid {
            guard pixelSize > 0, e.count == 4, e[2] > e[0], e[3] > e[1] else { throw ImportFailure("The raster has an empty extent") }
            let r = min(26, max(8, Int(ceil(log2(RasterImport.worldSize / pixelSize) - 1e-9))))
            let half = RasterImport.worldSize / 2
            let tile = RasterImport.worldSize / Double(1 << (r - 8))
            let n = (1 << (r - 8)) - 1
            func clamp(_ v: Int) -> Int { min(n, max(0, v)) }
            let grid = Grid(pixelResolution: r, x0: clamp(Int(floor((e[0] + half) / tile))), y0: clamp(Int(floor((half - e[3]) / tile))),
                            x1: clamp(Int(ceil((e[2] + half) / tile)) - 1), y1: clamp(Int(ceil((half - e[1]) / tile)) - 1))
            guard grid.blocksWide * grid.blocksHigh <= RasterImport.maxBlocks else {
                throw ImportFailure("The raster is too large: \(grid.blocksWide * grid.blocksHigh) blocks of 256×256 pixels at its resolution (at most \(RasterImport.maxBlocks))")
            }
            return grid
        }

        /// The overview `levels` resolutions coarser: the blocks holding this grid's blocks, pixels 2^levels
        /// times as large. Overviews go down to block resolution 0, one block for the world.
        func overview(_ levels: Int) -> Grid {
            Grid(pixelResolution: pixelResolution - levels, x0: x0 >> levels, y0: y0 >> levels, x1: x1 >> levels, y1: y1 >> levels)
        }
    }

    static func mercator(lon: Double, lat: Double) -> (Double, Double) {
        let r = 6_378_137.0
        let clamped = max(-85.051_128_78, min(85.051_128_78, lat))
        return (lon * .pi / 180 * r, r * log(tan(.pi / 4 + clamped * .pi / 360)))
    }

    // MARK: SQL (pure)

    static func nodataText(_ band: Band) -> String { band.nodata.isNaN ? "NaN" : SQL.text(band.nodata) }

    static func createSQL(_ table: QualifiedName) -> SQL {
        "CREATE TABLE \(table) (block bigint PRIMARY KEY, rast raster NOT NULL)"
    }

    /// One block: its quadbin cell at the grid's block resolution and the raster as hex WKB (see `RasterWKB`).
    static func insertSQL(_ table: QualifiedName, grid: Grid, x: Int, y: Int, wkb: String) -> SQL {
        "INSERT INTO \(table) (block, rast) VALUES (carto.quadbin_fromzxy(\(literal: grid.blockResolution), \(x)::bigint, \(y)::bigint), \(wkb)::raster)"
    }

    /// The block's raster in WKB: every band, 256×256 pixels row-major from the north-west one.
    static func blockWKB(bands: [Band], grid: Grid, x: Int, y: Int, values: [[Double]]) -> [UInt8] {
        let half = worldSize / 2
        let west: Double = Double(x) * grid.tileSize - half
        let north: Double = half - Double(y) * grid.tileSize
        var wkbBands: [RasterWKB.Band] = []
        for (i, band) in bands.enumerated() {
            wkbBands.append(RasterWKB.Band(pixelType: band.pixelType ?? "64BF", nodata: band.nodata, values: values[i]))
        }
        return RasterWKB.encode(width: blockSize, height: blockSize, upperLeft: (west, north), pixelSize: grid.pixelSize, srid: 3857, bands: wkbBands)
    }

    /// COMMENT takes no parameters: the server quotes the bound text into the statement (format %L), which
    /// is then run as returned.
    static func commentSQL(_ table: QualifiedName, metadata: JSON) -> SQL {
        "SELECT format('COMMENT ON TABLE %s IS %L', \(table.qualifiedIdentifier.text)::regclass, \(commentPrefix + metadata.text)::text)"
    }
}

/// Runs the raster import steps for one job (the table swap stays with `ImportRunner.finish`).
struct RasterLoader {
    let work: String
    let input: String
    let deadline: Date
    let context: JobContext

    func run(_ argv: [String], drivers: Set<String>, name: String) throws -> String {
        let out = work + "/\(name).out", err = work + "/\(name).err"
        let child = try ChildProcess(argv, environment: try GDALTools.environment(keeping: drivers, workDir: work), stdout: out, stderr: err)
        switch child.wait(deadline: deadline, isCancelled: { context.isCancelled }) {
        case .exited(0): return ChildProcess.tail(out, limit: 4 << 20)
        case .cancelled: throw ImportCancelled()
        case .timedOut: throw ImportFailure("Reading the raster took longer than the import time limit")
        default: throw ImportFailure("GDAL could not read the raster: \(GDALTools.gdalMessage(err))")
        }
    }

    /// The source's bands and its extent and pixel size in EPSG:3857.
    func inspect() throws -> (bands: [RasterImport.Band], extent: [Double], pixelSize: Double) {
        let text = try run([try ChildProcess.tool("gdalinfo"), "-json", input], drivers: ["GTiff"], name: "gdalinfo")
        guard let info = try? JSON.decode(text) else { throw ImportFailure("GDAL could not describe the raster") }
        guard let ring = info["wgs84Extent"]?["coordinates"]?.arrayValue?.first?.arrayValue, !ring.isEmpty else {
            throw ImportFailure("The raster has no coordinate reference system (a GeoTIFF with a CRS is required)")
        }
        let points = ring.compactMap { p -> (Double, Double)? in
            guard let a = p.arrayValue, a.count >= 2, let lon = a[0].doubleValue, let lat = a[1].doubleValue else { return nil }
            return RasterImport.mercator(lon: lon, lat: lat)
        }
        let xs = points.map(\.0), ys = points.map(\.1)
        guard let minX = xs.min(), let maxX = xs.max(), let minY = ys.min(), let maxY = ys.max(),
              let size = info["size"]?.arrayValue, size.count == 2, let w = size[0].intValue, let h = size[1].intValue, w > 0, h > 0 else {
            throw ImportFailure("The raster has no size or extent")
        }
        let bands = try (info["bands"]?.arrayValue ?? []).enumerated().map { i, b -> RasterImport.Band in
            let type = b["type"]?.stringValue ?? "?"
            let declared = b["noDataValue"]?.doubleValue ?? (b["noDataValue"]?.stringValue?.lowercased() == "nan" ? .nan : nil)
            let band = RasterImport.Band(name: "band_\(i + 1)", gdalType: type, nodata: declared ?? (type.hasPrefix("Float") ? .nan : 0))
            guard band.pixelType != nil else { throw ImportFailure("Raster band \(i + 1) has the unsupported pixel type \(type)") }
            return band
        }
        guard !bands.isEmpty else { throw ImportFailure("The raster has no bands") }
        return (bands, [minX, minY, maxX, maxY], min((maxX - minX) / Double(w), (maxY - minY) / Double(h)))
    }

    /// Warps the source onto `grid` as raw little-endian Float64, band after band; returns its path. The
    /// native grid takes the nearest source pixel; an overview averages the valid pixels of the level
    /// below it (`from`, itself a grid file), so each level is a 2×2 reduction of the one under it.
    func warp(_ grid: RasterImport.Grid, bands: [RasterImport.Band], from previous: String? = nil) throws -> String {
        let e = grid.extent
        let path = work + "/grid\(grid.pixelResolution).envi"
        let nodata = bands.map { $0.nodata.isNaN ? "nan" : SQL.text($0.nodata) }.joined(separator: " ")
        let resampling = previous == nil ? ["-r", "near"] : ["-r", "average", "-srcnodata", nodata]
        _ = try run([try ChildProcess.tool("gdalwarp"), "-q", "-t_srs", "EPSG:3857", "-te", "\(e[0])", "\(e[1])", "\(e[2])", "\(e[3])",
                     "-ts", "\(grid.blocksWide * RasterImport.blockSize)", "\(grid.blocksHigh * RasterImport.blockSize)"] + resampling
                    + ["-ot", "Float64", "-of", "ENVI", "-co", "INTERLEAVE=BSQ", "-dstnodata", nodata, previous ?? input, path],
                    drivers: ["GTiff", "ENVI"], name: "gdalwarp")
        return path
    }

    /// A grid file and its header: levels are removed as soon as the next one is made from them.
    func remove(_ path: String) {
        for file in [path, path + ".hdr", path + ".aux.xml"] { try? FileManager.default.removeItem(atPath: file) }
    }

    /// Loads every block of `grid` that holds data into `table`; returns how many, and the band stats
    /// over their pixels.
    func load(_ table: QualifiedName, bands: [RasterImport.Band], grid: RasterImport.Grid, raw: String, db: PGConnection,
              progress: (Int) -> Void) throws -> (blocks: Int, stats: [BandStats]) {
        guard let handle = FileHandle(forReadingAtPath: raw) else { throw ImportFailure("The warped raster could not be read", permanent: false) }
        defer { try? handle.close() }
        let n = RasterImport.blockSize
        let width = grid.blocksWide * n, height = grid.blocksHigh * n
        var stats = bands.map { _ in BandStats() }
        var blocks = 0
        for by in 0..<grid.blocksHigh {
            if context.isCancelled { throw ImportCancelled() }
            // One strip of 256 rows per band.
            var strips: [[Double]] = []
            for b in bands.indices {
                try handle.seek(toOffset: UInt64(((b * height) + by * n) * width * 8))
                guard let data = try handle.read(upToCount: n * width * 8), data.count == n * width * 8 else {
                    throw ImportFailure("The warped raster is truncated", permanent: false)
                }
                strips.append(data.withUnsafeBytes { raw in (0..<(n * width)).map { Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) } })
            }
            for bx in 0..<grid.blocksWide {
                var values: [[Double]] = []
                var any = false
                for (b, band) in bands.enumerated() {
                    var block: [Double] = []
                    block.reserveCapacity(n * n)
                    for row in 0..<n {
                        let start = row * width + bx * n
                        for v in strips[b][start..<(start + n)] {
                            if !v.isNaN && v != band.nodata { any = true; stats[b].add(v) }
                            block.append(v)
                        }
                    }
                    values.append(block)
                }
                guard any else { continue } // CARTO raster tables hold no empty blocks either
                let (x, y) = (grid.x0 + bx, grid.y0 + by)
                let wkb = RasterWKB.hex(RasterImport.blockWKB(bands: bands, grid: grid, x: x, y: y, values: values))
                try db.execute(RasterImport.insertSQL(table, grid: grid, x: x, y: y, wkb: wkb))
                blocks += 1
            }
            progress((by + 1) * 100 / grid.blocksHigh)
        }
        return (blocks, stats)
    }

    struct BandStats {
        var count = 0, sum = 0.0, sumSquares = 0.0, min = Double.infinity, max = -Double.infinity
        mutating func add(_ v: Double) {
            count += 1; sum += v; sumSquares += v * v
            if v < min { min = v }
            if v > max { max = v }
        }
        var json: JSON {
            let mean = count > 0 ? sum / Double(count) : 0
            return ["count": .int(count), "sum": .number(sum), "sum_squares": .number(sumSquares), "min": count > 0 ? .number(min) : .null,
                    "max": count > 0 ? .number(max) : .null, "mean": .number(mean),
                    "stddev": .number(count > 0 ? (Swift.max(0, sumSquares / Double(count) - mean * mean)).squareRoot() : 0),
                    "approximated_stats": false]
        }
    }

    /// `raster_metadata` as the client reads it (`RasterMetadata` in @carto/api-client).
    /// `minresolution` is the coarsest overview's block resolution, `maxresolution` the native one; the
    /// stats are the native pixels'; `num_blocks` counts every level's.
    func metadata(bands: [RasterImport.Band], stats: [BandStats], grid: RasterImport.Grid, minResolution: Int, blocks: Int) -> JSON {
        let e = grid.extent
        func lonlat(_ x: Double, _ y: Double) -> (Double, Double) {
            (x / 6_378_137 * 180 / .pi, (2 * atan(exp(y / 6_378_137)) - .pi / 2) * 180 / .pi)
        }
        let (w, s) = lonlat(e[0], e[1]), (east, n) = lonlat(e[2], e[3])
        let firstNodata = bands[0].nodataJSON
        return [
            "block_resolution": .int(grid.blockResolution), "minresolution": .int(minResolution),
            "maxresolution": .int(grid.blockResolution), "pixel_resolution": .int(grid.pixelResolution),
            "nodata": firstNodata,
            "bands": .array(bands.enumerated().map { i, band in
                ["name": .string(band.name), "type": .string(band.clientType ?? "float64"), "stats": stats[i].json,
                 "nodata": band.nodataJSON, "colorinterp": "gray"]
            }),
            "bounds": [.number(w), .number(s), .number(east), .number(n)],
            "center": [.number((w + east) / 2), .number((s + n) / 2), .int(grid.blockResolution)],
            "width": .int(grid.blocksWide * RasterImport.blockSize), "height": .int(grid.blocksHigh * RasterImport.blockSize),
            "block_width": .int(RasterImport.blockSize), "block_height": .int(RasterImport.blockSize),
            "num_blocks": .int(blocks), "num_pixels": .int(blocks * RasterImport.blockSize * RasterImport.blockSize),
        ]
    }
}
