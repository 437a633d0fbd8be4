import CLibPQ
import Foundation

/// The check-in reset sent in the same round trip as a checkout's last statement, in libpq pipeline mode:
/// the server runs it right after the statement without waiting for the client, and neither side pays a
/// second wake-up, send and receive per request (about a third of PostgreSQL's CPU per 100-row SQL API
/// request went to that, measured with `perf`).
///
/// Why this keeps the pool's guarantees: the statements are exactly those of the reset at check-in
/// (`resetReadOnly` for a read-only checkout still inside the pool's transaction, else `resetStatements`),
/// and the session counts as reset only when every one of them succeeded and left the state the check-in
/// reset would (an open READ ONLY transaction stamped anew, or no transaction). Anything else (the statement
/// failed and aborted the transaction, ended it, or left one open; a reset statement failed; a cancel hit
/// it) leaves the connection marked dirty, and the check-in runs the full reset as always. So does any
/// statement run after it: `lastOfCheckout` is a hint a route gives, and a wrong hint costs a round trip,
/// never a leak. Its results are read at check-in, after the response, so it adds nothing to the request's
/// latency either.
extension PGConnection {
    struct ResetBehind {
        let readOnly: Bool
        let segments: [[String]]
    }

    /// The reset to send behind a statement, or nil when the check-in reset cannot be predicted now (a
    /// read-only checkout whose transaction is not the pool's, or a pool that does not reset sessions).
    func resetBehindPlan() -> ResetBehind? {
        guard resetsAtCheckin, let handle else { return nil }
        switch primedMode {
        case .readOnly:
            guard let stamp = readOnlyStamp, PQtransactionStatus(handle) == PQTRANS_INTRANS,
                  let statements = Self.shortReadOnlyReset(stamp: stamp) else { return nil }
            return ResetBehind(readOnly: true, segments: [statements])
        case .readWrite:
            guard PQtransactionStatus(handle) == PQTRANS_IDLE else { return nil }
            return ResetBehind(readOnly: false, segments: [Self.resetStatements])
        }
    }

    /// Queues the reset behind the statement just sent (pipeline mode) and flushes everything at once.
    func queueResetBehind(_ plan: ResetBehind) -> Bool {
        guard let handle, PQpipelineSync(handle) == 1 else { return false }
        for segment in plan.segments {
            for sql in segment where PQsendQueryParams(handle, sql, 0, nil, nil, nil, nil, 0) != 1 { return false }
            guard PQpipelineSync(handle) == 1 else { return false }
        }
        return true
    }

    /// Reads the statement's sync and the reset's results (the statement's own were read by the caller),
    /// leaves pipeline mode, and marks the session reset when every reset statement succeeded. A protocol
    /// state it cannot account for closes the connection (the pool then drops it).
    func finishResetBehind(_ plan: ResetBehind) {
        guard let handle else { return }
        var inStep = Self.readSync(handle)
        var results: [PGResult] = []
        var failed = !inStep
        if inStep {
            for segment in plan.segments {
                for _ in segment {
                    var first: PGResult?
                    while let raw = PQgetResult(handle) {
                        let result = PGResult(raw)
                        let status = PQresultStatus(raw)
                        if status != PGRES_COMMAND_OK, status != PGRES_TUPLES_OK { failed = true }
                        if first == nil { first = result }
                    }
                    guard let first else { inStep = false; break }
                    results.append(first)
                }
                guard inStep, Self.readSync(handle) else { inStep = false; break }
            }
        }
        guard inStep, PQexitPipelineMode(handle) == 1 else {
            abandon()
            return
        }
        guard !failed else { return }
        do {
            if plan.readOnly {
                guard PQtransactionStatus(handle) == PQTRANS_INTRANS, results.count == 5, let stamp = results[4].string(0, 0) else { return }
                readOnlyStamp = stamp
                primedAt = Date()
                try settlePrepared(results[1], name: 0, fromSQL: 1)
                resets.readOnly += 1
            } else {
                guard PQtransactionStatus(handle) == PQTRANS_IDLE, let listing = results.last else { return }
                try settlePrepared(listing, name: 0, fromSQL: 1)
                resets.full += 1
            }
            resetBehind = plan.readOnly ? .readOnly : .readWrite
        } catch {
            // Left dirty: the check-in reset runs (or finds the connection broken and drops it).
        }
    }

    private static func readSync(_ handle: OpaquePointer) -> Bool {
        guard let raw = PQgetResult(handle) else { return false }
        return PQresultStatus(PGResult(raw).handle) == PGRES_PIPELINE_SYNC
    }

    /// Reads a reset sent behind the last statement, if any: before anything else is sent, and at check-in.
    func settlePendingReset() {
        guard let plan = pendingReset else { return }
        pendingReset = nil
        finishResetBehind(plan)
    }

    /// Whether the reset already ran behind the last statement (its results read now if still pending);
    /// clears the mark (the check-in's question).
    func takeResetBehind() -> Bool {
        settlePendingReset()
        defer { resetBehind = nil }
        return resetBehind != nil
    }
}
