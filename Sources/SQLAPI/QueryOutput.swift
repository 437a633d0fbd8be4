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
            encoder.appendSchema(to: &buffer)
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

    private mutating func append(_ key: String, _ n: Int) {
        buffer.append(contentsOf: key.utf8)
        JSON.appendNumber(Double(n), to: &buffer)
    }

    /// `ms` rounded to two decimals, as `JSON.appendNumber` would write it, without Double's description (which
    /// cost about as much as the rest of the meta object).
    private mutating func appendHundredths(_ ms: Double) {
        let hundredths = Int((ms * 100).rounded())
        buffer.append(contentsOf: String(hundredths / 100).utf8)
        let fraction = hundredths % 100
        guard fraction != 0 else { return }
        buffer.append(UInt8(ascii: "."))
        buffer.append(UInt8(ascii: "0") + UInt8(fraction / 10))
        if fraction % 10 != 0 { buffer.append(UInt8(ascii: "0") + UInt8(fraction % 10)) }
    }

    mutating func finish(command: String) {
        if encoder == nil {
            // A statement without a result set (e.g. CREATE TABLE): an empty result, as CARTO answers.
            begin(ResultEncoder(names: [], kinds: []))
        }
        let ms = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
        switch format {
        case .json:
            // Written field by field in the sorted key order `JSON.object` gives: building that dictionary (and
            // sorting its keys) was a visible share of a small query's CPU.
            buffer.append(contentsOf: #"],"meta":{"cacheHit":false,"command":"#.utf8)
            JSON.appendString(String(command.prefix { $0 != " " }), to: &buffer)
            buffer.append(contentsOf: #","executionTimeMs":"#.utf8)
            appendHundredths(ms)
            buffer.append(contentsOf: #","location":"local""#.utf8)
            if truncated { append(#","maxRows":"#, maxRows ?? 0) }
            if offset > 0 { append(#","offset":"#, offset) }
            append(#","rowCount":"#, rows)
            buffer.append(contentsOf: #","totalBytesProcessed":"0""#.utf8)
            if truncated { buffer.append(contentsOf: #","truncated":true"#.utf8) }
            buffer.append(contentsOf: "}}".utf8)
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
