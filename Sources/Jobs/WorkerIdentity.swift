import Foundation

/// Who holds a lease, as stored in `jobs.locked_by`: the machine (its /etc/machine-id, not the
/// hostname: cloned VMs share hostnames), the boot, the PID namespace, and the process (pid plus its
/// start time, since pids are reused). From that a restarted worker can tell, at start, which running
/// jobs of its queue were held by a process of this very system that is gone, and take them back at
/// once instead of waiting for their lease to expire.
public struct WorkerIdentity: Equatable, Sendable {
    public let machine: String
    /// The kernel's boot id; where /proc/sys is hidden (the units' ProcSubset=pid) "t" and the boot
    /// time in Unix seconds, which two readings may see a second or two apart.
    public let boot: String
    /// The inode of /proc/self/ns/pid: containers made from one image may share a machine-id, but a
    /// process of another PID namespace cannot be looked up from here.
    public let pidNamespace: String
    public let pid: Int32
    /// Clock ticks since boot (/proc/PID/stat, field 22).
    public let start: UInt64
    /// For people reading the jobs table; not part of the identity.
    public let host: String

    public init(machine: String, boot: String, pidNamespace: String, pid: Int32, start: UInt64, host: String) {
        self.machine = machine
        self.boot = boot
        self.pidNamespace = pidNamespace
        self.pid = pid
        self.start = start
        self.host = host
    }

    /// This process, or nil when the machine has no machine-id (then nothing is reclaimed at start).
    public static func current() -> WorkerIdentity? {
        guard let machine = firstLine("/etc/machine-id"), !machine.isEmpty, machine != "uninitialized",
              let start = startTime(of: getpid()) else { return nil }
        return WorkerIdentity(machine: machine, boot: firstLine("/proc/sys/kernel/random/boot_id") ?? "t\(bootTime())",
                              pidNamespace: pidNamespaceInode(), pid: getpid(), start: start, host: ProcessInfo.processInfo.hostName)
    }

    public var text: String { "\(machine):\(boot):\(pidNamespace):\(pid):\(start):\(host)" }

    /// Parses `text`; nil for anything else (e.g. the older "host:pid" form: left to lease expiry).
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 6, !parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty, let pid = Int32(parts[3]), pid > 0,
              let start = UInt64(parts[4]) else { return nil }
        self.init(machine: parts[0], boot: parts[1], pidNamespace: parts[2], pid: pid, start: start, host: parts[5])
    }

    /// Whether the process this identity names certainly no longer exists, seen from `me`. Only a
    /// process of the same machine, boot and PID namespace can be checked; anything unsure counts as
    /// alive, since a live sibling's job must never be taken (those wait for lease expiry instead).
    public func isGone(seenFrom me: WorkerIdentity) -> Bool {
        guard machine == me.machine, WorkerIdentity.sameBoot(boot, me.boot), pidNamespace == me.pidNamespace, pidNamespace != "-" else {
            return false
        }
        if pid == me.pid && start == me.start { return false }
        if let now = WorkerIdentity.startTime(of: pid) { return now != start }
        // Not visible in /proc (ProtectProc=invisible hides other users' processes): kill(0) still
        // tells "no such process" from "not yours", and a process we cannot inspect is not taken.
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    static func sameBoot(_ a: String, _ b: String) -> Bool {
        if a.hasPrefix("t"), b.hasPrefix("t"), let x = Int(a.dropFirst()), let y = Int(b.dropFirst()) { return abs(x - y) <= 2 }
        return a == b
    }

    /// Field 22 of /proc/PID/stat; the command name (field 2) may hold spaces and parentheses.
    public static func startTime(of pid: pid_t) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the name: state is field 3, so field 22 is at index 19.
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    /// Boot time in Unix seconds: now minus the time since boot.
    static func bootTime() -> Int {
        var real = timespec(), boot = timespec()
        clock_gettime(CLOCK_REALTIME, &real)
        clock_gettime(CLOCK_BOOTTIME, &boot)
        return Int((Double(real.tv_sec - boot.tv_sec) + Double(real.tv_nsec - boot.tv_nsec) / 1e9).rounded())
    }

    /// "pid:[4026531836]" -> "4026531836"; "-" when unreadable (then nothing is reclaimed).
    static func pidNamespaceInode() -> String {
        guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid") else { return "-" }
        let digits = link.filter(\.isNumber)
        return digits.isEmpty ? "-" : digits
    }

    private static func firstLine(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n").first.map {
            $0.trimmingCharacters(in: .whitespaces)
        }
    }
}
