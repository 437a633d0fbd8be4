import HTTPKit
import XCTest

final class FormDecodingTests: XCTestCase {
    func testPlusIsSpaceAndPercentDecoding() throws {
        let decoded = try FormDecoding.decode("q=select+1%2C%202&name=caf%C3%A9&empty=&flag")
        XCTAssertEqual(decoded["q"], "select 1, 2")
        XCTAssertEqual(decoded["name"], "café")
        XCTAssertEqual(decoded["empty"], "")
        XCTAssertEqual(decoded["flag"], "")
        XCTAssertEqual(decoded.count, 4)
    }

    func testEncodedPlusAndAmpersandStayLiteral() throws {
        let decoded = try FormDecoding.decode("a=1%2B1%3D2&b=x%26y")
        XCTAssertEqual(decoded["a"], "1+1=2")
        XCTAssertEqual(decoded["b"], "x&y")
    }

    func testValueMayContainEquals() throws {
        XCTAssertEqual(try FormDecoding.decode("k=a=b")["k"], "a=b")
    }

    func testLastOccurrenceWins() throws {
        XCTAssertEqual(try FormDecoding.decode("a=1&a=2")["a"], "2")
    }

    func testEmptyAndStraySeparators() throws {
        XCTAssertEqual(try FormDecoding.decode(""), [:])
        XCTAssertEqual(try FormDecoding.decode("&&a=1&&"), ["a": "1"])
    }

    func testMixedCaseHex() throws {
        XCTAssertEqual(try FormDecoding.decode("x=%2f%2F")["x"], "//")
    }

    func testMalformedPercentEncodingIs400() {
        assertAPIError(try FormDecoding.decode("a=%zz"), status: 400)
        assertAPIError(try FormDecoding.decode("a=%4"), status: 400)
        assertAPIError(try FormDecoding.decode("a=%"), status: 400)
        assertAPIError(try FormDecoding.decode("%g1=x"), status: 400)
    }

    func testInvalidUTF8Is400InvalidUTF8() {
        assertAPIError(try FormDecoding.decode("a=%FF"), status: 400, code: "invalid_utf8")
        assertAPIError(try FormDecoding.decode("a=%C3"), status: 400, code: "invalid_utf8")
        assertAPIError(try FormDecoding.decode("a=%ED%A0%80"), status: 400, code: "invalid_utf8")
    }

    func testEncodeRoundTrip() throws {
        let original = "a b&c=d/é+%"
        let encoded = FormDecoding.encode(original)
        XCTAssertFalse(encoded.contains(" "))
        XCTAssertFalse(encoded.contains("&"))
        XCTAssertFalse(encoded.contains("="))
        XCTAssertFalse(encoded.contains("+"))
        XCTAssertEqual(try FormDecoding.decode("k=" + encoded)["k"], original)
    }

    func testRequestQueryParsing() throws {
        let ok = HTTPRequest(method: "GET", path: "/x", rawQuery: "a=1&b=two+words")
        XCTAssertEqual(try ok.queryParameters(), ["a": "1", "b": "two words"])
        let bad = HTTPRequest(method: "GET", path: "/x", rawQuery: "a=%zz")
        assertAPIError(try bad.queryParameters(), status: 400)
        let badUTF8 = HTTPRequest(method: "GET", path: "/x", rawQuery: "a=%FF")
        assertAPIError(try badUTF8.queryParameters(), status: 400, code: "invalid_utf8")
    }
}
