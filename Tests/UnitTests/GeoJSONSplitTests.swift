import Foundation
@testable import ImportsAPI
import XCTest

final class GeoJSONSplitTests: XCTestCase {
    /// The cut the scanner finds in `text` fed `chunk` bytes at a time.
    func cut(_ text: String, target: Int, chunk: Int = 1 << 20) -> GeoJSONSplit.Cut? {
        let bytes = Array(text.utf8)
        var scanner = GeoJSONSplit.Scanner(target: target)
        var offset = 0
        while offset < bytes.count && !scanner.done {
            let end = min(bytes.count, offset + chunk)
            bytes[offset..<end].withUnsafeBytes { scanner.feed($0, at: offset) }
            offset = end
        }
        return scanner.cut
    }

    /// Splits `text` through the file-writing path and returns both halves' features, parsed.
    func halves(_ text: String, target: Int? = nil) throws -> ([Any], [Any])? {
        let dir = NSTemporaryDirectory() + "geojson-split-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let size = text.utf8.count
        guard let found = cut(text, target: target ?? size / 2) else { return nil }
        try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/in.geojson"))
        try GeoJSONSplit.writeFirstHalf(found, of: dir + "/in.geojson", to: dir + "/a.geojson")
        try GeoJSONSplit.writeSecondHalf(found, of: dir + "/in.geojson", size: size, to: dir + "/b.geojson")
        func features(_ name: String) throws -> [Any] {
            let root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))) as! [String: Any]
            XCTAssertEqual(root["type"] as? String, "FeatureCollection")
            return root["features"] as! [Any]
        }
        return (try features("a.geojson"), try features("b.geojson"))
    }

    func feature(_ n: Int, _ properties: String = "") -> String {
        #"{"type":"Feature","properties":{"n":\#(n)\#(properties)},"geometry":{"type":"Point","coordinates":[\#(n),2]}}"#
    }

    func collection(_ features: [String], separator: String = ",", head: String = "", tail: String = "") -> String {
        #"{"type":"FeatureCollection",\#(head)"features":[\#(features.joined(separator: separator))]\#(tail)}"#
    }

    /// Both halves hold every feature once, in order, each a FeatureCollection GDAL can open.
    func assertSplitsWhole(_ text: String, count: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        guard let (a, b) = try halves(text) else { return XCTFail("no cut", file: file, line: line) }
        XCTAssertFalse(a.isEmpty, file: file, line: line)
        XCTAssertFalse(b.isEmpty, file: file, line: line)
        let numbers = (a + b).map { (($0 as! [String: Any])["properties"] as! [String: Any])["n"] as! Int }
        XCTAssertEqual(numbers, Array(0..<count), file: file, line: line)
    }

    func testCutsAtTheFirstFeatureBoundaryPastTheTarget() throws {
        let text = collection((0..<10).map { feature($0) })
        let found = try XCTUnwrap(cut(text, target: text.utf8.count / 2))
        let bytes = Array(text.utf8)
        XCTAssertEqual(bytes[found.featuresOpen], UInt8(ascii: "["))
        XCTAssertEqual(bytes[found.comma], UInt8(ascii: ","))
        XCTAssertGreaterThanOrEqual(found.comma, text.utf8.count / 2)
        XCTAssertEqual(Array(bytes[(found.comma + 1)...].prefix(11)), Array(#"{"type":"Fe"#.utf8))
        try assertSplitsWhole(text, count: 10)
    }

    func testCommasAndBracesInsideStringsAreNotBoundaries() throws {
        // Each feature's text is mostly a string that looks like the boundary between features.
        let tricky = #","s":"x\"},{\"type\":\"Feature\"}],[{\\","t":"\\\\""#
        let text = collection((0..<6).map { feature($0, tricky) })
        try assertSplitsWhole(text, count: 6)
        // Fed one byte at a time, an escape split across chunks changes nothing.
        XCTAssertEqual(cut(text, target: text.utf8.count / 2, chunk: 1), cut(text, target: text.utf8.count / 2))
        XCTAssertEqual(cut(text, target: text.utf8.count / 2, chunk: 7), cut(text, target: text.utf8.count / 2))
    }

    func testNestedArraysAndObjectsAreNotBoundaries() throws {
        let nested = #","list":[{"a":[1,2,[3,4]]},{"b":{"c":[5,6]}}]"#
        let text = collection((0..<6).map { feature($0, nested) })
        try assertSplitsWhole(text, count: 6)
    }

    func testMembersAroundFeaturesStayOutsideTheCut() throws {
        // A bbox before the features has commas at the same depth as the features' own; a name after them
        // ends up in the second half only (the loader cuts only files that need nothing after `features`).
        let text = collection((0..<8).map { feature($0) }, head: #""bbox":[0,1,2,3],"#, tail: #","name":"after""#)
        try assertSplitsWhole(text, count: 8)
        let small = collection([feature(0), feature(1)], head: #""bbox":[0,1,2,3],"#)
        // Past the target already in bbox: the cut is still the one between the two features.
        let found = try XCTUnwrap(cut(small, target: 10))
        XCTAssertEqual(found.featuresOpen, small.utf8.count - 3 - feature(0).utf8.count - 1 - feature(1).utf8.count)
        XCTAssertEqual(found.comma, found.featuresOpen + 1 + feature(0).utf8.count, "a comma in bbox is no feature boundary")
    }

    func testCRLFBetweenFeatures() throws {
        let text = "{\r\n\"type\": \"FeatureCollection\",\r\n\"features\": [\r\n"
            + (0..<8).map { feature($0) }.joined(separator: ",\r\n") + "\r\n]\r\n}\r\n"
        try assertSplitsWhole(text, count: 8)
    }

    func testNoCutWithoutABoundaryPastTheTarget() {
        let giant = collection([feature(0, #","big":"\#(String(repeating: "x", count: 10_000))""#)])
        XCTAssertNil(cut(giant, target: giant.utf8.count / 2), "one giant feature")
        let lastIsGiant = collection([feature(0), feature(1, #","big":"\#(String(repeating: "x", count: 10_000))""#)])
        XCTAssertNil(cut(lastIsGiant, target: lastIsGiant.utf8.count / 2), "no boundary past the middle")
        let featuresFirst = collection([feature(0), feature(1)], tail: #","other":[{"a":1},{"b":2},{"c":3}]"#)
        XCTAssertNil(cut(featuresFirst, target: featuresFirst.utf8.count - 20), "commas after the features array")
        XCTAssertNil(cut(#"[{"features":[1,2,3]}]"#, target: 0), "the root is not an object")
        XCTAssertNil(cut(#"{"type":"Feature","properties":{"features":[{"a":1},{"b":2}]}}"#, target: 0), "features not at the root")
    }
}
