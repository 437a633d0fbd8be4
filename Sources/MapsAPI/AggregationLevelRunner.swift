import Foundation
import HTTPKit
import Jobs
import Observability
import Platform
import Postgres
import SQLKit

/// The sql-worker's `aggregation_levels` job `{account, source, resolution}`: (re)builds the precomputed aggregation
/// levels of a source's table (see AggregationLevels) in the source's warehouse. Queued by a tile that found
/// none fresh, so a data change (import, SQL write, anything that moves the table's version) is followed
/// by a rebuild on the next low-zoom tile; the unique key keeps one pending build per levels key.
public struct AggregationLevelRunner: Sendable {
    public static let kind = AggregationLevels.jobKind
    let services: Services
    public init(services: Services) { self.services = services }

    public func run(_ job: Job, _ context: JobContext) throws -> JSON? {
        let levels = try LevelBuild(job, context, services: services)
        let record = levels.record
        guard let index = record.definition.spatialType.index, let key = AggregationLevels.key(record, index: index) else {
            throw PermanentJobError("the source cannot use precomputed levels")
        }
        var asked = AggregationLevels.resolutions(record, index: index, maxFeatures: services.config.tileMaxFeatures)
        if let resolution = job.payload["resolution"]?.intValue, (0...index.maxResolution).contains(resolution) { asked.append(resolution) }
        let level = try AggregationLevels.levelSQL(record, index: index)
        return try levels.run(key: key, prefix: "tessera_agg", event: "aggregation_levels_built", wanted: { current, version in
            // Resolutions other sources of the same key asked for are kept.
            let existing = current?.resolutions ?? []
            if let current, current.version == version, Set(existing).isSuperset(of: asked) { return nil }
            return Array(Set(asked + existing)).sorted()
        }, build: { db, relation, resolutions, watch in
            for (n, resolution) in resolutions.enumerated() {
                let sql = n == 0 ? try AggregationLevels.createSQL(relation: relation, level: level)
                    : try AggregationLevels.insertSQL(relation: relation, level: level)
                try db.execute(sql.text, sql.parameters(filling: ["resolution": String(resolution)])!, watch: watch)
            }
            try db.execute(try AggregationLevels.indexSQL(relation: relation), watch: watch)
            try db.execute("ANALYZE carto.\(try Identifier(relation))" as SQL, watch: watch)
        })
    }
}
