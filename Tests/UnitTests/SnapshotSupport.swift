import Foundation
import HTTPKit
import SQLKit
import XCTest

/// Compares built SQL (text and bound parameters) with `Snapshots/<name>.sql`: the parameters as a JSON
/// array on the first line (a `-- parameters:` comment), then the text. `SNAPSHOT_RECORD=1` rewrites the
/// files instead; review the diff before committing it.
func assertSnapshot(_ sql: SQL, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
    let parameters = JSON.array(sql.parameters.map { $0.map { .string($0) } ?? .null }).text
    let rendered = "-- parameters: \(parameters)\n\(sql.text)\n"
    let url = URL(fileURLWithPath: "\(file)").deletingLastPathComponent().appendingPathComponent("Snapshots/\(name).sql")
    if ProcessInfo.processInfo.environment["SNAPSHOT_RECORD"] == "1" {
        try? rendered.write(to: url, atomically: true, encoding: .utf8)
        return
    }
    guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
        XCTFail("missing snapshot \(url.path); run with SNAPSHOT_RECORD=1 to create it", file: file, line: line)
        return
    }
    XCTAssertEqual(rendered, expected, "snapshot \(name)", file: file, line: line)
}
