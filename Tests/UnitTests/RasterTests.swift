import HTTPKit
import Platform
@testable import ImportsAPI
@testable import MapsAPI
import SQLKit
import XCTest

/// Raster SQL (snapshots), the quadbin grid an import chooses, and the binary raster tile encoding, all
/// without a database.
final class RasterTests: XCTestCase {
    let table = QualifiedName(schema: "public", table: "my raster")

    func testRasterSQLSnapshots() {
        let grid = RasterImport.Grid(pixelResolution: 12, x0: 8, y0: 5, x1: 8, y1: 5)
        let bands = [RasterImport.Band(name: "band_1", gdalType: "Int16", nodata: -9999),
                     RasterImport.Band(name: "band_2", gdalType: "Float32", nodata: .nan)]
        assertSnapshot(RasterImport.createSQL(table), "raster_create")
        assertSnapshot(RasterImport.insertSQL(table, grid: grid, x: 8, y: 5, wkb: "01"), "raster_insert")
        assertSnapshot(RasterImport.commentSQL(table, metadata: ["bands": []]), "raster_comment")
        assertSnapshot(RasterSource.metadataSQL(table), "raster_metadata")
        assertSnapshot(RasterSource.tileSQL(table), "raster_tile")
    }

    func testGridIsTheFinestQuadbinLevelNoCoarserThanTheSourceAndCoversItsExtent() throws {
        // 0.05° cells near 41°N: about 5.6 km; level 13 pixels are 4.9 km, level 12 ones 9.8 km.
        let (w, s) = RasterImport.mercator(lon: 2.0, lat: 41.0), (e, n) = RasterImport.mercator(lon: 2.8, lat: 41.6)
        let grid = try RasterImport.Grid.choose(mercatorExtent: [w, s, e, n], pixelSize: (e - w) / 16)
        XCTAssertEqual(grid.pixelResolution, 13)
        XCTAssertEqual(grid.blockResolution, 5)
        let extent = grid.extent
        XCTAssertLessThanOrEqual(extent[0], w)
        XCTAssertLessThanOrEqual(extent[1], s)
        XCTAssertGreaterThanOrEqual(extent[2], e)
        XCTAssertGreaterThanOrEqual(extent[3], n)
        XCTAssertThrowsError(try RasterImport.Grid.choose(mercatorExtent: [w, s, e, n], pixelSize: 0.01)) // too many blocks
        XCTAssertThrowsError(try RasterImport.Grid.choose(mercatorExtent: [w, s, w, n], pixelSize: 10)) // empty
    }

    func testOverviewsAreTheBlocksHoldingTheNativeOnesDownToOneBlockForTheWorld() {
        let grid = RasterImport.Grid(pixelResolution: 20, x0: 2050, y0: 1501, x1: 2082, y1: 1533)
        let one = grid.overview(1)
        XCTAssertEqual([one.blockResolution, one.x0, one.y0, one.x1, one.y1], [11, 1025, 750, 1041, 766])
        XCTAssertEqual(one.pixelSize, 2 * grid.pixelSize, accuracy: 1e-9)
        // Each overview covers the level below it.
        XCTAssertLessThanOrEqual(one.extent[0], grid.extent[0])
        XCTAssertGreaterThanOrEqual(one.extent[2], grid.extent[2])
        let world = grid.overview(12)
        XCTAssertEqual([world.blockResolution, world.x0, world.y0, world.x1, world.y1], [0, 0, 0, 0, 0])
        XCTAssertEqual(world.extent[0], -RasterImport.worldSize / 2, accuracy: 1e-6)
    }

    func testBlockWKBIsPostGISRasterWKB() throws {
        let grid = RasterImport.Grid(pixelResolution: 8, x0: 0, y0: 0, x1: 0, y1: 0)
        let bands = [RasterImport.Band(name: "band_1", gdalType: "Int16", nodata: -9999)]
        let wkb = RasterImport.blockWKB(bands: bands, grid: grid, x: 0, y: 0, values: [[1.5, -2] + Array(repeating: 0, count: 256 * 256 - 2)])
        XCTAssertEqual(wkb.count, 61 + 1 + 2 + 256 * 256 * 2)
        XCTAssertEqual(Array(wkb[0..<5]), [1, 0, 0, 1, 0]) // little-endian, version 0, one band
        func double(_ at: Int) -> Double { Double(bitPattern: wkb[at..<(at + 8)].reversed().reduce(0) { $0 << 8 | UInt64($1) }) }
        XCTAssertEqual(double(5), grid.pixelSize, accuracy: 1e-9)
        XCTAssertEqual(double(13), -grid.pixelSize, accuracy: 1e-9)
        XCTAssertEqual(double(21), -RasterImport.worldSize / 2, accuracy: 1e-6) // upper-left x
        XCTAssertEqual(double(29), RasterImport.worldSize / 2, accuracy: 1e-6) // upper-left y
        XCTAssertEqual(Array(wkb[53..<61]), [0x11, 0x0F, 0, 0, 0, 1, 0, 1]) // srid 3857, 256 × 256
        // 16BSI (5) with nodata, nodata -9999, then 2 (1.5 rounded half away from zero) and -2.
        XCTAssertEqual(Array(wkb[61..<68]), [0x45, 0xF1, 0xD8, 2, 0, 0xFE, 0xFF])
        XCTAssertEqual(RasterWKB.hex([0x01, 0xAB]), "01ab")
        // Read back as the Maps API reads ST_AsBinary(rast).
        let decoded = try RasterWKB.decode(wkb)
        XCTAssertEqual(decoded.width, 256)
        XCTAssertEqual(decoded.bands.count, 1)
        XCTAssertEqual(decoded.bands[0].pixelType, "16BSI")
        XCTAssertEqual(decoded.bands[0].nodata, -9999)
        XCTAssertEqual(Array(decoded.bands[0].values.prefix(3)), [2, -2, 0])
        XCTAssertThrowsError(try RasterWKB.decode(Array(wkb.prefix(70))))
    }

    func testTIFFMagicAndRasterNames() {
        XCTAssertTrue(RasterImport.isTIFF([0x49, 0x49, 0x2A, 0x00, 8]))
        XCTAssertTrue(RasterImport.isTIFF([0x4D, 0x4D, 0x00, 0x2B]))
        XCTAssertFalse(RasterImport.isTIFF(Array("name,value".utf8)))
        XCTAssertTrue(RasterImport.isRasterName("dem.TIF"))
        XCTAssertFalse(RasterImport.isRasterName("dem.csv"))
    }

    func testTileEncodingIsWhatCartoRasterTileLoaderReads() {
        let bytes = RasterTileEncoding.encode(blockSize: 2, bands: [.init(name: "band_1", type: "int16", values: [1, -2, 300, .nan])])
        // 08 02 | 12 len | 0a 06 "band_1" | 12 05 "int16" | 1a 08 <4 × int16 LE>
        let band: [UInt8] = [0x0A, 6] + Array("band_1".utf8) + [0x12, 5] + Array("int16".utf8) + [0x1A, 8, 1, 0, 0xFE, 0xFF, 0x2C, 0x01, 0, 0]
        XCTAssertEqual(bytes, [0x08, 2, 0x12, UInt8(band.count)] + band)
        XCTAssertEqual(RasterTileEncoding.pixels([1.5, 70000], type: "uint16"), [2, 0, 0xFF, 0xFF])
        XCTAssertEqual(RasterTileEncoding.pixels([1], type: "float32"), [0, 0, 0x80, 0x3F])
        var long: [UInt8] = []
        RasterTileEncoding.varint(300, into: &long)
        XCTAssertEqual(long, [0xAC, 0x02])
    }
}

final class RasterFilterTests: XCTestCase {
    func testFiltersMaskFailingPixelsInEveryBand() throws {
        let filters = try JSON.decode(#"{"band_1": {"between": {"values": [[2, 3]]}}, "band_2": {"in": {"values": [10, 40]}}}"#)
        var bands: [[Double]] = [[1, 2, 3, 4], [10, 20, 40, 40]]
        try RasterFilter(filters, or: false, bands: ["band_1", "band_2"]).apply(&bands, nodata: [0, .nan])
        XCTAssertEqual(bands[0], [0, 0, 3, 0])
        XCTAssertEqual(bands[1].map { $0.isNaN ? -1 : $0 }, [-1, -1, 40, -1])
        var either: [[Double]] = [[1, 2, 3, 4], [10, 20, 40, 40]]
        try RasterFilter(filters, or: true, bands: ["band_1", "band_2"]).apply(&either, nodata: [0, 0])
        XCTAssertEqual(either[0], [1, 2, 3, 4])
        let open = try JSON.decode(#"{"band_1": {"closed_open": {"values": [[null, 3]]}}}"#)
        var half: [[Double]] = [[1, 3]]
        try RasterFilter(open, or: false, bands: ["band_1"]).apply(&half, nodata: [-9])
        XCTAssertEqual(half[0], [1, -9])
    }

    func testUnknownBandsAndUnsupportedFiltersAre400sNamingFilters() throws {
        for text in [#"{"band_9": {"in": {"values": [1]}}}"#, #"{"band_1": {"stringSearch": {"values": ["a"]}}}"#] {
            XCTAssertThrowsError(try RasterFilter(try JSON.decode(text), or: false, bands: ["band_1"])) { error in
                XCTAssertEqual((error as? APIError)?.status, 400)
                XCTAssertTrue((error as? APIError)?.message.hasPrefix("filters:") == true)
            }
        }
    }
}
