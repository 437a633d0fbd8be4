import Config
import Foundation
import Jobs
import Observability
import Platform
import SQLAPI

// The sql-worker: runs SQL batch jobs from the `sql` queue until SIGTERM.
do {
    var configFile: String?
    var args = CommandLine.arguments.dropFirst().makeIterator()
    while let arg = args.next() {
        guard arg == "--config", let file = args.next() else {
            FileHandle.standardError.write(Data("usage: tessera-sql-worker [--config FILE]\n".utf8))
            exit(2)
        }
        configFile = file
    }
    let config = try TesseraConfig.load(file: configFile)
    let services = try Services(config: config)
    var options = Worker.Options(queue: "sql")
    options.concurrency = config.workerConcurrency
    let runner = BatchJobRunner(services: services)
    let worker = Worker(queue: JobQueue(pool: services.metadata), conninfo: config.databaseURL, options: options) { job, context in
        try runner.run(job, context)
    }
    WorkerSignals.stopOnTerminate(worker)
    worker.run()
    exit(0)
} catch {
    Log.error("startup_failed", [("program", "tessera-sql-worker"), ("error", String(describing: error))])
    exit(1)
}
