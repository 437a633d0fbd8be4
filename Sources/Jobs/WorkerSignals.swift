import Foundation
import Observability

/// Routes SIGTERM/SIGINT to a worker's graceful stop: signals are blocked everywhere and one thread
/// waits for them, so the handler can do real work.
public enum WorkerSignals {
    public static func stopOnTerminate(_ worker: Worker) {
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, SIGTERM)
        sigaddset(&mask, SIGINT)
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        signal(SIGPIPE, SIG_IGN)
        let blocked = mask
        Thread {
            var set = blocked
            var received: Int32 = 0
            sigwait(&set, &received)
            SystemdNotify.stopping()
            worker.stop()
        }.start()
    }
}
