import ImportsAPI
import Jobs
import LDSAPI
import MapsAPI
import Platform
import Exports
import SQLAPI
import Workflows
import WorkspaceAPI

// The sql-worker: runs the `sql` queue until SIGTERM: SQL batch jobs, exports, LDS geocode-table jobs and
// workflow runs and precomputed levels (and their refresh after writes): all long statements against a warehouse, so they share the
// queue and its timeouts; the level builds run on all threads but one. It also ticks the workflow scheduler.
WorkerProgram.run(name: "tessera-sql-worker") { _, services in
    let batch = BatchJobRunner(services: services)
    let export = ExportRunner(services: services)
    let geocode = GeocodeTableRunner(services: services)
    let workflows = WorkflowRunner(services: services, maps: WorkflowMaps(pool: services.metadata), locations: WorkflowLDS(services: services),
                                   imports: WorkflowURLImports(services: services))
    let levels = AggregationLevelRunner(services: services)
    let thinningLevels = ThinningLevelRunner(services: services)
    let levelsRefresh = LevelRefreshRunner(services: services)
    ExportPruner(services: services).start()
    WorkflowScheduler(services: services).start(interval: 1)
    var options = Worker.Options(queue: "sql")
    // Level builds follow every data change and can come in bursts of long statements: users' own jobs
    // (batch SQL, exports, geocoding, workflow runs) keep a thread of their own.
    options.backgroundKinds = [AggregationLevelRunner.kind, ThinningLevelRunner.kind, LevelRefreshRunner.kind]
    return (options, { job, context in
        switch job.kind {
        case GeocodeTableRunner.kind: return try geocode.run(job, context)
        case ExportRunner.kind: return try export.run(job, context)
        case WorkflowStore.runKind, WorkflowStore.dropKind: return try workflows.run(job, context)
        case AggregationLevelRunner.kind: return try levels.run(job, context)
        case ThinningLevelRunner.kind: return try thinningLevels.run(job, context)
        case LevelRefreshRunner.kind: return try levelsRefresh.run(job, context)
        default: return try batch.run(job, context)
        }
    })
}
