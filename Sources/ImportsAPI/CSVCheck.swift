import Foundation

/// A pass over a CSV/TSV before GDAL reads it: GDAL forgives a quote that is never closed (the rest of
/// the file becomes one field, "success, 1 row") and records with more fields than the header (extra
/// values dropped), so such a file is refused here with what is wrong and where (line and record).
/// RFC 4180 quoting: `"` opens a quoted field only at a field's start, `""` inside is a quote, a
/// closing quote is followed by a separator or the end of the line; quoted fields may span lines. Blank lines are skipped as GDAL does; a record with fewer fields is allowed
/// (GDAL fills NULLs, common in exported spreadsheets).
enum CSVCheck {
    /// `separator` nil: detected from the header line as GDAL's CSV driver does (comma, semicolon, tab or pipe).
    static func validate(path: String, separator: UInt8? = nil, isCancelled: () -> Bool = { false }) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ImportFailure("The file cannot be read") }
        defer { try? handle.close() }
        let head = try handle.read(upToCount: 64 << 10) ?? Data()
        try handle.seek(toOffset: 0)
        var scanner = Scanner(separator: separator ?? detectSeparator(Array(head)))
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            if isCancelled() { throw ImportCancelled() }
            try chunk.withUnsafeBytes { try scanner.feed($0) }
        }
        try scanner.finish()
    }

    /// The candidate seen most often outside quotes in the first line; comma on a tie or when none is seen.
    static func detectSeparator(_ head: [UInt8]) -> UInt8 {
        var counts: [UInt8: Int] = [:]
        var quoted = false
        for b in head {
            if b == UInt8(ascii: "\"") { quoted.toggle(); continue }
            if !quoted && (b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r")) { break }
            if !quoted, [UInt8(ascii: ","), UInt8(ascii: ";"), 9, UInt8(ascii: "|")].contains(b) { counts[b, default: 0] += 1 }
        }
        let comma = counts[UInt8(ascii: ","), default: 0]
        guard let best = counts.max(by: { $0.value < $1.value }), best.value > comma else { return UInt8(ascii: ",") }
        return best.key
    }

    struct Scanner {
        let separator: UInt8
        var line = 1
        var record = 0            // records completed so far (the header is record 1)
        var recordLine = 1        // where the current record started
        var fields = 1
        var headerFields = 0
        var inQuotes = false
        var quoteSeen = false     // inside quotes, the previous byte was a quote
        var atFieldStart = true
        var recordEmpty = true

        init(separator: UInt8) { self.separator = separator }

        mutating func feed(_ bytes: UnsafeRawBufferPointer) throws {
            for b in bytes {
                if inQuotes {
                    if quoteSeen {
                        quoteSeen = false
                        if b == UInt8(ascii: "\"") { continue }           // "" is a literal quote
                        inQuotes = false                                   // the closing quote; b is handled below
                        if b != separator && b != UInt8(ascii: "\n") && b != UInt8(ascii: "\r") {
                            // GDAL would glue the rest on and shift every following value.
                            throw ImportFailure("The CSV is malformed: record \(record + 1) (starting on line \(recordLine)) has text "
                                                + "after a closing quote on line \(line) (an unescaped quote?)")
                        }
                    } else if b == UInt8(ascii: "\"") {
                        quoteSeen = true
                        continue
                    } else {
                        if b == UInt8(ascii: "\n") { line += 1 }
                        continue
                    }
                }
                switch b {
                case UInt8(ascii: "\""):
                    if atFieldStart { inQuotes = true; recordEmpty = false }
                    atFieldStart = false
                case separator:
                    fields += 1
                    atFieldStart = true
                    recordEmpty = false
                case UInt8(ascii: "\n"):
                    try endRecord()
                    line += 1
                    recordLine = line
                case UInt8(ascii: "\r"):
                    break
                default:
                    atFieldStart = false
                    recordEmpty = false
                }
            }
        }

        mutating func endRecord() throws {
            defer { fields = 1; atFieldStart = true; recordEmpty = true }
            if recordEmpty { return }
            record += 1
            if record == 1 { headerFields = fields; return }
            if fields > headerFields {
                throw ImportFailure("The CSV is malformed: record \(record) (line \(recordLine)) has \(fields) fields, "
                                    + "but the header has \(headerFields)")
            }
        }

        mutating func finish() throws {
            if inQuotes && !quoteSeen {
                throw ImportFailure("The CSV is malformed: the quoted field that starts in record \(record + 1) (line \(recordLine)) "
                                    + "is never closed")
            }
            inQuotes = false
            try endRecord()
        }
    }
}
