import Foundation
import HTTPKit

/// Counts the warehouse statements running per key (a token, the share of all tokens on one pool) and
/// makes callers past a cap wait briefly: a browser opens 16 tile requests at once and `fetchMap` starts
/// every layer's handshake together, so a short burst must queue, not fail. Past `maxWait` the caller
/// gets 429 with Retry-After.
final class SessionLimiter: @unchecked Sendable {
    struct Slot: Sendable {
        let key: String
        let cap: Int
    }

    private let condition = NSCondition()
    private var running: [String: Int] = [:]
    let maxWait: TimeInterval

    init(maxWait: TimeInterval) { self.maxWait = maxWait }

    /// Takes one unit of every slot, all or nothing; slots with a cap of 0 are unlimited and not counted.
    func acquire(_ slots: [Slot]) throws {
        let slots = slots.filter { $0.cap > 0 }
        guard !slots.isEmpty else { return }
        let deadline = Date(timeIntervalSinceNow: maxWait)
        condition.lock()
        defer { condition.unlock() }
        while slots.contains(where: { running[$0.key, default: 0] >= $0.cap }) {
            guard condition.wait(until: deadline) else {
                var e = APIError.tooManyRequests("Too many concurrent requests for this credential; retry shortly",
                                                 code: "concurrency_limit")
                e.retryAfter = max(1, Int(maxWait.rounded(.up)))
                throw e
            }
        }
        for slot in slots { running[slot.key, default: 0] += 1 }
    }

    func release(_ slots: [Slot]) {
        let slots = slots.filter { $0.cap > 0 }
        guard !slots.isEmpty else { return }
        condition.lock()
        for slot in slots {
            running[slot.key, default: 1] -= 1
            if running[slot.key] == 0 { running[slot.key] = nil }
        }
        condition.broadcast()
        condition.unlock()
    }
}
