import HTTPKit
@testable import ImportsAPI
@testable import OutboundHTTP
import XCTest

final class URLGuardTests: XCTestCase {
    func v4(_ s: String) -> [UInt8] { s.split(separator: ".").map { UInt8($0)! } }

    func testPrivateAndSpecialIPv4AreRefused() {
        for a in ["127.0.0.1", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                  "0.0.0.0", "224.0.0.1", "255.255.255.255", "198.18.0.1", "192.0.0.8"] {
            XCTAssertNotNil(URLGuard.forbiddenReason(v4(a)), a)
        }
        for a in ["8.8.8.8", "93.184.216.34", "172.32.0.1", "100.128.0.1", "1.1.1.1"] {
            XCTAssertNil(URLGuard.forbiddenReason(v4(a)), a)
        }
    }

    func testIPv6() throws {
        func bytes(_ s: String) -> [UInt8] {
            var a = in6_addr()
            XCTAssertEqual(inet_pton(AF_INET6, s, &a), 1, s)
            return withUnsafeBytes(of: &a) { Array($0) }
        }
        for a in ["::1", "::", "fc00::1", "fd00:ec2::254", "fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
                  "64:ff9b::a00:1", "2002:7f00:1::", "2001:db8::1", "2001:0:1::1"] {
            XCTAssertNotNil(URLGuard.forbiddenReason(bytes(a)), a)
        }
        for a in ["2606:4700:4700::1111", "::ffff:8.8.8.8", "2a00:1450:4001::1"] {
            XCTAssertNil(URLGuard.forbiddenReason(bytes(a)), a)
        }
    }

    func testResolverReadsOddIPv4Spellings() throws {
        for host in ["2130706433", "0x7f000001", "0177.0.0.1", "127.1"] {
            let found = try URLGuard.resolve(host)
            XCTAssertEqual(found.map(\.text), ["127.0.0.1"], host)
        }
        XCTAssertThrowsError(try URLGuard(allowlist: []).check("http://2130706433/x.csv"))
        XCTAssertNoThrow(try URLGuard(allowlist: ["127.0.0.1:8080"]).check("http://127.0.0.1:8080/x.csv"))
        XCTAssertThrowsError(try URLGuard(allowlist: ["127.0.0.1:8080"]).check("http://127.0.0.1:8081/x.csv"))
    }

    func testParseRefusesWhatCurlMightReadDifferently() {
        for bad in ["ftp://example.com/a", "file:///etc/passwd", "http://user:pw@example.com/", "http://exa mple.com/",
                    "http://ex%61mple.com/", "http://example.com:0/", "http:///x", "//example.com/x"] {
            XCTAssertThrowsError(try URLGuard.parse(bad), bad)
        }
        let parsed = try? URLGuard.parse("https://Example.com/a%20b.csv?x=1")
        XCTAssertEqual(parsed?.url.absoluteString, "https://Example.com:443/a%20b.csv?x=1")
        XCTAssertEqual(try? URLGuard.parse("http://[::1]:8/x").host, "::1")
    }
}

final class FormatDetectorTests: XCTestCase {
    func detect(_ text: String, _ name: String? = nil) throws -> DetectedContent {
        try FormatDetector.detect(head: Array(text.utf8), nameHint: name)
    }

    func testSniffing() throws {
        XCTAssertEqual(try FormatDetector.detect(head: [0x50, 0x4B, 0x03, 0x04, 1, 2], nameHint: "a.csv"), .zip)
        XCTAssertEqual(try FormatDetector.detect(head: Array("SQLite format 3".utf8) + [0, 1], nameHint: nil), .format(.gpkg))
        XCTAssertEqual(try FormatDetector.detect(head: [0x66, 0x67, 0x62, 3, 0x66, 0x67, 0x62, 1], nameHint: nil), .format(.flatgeobuf))
        XCTAssertEqual(try detect("PKey,name\n1,a\n"), .format(.csv))
        XCTAssertEqual(try detect("a\tb\n1\t2\n"), .format(.tsv))
        XCTAssertEqual(try detect("a,b\n", "x.tsv"), .format(.tsv))
        XCTAssertEqual(try detect("\u{FEFF}{\"type\":\"FeatureCollection\",\"features\":[]}"), .format(.geojson))
        XCTAssertEqual(try detect("{\"type\":\"Feature\"}\n{\"type\":\"Feature\"}\n"), .format(.geojsonseq))
        XCTAssertEqual(try detect("{\"type\":\"FeatureCollection\",\n\"features\":[]}"), .format(.geojson))
        XCTAssertEqual(try detect("\u{1E}{\"type\":\"Feature\"}"), .format(.geojsonseq))
        XCTAssertEqual(try detect("<?xml version=\"1.0\"?><!-- c --><kml xmlns=\"x\"/>"), .format(.kml))
        XCTAssertEqual(try detect("<gpx:gpx version=\"1.1\"/>"), .format(.gpx))
    }

    func testRefusals() {
        XCTAssertThrowsError(try detect("<?xml version=\"1.0\"?><!DOCTYPE kml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><kml/>")) {
            XCTAssertTrue(($0 as? ImportFailure)?.message.contains("DOCTYPE") == true)
        }
        XCTAssertThrowsError(try detect("<OGRVRTDataSource><OGRVRTLayer/></OGRVRTDataSource>", "x.csv"))
        XCTAssertThrowsError(try detect("<html><body/></html>"))
        XCTAssertThrowsError(try FormatDetector.detect(head: [0, 0, 0x27, 0x0A, 0, 0], nameHint: "x.shp"))
        XCTAssertThrowsError(try FormatDetector.detect(head: Array("PAR1".utf8) + [0], nameHint: "x.parquet"))
        XCTAssertThrowsError(try FormatDetector.detect(head: [1, 2, 0, 3, 4], nameHint: nil))
        XCTAssertThrowsError(try detect("  \n\t "))
    }
}

final class MultipartParserTests: XCTestCase {
    func parse(_ body: [UInt8], boundary: String, chunk: Int) throws -> [(String?, String?, [UInt8])] {
        let parser = MultipartParser(boundary: boundary)
        var parts: [(String?, String?, [UInt8])] = []
        var offset = 0
        while offset < body.count {
            let end = min(body.count, offset + chunk)
            try parser.feed(Array(body[offset..<end])) { event in
                switch event {
                case .partStart(let name, let filename): parts.append((name, filename, []))
                case .data(let bytes): parts[parts.count - 1].2 += bytes
                case .partEnd: break
                }
            }
            offset = end
        }
        try parser.finish()
        return parts
    }

    func testChunkBoundariesAnywhere() throws {
        var rng = SystemRandomNumberGenerator()
        var file = (0..<5000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        // Near-delimiters inside the data must stay data.
        file += Array("\r\n--bound\r\n--boundar".utf8) + [13, 10]
        let body = Array("preamble\r\n--boundary\r\nContent-Disposition: form-data; name=\"connection\"\r\n\r\ncarto_dw\r\n".utf8)
            + Array("--boundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".csv\"\r\nContent-Type: text/csv\r\n\r\n".utf8)
            + file + Array("\r\n--boundary--\r\nepilogue".utf8)
        for chunk in [1, 2, 3, 7, 13, 64, 4096, 100_000] {
            let parts = try parse(body, boundary: "boundary", chunk: chunk)
            XCTAssertEqual(parts.count, 2, "chunk \(chunk)")
            XCTAssertEqual(parts[0].0, "connection")
            XCTAssertEqual(String(decoding: parts[0].2, as: UTF8.self), "carto_dw")
            XCTAssertEqual(parts[1].1, "a \"b\".csv")
            XCTAssertEqual(parts[1].2, file, "chunk \(chunk)")
        }
    }

    func testIncompleteBodyAndBoundaryParsing() throws {
        XCTAssertThrowsError(try parse(Array("--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nabc".utf8), boundary: "b", chunk: 5))
        XCTAssertEqual(try MultipartParser.boundary(contentType: "multipart/form-data; boundary=\"a;b\""), "a;b")
        XCTAssertThrowsError(try MultipartParser.boundary(contentType: "multipart/form-data"))
    }
}

final class ImportHelpersTests: XCTestCase {
    func testColumnNames() {
        XCTAssertEqual(ColumnNames.sanitize("Mixed Case-Col"), "mixed_case_col")
        XCTAssertEqual(ColumnNames.sanitize("2nd value"), "_2nd_value")
        XCTAssertEqual(ColumnNames.sanitize("select"), "select_")
        XCTAssertEqual(ColumnNames.sanitize("Ünïcode"), "n_code")
        XCTAssertEqual(ColumnNames.sanitize("%%%"), "field")
        XCTAssertNil(ImportRequest.tableName(fromFilename: "%%%.csv"))
    }

    func testDestinations() throws {
        XCTAssertTrue(try ImportRequest.parseDestination("Places") == ("public", "places"))
        XCTAssertTrue(try ImportRequest.parseDestination("s.\"My Table\"") == ("s", "My Table"))
        XCTAssertTrue(try ImportRequest.parseDestination("carto-dw-ac-1.shared.t") == ("shared", "t"))
        assertAPIError(try ImportRequest.parseDestination("a.b.c.d"), status: 400, code: "invalid_destination")
        assertAPIError(try ImportRequest.parseDestination(""), status: 400, code: "invalid_destination")
        assertAPIError(try ImportRequest.parseDestination("tessera_import_5"), status: 400, code: "invalid_destination")
        XCTAssertEqual(ImportRequest.tableName(fromFilename: "../../My Data (2).csv"), "my_data_2")
        XCTAssertTrue(UploadStore.isGeneratedName(UploadStore.newName()))
        XCTAssertFalse(UploadStore.isGeneratedName("../etc/passwd"))
    }

    func testOgrinfoParsing() {
        let text = """
            INFO: Open of `x.gpkg'
                  using driver `GPKG' successful.

            Layer name: points
            Geometry: Point
            Feature Count: 25
            Extent: (-1.0, -2.0) - (3.0, 4.0)
            Layer SRS WKT:
            GEOGCRS["WGS 84",
                ID["EPSG",4326]]
            Data axis to CRS axis mapping: 2,1
            FID Column = fid
            Geometry Column = geom
            name: String (0.0)
            value: Real (0.0)
            flag: Integer(Boolean) (0.0) NOT NULL

            Layer name: empty
            Geometry: Multi Polygon
            Feature Count: 0
            Layer SRS WKT:
            (unknown)
            a: String (10.0)
            """
        let layers = GDALTools.parseLayers(text)
        XCTAssertEqual(layers.map(\.name), ["points", "empty"])
        XCTAssertEqual(layers[0].featureCount, 25)
        XCTAssertTrue(layers[0].hasSRS)
        XCTAssertFalse(layers[1].hasSRS)
        XCTAssertEqual(layers[0].fields.map(\.name), ["name", "value", "flag"])
        XCTAssertEqual(layers[0].fields.map(\.type), ["String", "Real", "Integer(Boolean)"])
        XCTAssertFalse(layers[0].promoteToMulti)
        XCTAssertTrue(layers[1].promoteToMulti)
        XCTAssertThrowsError(try ImportRunner.chooseLayer([layers[1]]))
        XCTAssertEqual(try ImportRunner.chooseLayer(layers).0.name, "points")
    }

    func testGeoJSONHeadReadsTheFirstGeometryOnly() {
        func head(_ text: String) -> GeoJSONHead.Head? { GeoJSONHead.parse(Data(text.utf8)) }
        // Null geometries are skipped, keys inside properties ("type", "geometry") do not count, escapes are followed.
        let text = #"{"type": "FeatureCollection", "name": "roads", "features": [ {"type": "Feature", "geometry": null,"#
            + #""properties": {"type": "Polygon", "geometry": {"type": "Point"}, "q": "a \"}\" b"}},"#
            + #"{"properties": {}, "type": "Feature", "geometry": {"coordinates": [[0, 0], [1, 1]], "type": "LineString"}}"#
        XCTAssertEqual(head(text), GeoJSONHead.Head(geometryType: "LineString", name: "roads"))
        XCTAssertEqual(head(#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"EPSG:3857"}},"features":["#
                            + #"{"geometry":{"type":"Point","coordinates":[1,2]},"properties":{"crs":1}}]}"#),
                       GeoJSONHead.Head(geometryType: "Point", namesCRS: true))
        XCTAssertEqual(head(#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Point","#
                            + #""coordinates":[1,2]}}]}"#), GeoJSONHead.Head(geometryType: "Point", name: nil))
        // Not decided from these bytes: ogrinfo reads the file as before.
        XCTAssertNil(head(#"{"features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]}}],"type":"FeatureCollection"}"#))
        XCTAssertNil(head(#"{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},"properties":{}}"#))
        XCTAssertNil(head(#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":null},{"type":"Feature","geom"#))
        XCTAssertNil(head(#"{"type":"FeatureCollection","features":[{"geometry":{"type":"Curve"}}]}"#))
        XCTAssertNil(head("[1, 2]"))
        XCTAssertNil(head(""))
        var polygon = GDALTools.LayerInfo(head: GeoJSONHead.Head(geometryType: "Polygon", name: nil), path: "/w/input.geojson")
        XCTAssertEqual(polygon.name, "input")
        XCTAssertTrue(polygon.promoteToMulti && polygon.hasSRS && polygon.fromHead && polygon.lonLat)
        XCTAssertFalse(GDALTools.LayerInfo(head: GeoJSONHead.Head(geometryType: "Point", namesCRS: true), path: "/w/x.geojson").lonLat)
        polygon.geometryType = "Point"
        XCTAssertFalse(polygon.promoteToMulti)
    }

    func testArchiveSelection() throws {
        func e(_ n: String) -> ZipInspector.Entry { .init(name: n, compressedSize: 1, uncompressedSize: 1, isDirectory: n.hasSuffix("/")) }
        let (f, main, members) = try DatasetResolver.select([e("d/"), e("d/A.SHP"), e("d/A.shx"), e("d/a.dbf"), e("d/A.prj"),
                                                             e("__MACOSX/d/._A.shp"), e("readme.txt")])
        XCTAssertEqual(f, .shapefile)
        XCTAssertEqual(main.name, "d/A.SHP")
        XCTAssertEqual(Set(members.map(\.name)), ["d/A.SHP", "d/A.shx", "d/a.dbf", "d/A.prj"])
        XCTAssertThrowsError(try DatasetResolver.select([e("a.shp"), e("a.shx")]))
        XCTAssertThrowsError(try DatasetResolver.select([e("a.csv"), e("b.geojson")]))
        XCTAssertEqual(try DatasetResolver.select([e("doc.kml"), e("files/other.kml")]).1.name, "doc.kml")
        XCTAssertThrowsError(try DatasetResolver.select([e("-x.csv")]))
        XCTAssertThrowsError(try ZipInspector.checkedName(Array("a/../../b".utf8)))
        XCTAssertThrowsError(try ZipInspector.checkedName(Array("C:\\x".utf8)))
        XCTAssertThrowsError(try ZipInspector.checkedName(Array("/etc/x".utf8)))
        XCTAssertEqual(try ZipInspector.checkedName(Array("a/b..c/d".utf8)), "a/b..c/d")
    }

    func testHeaders() {
        XCTAssertEqual(Downloader.dispositionFilename("attachment; filename=\"x.csv\""), "x.csv")
        XCTAssertEqual(Downloader.dispositionFilename("attachment; filename*=UTF-8''na%20me.kml"), "na%20me.kml")
        XCTAssertEqual(HeaderParameters.extValue("UTF-8''na%20me.kml"), "na me.kml")
        XCTAssertEqual(Loader.progressPercent("0...10...20...30"), 30)
        XCTAssertEqual(Loader.progressPercent("0...10...20...30...40...50...60...70...80...90...100 - done."), 100)
        XCTAssertNil(Loader.progressPercent("Warning 6: Progress turned off"))
    }
}
