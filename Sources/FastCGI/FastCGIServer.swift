import CFastCGI
import Foundation
import HTTPKit
import Observability

/// A threaded libfcgi responder. Idle threads wait in one shared epoll set holding the listen socket, the
/// connections nginx keeps between requests (fastcgi_keep_conn) and a stop eventfd. The listen socket and
/// every kept connection are armed for one wake-up at a time (EPOLLONESHOT), so one thread takes a
/// connection only when a request arrives on it and owns it until it arms it again: an idle kept connection
/// holds no thread, and nginx may keep more connections than there are threads. A SIGTERM stops accepting,
/// serves the kept connections until nginx has retired them all (see `keptGraceSeconds`), then wakes every
/// thread without interrupting in-flight requests, which are drained before the process exits.
public final class FastCGIServer: @unchecked Sendable {
    public struct Options: Sendable {
        public var socketPath: String?
        public var threads: Int
        public var drainSeconds: Double
        /// How long after SIGTERM kept connections are still served, waiting for nginx to close them. Only a
        /// close by the backend races a request nginx is writing (and nginx never retries a sent POST); nginx
        /// closes a cached connection itself when it is released after a request past its upstream
        /// `keepalive_time` (1 s), or after `keepalive_timeout` (1 s) idle in the cache, and does not check
        /// the age when it takes one. So every connection is gone within keepalive_time + keepalive_timeout
        /// + one request; under load (no idle time) within about keepalive_time. Keep above 2 s
        /// (nginx/tessera-site.conf), and with `drainSeconds` below systemd's TimeoutStopSec.
        public var keptGraceSeconds: Double
        public init(socketPath: String?, threads: Int, drainSeconds: Double = 8, keptGraceSeconds: Double = 2.5) {
            self.socketPath = socketPath
            self.threads = threads
            self.drainSeconds = drainSeconds
            self.keptGraceSeconds = keptGraceSeconds
        }
    }

    private let options: Options
    private let app: HTTPApplication
    private let stateLock = NSLock()
    /// Set at SIGTERM: no new connection is accepted; kept connections are still served.
    private var stopping = false
    /// Set when the grace for kept connections ends: a connection is closed rather than kept.
    private var closing = false
    private var running = 0
    private var inFlight = 0
    /// Threads holding a connection (claimed or accepted, until kept again or closed).
    private var busy = 0
    private var listenFD: Int32 = -1
    /// The epoll set every idle thread waits in.
    private var events: Int32 = -1
    /// Kept connections armed in `events` that no thread owns; a thread claims one under `stateLock`, and
    /// the stop closes what is left here, so a descriptor is closed exactly once.
    private var idle = Set<Int32>()
    /// Readable once stopping; never reset, so every waiting thread sees it.
    private var stopFD: Int32 = -1
    /// Set once before the threads start: an immediate close is only safe on unix sockets (no reset).
    private var unixListener = false

    public init(app: HTTPApplication, options: Options) {
        self.app = app
        self.options = options
    }

    /// Serves until SIGTERM/SIGINT, then drains and returns.
    public func run() throws {
        guard FCGX_Init() == 0 else { throw FastCGIError.initFailed }
        // libfcgi installs handlers that only set a flag; take the signals back so a dedicated waiter sees them.
        signal(SIGPIPE, SIG_IGN)
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, SIGTERM)
        sigaddset(&mask, SIGINT)
        pthread_sigmask(SIG_BLOCK, &mask, nil)

        listenFD = try openListenSocket()
        stopFD = eventfd(0, Int32(EFD_CLOEXEC))
        guard stopFD >= 0 else { throw FastCGIError.initFailed }
        // Non-blocking: a wake-up whose connection another thread or process took must not park the thread.
        let flags = fcntl(listenFD, F_GETFL)
        _ = fcntl(listenFD, F_SETFL, flags | O_NONBLOCK)
        unixListener = tessera_is_unix_socket(listenFD) != 0
        events = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard events >= 0, tessera_epoll_arm_once(events, listenFD, 1) == 0, tessera_epoll_add(events, stopFD, 0) == 0 else {
            throw FastCGIError.initFailed
        }

        stateLock.withLock { running = options.threads }
        for index in 0..<options.threads {
            let thread = Thread { [self] in self.workerLoop(index: index) }
            thread.stackSize = 2 << 20
            thread.start()
        }
        Log.info("listening", [("program", app.name), ("threads", options.threads),
                               ("socket", options.socketPath ?? "inherited fd \(listenFD)")])
        SystemdNotify.ready()

        var signalNumber: Int32 = 0
        sigwait(&mask, &signalNumber)
        // New connections wait in the listen backlog for the next process (systemd holds the socket).
        _ = epoll_ctl(events, EPOLL_CTL_DEL, listenFD, nil)
        let (pending, kept) = stateLock.withLock { () -> (Int, Int) in
            stopping = true
            return (inFlight, idle.count + busy)
        }
        SystemdNotify.stopping()
        Log.info("stopping", [("signal", signalNumber), ("in_flight", pending), ("kept_connections", kept)])

        // Closing a kept connection here could race a request nginx is writing into it (a POST it would
        // answer with a 502): its requests are served until nginx closes it, each hang-up seen in the set.
        let graceEnd = Date().addingTimeInterval(options.keptGraceSeconds)
        while Date() < graceEnd {
            if stateLock.withLock({ idle.isEmpty && busy == 0 }) { break }
            usleep(10_000)
        }
        let closed = stateLock.withLock { () -> Int in
            closing = true
            let count = idle.count
            for fd in idle { close(fd) }
            idle.removeAll()
            return count
        }
        var one: UInt64 = 1
        _ = write(stopFD, &one, 8)
        Log.info("kept_connections_retired", [("idle_connections_closed", closed)])

        let deadline = Date().addingTimeInterval(options.drainSeconds)
        while Date() < deadline {
            if stateLock.withLock({ running }) == 0 { break }
            usleep(20_000)
        }
        let left = stateLock.withLock { inFlight }
        if left > 0 { Log.warning("drain_timeout", [("in_flight", left)]) }
        if let path = options.socketPath { unlink(path) }
        Log.info("stopped", [("program", app.name)])
    }

    private func openListenSocket() throws -> Int32 {
        if let path = options.socketPath {
            unlink(path)
            let fd = FCGX_OpenSocket(path, 1024)
            guard fd >= 0 else { throw FastCGIError.listenFailed(path) }
            // The directory's permissions guard the socket; nginx runs as another user.
            chmod(path, 0o666)
            return fd
        }
        // systemd socket activation: LISTEN_FDS hands us fd 3; StandardInput=socket hands us fd 0.
        if let count = ProcessInfo.processInfo.environment["LISTEN_FDS"], Int(count) ?? 0 >= 1 { return 3 }
        var accepting: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0, accepting != 0 { return 0 }
        throw FastCGIError.noSocket
    }

    private func workerLoop(index: Int) {
        var request = FCGX_Request()
        FCGX_InitRequest(&request, listenFD, 0)
        defer { stateLock.withLock { running -= 1 } }
        AfterResponse.serve()
        while true {
            var hungUp: Int32 = 0
            let ready = tessera_epoll_wait_hangup(events, -1, &hungUp)
            if ready == stopFD { return }
            guard ready >= 0 else { continue }  // EINTR
            let fresh = ready == listenFD
            if fresh {
                // Accepted here rather than in libfcgi, which polls every unix connection for readability
                // before handing it over (a syscall and a sleep per request).
                // A connection accepted while the stop begins is still served (and then closed, not kept).
                let fd = tessera_accept(listenFD)
                _ = tessera_epoll_arm_once(events, listenFD, 0)
                guard fd >= 0 else { continue }  // another process took it
                stateLock.withLock { busy += 1 }
                request.ipcFd = fd
            } else {
                // A kept connection: ours unless the stop closed it after the wake-up.
                let claimed = stateLock.withLock { () -> Bool in
                    guard idle.remove(ready) != nil else { return false }
                    if hungUp == 0 { busy += 1 }
                    return true
                }
                guard claimed else { continue }  // the stop closed it; the stop eventfd ends this loop next
                if hungUp != 0 {  // nginx closed it (its keepalive_time or _timeout, a reload, its exit)
                    close(ready)
                    continue
                }
                request.ipcFd = ready
            }
            // libfcgi reads a request from an open ipcFd when keepConnection is set; its reads block until
            // nginx's records arrive. It then sets keepConnection from nginx's FCGI_KEEP_CONN flag.
            request.keepConnection = 1
            // On a protocol error or an end of file libfcgi closes the connection and tries the
            // (non-blocking) listen socket.
            guard FCGX_Accept_r(&request) == 0 else {
                stateLock.withLock { busy -= 1 }
                continue
            }
            stateLock.withLock { inFlight += 1 }
            let input = serve(&request)
            let kept = finish(&request, input)
            // Back in the shared set before this thread's after-response work (the pooled session's
            // reset), so nginx's next request on the connection need not wait for it.
            if let fd = kept { keep(fd, fresh: fresh) }
            stateLock.withLock { busy -= 1 }
            AfterResponse.run()
            stateLock.withLock { inFlight -= 1 }
        }
    }

    /// Puts a connection nginx keeps back in the shared set for whichever thread is free when its next
    /// request arrives, also during the stop's grace (nginx closes it); after that it is closed instead.
    private func keep(_ fd: Int32, fresh: Bool) {
        let parked = stateLock.withLock { () -> Bool in
            if closing { return false }
            idle.insert(fd)
            return true
        }
        guard parked else { close(fd); return }
        // A fresh connection may already have been closed by nginx: the first wake-up reports the hang-up.
        if tessera_epoll_arm_once(events, fd, fresh ? 1 : 0) != 0 {
            let mine = stateLock.withLock { idle.remove(fd) != nil }
            if mine { close(fd) }
        }
    }

    /// Ends the request and returns its connection when nginx keeps it (FCGI_KEEP_CONN) for the next one.
    /// A connection with a large or unknown-length body left unread is never kept (nginx, still sending, would
    /// not reuse it either): it gets libfcgi's lingering close (shutdown, poll, read, close and a sleep), which lets nginx finish
    /// sending an upload so that it reads the response rather than a reset. A connection nginx does not keep,
    /// on a unix socket with nothing left to read, has nothing to protect and is closed at once.
    private func finish(_ request: inout FCGX_Request, _ input: InputLeft) -> Int32? {
        let inputDrained = input == .none
        let keepRequested = request.keepConnection != 0
        // A body the handler did not read (an error answered before parsing it) is read and dropped when it is
        // small: nginx has sent it whole and reuses the connection, so closing it would fail nginx's next request
        // on it (a 502 that is never retried for a POST). A larger one gets the lingering close below.
        let keep = keepRequested && input != .large && Self.readEndOfInput(request.in, limit: Self.smallBody)
        guard keep || (inputDrained && !keepRequested && unixListener) else {
            request.keepConnection = 0
            FCGX_Finish_r(&request)
            return nil
        }
        request.keepConnection = 1  // libfcgi flushes and frees, but leaves the socket to us
        FCGX_Finish_r(&request)  // closes the socket itself when writing the response failed
        let fd = request.ipcFd
        request.ipcFd = -1
        request.keepConnection = 0
        guard fd >= 0 else { return nil }
        if keep { return fd }
        close(fd)
        return nil
    }

    /// Reads the input up to its end-of-stream record, so that nothing of this request is left on a kept
    /// connection to be taken for the start of the next (libfcgi returns a request once its params are in;
    /// the empty stdin record behind them may still be unread when the params were long). A request without
    /// a body, or whose body was read, has only that record left. An unread body up to `limit` is read and dropped.
    private static func readEndOfInput(_ input: UnsafeMutablePointer<FCGX_Stream>?, limit: Int) -> Bool {
        guard let input else { return false }
        // Uninitialized: a zero-filled 16 KB array here was a fifth of maps-api's instructions per health request.
        let ended = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 16_384) { chunk -> Bool in
            var extra = 0
            while FCGX_HasSeenEOF(input) == 0 {
                let n = FCGX_GetStr(chunk.baseAddress, Int32(chunk.count), input)
                if n <= 0 { break }
                extra += Int(n)
                if extra > limit { return false }
            }
            return true
        }
        return ended && FCGX_HasSeenEOF(input) != 0 && FCGX_GetError(input) == 0
    }

    /// Serves one request; returns what of its body is left unread.
    /// What of a request's body its handler left unread: nothing, a body nginx has announced as small (read and
    /// dropped to keep the connection), or one that is large or of unknown length (never waited for: nginx may
    /// still be streaming it from a slow client, and the response goes out only once the request is finished).
    enum InputLeft { case none, small, large }

    static let smallBody = 65_536

    private static func inputLeft(_ exchange: FastCGIExchange, _ request: HTTPRequest) -> InputLeft {
        if exchange.inputDrained(request) { return .none }
        if let length = request.contentLength, length <= smallBody, request.headers["transfer-encoding"] == nil { return .small }
        return .large
    }

    private func serve(_ raw: inout FCGX_Request) -> InputLeft {
        let started = DispatchTime.now().uptimeNanoseconds
        let exchange = FastCGIExchange(raw: &raw)
        let request = exchange.makeRequest()
        if exchange.metricsScrape {
            _ = exchange.send(Self.metricsResponse(), requestId: request.requestId)
            return Self.inputLeft(exchange, request)
        }
        let response = app.handle(request)
        let (status, bytes) = exchange.send(response, requestId: request.requestId)
        let drained = Self.inputLeft(exchange, request)
        let micros = (DispatchTime.now().uptimeNanoseconds - started) / 1000
        app.requests.observe(route: response.route, status: status, seconds: Double(micros) / 1_000_000, bytes: bytes)
        // nginx's access log already has every request with its id; here only what needs a second look.
        let level: Log.Level = status >= 500 || micros >= 1_000_000 ? .warning : .debug
        guard level >= Log.minimumLevel else { return drained }
        Log.emit(level, "request", [("program", app.name), ("request_id", request.requestId), ("method", request.method),
                             ("path", request.path), ("status", status), ("bytes", bytes),
                             ("ms", "\(micros / 1000).\(String(micros % 1000 + 1000).dropFirst())"), ("client_gone", exchange.clientGone ? "true" : nil)])
        return drained
    }
}

extension FastCGIServer {
    static func metricsResponse() -> HTTPResponse {
        HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"), ("Cache-Control", "no-store")],
                     body: .bytes(Array(Metrics.shared.render().utf8)))
    }
}

public enum FastCGIError: Error, CustomStringConvertible {
    case initFailed, listenFailed(String), noSocket
    public var description: String {
        switch self {
        case .initFailed: return "FCGX_Init failed"
        case .listenFailed(let p): return "cannot listen on \(p): \(String(cString: strerror(errno)))"
        case .noSocket: return "no --socket given and no socket passed by systemd (fd 0 or LISTEN_FDS)"
        }
    }
}
