import CLibPQ

extension PGConnection {
    /// Runs trusted, static statements in libpq pipeline mode: everything is sent at once and the results
    /// read back together, so the whole batch costs one round trip. Each inner array is one segment that
    /// ends with a sync: a segment runs as its own implicit transaction, and an error aborts only the rest
    /// of its segment. Returns every statement's result in order; throws the first error after reading all
    /// results (the connection is then back out of pipeline mode and idle, or unhealthy).
    func pipeline(_ segments: [[String]]) throws -> [PGResult] {
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            throw PGError(sqlstate: "08003", message: "connection closed", connectionLost: true)
        }
        guard PQenterPipelineMode(handle) == 1 else { throw PGError.from(result: nil, connection: handle) }
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
