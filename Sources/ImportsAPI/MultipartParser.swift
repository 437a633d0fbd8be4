import Foundation
import HTTPKit

/// A streaming `multipart/form-data` parser: bytes are fed as they arrive and file contents are handed
/// on in pieces, so an upload of any size is never held in memory. Holds back only as many bytes as
/// the delimiter is long.
final class MultipartParser {
    enum Event {
        case partStart(name: String?, filename: String?)
        case data([UInt8])
        case partEnd
    }

    private enum State { case preamble, headers, body, afterDelimiter, done }

    private let delimiter: [UInt8]   // "\r\n--" + boundary
    private var buffer: [UInt8] = [0x0D, 0x0A] // lets a boundary on the very first line match like any other
    private var state = State.preamble
    private(set) var parts = 0
    static let maxHeaderBytes = 16 * 1024
    static let maxParts = 64

    init(boundary: String) {
        delimiter = Array("\r\n--".utf8) + Array(boundary.utf8)
    }

    /// The boundary of a `multipart/form-data` Content-Type, validated (RFC 2046: 1–70 characters).
    static func boundary(contentType: String) throws -> String {
        let params = HeaderParameters.parse(contentType)
        guard let b = params["boundary"], (1...70).contains(b.utf8.count), !b.contains("\r"), !b.contains("\n") else {
            throw APIError.badRequest("multipart/form-data needs a boundary", code: "invalid_multipart")
        }
        return b
    }

    var isDone: Bool { state == .done }

    func feed(_ chunk: [UInt8], _ emit: (Event) throws -> Void) throws {
        buffer.append(contentsOf: chunk)
        var progressed = true
        while progressed {
            progressed = false
            switch state {
            case .preamble:
                if let at = find(delimiter, from: 0) {
                    buffer.removeFirst(at + delimiter.count)
                    state = .afterDelimiter
                    progressed = true
                } else if buffer.count > delimiter.count {
                    buffer.removeFirst(buffer.count - delimiter.count)
                }
            case .afterDelimiter:
                guard buffer.count >= 2 else { break }
                if buffer[0] == UInt8(ascii: "-") && buffer[1] == UInt8(ascii: "-") {
                    state = .done
                    buffer.removeAll()
                } else {
                    // Transport padding (spaces/tabs) may precede the CRLF.
                    guard let crlf = find([0x0D, 0x0A], from: 0) else {
                        if buffer.count > 256 { throw APIError.badRequest("Malformed multipart body", code: "invalid_multipart") }
                        break
                    }
                    buffer.removeFirst(crlf + 2)
                    state = .headers
                    progressed = true
                }
            case .headers:
                if let end = find([0x0D, 0x0A, 0x0D, 0x0A], from: 0) {
                    let (name, filename) = try MultipartParser.partHeaders(Array(buffer[..<end]))
                    buffer.removeFirst(end + 4)
                    parts += 1
                    if parts > MultipartParser.maxParts { throw APIError.badRequest("Too many multipart parts", code: "invalid_multipart") }
                    try emit(.partStart(name: name, filename: filename))
                    state = .body
                    progressed = true
                } else if buffer.count > MultipartParser.maxHeaderBytes {
                    throw APIError.badRequest("Multipart part headers are too large", code: "invalid_multipart")
                }
            case .body:
                if let at = find(delimiter, from: 0) {
                    if at > 0 { try emit(.data(Array(buffer[..<at]))) }
                    buffer.removeFirst(at + delimiter.count)
                    try emit(.partEnd)
                    state = .afterDelimiter
                    progressed = true
                } else if buffer.count > delimiter.count {
                    let keep = delimiter.count
                    try emit(.data(Array(buffer[..<(buffer.count - keep)])))
                    buffer.removeFirst(buffer.count - keep)
                }
            case .done:
                buffer.removeAll()
            }
        }
    }

    func finish() throws {
        guard state == .done else { throw APIError.badRequest("The multipart body is incomplete", code: "invalid_multipart") }
    }

    private func find(_ needle: [UInt8], from start: Int) -> Int? {
        guard buffer.count >= needle.count, let first = needle.first else { return nil }
        var i = start
        let last = buffer.count - needle.count
        return buffer.withUnsafeBufferPointer { b -> Int? in
            while i <= last {
                guard let p = memchr(b.baseAddress! + i, Int32(first), last - i + 1) else { return nil }
                let at = b.baseAddress!.distance(to: p.assumingMemoryBound(to: UInt8.self))
                if memcmp(b.baseAddress! + at, needle, needle.count) == 0 { return at }
                i = at + 1
            }
            return nil
        }
    }

    /// `name` and `filename` from a part's Content-Disposition.
    static func partHeaders(_ bytes: [UInt8]) throws -> (String?, String?) {
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.components(separatedBy: "\r\n") {
            guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == "content-disposition" else { continue }
            let params = HeaderParameters.parse(String(line[line.index(after: colon)...]))
            return (params["name"], params["filename*"].map(HeaderParameters.extValue) ?? params["filename"])
        }
        throw APIError.badRequest("A multipart part has no Content-Disposition", code: "invalid_multipart")
    }
}

/// `value; key=token; key="quoted \" string"` header parameters, keys lower-cased.
enum HeaderParameters {
    static func parse(_ header: String) -> [String: String] {
        var result: [String: String] = [:]
        let chars = Array(header)
        var i = 0
        // Skip the leading value (e.g. `form-data`, `multipart/form-data`).
        while i < chars.count && chars[i] != ";" { i += 1 }
        while i < chars.count {
            i += 1 // ';'
            while i < chars.count && chars[i].isWhitespace { i += 1 }
            var key = ""
            while i < chars.count && chars[i] != "=" && chars[i] != ";" { key.append(chars[i]); i += 1 }
            key = key.trimmingCharacters(in: .whitespaces).lowercased()
            guard i < chars.count, chars[i] == "=" else { continue }
            i += 1
            var value = ""
            if i < chars.count && chars[i] == "\"" {
                i += 1
                while i < chars.count && chars[i] != "\"" {
                    if chars[i] == "\\" && i + 1 < chars.count { i += 1 }
                    value.append(chars[i])
                    i += 1
                }
                i += 1
                while i < chars.count && chars[i] != ";" { i += 1 }
            } else {
                while i < chars.count && chars[i] != ";" { value.append(chars[i]); i += 1 }
                value = value.trimmingCharacters(in: .whitespaces)
            }
            if !key.isEmpty && result[key] == nil { result[key] = value }
        }
        return result
    }

    /// RFC 5987 `UTF-8''percent-encoded` values.
    static func extValue(_ v: String) -> String {
        guard let tick = v.range(of: "''") else { return v }
        let encoded = v[tick.upperBound...]
        return (try? FormDecoding.percentDecode(Substring(encoded.replacingOccurrences(of: "+", with: "%2B")))) ?? String(encoded)
    }
}
