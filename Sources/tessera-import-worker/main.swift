import ImportsAPI
import Jobs
import Platform

// The import-worker: loads files and URLs from the `imports` queue into warehouses until SIGTERM.
WorkerProgram.run(name: "tessera-import-worker") { config, services in
    let settings = ImportSettings(config: config)
    try settings.ensureDirectories()
    var options = Worker.Options(queue: "imports")
    options.leaseSeconds = config.workerLeaseSeconds
    options.node = config.nodeName // uploads are pinned to the node that stored them
    options.rescueInterval = Double(max(1, min(15, config.workerLeaseSeconds / 2)))
    let runner = ImportRunner(services: services, settings: settings)
    ImportJanitor(services: services, settings: settings).start()
    return (options, { job, context in try runner.run(job, context) })
}
