import Jobs
import Platform
import WorkspaceSubscriber

// The workspace-subscriber: applies workspace events (a connection or user removed, a map or dataset
// deleted) from the `workspace` queue until SIGTERM.
WorkerProgram.run(name: "tessera-workspace-subscriber") { _, services in
    let handler = WorkspaceEventHandler(pool: services.metadata)
    var options = Worker.Options(queue: WorkspaceEvents.queue)
    // Events are short transactions: claim several per round trip.
    options.claimBatch = 16
    return (options, { job, context in try handler.run(job, context) })
}
