import Jobs
import Platform
import WorkspaceSubscriber

// The workspace-subscriber: applies workspace events (a connection or user removed, a map or dataset
// deleted) from the `workspace` queue until SIGTERM.
WorkerProgram.run(name: "tessera-workspace-subscriber") { _, services in
    let handler = WorkspaceEventHandler(pool: services.metadata)
    return (Worker.Options(queue: WorkspaceEvents.queue), { job, context in try handler.run(job, context) })
}
