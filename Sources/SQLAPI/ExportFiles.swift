import Foundation
import Jobs

/// Where export files live: `<import dir>/exports/job-<id>/` holds the finished file only; GDAL writes
/// into its `partial/` folder, and the file is moved up when it is complete, so a failed, cancelled or
/// too-large export never leaves a downloadable file behind.
public struct ExportFiles: Sendable {
    public let root: String
    public init(directory: String) { root = directory + "/exports" }

    public func jobDir(_ id: Int64) -> String { root + "/job-\(id)" }
    public func partialDir(_ id: Int64) -> String { jobDir(id) + "/partial" }

    /// The finished file of a completed job, if it is still there and not past its expiry.
    func finished(_ job: Job, now: Date = Date()) -> (path: String, size: Int, expiresAt: Int)? {
        guard let file = job.result?["file"]?.stringValue, !file.contains("/"),
              let expiresAt = job.result?["expiresAt"]?.intValue, Double(expiresAt) > now.timeIntervalSince1970 else { return nil }
        let path = jobDir(job.id) + "/" + file
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let size = (attributes[.size] as? NSNumber)?.intValue else { return nil }
        return (path, size, expiresAt)
    }
}
