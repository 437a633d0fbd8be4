import CLibPQ
import Foundation
import SQLKit

/// Owns one libpq connection. Every statement uses the extended protocol with bound text parameters,
/// so one request can never carry several statements and values are never spliced into SQL.
/// POLLRDHUP needs _GNU_SOURCE, which the Glibc module does not define.
let pollRDHUP: Int32 = 0x2000

public final class PGConnection: @unchecked Sendable {
    private(set) var handle: OpaquePointer?
    public let conninfo: String
    /// When the connection was opened; pools recycle old connections.
    public let openedAt = Date()
    /// Per-connection cache a feature may fill (e.g. the geometry type's oid); cleared with the connection.
    public var attachments: [String: Any] = [:]
    /// SQL text -> name of each protocol-level prepared statement the bookkeeping knows (see `preparedNames`).
    private var prepared: [String: String] = [:] {
        didSet { preparedNames = Set(prepared.values) }
    }
    /// Names are never reused, so forgetting some statements cannot make a new one collide with a survivor.
    private var preparedCounter = 0
    /// A per-checkout bound on each statement's run time, set by the pool from the principal's limits:
    /// enforced by cancelling from the client, so applying it costs no round trip.
    public var statementTimeout: TimeInterval?
    /// Which session mode the pool left this connection in (e.g. inside a READ ONLY transaction).
    var primedMode: PGSessionMode = .readWrite
    var primedAt = Date()
    /// `now()` of the READ ONLY transaction the pool opened, as the server wrote it (nil when none is known):
    /// the proof at check-in that the open transaction is still the pool's own (see `resetReadOnly`).
    var readOnlyStamp: String?
    /// Set by a pool that resets sessions at check-in: only then may a statement carry the reset behind it.
    var resetsAtCheckin = false
    /// The mode of the reset that ran behind the last statement (`PGConnection+ResetBehind`); nil once any
    /// statement ran since, which makes the session dirty again.
    var resetBehind: PGSessionMode?
    /// A reset sent behind the last statement whose results are still to be read (after the response).
    var pendingReset: ResetBehind?
    /// How often the pool reset this session at check-in, by kind (`resetReadOnly` or the full reset).
    public internal(set) var resets = (readOnly: 0, full: 0)
    /// Round trips to the server so far (each batch sent and waited for counts once): the pool reports
    /// them per request and per reset, so "one round trip for a read" is a measured claim.
    public private(set) var roundTrips = 0

    func countRoundTrip() { roundTrips += 1 }
    /// `roundTrips` when the pool last handed this connection out.
    var roundTripsAtCheckout = 0

    /// Closes a connection whose protocol state cannot be trusted any more; it then reports unhealthy.
    func abandon() {
        if let handle { PQfinish(handle) }
        handle = nil
    }

    /// What to watch while waiting for a result: a descriptor that signals "client gone" and a deadline.
    public struct Watch: Sendable {
        public var abortDescriptor: Int32
        public var isAborted: @Sendable () -> Bool
        public var deadline: Date?
        public init(abortDescriptor: Int32 = -1, isAborted: @escaping @Sendable () -> Bool = { false }, deadline: Date? = nil) {
            self.abortDescriptor = abortDescriptor
            self.isAborted = isAborted
            self.deadline = deadline
        }
        public static var none: Watch { Watch() }
    }

    public init(_ conninfo: String) throws {
        self.conninfo = conninfo
        let h = PQconnectdb(conninfo)
        guard let h, PQstatus(h) == CONNECTION_OK else {
            let error = PGError.connectFailed(h)
            if let h { PQfinish(h) }
            throw error
        }
        handle = h
    }

    deinit { if let handle { PQfinish(handle) } }

    public var isHealthy: Bool { handle.map { PQstatus($0) == CONNECTION_OK } ?? false }
    public var isIdle: Bool { handle.map { PQtransactionStatus($0) == PQTRANS_IDLE } ?? false }
    public var socket: Int32 { handle.map { PQsocket($0) } ?? -1 }

    /// True when the server has hung up on an idle connection (restart, terminate): checked before reuse.
    /// An idle pooled connection has nothing to read unless the server sent a FATAL goodbye or closed it,
    /// so any pending input means "replace it".
    public func serverHungUp() -> Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return true }
        var pfd = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, 0) != 0
    }

    /// Quotes an identifier through libpq. The project quotes with SQLKit's `Identifier` (no connection
    /// needed); this stays as the reference the integration tests compare it with.
    public func quoteIdentifier(_ name: String) throws -> String {
        guard let handle, let p = PQescapeIdentifier(handle, name, name.utf8.count) else {
            throw PGError(sqlstate: "22000", message: "invalid identifier")
        }
        defer { PQfreemem(p) }
        return String(cString: p)
    }

    /// Runs one statement and returns its result; errors throw `PGError`.
    /// `lastOfCheckout` says no other statement follows on this checkout, so the pool's reset can ride behind
    /// it in the same round trip (a wrong hint costs a round trip at check-in, never a leak).
    @discardableResult
    public func execute(_ sql: String, _ parameters: [String?] = [], watch: Watch = .none, prepare: Bool = false,
                        binaryResult: Bool = false, lastOfCheckout: Bool = false) throws -> PGResult {
        var last: PGResult?
        try run(sql, parameters, watch: watch, singleRow: false, prepare: prepare, binaryResult: binaryResult,
                lastOfCheckout: lastOfCheckout) { result in
            last = result
            return true
        }
        guard let last else { throw PGError(sqlstate: nil, message: "no result") }
        return last
    }

    /// Runs one statement in single-row mode, handing each row (as a one-row result) to `onRow`, then the
    /// final zero-row result that carries the column description and command status. Return false to stop:
    /// the statement is cancelled and the connection drained.
    public func stream(_ sql: String, _ parameters: [String?] = [], watch: Watch = .none, prepare: Bool = false,
                       lastOfCheckout: Bool = false, _ onResult: (PGResult) throws -> Bool) throws {
        try run(sql, parameters, watch: watch, singleRow: true, prepare: prepare, binaryResult: false,
                lastOfCheckout: lastOfCheckout, onResult)
    }

    /// Runs one SQL value (its text and its bound parameters).
    @discardableResult
    public func execute(_ sql: SQL, watch: Watch = .none, prepare: Bool = false, binaryResult: Bool = false) throws -> PGResult {
        try Self.requireFilled(sql)
        return try execute(sql.text, sql.parameters, watch: watch, prepare: prepare, binaryResult: binaryResult)
    }

    /// Streams one SQL value's rows, as `stream(_:_:watch:prepare:_:)`.
    public func stream(_ sql: SQL, watch: Watch = .none, prepare: Bool = false, _ onResult: (PGResult) throws -> Bool) throws {
        try Self.requireFilled(sql)
        try stream(sql.text, sql.parameters, watch: watch, prepare: prepare, onResult)
    }

    /// A slot's stand-in would reach the server as an empty string (libpq stops at its NUL): refuse it.
    private static func requireFilled(_ sql: SQL) throws {
        guard !sql.hasSlots else { throw PGError(sqlstate: "XX000", message: "a statement slot was not given a value") }
    }

    /// `binaryResult` asks for binary column values (bytea as raw bytes, e.g. vector tiles).
    private func run(_ sql: String, _ parameters: [String?], watch: Watch, singleRow: Bool, prepare: Bool, binaryResult: Bool,
                     lastOfCheckout: Bool = false, _ onResult: (PGResult) throws -> Bool) throws {
        settlePendingReset()
        guard let handle else { throw PGError(sqlstate: "08003", message: "connection closed", connectionLost: true) }
        resetBehind = nil
        var watch = watch
        if let limit = statementTimeout {
            let bound = Date(timeIntervalSinceNow: limit)
            if watch.deadline.map({ $0 > bound }) ?? true { watch.deadline = bound }
        }
        let name = prepare ? try preparedStatement(for: sql, parameterCount: parameters.count) : nil
        // COPY cannot run in pipeline mode; a read is what the hint is for anyway.
        let behind = lastOfCheckout && leadingKeyword(sql) != "copy" ? resetBehindPlan() : nil
        if behind != nil, PQenterPipelineMode(handle) != 1 { throw PGError.from(result: nil, connection: handle) }
        let sent = try withCStrings(parameters) { values -> Int32 in
            if let name {
                return PQsendQueryPrepared(handle, name, Int32(parameters.count), values, nil, nil, binaryResult ? 1 : 0)
            }
            return PQsendQueryParams(handle, sql, Int32(parameters.count), nil, values, nil, nil, binaryResult ? 1 : 0)
        }
        // Single-row mode is chosen right after the send, before the reset is queued behind it.
        let sendFailed = sent != 1 || (singleRow && PQsetSingleRowMode(handle) != 1 && behind != nil)
            || behind.map { !queueResetBehind($0) } == true
        if sendFailed {
            let error = PGError.from(result: nil, connection: handle)
            if behind != nil { abandon() }  // a half-sent pipeline cannot be trusted
            throw error
        }
        roundTrips += 1

        var failure: Error?
        var wanted = true
        var wrapper: PGResult?
        while true {
            if failure == nil, wanted { failure = waitForInput(watch) }
            guard let raw = PQgetResult(handle) else { break }
            // The previous row's wrapper is reused unless the callback kept it.
            if wrapper != nil, isKnownUniquelyReferenced(&wrapper!) { wrapper!.adopt(raw) } else { wrapper = PGResult(raw) }
            let result = wrapper!
            switch PQresultStatus(raw) {
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_SINGLE_TUPLE, PGRES_EMPTY_QUERY:
                if failure == nil, wanted {
                    do {
                        if try !onResult(result) { wanted = false; cancel() }
                    } catch {
                        failure = error
                        cancel()
                    }
                }
            case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
                // COPY through a request would hold the connection; end it and report.
                if PQresultStatus(raw) == PGRES_COPY_IN { _ = PQputCopyEnd(handle, "COPY FROM STDIN is not supported") }
                if failure == nil { failure = PGError(sqlstate: "0A000", message: "COPY is not supported through this API") }
                if PQresultStatus(raw) == PGRES_COPY_OUT || PQresultStatus(raw) == PGRES_COPY_BOTH {
                    var buffer: UnsafeMutablePointer<CChar>?
                    while PQgetCopyData(handle, &buffer, 0) > 0 { PQfreemem(buffer) }
                }
            default:
                if failure == nil, wanted { failure = PGError.from(result: raw, connection: handle) }
            }
        }
        if let behind {
            // Read after the response (the pool's check-in), unless the caller may retry on this connection now.
            if failure == nil { pendingReset = behind } else { finishResetBehind(behind) }
        }
        if let failure { throw failure }
        guard let handle = self.handle, PQstatus(handle) == CONNECTION_OK else {
            throw PGError.from(result: nil, connection: self.handle)
        }
    }

    /// Blocks until a result can be read without blocking, cancelling the statement if the client goes
    /// away or the deadline passes. Returns an error only for a lost connection.
    private func waitForInput(_ watch: Watch) -> Error? {
        guard let handle else { return nil }
        var cancelled = false
        while PQisBusy(handle) == 1 {
            var fds = [pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)]
            if watch.abortDescriptor >= 0, !cancelled {
                fds.append(pollfd(fd: watch.abortDescriptor, events: Int16(pollRDHUP), revents: 0))
            }
            var timeout: Int32 = 1000
            if let deadline = watch.deadline, !cancelled {
                timeout = max(0, min(timeout, Int32(deadline.timeIntervalSinceNow * 1000) + 1))
            }
            _ = poll(&fds, nfds_t(fds.count), timeout)
            if !cancelled {
                let hungUp = fds.count > 1 && fds[1].revents & Int16(pollRDHUP | POLLHUP | POLLERR) != 0
                let late = watch.deadline.map { $0.timeIntervalSinceNow <= 0 } ?? false
                if hungUp || late || watch.isAborted() {
                    cancel()
                    cancelled = true
                }
            }
            if fds[0].revents != 0, PQconsumeInput(handle) == 0 {
                return PGError.from(result: nil, connection: handle)
            }
        }
        return nil
    }

    /// Asks the server to cancel the running statement (safe from another thread).
    public func cancel() {
        guard let handle, let token = PQgetCancel(handle) else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(token, &buffer, 256)
        PQfreeCancel(token)
    }

    private func preparedStatement(for sql: String, parameterCount: Int) throws -> String {
        if let name = prepared[sql] { return name }
        if prepared.count >= 256 {
            try execute("DEALLOCATE ALL")
            prepared.removeAll()
            if resetsAtCheckin { try prepareResetStatements() }
        }
        preparedCounter += 1
        let name = "tessera_s\(preparedCounter)"
        roundTrips += 1
        guard let raw = PQprepare(handle, name, sql, Int32(parameterCount), nil) else {
            throw PGError.from(result: nil, connection: handle)
        }
        let result = PGResult(raw)
        guard PQresultStatus(result.handle) == PGRES_COMMAND_OK else {
            throw PGError.from(result: result.handle, connection: handle)
        }
        prepared[sql] = name
        return name
    }

    /// Streams as a cached prepared statement. A cached plan a schema change made invalid ("cached plan must
    /// not change result type", outside a transaction) is deallocated and the statement run once unprepared.
    public func streamPrepared(_ sql: String, _ parameters: [String?], watch: Watch, lastOfCheckout: Bool = false,
                               _ onResult: (PGResult) throws -> Bool) throws {
        do {
            try stream(sql, parameters, watch: watch, prepare: true, lastOfCheckout: lastOfCheckout, onResult)
        } catch let e as PGError where e.sqlstate == "0A000" && isIdle {
            if let name = prepared.removeValue(forKey: sql) { try execute("DEALLOCATE " + (try quoteIdentifier(name))) }
            try stream(sql, parameters, watch: watch, prepare: false, lastOfCheckout: lastOfCheckout, onResult)
        }
    }

    /// Forgets prepared statements (after DEALLOCATE ALL or a schema change).
    public func forgetPrepared() { prepared.removeAll() }

    /// The names of the protocol-level prepared statements the bookkeeping believes the server holds. Stored,
    /// not derived: every reset checks the server's listing against it, and building it per reset was about a
    /// tenth of the check-in's CPU (it changes only when a statement is prepared or forgotten).
    public private(set) var preparedNames: Set<String> = []

    /// Records a statement prepared under `name` outside `preparedStatement` (the session reset's).
    func notePrepared(_ name: String, for sql: String) { prepared[sql] = name }

    /// Drops bookkeeping entries whose statement the server no longer holds (a client's `DEALLOCATE`).
    func keepPrepared(only serverNames: Set<String>) {
        prepared = prepared.filter { serverNames.contains($0.value) }
    }

    func withCStrings<T>(_ values: [String?], _ body: ([UnsafePointer<CChar>?]) throws -> T) rethrows -> T {
        let pointers: [UnsafeMutablePointer<CChar>?] = values.map { $0.map { strdup($0) } }
        defer { for p in pointers { free(p) } }
        return try body(pointers.map { UnsafePointer($0) })
    }
}

extension PGConnection {
    /// Runs trusted, static multi-statement SQL (migrations, fixtures) with the simple protocol.
    /// Never pass request input here: it is the one path that accepts several statements.
    public func executeScript(_ sql: String) throws {
        settlePendingReset()
        guard let handle else { throw PGError(sqlstate: "08003", message: "connection closed", connectionLost: true) }
        resetBehind = nil
        countRoundTrip()
        guard let raw = PQexec(handle, sql) else { throw PGError.from(result: nil, connection: handle) }
        let result = PGResult(raw)
        let status = PQresultStatus(raw)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY else {
            throw PGError.from(result: result.handle, connection: handle)
        }
    }
}

extension PGConnection {
    /// The password a parsed conninfo holds: inline, or the matching line of its libpq `passfile=`
    /// (host:port:database:user:password, `*` matching anything; escapes are not used here). The one
    /// place the platform reads a role's password from its configuration (backup, restore, carto_dw).
    public static func password(in info: [String: String]) -> String? {
        if let password = info["password"], !password.isEmpty { return password }
        guard let passfile = info["passfile"], let text = try? String(contentsOfFile: passfile, encoding: .utf8) else { return nil }
        let wanted = [info["host"] ?? "localhost", info["port"] ?? "5432", info["dbname"] ?? info["user"] ?? "", info["user"] ?? ""]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let f = line.split(separator: ":", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
            guard f.count == 5 else { continue }
            if zip(f.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return f[4] }
        }
        return nil
    }

    /// Parses a conninfo string or URI into its keywords (libpq's own parser); nil when malformed.
    public static func parseConninfo(_ conninfo: String) -> [String: String]? {
        var error: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &error) else {
            if let error { PQfreemem(error) }
            return nil
        }
        defer { PQconninfoFree(options) }
        var result: [String: String] = [:]
        var p = options
        while let keyword = p.pointee.keyword {
            if let value = p.pointee.val { result[String(cString: keyword)] = String(cString: value) }
            p += 1
        }
        return result
    }
}

extension PGConnection {
    /// Waits up to `timeout` seconds for NOTIFY messages on channels this connection LISTENs to and
    /// returns their payloads. Throws when the connection is lost (the caller reconnects and re-LISTENs).
    public func waitForNotifications(timeout: Double) throws -> [String] {
        guard let handle else { throw PGError(sqlstate: "08003", message: "connection closed", connectionLost: true) }
        var payloads: [String] = []
        func drain() {
            while let n = PQnotifies(handle) {
                payloads.append(String(cString: n.pointee.extra))
                PQfreemem(n)
            }
        }
        drain()
        if !payloads.isEmpty { return payloads }
        var pfd = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        if poll(&pfd, 1, Int32(timeout * 1000)) > 0 {
            if PQconsumeInput(handle) == 0 || PQstatus(handle) != CONNECTION_OK {
                throw PGError.from(result: nil, connection: handle)
            }
            drain()
        }
        return payloads
    }
}
