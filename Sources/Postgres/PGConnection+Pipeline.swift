import CLibPQ

extension PGConnection {
    /// Runs trusted, static statements in libpq pipeline mode: everything is sent at once and the results
    /// read back together, so the whole batch costs one round trip. Each inner array is one segment that
    /// ends with a sync: a segment runs as its own implicit transaction, and an error aborts only the rest
    /// of its segment. Returns every statement's result in order; throws the first error after reading all
    /// results (the connection is then back out of pipeline mode and idle, or unhealthy).
    func pipeline(_ segments: [[String]]) throws -> [PGResult] {
        settlePendingReset()
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            throw PGError(sqlstate: "08003", message: "connection closed", connectionLost: true)
        }
        guard PQenterPipelineMode(handle) == 1 else { throw PGError.from(result: nil, connection: handle) }
        resetBehind = nil
        countRoundTrip()
        var sendFailure: PGError?
        var sent: [Int] = []
        for segment in segments where sendFailure == nil {
            var count = 0
            for sql in segment {
                guard PQsendQueryParams(handle, sql, 0, nil, nil, nil, nil, 0) == 1 else {
                    sendFailure = PGError.from(result: nil, connection: handle)
                    break
                }
                count += 1
            }
            guard PQpipelineSync(handle) == 1 else {
                sendFailure = sendFailure ?? PGError.from(result: nil, connection: handle)
                sent.append(count)
                break
            }
            sent.append(count)
        }
        var results: [PGResult] = []
        var failure: PGError? = sendFailure
        readLoop: for count in sent {
            for _ in 0..<count {
                // A statement's results end with NULL; an aborted one yields PGRES_PIPELINE_ABORTED first.
                var first: PGResult?
                while let raw = PQgetResult(handle) {
                    let result = PGResult(raw)
                    let status = PQresultStatus(raw)
                    if status == PGRES_FATAL_ERROR, failure == nil { failure = PGError.from(result: raw, connection: handle) }
                    if first == nil { first = result }
                }
                guard let first else {
                    failure = failure ?? PGError.from(result: nil, connection: handle)
                    break readLoop
                }
                results.append(first)
            }
            guard let raw = PQgetResult(handle) else { failure = failure ?? PGError.from(result: nil, connection: handle); break }
            let sync = PGResult(raw)
            if PQresultStatus(sync.handle) != PGRES_PIPELINE_SYNC {
                failure = failure ?? PGError(sqlstate: nil, message: "pipeline out of step")
                break
            }
        }
        if PQexitPipelineMode(handle) != 1 {
            // Results left unread: the connection cannot be trusted, the pool closes it.
            abandon()
            throw failure ?? PGError(sqlstate: "08006", message: "pipeline left unfinished", connectionLost: true)
        }
        if let failure { throw failure }
        return results
    }
}

extension PGConnection {
    /// Runs trusted, static multi-statement SQL in one simple-protocol message and returns every
    /// statement's result: one round trip, and for the server cheaper than the same statements as a
    /// pipeline (one parse, no prepared-statement machinery per statement). The statements share one
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
