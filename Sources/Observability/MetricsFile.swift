import Foundation

/// How a program without an HTTP listener (the queue workers) exports its metrics: the registry is written
/// every few seconds to `<dir>/metrics.prom` (write then rename, so a reader never sees half a file) and
/// nginx's loopback metrics server serves that file. Under systemd `dir` is the unit's own
/// RuntimeDirectory, which systemd removes when the unit stops: a stopped worker's target answers 404 and
/// Prometheus marks it down, never a stale file.
public enum MetricsFile {
    public static func start(dir: String, every seconds: Double = 5) {
        let path = dir + "/metrics.prom"
        let thread = Thread {
            while true {
                write(to: path)
                Thread.sleep(forTimeInterval: seconds)
            }
        }
        thread.stackSize = 256 << 10
        thread.start()
    }

    static func write(to path: String) {
        let text = Metrics.shared.render() + "# written \(Int(Date().timeIntervalSince1970))\n"
        let tmp = path + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(text.utf8)) else { return }
        // nginx (another user) reads it; the units' UMask=0077 would keep it private.
        chmod(tmp, 0o644)
        rename(tmp, path)
    }
}
