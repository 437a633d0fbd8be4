import Foundation
import Observability

/// Routes SIGTERM/SIGINT to a worker's graceful stop: signals are blocked everywhere and one thread
/// waits for them, so the handler can do real work.
public enum WorkerSignals {
    /// Blocks SIGTERM/SIGINT in the calling thread, and so in every thread it starts afterwards. Call it
    /// before any thread exists (a thread started earlier keeps them unblocked, and a signal delivered
    /// there kills the process instead of draining it).
    public static func blockTermination() {
        var mask = terminationSignals
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        signal(SIGPIPE, SIG_IGN)
    }

    static var terminationSignals: sigset_t {
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, SIGTERM)
        sigaddset(&mask, SIGINT)
        return mask
    }

    public static func stopOnTerminate(_ worker: Worker) {
        blockTermination()
        let blocked = terminationSignals
        Thread {
            var set = blocked
            var received: Int32 = 0
            sigwait(&set, &received)
            SystemdNotify.stopping()
            worker.stop()
        }.start()
    }
}
