import Foundation

/// The systemd readiness protocol (`Type=notify`): one datagram such as `READY=1` sent to the unix socket
/// named by `$NOTIFY_SOCKET`. Written here instead of linking libsystemd: it is one `sendto`.
/// Without `$NOTIFY_SOCKET` (tests, `make run`) every call is a no-op.
public enum SystemdNotify {
    /// Tells systemd the program serves now (sockets open, dependencies reached).
    public static func ready() { send("READY=1\nSTATUS=serving") }

    /// Tells systemd a requested stop is under way (draining), so it does not count as a failure.
    public static func stopping() { send("STOPPING=1\nSTATUS=draining") }

    /// Sends `state` to `$NOTIFY_SOCKET`; returns false when there is no socket or the send failed.
    @discardableResult
    public static func send(_ state: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard var path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return false }
        // A leading '@' names a socket in the abstract namespace: its first byte is NUL.
        let abstract = path.hasPrefix("@")
        if abstract { path.removeFirst() }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let offset = abstract ? 1 : 0
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count + offset < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index + offset] = byte }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // Abstract names are not NUL-terminated: the length covers exactly the name.
        let length = socklen_t(MemoryLayout<sa_family_t>.size + offset + bytes.count + (abstract ? 0 : 1))
        let payload = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                payload.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, length) }
            }
        }
        return sent == payload.count
    }
}
