import CacheInvalidator
import Jobs
import Platform

// The cdn-invalidator: purges the http-cache (every Varnish node listed) when data changes or credentials are revoked.
WorkerProgram.run(name: "tessera-cdn-invalidator") { config, _ in
    var options = Worker.Options(queue: CacheInvalidation.queue)
    // Follow-up purges of a revocation are scheduled a second or so apart: poll often.
    options.pollInterval = 0.25
    // Purges take milliseconds: claim several per round trip.
    options.claimBatch = 16
    let runner = try InvalidationRunner(purgeURLs: config.varnishPurgeURLs)
    // Its metrics file also carries Varnish's hit ratio (README "Metrics").
    VarnishHitRatio(workdir: config.varnishWorkdir).export()
    return (options, { job, context in try runner.run(job, context) })
}
