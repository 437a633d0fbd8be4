import Jobs
import LDSAPI
import Platform
import SQLAPI

// The sql-worker: runs the `sql` queue until SIGTERM: SQL batch jobs and LDS geocode-table jobs (both are
// long statements against a warehouse, so they share the queue, its concurrency and its timeouts).
WorkerProgram.run(name: "tessera-sql-worker") { _, services in
    let batch = BatchJobRunner(services: services)
    let geocode = GeocodeTableRunner(services: services)
    return (Worker.Options(queue: "sql"), { job, context in
        job.kind == GeocodeTableRunner.kind ? try geocode.run(job, context) : try batch.run(job, context)
    })
}
