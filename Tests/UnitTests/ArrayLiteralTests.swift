import SQLKit
import XCTest

final class ArrayLiteralTests: XCTestCase {
    func testElementsAreQuotedAndEscaped() {
        XCTAssertEqual(arrayLiteral([]), "{}")
        XCTAssertEqual(arrayLiteral(["a", "b c"]), #"{"a","b c"}"#)
        XCTAssertEqual(arrayLiteral([#"x"y"#, #"back\slash"#, "{,}", "NULL"]), #"{"x\"y","back\\slash","{,}","NULL"}"#,
                       "quotes, backslashes, braces, commas and the word NULL stay one text element each")
    }
}
