import HTTPKit
@testable import SQLAPI
import Platform
import XCTest

final class ResultEncoderTests: XCTestCase {
    private func jsonValue(_ text: String?, _ kind: ColumnKind) -> String {
        var out: [UInt8] = []
        if let text {
            Array(text.utf8).withUnsafeBufferPointer { ResultEncoder.appendJSONValue($0, kind: kind, to: &out) }
        } else {
            ResultEncoder.appendJSONValue(nil, kind: kind, to: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Hands `row` (text values, nil for NULL) to `body` as a `value` callback, as the query output does; the
    /// bytes stay allocated until `body` returns, as a result's do while the output holds it.
    private func feed(_ row: [String?], _ body: ((Int) -> UnsafeBufferPointer<UInt8>?) -> Void) {
        let values = row.map { text in text.map { UnsafeMutableBufferPointer<UInt8>.allocate(capacity: $0.utf8.count) } }
        for (text, buffer) in zip(row, values) { if let text, let buffer { _ = buffer.initialize(from: text.utf8) } }
        defer { for buffer in values { buffer?.deallocate() } }
        body { i in values[i].map { UnsafeBufferPointer($0) } }
    }

    private func csvField(_ text: String) -> String {
        var out: [UInt8] = []
        ResultEncoder.appendCSVField(Array(text.utf8), to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: JSON values

    func testNumbersAreRaw() {
        XCTAssertEqual(jsonValue("42", .number), "42")
        XCTAssertEqual(jsonValue("-3.25", .number), "-3.25")
        XCTAssertEqual(jsonValue("1e+100", .number), "1e+100")
        XCTAssertEqual(jsonValue("12345678901234567890.123", .number), "12345678901234567890.123")
    }

    func testNonFiniteNumbersAreNull() {
        XCTAssertEqual(jsonValue("NaN", .number), "null")
        XCTAssertEqual(jsonValue("Infinity", .number), "null")
        XCTAssertEqual(jsonValue("-Infinity", .number), "null")
    }

    func testNullIsNullForEveryKind() {
        for kind in [ColumnKind.number, .boolean, .string, .date, .timestamp, .json, .geometry] {
            XCTAssertEqual(jsonValue(nil, kind), "null", "\(kind)")
        }
    }

    func testBooleans() {
        XCTAssertEqual(jsonValue("t", .boolean), "true")
        XCTAssertEqual(jsonValue("f", .boolean), "false")
    }

    func testJSONIsRaw() {
        XCTAssertEqual(jsonValue(#"{"a": [1, 2]}"#, .json), #"{"a": [1, 2]}"#)
        XCTAssertEqual(jsonValue("[]", .json), "[]")
    }

    func testStringsAreEscaped() throws {
        XCTAssertEqual(jsonValue("plain", .string), #""plain""#)
        XCTAssertEqual(jsonValue("a\"b\\c\nd\u{1}", .string), #""a\"b\\c\nd\u0001""#)
        XCTAssertEqual(jsonValue("2024-01-02", .date), #""2024-01-02""#)
        XCTAssertEqual(jsonValue("2024-01-02 03:04:05+00", .timestamp), #""2024-01-02 03:04:05+00""#)
        XCTAssertEqual(jsonValue("0101000000000000000000F03F", .geometry), #""0101000000000000000000F03F""#)
        // What is written parses back to the original text.
        let tricky = "tab\there \"quoted\" back\\slash ünï 😀 \u{7}"
        XCTAssertEqual(try JSON.decode(jsonValue(tricky, .string)), .string(tricky))
    }

    func testRowObject() throws {
        let encoder = ResultEncoder(names: ["id", "name", "ok", "props", "na\"me"],
                                    kinds: [.number, .string, .boolean, .json, .string])
        var out: [UInt8] = []
        feed(["7", "O'Brien \"x\"", "t", #"{"k":1}"#, nil]) { encoder.appendObject(to: &out, value: $0) }
        let text = String(decoding: out, as: UTF8.self)
        XCTAssertEqual(text, #"{"id":7,"name":"O'Brien \"x\"","ok":true,"props":{"k":1},"na\"me":null}"#)
        XCTAssertEqual(try JSON.decode(out), ["id": 7, "name": "O'Brien \"x\"", "ok": true, "props": ["k": 1], "na\"me": nil])
    }

    func testSchema() throws {
        let encoder = ResultEncoder(names: ["id", "when", "geom", "attrs", "label", "flag", "day"],
                                    kinds: [.number, .timestamp, .geometry, .json, .string, .boolean, .date])
        var out: [UInt8] = []
        encoder.appendSchema(to: &out)
        XCTAssertEqual(String(decoding: out.prefix(41), as: UTF8.self), #"[{"name":"id","type":"number"},{"name":"w"#)
        XCTAssertEqual(try JSON.decode(out), [
            ["name": "id", "type": "number"],
            ["name": "when", "type": "timestamp"],
            ["name": "geom", "type": "geometry"],
            ["name": "attrs", "type": "object"],
            ["name": "label", "type": "string"],
            ["name": "flag", "type": "boolean"],
            ["name": "day", "type": "date"],
        ])
    }

    // MARK: CSV

    func testCSVFieldQuoting() {
        XCTAssertEqual(csvField("plain"), "plain")
        XCTAssertEqual(csvField("a,b"), #""a,b""#)
        XCTAssertEqual(csvField(#"say "hi""#), #""say ""hi""""#)
        XCTAssertEqual(csvField("line1\nline2"), "\"line1\nline2\"")
        XCTAssertEqual(csvField("cr\rhere"), "\"cr\rhere\"")
        XCTAssertEqual(csvField(""), "")
        XCTAssertEqual(csvField("semi;colon 'single'"), "semi;colon 'single'")
    }

    func testCSVHeaderAndRows() {
        let encoder = ResultEncoder(names: ["id", "full, name"], kinds: [.number, .string])
        var out: [UInt8] = []
        encoder.appendCSVHeader(to: &out)
        feed(["1", #"Smith, "J""#]) { encoder.appendCSVRow(to: &out, value: $0) }
        feed([nil, "x"]) { encoder.appendCSVRow(to: &out, value: $0) }
        XCTAssertEqual(String(decoding: out, as: UTF8.self),
                       "id,\"full, name\"\r\n1,\"Smith, \"\"J\"\"\"\r\n,x\r\n")
    }

    func testFormatRawValues() {
        XCTAssertEqual(ResultEncoder.Format(rawValue: "csv"), .csv)
        XCTAssertEqual(ResultEncoder.Format(rawValue: "geojson"), .geojson)
        XCTAssertNil(ResultEncoder.Format(rawValue: "xml"))
    }

    // MARK: ColumnKind

    func testColumnKindOfBuiltinOids() {
        let none: Set<UInt32> = []
        XCTAssertEqual(ColumnKind.of(oid: 20, geometryOids: none), .number)    // int8
        XCTAssertEqual(ColumnKind.of(oid: 21, geometryOids: none), .number)    // int2
        XCTAssertEqual(ColumnKind.of(oid: 23, geometryOids: none), .number)    // int4
        XCTAssertEqual(ColumnKind.of(oid: 700, geometryOids: none), .number)   // float4
        XCTAssertEqual(ColumnKind.of(oid: 701, geometryOids: none), .number)   // float8
        XCTAssertEqual(ColumnKind.of(oid: 1700, geometryOids: none), .number)  // numeric
        XCTAssertEqual(ColumnKind.of(oid: 16, geometryOids: none), .boolean)
        XCTAssertEqual(ColumnKind.of(oid: 25, geometryOids: none), .string)    // text
        XCTAssertEqual(ColumnKind.of(oid: 1043, geometryOids: none), .string)  // varchar
        XCTAssertEqual(ColumnKind.of(oid: 2950, geometryOids: none), .string)  // uuid
        XCTAssertEqual(ColumnKind.of(oid: 1082, geometryOids: none), .date)
        XCTAssertEqual(ColumnKind.of(oid: 1114, geometryOids: none), .timestamp)
        XCTAssertEqual(ColumnKind.of(oid: 1184, geometryOids: none), .timestamp)
        XCTAssertEqual(ColumnKind.of(oid: 114, geometryOids: none), .json)
        XCTAssertEqual(ColumnKind.of(oid: 3802, geometryOids: none), .json)
    }

    func testColumnKindGeometryOidIsPassedIn() {
        XCTAssertEqual(ColumnKind.of(oid: 16_385, geometryOids: [16_385, 17_001]), .geometry)
        XCTAssertEqual(ColumnKind.of(oid: 17_001, geometryOids: [16_385, 17_001]), .geometry)
        XCTAssertEqual(ColumnKind.of(oid: 16_385, geometryOids: []), .string)
    }
}
