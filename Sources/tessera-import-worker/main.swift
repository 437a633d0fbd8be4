import Config
import Foundation
import ImportsAPI
import Jobs
import Observability
import Platform

// The import-worker: loads files and URLs from the `imports` queue into warehouses until SIGTERM.
do {
    var configFile: String?
    var args = CommandLine.arguments.dropFirst().makeIterator()
    while let arg = args.next() {
        guard arg == "--config", let file = args.next() else {
            FileHandle.standardError.write(Data("usage: tessera-import-worker [--config FILE]\n".utf8))
            exit(2)
        }
        configFile = file
    }
    let config = try TesseraConfig.load(file: configFile)
    let services = try Services(config: config)
    let settings = ImportSettings(config: config)
    try settings.ensureDirectories()
    var options = Worker.Options(queue: "imports")
    options.concurrency = config.workerConcurrency
    options.leaseSeconds = config.workerLeaseSeconds
    options.rescueInterval = Double(max(1, min(15, config.workerLeaseSeconds / 2)))
    let runner = ImportRunner(services: services, settings: settings)
    let worker = Worker(queue: JobQueue(pool: services.metadata), conninfo: config.databaseURL, options: options) { job, context in
        try runner.run(job, context)
    }
    ImportJanitor(services: services, settings: settings).start()
    WorkerSignals.stopOnTerminate(worker)
    worker.run()
    exit(0)
} catch {
    Log.error("startup_failed", [("program", "tessera-import-worker"), ("error", String(describing: error))])
    exit(1)
}
