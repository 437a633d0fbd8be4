import HTTPKit
import XCTest

/// A small body is read with buffers sized by its Content-Length (each read fills its whole buffer first),
/// and the media type is parsed as before without Foundation's trimming.
final class HTTPRequestBodyTests: XCTestCase {
    final class RecordingBody: BodySource {
        let bytes: [UInt8]
        var offset = 0
        var asked: [Int] = []
        init(_ text: String) { bytes = Array(text.utf8) }
        func read(max: Int) -> [UInt8] {
            asked.append(max)
            let n = min(max, bytes.count - offset)
            defer { offset += n }
            return Array(bytes[offset..<offset + n])
        }
    }

    func testADeclaredLengthSizesTheReads() throws {
        let source = RecordingBody(#"{"q":"select 1"}"#)
        let request = HTTPRequest(method: "POST", path: "/p", contentLength: source.bytes.count, body: source)
        XCTAssertEqual(try request.body(limit: 1 << 20), source.bytes)
        XCTAssertEqual(source.asked, [source.bytes.count + 1, 1], "one read for the body, one tiny read for its end")
    }

    func testABodyLongerThanDeclaredIsStillReadInFullChunksUpToTheLimit() throws {
        let source = RecordingBody(String(repeating: "x", count: 300))
        let request = HTTPRequest(method: "POST", path: "/p", contentLength: 10, body: source)
        XCTAssertThrowsError(try request.body(limit: 100)) { XCTAssertEqual(($0 as? APIError)?.status, 413) }
        XCTAssertLessThanOrEqual(source.asked.count, 3, "past the declared length reads go back to full chunks")
        let unsized = RecordingBody("abc")
        XCTAssertEqual(try HTTPRequest(method: "POST", path: "/p", body: unsized).body(limit: 10), Array("abc".utf8))
        XCTAssertEqual(unsized.asked, [64 * 1024, 64 * 1024], "no Content-Length: as before")
    }

    func testMediaType() {
        func type(_ header: String?) -> String? {
            HTTPRequest(method: "POST", path: "/p", headers: header.map { ["content-type": $0] } ?? [:]).mediaType
        }
        XCTAssertNil(type(nil))
        XCTAssertNil(type(""))
        XCTAssertEqual(type("application/json"), "application/json")
        XCTAssertEqual(type(" Application/JSON ; charset=utf-8"), "application/json")
        XCTAssertEqual(type("\tapplication/x-www-form-urlencoded\t;"), "application/x-www-form-urlencoded")
        XCTAssertEqual(type("\u{00A0}text/csv\u{2009}"), "text/csv", "Unicode spaces are trimmed as CharacterSet.whitespaces does")
        XCTAssertEqual(type("   "), "")
        XCTAssertEqual(type(";charset=utf-8"), "charset=utf-8", "split drops the empty first part, as before")
    }
}
