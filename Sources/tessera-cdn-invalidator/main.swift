import CacheInvalidator
import Config
import Foundation
import Jobs
import Observability
import Platform

// The cdn-invalidator: purges the http-cache (Varnish) when data changes or credentials are revoked.
do {
    var configFile: String?
    var args = CommandLine.arguments.dropFirst().makeIterator()
    while let arg = args.next() {
        guard arg == "--config", let file = args.next() else {
            FileHandle.standardError.write(Data("usage: tessera-cdn-invalidator [--config FILE]\n".utf8))
            exit(2)
        }
        configFile = file
    }
    let config = try TesseraConfig.load(file: configFile)
    let services = try Services(config: config)
    var options = Worker.Options(queue: CacheInvalidation.queue)
    options.concurrency = config.workerConcurrency
    // Follow-up purges of a revocation are scheduled a second or so apart: poll often.
    options.pollInterval = 0.25
    let runner = InvalidationRunner(purgeURL: config.varnishPurgeURL)
    let worker = Worker(queue: JobQueue(pool: services.metadata, retryBaseSeconds: 1), conninfo: config.databaseURL,
                        options: options) { job, context in try runner.run(job, context) }
    WorkerSignals.stopOnTerminate(worker)
    worker.run()
    exit(0)
} catch {
    Log.error("startup_failed", [("program", "tessera-cdn-invalidator"), ("error", String(describing: error))])
    exit(1)
}
