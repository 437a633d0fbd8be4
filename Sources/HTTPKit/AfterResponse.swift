import Foundation

/// Work a request leaves for its own thread to do once its response is finished (sent and closed), such
/// as the warehouse pool's session reset: cheaper than waking another thread for it (a futex wake and two
/// context switches per request), and still off the client's path. Only a server thread that `serve`s
/// requests takes work; elsewhere `schedule` declines and the caller runs the work its own way.
public enum AfterResponse {
    private final class Pending {
        var work: [() -> Void] = []
    }

    /// One `Pending` per server thread, kept for the thread's life (server threads never exit before the
    /// process does); unset on every other thread.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Marks the calling thread as a request-serving thread: from now on it takes work after each response.
    public static func serve() {
        guard pthread_getspecific(key) == nil else { return }
        pthread_setspecific(key, Unmanaged.passRetained(Pending()).toOpaque())
    }

    private static var pending: Pending? {
        pthread_getspecific(key).map { Unmanaged<Pending>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Queues `work` to run on this thread after the current response; false (nothing queued) off a server thread.
    public static func schedule(_ work: @escaping () -> Void) -> Bool {
        guard let pending else { return false }
        pending.work.append(work)
        return true
    }

    /// Runs what the thread has queued so far, in order, and returns whether there was any. The server calls
    /// it after each response; code about to wait for what queued work frees (a pooled connection) calls it
    /// before waiting.
    @discardableResult
    public static func run() -> Bool {
        guard let pending, !pending.work.isEmpty else { return false }
        let work = pending.work
        pending.work.removeAll(keepingCapacity: true)
        for item in work { item() }
        return true
    }
}
