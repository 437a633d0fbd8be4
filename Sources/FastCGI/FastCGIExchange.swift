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

    func param(_ name: String) -> String? {
        guard let value = FCGX_GetParam(name, raw.pointee.envp) else { return nil }
        return String(cString: value)
    }

    func makeRequest() -> HTTPRequest {
        var headers: [String: String] = [:]
        if var env = raw.pointee.envp {
            // HTTP_ACCEPT_LANGUAGE=… becomes accept-language; only HTTP_* entries are decoded.
            while let entry = env.pointee {
                if entry[0] == 72, entry[1] == 84, entry[2] == 84, entry[3] == 80, entry[4] == 95 {  // "HTTP_"
                    var name: [UInt8] = []
                    var p = entry + 5
                    while p.pointee != 0 && p.pointee != 61 {  // '='
                        let c = UInt8(bitPattern: p.pointee)
                        name.append(c == 95 ? 45 : (c >= 65 && c <= 90 ? c + 32 : c))
                        p += 1
                    }
                    if p.pointee == 61 { headers[String(decoding: name, as: UTF8.self)] = String(cString: p + 1) }
                }
                env += 1
            }
        }
        if let type = param("CONTENT_TYPE"), !type.isEmpty { headers["content-type"] = type }
        let uri = param("REQUEST_URI") ?? "/"
        var path = param("DOCUMENT_URI") ?? ""
        if path.isEmpty {
            let rawPath = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"
            path = rawPath.removingPercentEncoding ?? rawPath
        }
        let fd = raw.pointee.ipcFd
        return HTTPRequest(
            method: param("REQUEST_METHOD") ?? "GET",
            path: path,
            rawQuery: param("QUERY_STRING") ?? "",
            headers: headers,
            remoteAddress: param("REMOTE_ADDR") ?? "",
            requestId: param("REQUEST_ID") ?? "",
            contentLength: param("CONTENT_LENGTH").flatMap { Int($0) },
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
        var head: [UInt8] = []
        head.reserveCapacity(512)
        head.append(contentsOf: "Status: \(status) \(HTTPResponse.reasons[status] ?? "Status")\r\n".utf8)
        for (name, value) in base.headers + headers where !value.utf8.contains(where: { $0 == 13 || $0 == 10 }) {
            head.append(contentsOf: name.utf8)
            head.append(contentsOf: [58, 32])  // ": "
            head.append(contentsOf: value.utf8)
            head.append(contentsOf: [13, 10])
        }
        head.append(contentsOf: [13, 10])
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
