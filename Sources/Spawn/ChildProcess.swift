import CSpawn
import Foundation

/// A child program run with an argv array — never through a shell — by `cspawn_start` (Sources/CSpawn).
/// The child gets a clean environment (only what the caller passes), default signal handling and an
/// empty signal mask (workers block SIGTERM in every thread, which a child would otherwise inherit),
/// its own process group, stdin from /dev/null and stdout/stderr in files. It dies with the thread that
/// started it (PR_SET_PDEATHSIG), so a SIGKILLed worker leaves no ogr2ogr behind still writing, and its
/// address space and core files are capped. All of that happens in the forked child itself, with calls
/// the units' system-call filter allows (see systemd/hardening.conf).
public final class ChildProcess: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let message: String
        public init(message: String) { self.message = message }
        public var description: String { message }
    }

    public enum Outcome: Equatable, Sendable {
        case exited(Int32)
        case signalled(Int32)
        /// Stopped by us because `isCancelled` turned true.
        case cancelled
        case timedOut
        /// Stopped by us because `check` asked (e.g. an output grew past its cap); carries the reason.
        case aborted(String)
    }

    public let pid: pid_t
    public let program: String
    public private(set) var peakRSSKiB = 0

    /// Resolves a tool from fixed system directories (never from PATH): /usr/bin, /bin, /usr/local/bin.
    /// Every name passed here must be provided by a Depends of the calling program's package:
    /// packaging/build-debs checks that against packaging/programs.
    public static func tool(_ name: String) throws -> String {
        for dir in ["/usr/bin", "/bin", "/usr/local/bin"] where access("\(dir)/\(name)", X_OK) == 0 {
            return "\(dir)/\(name)"
        }
        throw Failure(message: "\(name) is not installed")
    }

    /// Starts `argv` (argv[0] an absolute path); returns once the program is executing.
    public init(_ argv: [String], environment: [String: String], stdout: String, stderr: String,
                addressSpaceLimit: Int = 4 << 30) throws {
        program = (argv.first as NSString?)?.lastPathComponent ?? "?"
        guard let path = argv.first else { throw Failure(message: "no program to start") }
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cEnv: [UnsafeMutablePointer<CChar>?] = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        var child: pid_t = 0
        var stage = CSPAWN_OK
        var error: Int32 = 0
        let rc = cspawn_start(path, cArgs, cEnv, stdout, stderr, UInt64(max(0, addressSpaceLimit)), &child, &stage, &error)
        guard rc == 0 else {
            throw Failure(message: "could not start \(program): \(ChildProcess.describe(stage)): \(String(cString: strerror(error)))")
        }
        pid = child
    }

    private static func describe(_ stage: cspawn_stage) -> String {
        switch stage {
        case CSPAWN_OPEN_OUTPUT: return "opening its output files"
        case CSPAWN_PIPE: return "creating a pipe"
        case CSPAWN_FORK: return "fork"
        case CSPAWN_CHILD_SETUP: return "setting up the child"
        case CSPAWN_PARENT_GONE: return "its parent exited"
        case CSPAWN_EXEC: return "exec"
        default: return "unknown stage"
        }
    }

    /// Non-blocking: the outcome once the child has exited (and is reaped), else nil.
    public func poll() -> Outcome? {
        var status: Int32 = 0
        var usage = rusage()
        let r = wait4(pid, &status, WNOHANG, &usage)
        if r == 0 { return nil }
        if r < 0 { return errno == EINTR ? nil : .exited(-1) }
        peakRSSKiB = max(peakRSSKiB, Int(usage.ru_maxrss))
        let sig = status & 0x7f
        return sig == 0 ? .exited((status >> 8) & 0xff) : .signalled(sig)
    }

    /// SIGTERM to the child's group, then SIGKILL after `grace` seconds; reaps it.
    public func stop(grace: Double = 3) {
        kill(-pid, SIGTERM)
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while Date() < deadline {
            if poll() != nil { return }
            usleep(50_000)
        }
        kill(-pid, SIGKILL)
        kill(pid, SIGKILL)
        while poll() == nil { usleep(20_000) }
    }

    /// Waits for the child, calling `tick` about every `interval` seconds. Stops the child when
    /// `isCancelled` turns true, at `deadline`, or when `check` returns a reason.
    public func wait(deadline: Date, interval: Double = 0.2, isCancelled: () -> Bool,
              check: () -> String? = { nil }, tick: () -> Void = {}) -> Outcome {
        var lastTick = Date.distantPast
        while true {
            if let outcome = poll() { return outcome }
            if isCancelled() { stop(); return .cancelled }
            if Date() >= deadline { stop(); return .timedOut }
            if let reason = check() { stop(); return .aborted(reason) }
            if Date().timeIntervalSince(lastTick) >= 1 {
                tick()
                lastTick = Date()
            }
            usleep(UInt32(interval * 1_000_000))
        }
    }

    /// The last `limit` bytes of a file (child output), as text.
    public static func tail(_ path: String, limit: Int = 16 * 1024) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > UInt64(limit) ? size - UInt64(limit) : 0)
        let data = (try? handle.readToEnd()) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
