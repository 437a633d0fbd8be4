import Foundation
import Observability
import XCTest

/// Receives what `SystemdNotify` sends on a real datagram socket, as systemd would.
final class SystemdNotifyTests: XCTestCase {
    private func bound(_ path: String) -> Int32 {
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(rc, 0)
        return fd
    }

    func testSendsTheStateAsOneDatagram() {
        let path = NSTemporaryDirectory() + "notify-\(getpid()).sock"
        let fd = bound(path)
        defer { close(fd); unlink(path) }
        XCTAssertTrue(SystemdNotify.send("READY=1\nSTATUS=serving", environment: ["NOTIFY_SOCKET": path]))
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        XCTAssertEqual(n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : nil, "READY=1\nSTATUS=serving")
    }

    func testWithoutNotifySocketNothingIsSent() {
        XCTAssertFalse(SystemdNotify.send("READY=1", environment: [:]))
        XCTAssertFalse(SystemdNotify.send("READY=1", environment: ["NOTIFY_SOCKET": "/nonexistent/dir/notify.sock"]))
    }
}
