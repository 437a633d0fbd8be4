import HTTPKit
import XCTest

/// An in-memory request body handed out in fixed-size chunks.
final class MemoryBody: BodySource {
    private let bytes: [UInt8]
    private let chunkSize: Int
    private var offset = 0
    private(set) var reads = 0

    init(_ bytes: [UInt8], chunkSize: Int = 7) {
        self.bytes = bytes
        self.chunkSize = chunkSize
    }

    convenience init(_ text: String, chunkSize: Int = 7) { self.init(Array(text.utf8), chunkSize: chunkSize) }

    func read(max: Int) -> [UInt8] {
        reads += 1
        let n = Swift.min(max, chunkSize, bytes.count - offset)
        guard n > 0 else { return [] }
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }
}

/// Asserts `body` throws an `APIError` with the given status (and code, when given).
func assertAPIError<T>(_ body: @autoclosure () throws -> T, status: Int, code: String? = nil,
                       file: StaticString = #filePath, line: UInt = #line) {
    do {
        let value = try body()
        XCTFail("expected APIError \(status), got value \(value)", file: file, line: line)
    } catch let error as APIError {
        XCTAssertEqual(error.status, status, "status of \(error)", file: file, line: line)
        if let code { XCTAssertEqual(error.code, code, "code of \(error)", file: file, line: line) }
    } catch {
        XCTFail("expected APIError \(status), got \(error)", file: file, line: line)
    }
}

extension HTTPResponse {
    /// The complete body of a non-streamed response.
    var bodyBytes: [UInt8] {
        if case .bytes(let b) = body { return b }
        XCTFail("expected a byte body, got a stream")
        return []
    }

    var bodyJSON: JSON? { try? JSON.decode(bodyBytes) }
}
