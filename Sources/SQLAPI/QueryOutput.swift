import Foundation
import HTTPKit
import Postgres

/// Accumulates encoded rows and flushes them to the client in chunks, so memory stays flat however
/// many rows stream through. Nothing is sent before the first flush, so early errors still get a status.
struct QueryOutput {
    let format: ResultEncoder.Format
    let writer: StreamWriter
    let maxRows: Int?
    /// Rows read and dropped before the first one sent (a later page of the SQL console).
    let offset: Int
    private var skipped = 0
    private(set) var encoder: ResultEncoder?
    private var buffer: [UInt8] = []
    private var rows = 0
    private var truncated = false
    private let started = DispatchTime.now().uptimeNanoseconds
    static let flushBytes = 64 * 1024

    init(format: ResultEncoder.Format, writer: StreamWriter, maxRows: Int?, offset: Int = 0) {
        self.format = format
        self.writer = writer
        self.maxRows = maxRows
        self.offset = offset
        buffer.reserveCapacity(Self.flushBytes + 4096)
    }

    var contentType: String {
        switch format {
        case .json: return "application/json"
        case .geojson: return "application/geo+json"
        case .csv: return "text/csv; charset=utf-8"
        case .ndjson: return "application/x-ndjson"
        }
    }

    mutating func begin(_ encoder: ResultEncoder) {
        self.encoder = encoder
        switch format {
        case .json:
            buffer.append(contentsOf: #"{"schema":"#.utf8)
            encoder.schema.append(to: &buffer)
            buffer.append(contentsOf: #","rows":["#.utf8)
        case .geojson:
            buffer.append(contentsOf: #"{"type":"FeatureCollection","features":["#.utf8)
        case .csv:
            encoder.appendCSVHeader(to: &buffer)
        case .ndjson:
            break
        }
    }

    /// Appends a result's rows; false stops the statement (client gone or row cap reached).
    mutating func rows(_ result: PGResult) -> Bool {
        guard encoder != nil else { return false }
        for r in 0..<result.rowCount {
            if skipped < offset { skipped += 1; continue }
            if let maxRows, rows >= maxRows { truncated = true; return false }
            switch format {
            case .json:
                if rows > 0 { buffer.append(UInt8(ascii: ",")) }
                encoder!.appendObject(to: &buffer) { result.value(r, $0) }
            case .ndjson:
                encoder!.appendObject(to: &buffer) { result.value(r, $0) }
                buffer.append(0x0A)
            case .csv:
                encoder!.appendCSVRow(to: &buffer) { result.value(r, $0) }
            case .geojson:
                if rows > 0 { buffer.append(UInt8(ascii: ",")) }
                if let bytes = result.value(r, 0) { buffer.append(contentsOf: bytes) } else { buffer.append(contentsOf: "null".utf8) }
            }
            rows += 1
            if buffer.count >= Self.flushBytes, !flush() { return false }
        }
        return true
    }

    private mutating func flush() -> Bool {
        if !writer.started { writer.start(status: 200, headers: [("Content-Type", contentType)]) }
        let ok = writer.write(buffer)
        buffer.removeAll(keepingCapacity: true)
        return ok && !writer.clientGone
    }

    mutating func finish(command: String) {
        if encoder == nil {
            // A statement without a result set (e.g. CREATE TABLE): an empty result, as CARTO answers.
            begin(ResultEncoder(names: [], kinds: []))
        }
        let ms = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
        switch format {
        case .json:
            buffer.append(contentsOf: #"],"meta":"#.utf8)
            var meta: [String: JSON] = ["cacheHit": false, "location": "local", "totalBytesProcessed": "0",
                                        "rowCount": .int(rows), "command": .string(command.split(separator: " ").first.map(String.init) ?? ""),
                                        "executionTimeMs": .number((ms * 100).rounded() / 100)]
            if truncated {
                meta["truncated"] = true
                meta["maxRows"] = .int(maxRows ?? 0)
            }
            if offset > 0 { meta["offset"] = .int(offset) }
            JSON.object(meta).append(to: &buffer)
            buffer.append(UInt8(ascii: "}"))
        case .geojson:
            buffer.append(contentsOf: "]}".utf8)
        case .csv, .ndjson:
            break
        }
        if !writer.started {
            writer.start(status: 200, headers: [("Content-Type", contentType), ("Content-Length", String(buffer.count))])
        }
        _ = writer.write(buffer)
        buffer.removeAll()
    }
}
