import Foundation
@testable import ImportsAPI
import XCTest

/// Malformed CSVs are refused with what and where (issue 14): a quote never closed, a record with more
/// fields than the header; well-formed quoting across lines, "" escapes and ragged short rows pass.
final class CSVCheckTests: XCTestCase {
    func check(_ text: String, separator: UInt8? = nil) throws {
        let path = NSTemporaryDirectory() + "csvcheck-\(UUID().uuidString).csv"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        try CSVCheck.validate(path: path, separator: separator)
    }

    func message(_ text: String) -> String? {
        do { try check(text); return nil } catch let f as ImportFailure { return f.message } catch { return "\(error)" }
    }

    func testWellFormedFilesPass() throws {
        try check("a,b,c\n1,2,3\n")
        try check("a,b\r\n1,\"x, \"\"quoted\"\"\nacross lines\"\r\n\r\n3,4")
        try check("a,b,c\n1,2\n")                 // short rows: GDAL fills NULLs
        try check("a;b;c\n1,5;2,5;3\n")            // semicolons with decimal commas
        try check("name\tlon\n\"x\"\t1\n", separator: 9)
    }

    func testAnUnclosedQuoteSaysWhereItStarts() {
        let m = message("a,b\n1,2\n3,\"never closed\n4,5\n6,7\n")
        XCTAssertEqual(m, "The CSV is malformed: the quoted field that starts in record 3 (line 3) is never closed")
    }

    func testTextAfterAClosingQuoteIsAStrayQuote() {
        let m = message("a,b\n1,2\n\"b,3\n\"c\",5\n")
        XCTAssertEqual(m, "The CSV is malformed: record 3 (starting on line 3) has text after a closing quote on line 4 (an unescaped quote?)")
    }

    func testTooManyFieldsSaysRecordAndLine() {
        let m = message("a,b\n1,2\n\"multi\nline\",2\n1,2,3\n")
        XCTAssertEqual(m, "The CSV is malformed: record 4 (line 5) has 3 fields, but the header has 2")
    }

    func testSeparatorDetection() {
        XCTAssertEqual(CSVCheck.detectSeparator(Array("a;b;c\n1,2".utf8)), UInt8(ascii: ";"))
        XCTAssertEqual(CSVCheck.detectSeparator(Array("a,b;c\n".utf8)), UInt8(ascii: ","))
        XCTAssertEqual(CSVCheck.detectSeparator(Array("\"a;b\",c\n".utf8)), UInt8(ascii: ","))
        XCTAssertEqual(CSVCheck.detectSeparator(Array("single\n".utf8)), UInt8(ascii: ","))
    }
}
