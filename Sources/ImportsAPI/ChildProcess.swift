import Foundation

/// A child program run with `posix_spawn` and an argv array — never through a shell. The child gets a
/// clean environment (only what the caller passes), default signal handling and an empty signal mask
/// (workers block SIGTERM in every thread, which a child would otherwise inherit), its own process
/// group, stdin from /dev/null and stdout/stderr in files. Through `setpriv --pdeathsig KILL` it dies
/// with its parent thread, so a SIGKILLed worker leaves no ogr2ogr behind still writing; `prlimit`
/// caps its address space and core files.
public final class ChildProcess: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let message: String
        public init(message: String) { self.message = message }
        public var description: String { message }
    }

    public enum Outcome: Equatable {
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
    private(set) var peakRSSKiB = 0

    /// Resolves a tool from fixed system directories (never from PATH): /usr/bin, /bin, /usr/local/bin.
    public static func tool(_ name: String) throws -> String {
        for dir in ["/usr/bin", "/bin", "/usr/local/bin"] where access("\(dir)/\(name)", X_OK) == 0 {
            return "\(dir)/\(name)"
        }
        throw Failure(message: "\(name) is not installed")
    }

    /// Spawns `argv` (argv[0] an absolute path) wrapped in setpriv/prlimit.
    public init(_ argv: [String], environment: [String: String], stdout: String, stderr: String,
         addressSpaceLimit: Int = 4 << 30) throws {
        let setpriv = try ChildProcess.tool("setpriv")
        let prlimit = try ChildProcess.tool("prlimit")
        let full = [setpriv, "--pdeathsig", "KILL", "--", prlimit, "--as=\(addressSpaceLimit)", "--core=0", "--"] + argv
        program = (argv.first as NSString?)?.lastPathComponent ?? "?"

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let cArgs: [UnsafeMutablePointer<CChar>?] = full.map { strdup($0) } + [nil]
        let cEnv: [UnsafeMutablePointer<CChar>?] = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, full[0], &actions, &attr, cArgs, cEnv)
        guard rc == 0 else { throw Failure(message: "could not start \(program): \(String(cString: strerror(rc)))") }
        pid = child
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
