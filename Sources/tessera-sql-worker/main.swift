import Jobs
import Platform
import SQLAPI

// The sql-worker: runs SQL batch jobs from the `sql` queue until SIGTERM.
WorkerProgram.run(name: "tessera-sql-worker") { _, services in
    let runner = BatchJobRunner(services: services)
    return (Worker.Options(queue: "sql"), { job, context in try runner.run(job, context) })
}
