import HTTPKit
import XCTest

final class JSONTests: XCTestCase {
    private func rejects(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try JSON.decode(text), "should reject: \(text)", file: file, line: line)
    }

    private func rejects(bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try JSON.decode(bytes), "should reject bytes: \(bytes)", file: file, line: line)
    }

    // MARK: parsing

    func testParsesScalars() throws {
        XCTAssertEqual(try JSON.decode("null"), .null)
        XCTAssertEqual(try JSON.decode("true"), .bool(true))
        XCTAssertEqual(try JSON.decode("false"), .bool(false))
        XCTAssertEqual(try JSON.decode("0"), .number(0))
        XCTAssertEqual(try JSON.decode("-12.5e2"), .number(-1250))
        XCTAssertEqual(try JSON.decode("1E+2"), .number(100))
        XCTAssertEqual(try JSON.decode("0.25"), .number(0.25))
        XCTAssertEqual(try JSON.decode("-0"), .number(0))
        XCTAssertEqual(try JSON.decode("\"hi\""), .string("hi"))
    }

    func testParsesNestedStructuresWithWhitespace() throws {
        let value = try JSON.decode(" \n{ \"a\" : [1, 2 ,{\"b\":null}],\t\"c\":\"d\" }\r\n")
        XCTAssertEqual(value, ["a": [1, 2, ["b": nil]], "c": "d"])
        XCTAssertEqual(value["a"]?.arrayValue?.count, 3)
        XCTAssertEqual(value["c"]?.stringValue, "d")
        XCTAssertNil(value["missing"])
    }

    func testEmptyContainers() throws {
        XCTAssertEqual(try JSON.decode("[]"), .array([]))
        XCTAssertEqual(try JSON.decode("{}"), .object([:]))
        XCTAssertEqual(try JSON.decode("[ ]"), .array([]))
        XCTAssertEqual(try JSON.decode("{ }"), .object([:]))
    }

    func testRoundTrip() throws {
        let original: JSON = [
            "name": "Zoë \"quoted\" \\ back/slash\n\t\u{01}",
            "n": 42, "neg": -7, "frac": .number(0.5), "big": .number(123456789012),
            "flags": [true, false, nil],
            "nested": ["deep": [["x": 1]]],
            "emoji": "🌍",
        ]
        let bytes = original.encoded()
        XCTAssertEqual(try JSON.decode(bytes), original)
        // And a second round is byte-identical (keys are sorted).
        XCTAssertEqual(try JSON.decode(bytes).encoded(), bytes)
    }

    func testObjectKeysEncodeSorted() {
        let value: JSON = ["b": 1, "a": 2, "c": 3]
        XCTAssertEqual(value.text, #"{"a":2,"b":1,"c":3}"#)
    }

    func testDuplicateKeysLastWins() throws {
        XCTAssertEqual(try JSON.decode(#"{"a":1,"a":2}"#)["a"], .number(2))
    }

    // MARK: strictness

    func testRejectsTrailingCommas() {
        rejects("[1,2,]")
        rejects(#"{"a":1,}"#)
        rejects("[,]")
        rejects("[1,,2]")
    }

    func testRejectsLeadingZerosAndBadNumbers() {
        rejects("01")
        rejects("-01")
        rejects("00")
        rejects("[007]")
        rejects(".5")
        rejects("1.")
        rejects("+1")
        rejects("-")
        rejects("1e")
        rejects("1e+")
        rejects("0x10")
        rejects("NaN")
        rejects("Infinity")
        rejects("1e999")  // overflows to infinity
        rejects("-.5")
    }

    /// RFC 8259 `frac = decimal-point 1*DIGIT`: a dot must be followed by a digit.
    func testRejectsDotWithoutFractionDigits() {
        rejects("1.e5")
        rejects("[1.E2]")
    }

    func testRejectsUnescapedControlCharacters() {
        rejects("\"a\nb\"")
        rejects("\"a\tb\"")
        rejects(bytes: [0x22, 0x61, 0x00, 0x22])
        rejects(bytes: [0x22, 0x1F, 0x22])
    }

    func testRejectsLoneSurrogates() {
        rejects(#""\uD800""#)
        rejects(#""\uD83D x""#)
        rejects(#""\uDC00""#)
        rejects(#""\uD83D\u0041""#)  // high surrogate followed by a non-surrogate
        rejects(#""\uDE00\uD83D""#)  // reversed pair
    }

    func testRejectsInvalidUTF8() {
        rejects(bytes: [0x22, 0xFF, 0x22])
        rejects(bytes: [0x22, 0xC3, 0x22])  // truncated two-byte sequence
        rejects(bytes: [0x22, 0xC0, 0xAF, 0x22])  // overlong "/"
        rejects(bytes: [0x22, 0xED, 0xA0, 0x80, 0x22])  // UTF-8 encoded surrogate
        rejects(bytes: [0x5B, 0xFE, 0x5D])
    }

    func testRejectsBadEscapes() {
        rejects(#""\x41""#)
        rejects(#""\u12""#)
        rejects(#""\u12G4""#)
        rejects(#""\'""#)
        rejects("\"unterminated")
        rejects("\"ends with backslash\\")
    }

    func testRejectsTrailingGarbage() {
        rejects("{} x")
        rejects("[1] [2]")
        rejects("1 2")
        rejects("truex")
        rejects("null,")
        rejects(#"{"a":1}}"#)
    }

    func testRejectsStructuralErrors() {
        rejects("")
        rejects("   ")
        rejects("{")
        rejects("[1")
        rejects(#"{"a" 1}"#)
        rejects(#"{a:1}"#)
        rejects(#"{"a":}"#)
        rejects("[1 2]")
        rejects("tru")
        rejects("nul")
        rejects("'single'")
    }

    func testNestingDepthLimit() throws {
        let ok = String(repeating: "[", count: 10) + String(repeating: "]", count: 10)
        XCTAssertNoThrow(try JSON.decode(Array(ok.utf8), maxDepth: 10))
        let tooDeep = String(repeating: "[", count: 11) + String(repeating: "]", count: 11)
        XCTAssertThrowsError(try JSON.decode(Array(tooDeep.utf8), maxDepth: 10))
        let objects = String(repeating: #"{"a":"#, count: 11) + "1" + String(repeating: "}", count: 11)
        XCTAssertThrowsError(try JSON.decode(Array(objects.utf8), maxDepth: 10))
        // Depth is tracked, not just counted: siblings do not add up.
        let siblings = "[" + Array(repeating: "[[]]", count: 50).joined(separator: ",") + "]"
        XCTAssertNoThrow(try JSON.decode(Array(siblings.utf8), maxDepth: 3))
        // The default cap refuses hostile nesting without crashing.
        let hostile = String(repeating: "[", count: 100_000)
        XCTAssertThrowsError(try JSON.decode(hostile))
    }

    // MARK: unicode

    func testUnicodeEscapes() throws {
        XCTAssertEqual(try JSON.decode(#""\u0041\u00e9\u4e2D""#), .string("Aé中"))
        XCTAssertEqual(try JSON.decode(#""\uD83D\uDE00""#), .string("😀"))
        XCTAssertEqual(try JSON.decode(#""\ud834\udd1e""#), .string("𝄞"))
        XCTAssertEqual(try JSON.decode(#""\"\\\/\b\f\n\r\t""#), .string("\"\\/\u{08}\u{0C}\n\r\t"))
        XCTAssertEqual(try JSON.decode(#""\u0000""#), .string("\u{0}"))
    }

    func testRawMultibyteUTF8IsKept() throws {
        XCTAssertEqual(try JSON.decode(Array("\"über 😀\"".utf8)), .string("über 😀"))
    }

    // MARK: encoding

    func testStringEscapingOnEncode() {
        XCTAssertEqual(JSON.string("a\"b").text, #""a\"b""#)
        XCTAssertEqual(JSON.string("a\\b").text, #""a\\b""#)
        XCTAssertEqual(JSON.string("l1\nl2\r\t").text, #""l1\nl2\r\t""#)
        XCTAssertEqual(JSON.string("\u{0}\u{1F}\u{08}").text, #""\u0000\u001f\u0008""#)
        XCTAssertEqual(JSON.string("é/😀").text, "\"é/😀\"")
    }

    func testEscapedControlCharactersDecodeBack() throws {
        let all = String((0..<32).map { Character(Unicode.Scalar(UInt8($0))) })
        XCTAssertEqual(try JSON.decode(JSON.string(all).encoded()), .string(all))
    }

    func testIntegersEncodeWithoutFraction() {
        XCTAssertEqual(JSON.number(1).text, "1")
        XCTAssertEqual(JSON.number(-42).text, "-42")
        XCTAssertEqual(JSON.number(0).text, "0")
        XCTAssertEqual(JSON.int(1_000_000).text, "1000000")
        XCTAssertEqual(JSON.number(123456789012345).text, "123456789012345")
        XCTAssertEqual(JSON.number(2.5).text, "2.5")
        XCTAssertEqual(([1, .number(2.5), -3] as JSON).text, "[1,2.5,-3]")
    }

    func testNonFiniteNumbersEncodeAsNull() {
        XCTAssertEqual(JSON.number(.nan).text, "null")
        XCTAssertEqual(JSON.number(.infinity).text, "null")
        XCTAssertEqual(JSON.number(-.infinity).text, "null")
    }

    func testLargeAndSmallNumbersRoundTrip() throws {
        for n in [1e300, -1e-300, 1e15, 9.007199254740993e15, 0.1, 1e-7] {
            let text = JSON.number(n).text
            XCTAssertEqual(try JSON.decode(text), .number(n), "via \(text)")
        }
    }

    func testAccessors() {
        XCTAssertEqual(JSON.number(3).intValue, 3)
        XCTAssertNil(JSON.number(3.5).intValue)
        XCTAssertNil(JSON.number(1e17).intValue)
        XCTAssertEqual(JSON.bool(true).boolValue, true)
        XCTAssertNil(JSON.string("true").boolValue)
        XCTAssertTrue(JSON.null.isNull)
        XCTAssertFalse(JSON.string("").isNull)
        XCTAssertEqual(JSON.optional(nil), .null)
        XCTAssertEqual(JSON.optional("x"), .string("x"))
    }
}
