@testable import ImportsAPI
import XCTest

final class ImportPhasesTests: XCTestCase {
    func testStepsKeepTheirOrderAndRepeatedNamesAddUpInTheResult() throws {
        var phases = ImportPhases()
        let value = phases.measure("load") { 42 }
        XCTAssertEqual(value, 42)
        phases.add("scan", ms: 120)
        phases.add("scan", ms: 30)
        XCTAssertEqual(phases.entries.map(\.name), ["load", "scan", "scan"])
        XCTAssertTrue(phases.summary.hasSuffix("scan=120 scan=30"), phases.summary)
        XCTAssertEqual(phases.json["scan"]?.intValue, 150)
        XCTAssertThrowsError(try phases.measure("index") { throw ImportFailure("x") })
        XCTAssertEqual(phases.entries.last?.name, "index", "a failed step is timed too")
    }
}
