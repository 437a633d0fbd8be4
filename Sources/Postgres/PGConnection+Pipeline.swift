import CLibPQ

/// One statement of a pipeline (the session reset's).
enum PipelineStatement: Equatable {
    /// A reset statement, run by its reserved name with bound values.
    case reset(ResetStatement, [String?] = [])
    /// Trusted, static text, run unnamed.
    case text(String)
    /// Prepares a reset statement under its reserved name.
    case prepare(ResetStatement)
}

extension PGConnection {
    /// Runs statements in libpq pipeline mode: everything is sent at once and the results read back together,
    /// so the whole batch costs one round trip. Each inner array is one segment that ends with a sync: a
    /// segment runs as its own implicit transaction, and an error aborts only the rest of its segment. Returns
    /// every statement's result in order; throws the first error after reading all results (the connection is
    /// then back out of pipeline mode and idle, or unhealthy).
    func pipeline(_ segments: [[PipelineStatement]]) throws -> [PGResult] {
        settlePendingReset()
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            throw PGError(sqlstate: "08003", message: "connection closed", connectionLost: true)
        }
        guard PQenterPipelineMode(handle) == 1 else { throw PGError.from(result: nil, connection: handle) }
        resetBehind = nil
        countRoundTrip()
        let (sent, sendFailure) = sendSegments(segments, handle)
        let read = readPipeline(sent, handle)
        let failure = sendFailure ?? read.failure
        if !read.inStep || PQexitPipelineMode(handle) != 1 {
            // Results left unread: the connection cannot be trusted, the pool closes it.
            abandon()
            throw failure ?? PGError(sqlstate: "08006", message: "pipeline left unfinished", connectionLost: true)
        }
        if let failure { throw failure }
        return read.results
    }

    /// Sends each segment's statements and a sync after each (the connection is in pipeline mode). Returns how
    /// many statements of each segment went out, and the error that stopped the sending, if any.
    func sendSegments(_ segments: [[PipelineStatement]], _ handle: OpaquePointer) -> (sent: [Int], failure: PGError?) {
        var sent: [Int] = []
        for segment in segments {
            var count = 0
            for statement in segment {
                guard send(statement, handle) else { break }
                count += 1
            }
            let synced = PQpipelineSync(handle) == 1
            sent.append(count)
            if count < segment.count || !synced { return (sent, PGError.from(result: nil, connection: handle)) }
        }
        return (sent, nil)
    }

    private func send(_ statement: PipelineStatement, _ handle: OpaquePointer) -> Bool {
        switch statement {
        case let .reset(reset, parameters):
            return withCStrings(parameters) { values in
                PQsendQueryPrepared(handle, reset.name, Int32(parameters.count), values, nil, nil, 0) == 1
            }
        case let .text(sql):
            return PQsendQueryParams(handle, sql, 0, nil, nil, nil, nil, 0) == 1
        case let .prepare(reset):
            return PQsendPrepare(handle, reset.name, reset.sql, 0, nil) == 1
        }
    }

    /// What `readPipeline` read: each statement's first result, the first failure, and whether every
    /// statement's results and every sync came where expected (if not, the protocol state is unknown).
    struct PipelineRead {
        var results: [PGResult] = []
        var failure: PGError?
        var inStep = true
    }

    /// Reads the results of `counts[i]` statements and then a sync, per segment: the one reader of pipelines,
    /// for the reset's own and for the reset sent behind a statement (whose own results the caller has read:
    /// a read-write statement's segment leaves only its sync, a read-only one shares its segment with the
    /// reset, see `ResetBehind.joinsStatementSegment`). A statement that failed, or was skipped after a failure in its segment, makes
    /// `failure`; reading goes on to the end, so the connection stays in step.
    func readPipeline(_ counts: [Int], _ handle: OpaquePointer) -> PipelineRead {
        var read = PipelineRead()
        for count in counts {
            for _ in 0..<count {
                // A statement's results end with NULL; an aborted one yields PGRES_PIPELINE_ABORTED first.
                var first: PGResult?
                while let raw = PQgetResult(handle) {
                    let status = PQresultStatus(raw)
                    if status != PGRES_COMMAND_OK, status != PGRES_TUPLES_OK, read.failure == nil {
                        read.failure = status == PGRES_FATAL_ERROR ? PGError.from(result: raw, connection: handle)
                            : PGError(sqlstate: nil, message: "pipeline statement not run")
                    }
                    let result = PGResult(raw)
                    if first == nil { first = result }
                }
                guard let first else {
                    read.inStep = false
                    read.failure = read.failure ?? PGError.from(result: nil, connection: handle)
                    return read
                }
                read.results.append(first)
            }
            let sync = PQgetResult(handle)
            let synced = sync.map { PQresultStatus($0) == PGRES_PIPELINE_SYNC } ?? false
            if let sync { PQclear(sync) }
            guard synced else {
                read.inStep = false
                read.failure = read.failure ?? PGError(sqlstate: nil, message: "pipeline out of step")
                return read
            }
        }
        return read
    }
}

extension PGConnection {
    /// Runs trusted, static multi-statement SQL in one simple-protocol message and returns every
    /// statement's result: one round trip, and for the server cheaper than the same statements as an
    /// unnamed pipeline (one parse, no prepared-statement machinery per statement). The statements share one
    /// implicit transaction after any leading ROLLBACK; the first error ends the batch and is thrown.
    func scriptResults(_ sql: String) throws -> [PGResult] {
        settlePendingReset()
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            throw PGError(sqlstate: "08003", message: "connection closed", connectionLost: true)
        }
        resetBehind = nil
        countRoundTrip()
        guard PQsendQuery(handle, sql) == 1 else { throw PGError.from(result: nil, connection: handle) }
        var results: [PGResult] = []
        var failure: PGError?
        while let raw = PQgetResult(handle) {
            let result = PGResult(raw)
            switch PQresultStatus(raw) {
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK: results.append(result)
            default: if failure == nil { failure = PGError.from(result: raw, connection: handle) }
            }
        }
        if let failure { throw failure }
        return results
    }
}
