import Foundation

/// Where a request body comes from; the FastCGI layer streams it from the socket.
public protocol BodySource: AnyObject {
    /// Reads up to `max` bytes; an empty array means end of body.
    func read(max: Int) -> [UInt8]
}

/// One HTTP request as the features see it: no FastCGI types leak through.
public final class HTTPRequest: @unchecked Sendable {
    public let method: String
    /// Decoded path without the query string, e.g. `/api/v3/sql/carto_dw/query`.
    public let path: String
    public let rawQuery: String
    /// Header names lower-cased (`authorization`, `content-type`, …).
    public let headers: [String: String]
    public let remoteAddress: String
    public let requestId: String
    public let contentLength: Int?
    /// Set by the router from `{name}` segments.
    public var pathParameters: [String: String] = [:]
    private let bodySource: BodySource?
    private var bodyConsumed = false
    /// True once the client has gone away; long operations poll it to cancel work.
    public let isClientGone: @Sendable () -> Bool
    /// A descriptor that becomes readable/hung-up when the client goes away (-1 when unknown).
    public let abortDescriptor: Int32

    public init(method: String, path: String, rawQuery: String = "", headers: [String: String] = [:],
                remoteAddress: String = "", requestId: String = "", contentLength: Int? = nil,
                body: BodySource? = nil, abortDescriptor: Int32 = -1,
                isClientGone: @escaping @Sendable () -> Bool = { false }) {
        self.method = method
        self.path = path
        self.rawQuery = rawQuery
        self.headers = headers
        self.remoteAddress = remoteAddress
        self.requestId = requestId.isEmpty ? HTTPRequest.newRequestId() : requestId
        self.contentLength = contentLength
        self.bodySource = body
        self.abortDescriptor = abortDescriptor
        self.isClientGone = isClientGone
    }

    public static func newRequestId() -> String {
        var g = SystemRandomNumberGenerator()
        return String(format: "%016llx", g.next() as UInt64)
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// Query parameters; the last occurrence wins. Invalid percent-encoding or UTF-8 is a 400.
    public lazy var query: Result<[String: String], APIError> = {
        do { return .success(try FormDecoding.decode(rawQuery)) } catch let e as APIError { return .failure(e) } catch {
            return .failure(.badRequest("Malformed query string"))
        }
    }()

    public func queryParameters() throws -> [String: String] { try query.get() }

    /// Reads the whole body, refusing more than `limit` bytes with 413.
    public func body(limit: Int) throws -> [UInt8] {
        if let length = contentLength, length > limit { throw APIError(413, "payload_too_large", "Request body exceeds \(limit) bytes") }
        guard !bodyConsumed else { return [] }
        bodyConsumed = true
        guard let source = bodySource else { return [] }
        var data: [UInt8] = []
        while true {
            // Sized by Content-Length when given: each read zero-fills a buffer of this size, and 64 KB per
            // read cost a small query request more than decoding its body (the last read only sees the end).
            let left = contentLength.map { $0 - data.count } ?? -1
            let chunk = source.read(max: left >= 0 ? min(64 * 1024, left + 1) : 64 * 1024)
            if chunk.isEmpty { break }
            data.append(contentsOf: chunk)
            if data.count > limit { throw APIError(413, "payload_too_large", "Request body exceeds \(limit) bytes") }
        }
        return data
    }

    /// Streams the body in chunks to `consume`, refusing more than `limit` bytes with 413.
    public func streamBody(limit: Int, _ consume: ([UInt8]) throws -> Void) throws {
        if let length = contentLength, length > limit { throw APIError(413, "payload_too_large", "Request body exceeds \(limit) bytes") }
        guard !bodyConsumed, let source = bodySource else { return }
        bodyConsumed = true
        var total = 0
        while true {
            let chunk = source.read(max: 256 * 1024)
            if chunk.isEmpty { break }
            total += chunk.count
            if total > limit { throw APIError(413, "payload_too_large", "Request body exceeds \(limit) bytes") }
            try consume(chunk)
        }
    }

    public var mediaType: String? {
        // Trimmed by hand: Foundation's CharacterSet trimming was a visible share of a small request's CPU.
        header("content-type")?.split(separator: ";").first.map { type in
            let isSpace = { (c: Character) in c.unicodeScalars.allSatisfy { $0 == "\t" || $0.properties.generalCategory == .spaceSeparator } }
            let trimmed = type.drop(while: isSpace)
            guard let last = trimmed.lastIndex(where: { !isSpace($0) }) else { return "" }
            return trimmed[...last].lowercased()
        }
    }
}

/// `application/x-www-form-urlencoded` and query-string decoding.
public enum FormDecoding {
    public static func decode(_ raw: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for pair in raw.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = try percentDecode(parts[0])
            let value = parts.count > 1 ? try percentDecode(parts[1]) : ""
            result[key] = value
        }
        return result
    }

    public static func percentDecode(_ s: Substring) throws -> String {
        // Most names and values encode nothing, and a String's text is valid UTF-8 already: no byte-wise pass.
        if !s.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) { return String(s) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = s.utf8.makeIterator()
        while let c = it.next() {
            switch c {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let h = it.next(), let l = it.next(), let hv = hexValue(h), let lv = hexValue(l) else {
                    throw APIError.badRequest("Malformed percent-encoding in parameters")
                }
                bytes.append(hv << 4 | lv)
            default: bytes.append(c)
            }
        }
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw APIError.badRequest("Parameters are not valid UTF-8", code: "invalid_utf8")
        }
        return string
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 65...70: return c - 55
        case 97...102: return c - 87
        default: return nil
        }
    }

    public static func encode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}
