import CLibPQ
import Foundation

/// The check-in reset sent in the same round trip as a checkout's last statement, in libpq pipeline mode:
/// the server runs it right after the statement without waiting for the client, and neither side pays a
/// second wake-up, send and receive per request (about a third of PostgreSQL's CPU per 100-row SQL API
/// request went to that, measured with `perf`).
///
/// Why this keeps the pool's guarantees: the statements are exactly those of the reset at check-in
/// (`shortReadOnlyReset` for a read-only checkout still inside the pool's transaction, else `fullReset`),
/// and the session counts as reset only when every one of them succeeded and left the state the check-in
/// reset would (an open READ ONLY transaction stamped anew, or no transaction). Anything else (the statement
/// failed and aborted the transaction, ended it, or left one open; a reset statement failed; a cancel hit
/// it) leaves the connection marked dirty, and the check-in runs the full reset as always. So does any
/// statement run after it: `lastOfCheckout` is a hint a route gives, and a wrong hint costs a round trip,
/// never a leak. Its results are read at check-in, after the response, so it adds nothing to the request's
/// latency either.
extension PGConnection {
    struct ResetBehind {
        let mode: PGSessionMode
        let segments: [[PipelineStatement]]

        /// Whether the reset goes out in the statement's own pipeline segment, with no sync between them.
        /// libpq 15's `PQpipelineSync` always flushes, so a sync after the statement made two sends and two
        /// server wake-ups per request. A read-only checkout is inside the pool's explicit READ ONLY
        /// transaction, where a sync ends no implicit transaction, so leaving it out changes nothing the
        /// server does: a failed statement aborts the reset behind it either way (the session is then left
        /// dirty and reset at check-in). A read-write checkout keeps the sync: without it, the statement
        /// and the reset would run in one implicit transaction.
        var joinsStatementSegment: Bool { mode == .readOnly }
    }

    /// The reset to send behind a statement, or nil when the check-in reset cannot be predicted now (a
    /// read-only checkout whose transaction is not the pool's, or a pool that does not reset sessions).
    func resetBehindPlan() -> ResetBehind? {
        guard resetsAtCheckin, let handle else { return nil }
        switch primedMode {
        case .readOnly:
            guard let stamp = readOnlyStamp, PQtransactionStatus(handle) == PQTRANS_INTRANS else { return nil }
            return ResetBehind(mode: .readOnly, segments: Self.shortReadOnlyReset(stamp: stamp))
        case .readWrite:
            guard PQtransactionStatus(handle) == PQTRANS_IDLE else { return nil }
            return ResetBehind(mode: .readWrite, segments: Self.fullReset(rollback: false, priming: .readWrite))
        }
    }

    /// Queues the reset behind the statement just sent (pipeline mode) and flushes everything at once.
    func queueResetBehind(_ plan: ResetBehind) -> Bool {
        guard let handle else { return false }
        if !plan.joinsStatementSegment, PQpipelineSync(handle) != 1 { return false }
        return sendSegments(plan.segments, handle).failure == nil
    }

    /// Reads the statement's sync and the reset's results (the statement's own were read by the caller),
    /// leaves pipeline mode, and marks the session reset when every reset statement succeeded. A protocol
    /// state it cannot account for closes the connection (the pool then drops it).
    func finishResetBehind(_ plan: ResetBehind) {
        guard let handle else { return }
        let counts = plan.segments.map(\.count)
        let read = readPipeline(plan.joinsStatementSegment ? counts : [0] + counts, handle)
        guard read.inStep, PQexitPipelineMode(handle) == 1 else {
            abandon()
            return
        }
        guard read.failure == nil else { return }
        do {
            try applyReset(plan.segments, read.results, mode: plan.mode)
            if plan.mode == .readOnly { resets.readOnly += 1 } else { resets.full += 1 }
            resetBehind = plan.mode
        } catch {
            // Left dirty: the check-in reset runs (or finds the connection closed and drops it).
        }
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
