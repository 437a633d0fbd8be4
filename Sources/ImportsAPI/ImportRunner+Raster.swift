import Foundation
import HTTPKit
import Jobs
import Postgres
import SQLKit

extension ImportRunner {
    /// Whether the input goes the raster way: TIFF content, or a raster name on content that is not one
    /// (then a clear failure instead of the vector detector's "binary content").
    static func isRaster(input: String, hints: [String]) throws -> Bool {
        let (head, _) = try FormatDetector.sniff(input)
        if RasterImport.isTIFF(head) { return true }
        if let name = hints.first(where: RasterImport.isRasterName) {
            throw ImportFailure("\(FormatDetector.fileExtension(of: name)) file that is not a raster: only GeoTIFF / COG rasters are imported as rasters")
        }
        return false
    }

    /// Steps 2–5 of `attempt` for a raster: inspect, warp onto the quadbin grid, load the blocks into the
    /// staging table, then the same swap and completion as a vector import.
    func attemptRaster(_ job: Job, _ request: ImportRequest, _ context: JobContext, work: String, input: String,
                       warehouse: Warehouse, account: String, deadline: Date) throws -> JSON? {
        context.report(progress: ["phase": "inspecting"])
        let loader = RasterLoader(work: work, input: input, deadline: deadline, context: context)
        let (bands, extent, pixelSize) = try loader.inspect()
        let grid = try RasterImport.Grid.choose(mercatorExtent: extent, pixelSize: pixelSize)
        try warehouse.pool.withConnection { db in
            let ready = try db.execute("""
                SELECT to_regtype('raster') IS NOT NULL AND to_regprocedure('carto.quadbin_fromzxy(integer,bigint,bigint)') IS NOT NULL
                """)
            guard ready.bool(0, 0) == true else {
                throw ImportFailure("Raster imports need PostGIS raster (CREATE EXTENSION postgis_raster) and the quadbin functions (tessera warehouse-migrate) in this warehouse")
            }
        }
        context.report(progress: ["phase": "warping"])
        let raw = try loader.warp(grid, bands: bands)
        if context.isCancelled { throw ImportCancelled() }
        let staging = QualifiedName(schema: request.schema, table: warehouse.staging)
        let metadata = try warehouse.pool.withConnection { db -> JSON in
            try db.execute(RasterImport.createSQL(staging))
            let (native, stats) = try loader.load(staging, bands: bands, grid: grid, raw: raw, db: db) {
                context.report(progress: ["phase": "loading", "percent": .int($0)])
            }
            guard native > 0 else { throw ImportFailure("The raster holds only nodata pixels") }
            // Overviews down to one block for the world, so every zoom from 0 to the native one has tiles.
            var blocks = native, below = raw
            for level in stride(from: 1, through: grid.blockResolution, by: 1) {
                if context.isCancelled { throw ImportCancelled() }
                context.report(progress: ["phase": "overviews", "resolution": .int(grid.blockResolution - level)])
                let path = try loader.warp(grid.overview(level), bands: bands, from: below)
                blocks += try loader.load(staging, bands: bands, grid: grid.overview(level), raw: path, db: db) { _ in }.blocks
                loader.remove(below)
                below = path
            }
            loader.remove(below)
            let metadata = loader.metadata(bands: bands, stats: stats, grid: grid, minResolution: 0, blocks: blocks)
            let comment = try db.execute(RasterImport.commentSQL(staging, metadata: metadata)).string(0, 0) ?? ""
            try db.execute(comment)
            try db.execute("ANALYZE \(staging)" as SQL)
            return metadata
        }
        let result: JSON = [
            "table": .string(request.destination), "schema": .string(request.schema), "tableName": .string(request.table),
            "rows": metadata["num_blocks"] ?? 0, "format": "geotiff", "type": "raster", "bands": .int(bands.count),
            "blockResolution": .int(grid.blockResolution), "pixelResolution": .int(grid.pixelResolution), "warnings": [],
        ]
        try finish(job, request, account: account, warehouse: warehouse, result: result, alreadySwapped: false)
        return nil
    }
}
