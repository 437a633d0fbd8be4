import Foundation

/// Who holds a lease, as stored in `jobs.locked_by`: the machine (its /etc/machine-id, not the
/// hostname: cloned VMs share hostnames), the boot, and the process (pid plus its start time, since
/// pids are reused). From that a restarted worker can tell, at start, which running jobs of its queue
/// were held by a process of this machine that is gone, and take them back at once instead of
/// waiting for their lease to expire.
public struct WorkerIdentity: Equatable, Sendable {
    public let machine: String
    /// The kernel's boot id, or "-" where /proc/sys is hidden (the units' ProcSubset=pid): then the
    /// start time alone tells a reused pid apart.
    public let boot: String
    public let pid: Int32
    /// Clock ticks since boot (/proc/PID/stat, field 22).
    public let start: UInt64
    /// For people reading the jobs table; not part of the identity.
    public let host: String

    public init(machine: String, boot: String, pid: Int32, start: UInt64, host: String) {
        self.machine = machine
        self.boot = boot
        self.pid = pid
        self.start = start
        self.host = host
    }

    /// This process, or nil when the machine has no machine-id (then nothing is reclaimed at start).
    public static func current() -> WorkerIdentity? {
        guard let machine = firstLine("/etc/machine-id"), !machine.isEmpty,
              let start = startTime(of: getpid()) else { return nil }
        return WorkerIdentity(machine: machine, boot: firstLine("/proc/sys/kernel/random/boot_id") ?? "-", pid: getpid(),
                              start: start, host: ProcessInfo.processInfo.hostName)
    }

    public var text: String { "\(machine):\(boot):\(pid):\(start):\(host)" }

    /// Parses `text`; nil for anything else (e.g. the older "host:pid" form: left to lease expiry).
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, !parts[0].isEmpty, !parts[1].isEmpty, let pid = Int32(parts[2]), pid > 0,
              let start = UInt64(parts[3]) else { return nil }
        self.init(machine: parts[0], boot: parts[1], pid: pid, start: start, host: parts[4])
    }

    /// Whether the process this identity names certainly no longer exists, seen from `me` (same
    /// machine). Unsure counts as alive: a live sibling's job must never be taken.
    public func isGone(seenFrom me: WorkerIdentity) -> Bool {
        guard machine == me.machine else { return false }
        if boot != "-" && me.boot != "-" && boot != me.boot { return true }
        if pid == me.pid && start == me.start { return false }
        if let now = WorkerIdentity.startTime(of: pid) { return now != start }
        // Not visible in /proc (ProtectProc=invisible hides other users' processes): kill(0) still
        // tells "no such process" from "not yours", and a process we cannot inspect is not taken.
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    /// Field 22 of /proc/PID/stat; the command name (field 2) may hold spaces and parentheses.
    public static func startTime(of pid: pid_t) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the name: state is field 3, so field 22 is at index 19.
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    private static func firstLine(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n").first.map {
            $0.trimmingCharacters(in: .whitespaces)
        }
    }
}
