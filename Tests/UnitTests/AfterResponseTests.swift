import Foundation
import HTTPKit
import XCTest

/// Work queued after a response runs on the serving thread, in order, only when the server says so.
final class AfterResponseTests: XCTestCase {
    func testOnlyServerThreadsTakeWorkAndRunItWhenTold() {
        XCTAssertFalse(AfterResponse.schedule {}, "the test's thread serves no requests")
        let log = Log()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            AfterResponse.serve()
            XCTAssertTrue(AfterResponse.schedule { log.append("first") })
            XCTAssertTrue(AfterResponse.schedule { log.append("second") })
            log.append("response")
            XCTAssertTrue(AfterResponse.run())
            XCTAssertFalse(AfterResponse.run(), "nothing left")
            done.signal()
        }
        thread.start()
        done.wait()
        XCTAssertEqual(log.entries, ["response", "first", "second"])
    }
}

private final class Log: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func append(_ s: String) { lock.withLock { items.append(s) } }
    var entries: [String] { lock.withLock { items } }
}
