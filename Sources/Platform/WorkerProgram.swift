import Config
import Foundation
import Jobs
import Observability

/// The shared `main` of every queue worker: `--config FILE`, the typed config and services, then a
/// `Worker` on one queue that stops gracefully on SIGTERM.
public enum WorkerProgram {
    /// `build` gets the config and services and returns the worker's options and job handler.
    public static func run(name: String, _ build: (TesseraConfig, Services) throws -> (Worker.Options, Worker.Handler)) -> Never {
        // Before `build` can start a thread of its own (the export pruner does): threads inherit the mask.
        WorkerSignals.blockTermination()
        var configFile: String?
        var args = CommandLine.arguments.dropFirst().makeIterator()
        while let arg = args.next() {
            guard arg == "--config", let file = args.next() else {
                FileHandle.standardError.write(Data("usage: \(name) [--config FILE]\n".utf8))
                exit(2)
            }
            configFile = file
        }
        do {
            let config = try TesseraConfig.load(file: configFile)
            let services = try Services(config: config)
            var (options, handler) = try build(config, services)
            options.concurrency = config.workerConcurrency
            options.softStop = Double(config.workerSoftStopSeconds)
            let worker = Worker(queue: JobQueue(pool: services.metadata), conninfo: config.databaseURL, options: options, handler: handler)
            WorkerSignals.stopOnTerminate(worker)
            exportMetrics(queue: JobQueue(pool: services.metadata))
            // Config loaded and the metadata pool built: ready as far as systemd's ordering goes.
            SystemdNotify.ready()
            worker.run()
            exit(0)
        } catch {
            Log.error("startup_failed", [("program", name), ("error", String(describing: error))])
            exit(1)
        }
    }

    /// Workers have no HTTP listener: their metrics go to a file nginx serves (see `MetricsFile`). systemd
    /// sets RUNTIME_DIRECTORY from the unit's RuntimeDirectory=; `make run` and the tests set it the same way.
    static func exportMetrics(queue: JobQueue) {
        guard let dir = ProcessInfo.processInfo.environment["RUNTIME_DIRECTORY"]?.split(separator: ":").first else { return }
        // Depth is read when the file is written: every worker exports it, labelled by queue, so any one of
        // them answers for the whole queue table.
        Metrics.shared.collect {
            guard let depth = try? queue.depth() else { return [] }
            return depth.map { Metrics.Sample("tessera_queue_waiting_jobs", "Jobs available or retryable, per queue.",
                                              labels: [("queue", $0.queue)], value: Double($0.waiting)) }
                + depth.map { Metrics.Sample("tessera_queue_oldest_due_seconds", "Age of the oldest job due to run, per queue.",
                                             labels: [("queue", $0.queue)], value: $0.oldestSeconds) }
        }
        MetricsFile.start(dir: String(dir))
    }
}
