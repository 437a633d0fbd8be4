import Foundation
import HTTPKit

/// The requests' side of the monthly quotas: this process takes units from the metadata database in
/// blocks and hands them out itself, so a geocode usually costs no quota round trip at all (the lookup is
/// then the request's only statement).
///
/// Why the quota stays exact: every unit handed out was charged in the database first (the database never
/// lets the charged total pass the quota); a block is at most an eighth of what is left, so near the end of
/// a quota each request is charged on its own; refills of one organisation's service are serialised and
/// give back what the block still held, so a 429 is answered only when the database, holding every unit
/// this process is not using, has too few. Units a block still holds go back when it has been idle for a
/// second, before `stats` reads the use, and before a 429 is reported; a crash loses at most one block.
final class QuotaLeases: @unchecked Sendable {
    struct Key: Hashable {
        let account: String
        let service: LDSService
    }

    struct Lease {
        var units: Int
        /// Size of the next block: doubles with every refill up to `maxBlock`.
        var block: Int
        let period: String
        let periodEnd: Double
        var lastUsed: Double
    }

    static let firstBlock = 8
    static let maxBlock = 256
    /// A block unused this long goes back to the database.
    let idleSeconds: Double

    let store: QuotaStore
    private let lock = NSLock()
    private var leases: [Key: Lease] = [:]
    /// One refill at a time per organisation and service (never held together with `lock`'s callers' waits).
    private var refills: [Key: NSLock] = [:]
    private var flusherStarted = false

    init(store: QuotaStore, idleSeconds: Double = 1) {
        self.store = store
        self.idleSeconds = idleSeconds
    }

    /// Takes `units` from this process's block, refilling it from the database when it has too few.
    func charge(account: String, service: LDSService, units: Int) throws {
        guard units > 0 else { return }
        let key = Key(account: account, service: service)
        if take(key, units) { return }
        let refill = refillLock(key)
        refill.lock()
        defer { refill.unlock() }
        if take(key, units) { return }  // another thread refilled while this one waited
        let held = lock.withLock { leases.removeValue(forKey: key) }
        var returning = 0
        if let held, held.units > 0 {
            if held.periodEnd > Date().timeIntervalSince1970 {
                returning = held.units
            } else {  // last month's block goes back to last month
                try? store.giveBack(account: account, service: service, period: held.period, units: held.units)
            }
        }
        let block = held.map { min($0.block * 2, Self.maxBlock) } ?? Self.firstBlock
        let grant: QuotaStore.Grant
        do {
            grant = try store.lease(account: account, service: service, units: units, extra: block, returning: returning)
        } catch let e as APIError where e.code == "quota_exceeded" {
            throw e  // the held units went back in the same transaction
        } catch {
            if let held, returning > 0 { lock.withLock { leases[key] = held } }  // rolled back: still charged, still ours
            throw error
        }
        lock.withLock {
            leases[key] = Lease(units: grant.units - units, block: block, period: grant.period, periodEnd: grant.periodEnd,
                                lastUsed: Date().timeIntervalSince1970)
        }
        startFlusher()
    }

    /// Units charged for work that did not happen go back into the block (or to the database without one).
    func refund(account: String, service: LDSService, units: Int) {
        guard units > 0 else { return }
        let key = Key(account: account, service: service)
        let kept: Bool = lock.withLock {
            guard leases[key] != nil else { return false }
            leases[key]!.units += units
            return true
        }
        if !kept { store.refund(account: account, service: service, units: units) }
    }

    /// Gives every unused unit of an organisation back (before its use is read).
    func flush(account: String) {
        for service in LDSService.allCases { flush(Key(account: account, service: service), idleFor: nil) }
    }

    private func take(_ key: Key, _ units: Int) -> Bool {
        lock.withLock {
            guard var lease = leases[key], lease.units >= units else { return false }
            let now = Date().timeIntervalSince1970
            guard lease.periodEnd > now else { return false }
            lease.units -= units
            lease.lastUsed = now
            leases[key] = lease
            return true
        }
    }

    private func refillLock(_ key: Key) -> NSLock {
        lock.withLock {
            if let l = refills[key] { return l }
            let l = NSLock()
            refills[key] = l
            return l
        }
    }

    /// Returns the block's units when it has been idle `idleFor` seconds (nil: whatever its age).
    private func flush(_ key: Key, idleFor: Double?) {
        let refill = refillLock(key)
        refill.lock()
        defer { refill.unlock() }
        let held: Lease? = lock.withLock {
            guard let lease = leases[key] else { return nil }
            if let idleFor, Date().timeIntervalSince1970 - lease.lastUsed < idleFor { return nil }
            return leases.removeValue(forKey: key)
        }
        guard let held, held.units > 0 else { return }
        do {
            try store.giveBack(account: key.account, service: key.service, period: held.period, units: held.units)
        } catch {
            // The database is away: keep the units here rather than lose them; the next flush retries.
            lock.withLock { if leases[key] == nil { leases[key] = held } else { leases[key]!.units += held.units } }
        }
    }

    private func startFlusher() {
        let start = lock.withLock { () -> Bool in
            if flusherStarted { return false }
            flusherStarted = true
            return true
        }
        guard start else { return }
        Thread.detachNewThread { [self] in
            while true {
                Thread.sleep(forTimeInterval: idleSeconds / 2)
                for key in lock.withLock({ Array(leases.keys) }) { flush(key, idleFor: idleSeconds) }
            }
        }
    }
}
