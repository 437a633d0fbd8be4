import Foundation
import HTTPKit
import Jobs
import Observability
import Platform
import Postgres
import SQLKit

/// The sql-worker's `thinning_levels` job `{account, source}`: (re)builds the precomputed thinning levels of a
/// dense point table (see ThinningLevels) in the source's warehouse, recorded in the aggregation levels'
/// catalogue. Queued by a low-zoom tile that found none fresh, so a data change (import, SQL write, anything
/// that moves the table's version) is followed by a rebuild; the unique key keeps one pending build per key.
public struct ThinningLevelRunner: Sendable {
    public static let kind = ThinningLevels.jobKind
    let services: Services
    public init(services: Services) { self.services = services }

    public func run(_ job: Job, _ context: JobContext) throws -> JSON? {
        let levels = try LevelBuild(job, context, services: services)
        guard let thinning = Thinning.plan(levels.record, cap: services.config.tileMaxFeatures),
              let key = ThinningLevels.key(levels.record, thinning) else {
            throw PermanentJobError("the source's tiles are not thinned from levels")
        }
        let record = levels.record
        return try levels.run(key: key, prefix: "tessera_thin", event: "thinning_levels_built", wanted: { current, version in
            current?.version == version ? nil : Array(0...ThinningLevels.maxZoom)
        }, build: { db, relation, _, watch in
            // Room to rank a few million rows with little spilling (this transaction only; the deeper levels sort far fewer).
            try db.execute("SELECT set_config('work_mem', '128MB', true)")
            let build = try ThinningLevels.buildSQL(record, thinning, relation: relation)
            try db.execute(build.text, build.parameters(filling: ["cells": String(thinning.cells(z: ThinningLevels.maxZoom))])!, watch: watch)
            for index in try ThinningLevels.indexSQL(record, relation: relation) { try db.execute(index, watch: watch) }
            try db.execute("ANALYZE carto.\(try Identifier(relation))" as SQL, watch: watch)
            let counts = try db.execute(try ThinningLevels.countsSQL(relation: relation), watch: watch)
            let kept = (0..<counts.rowCount).map { counts.int($0, 1) ?? 0 }
            let total = try db.execute(try ThinningLevels.totalSQL(record), watch: watch).int(0, 0) ?? 0
            let comment = ThinningLevels.comment(kept: kept, total: total)
            try db.execute("COMMENT ON TABLE carto.\(try Identifier(relation)) IS \(unsafeRaw: SQL.literal(comment))" as SQL, watch: watch)
        })
    }
}
