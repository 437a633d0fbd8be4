import Foundation

/// A throwing computation on its own thread, so that an import overlaps it with another step on the
/// machine's second core (the CSV check with the load, the staging scan with the index build).
final class BackgroundWork<T: Sendable>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var outcome: Result<T, Error>?
    /// How long the work took, for the import's phase clock; 0 until it ends.
    private(set) var ms = 0

    init(_ body: @escaping @Sendable () throws -> T) {
        Thread.detachNewThread { [self] in
            let started = DispatchTime.now().uptimeNanoseconds
            let result = Result { try body() }
            lock.withLock {
                outcome = result
                ms = Int((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)
            }
            done.signal()
        }
    }

    /// Its error once it has failed; nil while it runs or when it succeeded. Never waits.
    var failure: Error? {
        lock.withLock {
            if case .failure(let error) = outcome { return error }
            return nil
        }
    }

    /// Waits for the work and returns its value or throws its error.
    func result() throws -> T {
        wait()
        return try lock.withLock { outcome! }.get()
    }

    /// Waits until the work has ended (any number of times, from any thread).
    func wait() {
        done.wait()
        done.signal()
    }
}
