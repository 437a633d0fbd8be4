import CFastCGI
import Foundation
import HTTPKit
import SQLKit
import Observability

/// One accepted FastCGI request: reads its params and body and writes the response.
final class FastCGIExchange: StreamWriter, BodySource, @unchecked Sendable {
    private let raw: UnsafeMutablePointer<FCGX_Request>
    private(set) var clientGone = false
    private var written = 0

    init(raw: UnsafeMutablePointer<FCGX_Request>) { self.raw = raw }

    /// Set by `makeRequest`: nginx's loopback metrics server asked for the metrics (a parameter only it sends;
    /// a client's headers arrive as HTTP_*).
    private(set) var metricsScrape = false

    /// The parameters the request is made of, found in one pass over nginx's list (a libfcgi lookup per name
    /// scanned the whole list each time: nine scans of some twenty entries per request).
    private struct Params {
        /// Indexed by `Name.rawValue`; the first of a name wins, as with libfcgi's own lookup.
        var values = [String?](repeating: nil, count: FastCGIExchange.names.count)
        var headers: [String: String] = [:]
        subscript(_ name: Name) -> String? { values[name.rawValue] }
    }

    private enum Name: Int, CaseIterable {
        case method, requestURI, documentURI, query, contentType, contentLength, remoteAddress, requestId, metricsScrape

        var param: String {
            switch self {
            case .method: return "REQUEST_METHOD"
            case .requestURI: return "REQUEST_URI"
            case .documentURI: return "DOCUMENT_URI"
            case .query: return "QUERY_STRING"
            case .contentType: return "CONTENT_TYPE"
            case .contentLength: return "CONTENT_LENGTH"
            case .remoteAddress: return "REMOTE_ADDR"
            case .requestId: return "REQUEST_ID"
            case .metricsScrape: return "METRICS_SCRAPE"
            }
        }
    }

    /// Indexed by `Name.rawValue`.
    private static let names = Name.allCases.map { Array($0.param.utf8) }
    private static let httpPrefix = Array("HTTP_".utf8)

    private func readParams() -> Params {
        var params = Params()
        guard var env = raw.pointee.envp else { return params }
        let names = Self.names, httpPrefix = Self.httpPrefix
        while let entry = env.pointee {
            env += 1
            let bytes = UnsafeRawPointer(entry).assumingMemoryBound(to: UInt8.self)
            var end = 0
            while bytes[end] != 0 && bytes[end] != 61 { end += 1 }  // '='
            guard bytes[end] == 61 else { continue }
            let name = UnsafeBufferPointer(start: bytes, count: end)
            if end > 5, name.starts(with: httpPrefix) {
                // HTTP_ACCEPT_LANGUAGE=… becomes accept-language.
                let header = String(unsafeUninitializedCapacity: end - 5) { out in
                    for (i, c) in name.dropFirst(5).enumerated() { out[i] = c == 95 ? 45 : (c >= 65 && c <= 90 ? c + 32 : c) }
                    return end - 5
                }
                params.headers[header] = String(cString: bytes + end + 1)
            } else if let index = names.firstIndex(where: { $0.count == end && $0.elementsEqual(name) }),
                      params.values[index] == nil {
                params.values[index] = String(cString: bytes + end + 1)
            }
        }
        return params
    }

    func makeRequest() -> HTTPRequest {
        var params = readParams()
        metricsScrape = params[.metricsScrape] == "1"
        if let type = params[.contentType], !type.isEmpty { params.headers["content-type"] = type }
        let uri = params[.requestURI] ?? "/"
        var path = params[.documentURI] ?? ""
        if path.isEmpty {
            let rawPath = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"
            path = rawPath.removingPercentEncoding ?? rawPath
        }
        let fd = raw.pointee.ipcFd
        return HTTPRequest(
            method: params[.method] ?? "GET",
            path: path,
            rawQuery: params[.query] ?? "",
            headers: params.headers,
            remoteAddress: params[.remoteAddress] ?? "",
            requestId: params[.requestId] ?? "",
            contentLength: params[.contentLength].flatMap { Int($0) },
            body: self,
            abortDescriptor: fd,
            isClientGone: { FastCGIExchange.peerHungUp(fd) })
    }

    /// nginx closes the connection when its client aborts; a hang-up on our side of it means nobody is waiting.
    static func peerHungUp(_ fd: Int32) -> Bool {
        guard fd >= 0 else { return false }
        var pfd = pollfd(fd: fd, events: Int16(0x2000 /* POLLRDHUP, needs _GNU_SOURCE */), revents: 0)
        guard poll(&pfd, 1, 0) > 0 else { return false }
        return pfd.revents & Int16(0x2000 | POLLHUP | POLLERR) != 0
    }

    /// True when nothing of the request's input is left for nginx to send: the body was read to its end,
    /// or none was announced (no length and no chunked transfer, which nginx streams without a length).
    func inputDrained(_ request: HTTPRequest) -> Bool {
        if let input = raw.pointee.in, FCGX_HasSeenEOF(input) != 0 { return true }
        return (request.contentLength ?? 0) == 0 && request.headers["transfer-encoding"] == nil
    }

    // MARK: BodySource

    func read(max: Int) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { FCGX_GetStr($0.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(max), raw.pointee.in) }
        if n <= 0 { return [] }
        buffer.removeSubrange(Int(n)...)
        return buffer
    }

    // MARK: StreamWriter

    private var base: HTTPResponse?
    private(set) var started = false
    private(set) var status = 0

    func start(status: Int, headers: [(String, String)]) {
        guard !started, let base else { return }
        started = true
        self.status = status
        // Byte by byte rather than with array literals: each `[13, 10]` was an array allocated and freed.
        var head: [UInt8] = []
        head.reserveCapacity(512)
        head.append(contentsOf: "Status: ".utf8)
        head.append(contentsOf: String(status).utf8)
        head.append(32)
        head.append(contentsOf: (HTTPResponse.reasons[status] ?? "Status").utf8)
        head.append(13); head.append(10)
        for list in [base.headers, headers] {
            for (name, value) in list where !value.utf8.contains(where: { $0 == 13 || $0 == 10 }) {
                head.append(contentsOf: name.utf8)
                head.append(58); head.append(32)  // ": "
                head.append(contentsOf: value.utf8)
                head.append(13); head.append(10)
            }
        }
        head.append(13); head.append(10)
        put(head)
    }

    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        if !started { start(status: base?.status ?? 200, headers: []) }
        guard put(bytes) else { return false }
        written += bytes.count
        return true
    }

    @discardableResult
    private func put(_ bytes: [UInt8]) -> Bool {
        if clientGone { return false }
        if bytes.isEmpty { return true }
        let n = bytes.withUnsafeBytes { FCGX_PutStr($0.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(bytes.count), raw.pointee.out) }
        if n < 0 { clientGone = true; return false }
        return true
    }

    /// Writes the response; returns (status sent, body bytes written).
    func send(_ response: HTTPResponse, requestId: String) -> (Int, Int) {
        base = response
        switch response.body {
        case .bytes(let body):
            var headers: [(String, String)] = []
            if response.header("Content-Length") == nil, response.status != 204 { headers.append(("Content-Length", String(body.count))) }
            start(status: response.status, headers: headers)
            write(body)
        case .stream(let produce):
            do {
                try produce(self)
                if !started { start(status: response.status, headers: []) }
            } catch {
                if started {
                    Log.error("stream_failed", [("request_id", requestId), ("error", String(describing: error))])
                } else {
                    let apiError = APIError.rendering(error, requestId: requestId)
                    var failure = HTTPResponse.error(apiError, requestId: requestId)
                    // Keep CORS and the request id; the error decides its own type, length and caching.
                    failure.headers += response.headers.filter {
                        !["content-type", "content-length", "cache-control", "vary"].contains($0.0.lowercased())
                    }
                    base = failure
                    start(status: failure.status, headers: [])
                    if case .bytes(let body) = failure.body { write(body) }
                }
            }
        }
        // A complete body stays in libfcgi's buffer: FCGX_Finish_r writes it with the end-of-request records
        // in one write (a flush here was a second write per request). A stream is flushed as it goes.
        if case .stream = response.body, FCGX_FFlush(raw.pointee.out) < 0 { clientGone = true }
        return (status, written)
    }
}
