import CFastCGI
import Foundation
import HTTPKit
import Observability

/// A threaded libfcgi responder. Every idle thread waits in its own epoll set on the listen socket
/// (EPOLLEXCLUSIVE: the kernel wakes one thread per connection, no lock hand-off between threads) and on a
/// shared stop eventfd, so a SIGTERM wakes them all at once without interrupting in-flight requests, which
/// are drained before the process exits.
public final class FastCGIServer: @unchecked Sendable {
    public struct Options: Sendable {
        public var socketPath: String?
        public var threads: Int
        public var drainSeconds: Double
        public init(socketPath: String?, threads: Int, drainSeconds: Double = 8) {
            self.socketPath = socketPath
            self.threads = threads
            self.drainSeconds = drainSeconds
        }
    }

    private let options: Options
    private let app: HTTPApplication
    private let stateLock = NSLock()
    private var stopping = false
    private var running = 0
    private var inFlight = 0
    private var listenFD: Int32 = -1
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
        let pending = stateLock.withLock { () -> Int in stopping = true; return inFlight }
        SystemdNotify.stopping()
        var one: UInt64 = 1
        _ = write(stopFD, &one, 8)
        Log.info("stopping", [("signal", signalNumber), ("in_flight", pending)])

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
        let events = epoll_create1(Int32(EPOLL_CLOEXEC))
        defer { close(events) }
        guard events >= 0, tessera_epoll_add(events, listenFD, 1) == 0, tessera_epoll_add(events, stopFD, 0) == 0 else {
            Log.error("accept_setup_failed", [("program", app.name), ("errno", errno)])
            return
        }
        AfterResponse.serve()
        while true {
            if request.ipcFd < 0 {  // a connection nginx keeps (fastcgi_keep_conn) is read again without accepting
                let ready = tessera_epoll_wait_one(events, -1)
                if ready == stopFD || stateLock.withLock({ stopping }) { return }
                guard ready == listenFD else { continue }
                // Accepted here rather than in libfcgi, which polls every unix connection for readability
                // before handing it over (a syscall and a sleep per request): libfcgi reads a request from
                // an open ipcFd when keepConnection is set, and reads block until nginx's records arrive.
                let fd = tessera_accept(listenFD)
                guard fd >= 0 else { continue }  // another thread or process took it
                request.ipcFd = fd
                request.keepConnection = 1
            }
            // On a protocol error libfcgi closes the connection and tries the (non-blocking) listen socket.
            guard FCGX_Accept_r(&request) == 0 else { continue }
            stateLock.withLock { inFlight += 1 }
            let drained = serve(&request)
            finish(&request, inputDrained: drained)
            AfterResponse.run()
            stateLock.withLock { inFlight -= 1 }
        }
    }

    /// Ends the request. libfcgi closes a connection nginx does not keep by shutting down its side and
    /// waiting for nginx to close first (a lingering close: shutdown, poll, read, close and a sleep). That
    /// protects an upload nginx is still sending from a reset; on a unix socket whose input was read to the
    /// end (or that carried none) there is nothing to protect, so it is closed at once.
    private func finish(_ request: inout FCGX_Request, inputDrained: Bool) {
        guard request.keepConnection == 0, inputDrained, unixListener else {
            FCGX_Finish_r(&request)
            return
        }
        request.keepConnection = 1  // libfcgi flushes and frees, but leaves the socket to us
        FCGX_Finish_r(&request)
        if request.ipcFd >= 0 {  // still open unless libfcgi met an error and closed it itself
            close(request.ipcFd)
            request.ipcFd = -1
        }
        request.keepConnection = 0
    }

    /// Serves one request; returns whether its input was read to the end (or there was none).
    private func serve(_ raw: inout FCGX_Request) -> Bool {
        let started = DispatchTime.now().uptimeNanoseconds
        let exchange = FastCGIExchange(raw: &raw)
        let request = exchange.makeRequest()
        // Only nginx's loopback metrics server sets this parameter; a client cannot (headers arrive as HTTP_*).
        if exchange.param("METRICS_SCRAPE") == "1" {
            _ = exchange.send(Self.metricsResponse(), requestId: request.requestId)
            return exchange.inputDrained(request)
        }
        let response = app.handle(request)
        let (status, bytes) = exchange.send(response, requestId: request.requestId)
        let drained = exchange.inputDrained(request)
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
