import Foundation
import Spawn

/// Turns an input file (upload or download) into the one dataset GDAL will read: a single file is
/// linked under a name we choose; an archive is inspected from its central directory, the dataset
/// chosen from the member names, and only that dataset's files extracted (with `unzip`, argv only,
/// into a fresh directory, watched so that contents larger than declared are stopped).
struct DatasetResolver {
    let settings: ImportSettings

    struct Dataset {
        let path: String
        let format: ImportFormat
        /// Name of the archive member, when the dataset came from an archive.
        let member: String?
    }

    static let strongExtensions: Set<String> = ["shp", "gpkg", "geojson", "geojsonl", "geojsons", "ndjson", "jsonl", "kml",
                                                 "gpx", "fgb", "csv", "tsv"]
    static let weakExtensions: Set<String> = ["json", "txt", "tab"]

    func resolve(input: String, nameHints: [String], workDir: String, deadline: Date, isCancelled: () -> Bool) throws -> Dataset {
        let hint = nameHints.first { !FormatDetector.fileExtension(of: $0).isEmpty }
        switch try FormatDetector.detect(path: input, nameHint: hint) {
        case .format(let format):
            let path = workDir + "/input." + format.fileExtension
            try place(input, at: path)
            return Dataset(path: path, format: format, member: nil)
        case .zip:
            return try fromArchive(input, workDir: workDir, deadline: deadline, isCancelled: isCancelled)
        }
    }

    /// Uploads stay where they are (a symlink points at them); downloads in the work dir are renamed.
    private func place(_ input: String, at path: String) throws {
        unlink(path)
        if input.hasPrefix(settings.workDir + "/") {
            guard rename(input, path) == 0 else { throw ImportFailure("Could not prepare the input file", permanent: false) }
        } else {
            guard symlink(input, path) == 0 else { throw ImportFailure("Could not prepare the input file", permanent: false) }
        }
    }

    func fromArchive(_ archive: String, workDir: String, deadline: Date, isCancelled: () -> Bool) throws -> Dataset {
        let limits = ZipInspector.Limits(maxEntries: settings.maxArchiveEntries, maxUncompressedBytes: UInt64(settings.maxUncompressedBytes))
        let entries = try ZipInspector.inspect(path: archive, limits: limits)
        let (format, main, members) = try DatasetResolver.select(entries)
        let needed = members.reduce(UInt64(0)) { $0 + $1.uncompressedSize }
        if let free = freeBytes(workDir), needed + (16 << 20) > free {
            throw ImportFailure("Not enough free disk space to extract the archive (disk full: \(needed) bytes needed, \(free) free)")
        }
        let target = workDir + "/x"
        try? FileManager.default.removeItem(atPath: target)
        guard mkdir(target, 0o700) == 0 else { throw ImportFailure("Could not prepare the extraction folder", permanent: false) }
        let argv = [try ChildProcess.tool("unzip"), "-n", "-qq", "-d", target, archive] + members.map(\.name)
        let child = try ChildProcess(argv, environment: ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workDir],
                                     stdout: workDir + "/unzip.out", stderr: workDir + "/unzip.err", addressSpaceLimit: 1 << 30)
        let cap = needed + (1 << 20)
        let oversized = "The archive's contents are larger than its directory declares (zip bomb?)"
        let outcome = child.wait(deadline: deadline, isCancelled: isCancelled, check: {
            DatasetResolver.treeSize(target) > cap ? oversized : nil
        })
        switch outcome {
        case .exited(0), .exited(1):
            // Measured again at the end: unzip writes what the deflate streams hold, not what the directory
            // declares, and a small lie is written whole between two of the watch's looks.
            if DatasetResolver.treeSize(target) > cap { throw ImportFailure(oversized) }
        case .cancelled: throw ImportCancelled()
        case .timedOut: throw ImportFailure("Extracting the archive took longer than the import time limit")
        case .aborted(let why): throw ImportFailure(why)
        default:
            let message = (ChildProcess.tail(workDir + "/unzip.err", limit: 2000) + ChildProcess.tail(workDir + "/unzip.out", limit: 2000))
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if message.contains("disk full") || message.contains("No space left") {
                throw ImportFailure("Not enough free disk space to extract the archive (disk full)")
            }
            throw ImportFailure("The archive could not be extracted (corrupt?): \(String(message.prefix(300)))")
        }
        let path = target + "/" + main.name
        var st = stat()
        guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw ImportFailure("The archive member \(main.name) could not be extracted")
        }
        if format != .shapefile {
            // The member must really be what its name says (a .kml holding a DOCTYPE is refused here too).
            let detected = try FormatDetector.detect(path: path, nameHint: main.name)
            let compatible: Bool
            switch (format, detected) {
            case (.csv, .format(.csv)), (.csv, .format(.tsv)), (.tsv, .format(.tsv)), (.tsv, .format(.csv)): compatible = true
            case (.geojson, .format(.geojsonseq)), (.geojsonseq, .format(.geojson)): compatible = true
            default: compatible = detected == .format(format)
            }
            guard compatible else { throw ImportFailure("The archive member \(main.name) is not a valid \(format.rawValue) file") }
            if case .format(let f) = detected { return Dataset(path: path, format: f, member: main.name) }
        }
        return Dataset(path: path, format: format, member: main.name)
    }

    /// Chooses the dataset of an archive from its member names: exactly one dataset (a KMZ's doc.kml
    /// wins among several KML files); a Shapefile needs its .shx and .dbf beside it.
    static func select(_ entries: [ZipInspector.Entry]) throws -> (ImportFormat, ZipInspector.Entry, [ZipInspector.Entry]) {
        let files = entries.filter { e in
            let base = (e.name as NSString).lastPathComponent
            return !e.isDirectory && !e.name.hasPrefix("__MACOSX/") && !base.hasPrefix("._") && base != ".DS_Store"
        }
        func ext(_ e: ZipInspector.Entry) -> String { FormatDetector.fileExtension(of: e.name) }
        var candidates = files.filter { strongExtensions.contains(ext($0)) }
        if candidates.isEmpty { candidates = files.filter { weakExtensions.contains(ext($0)) } }
        guard !candidates.isEmpty else {
            let listed = files.prefix(5).map(\.name).joined(separator: ", ")
            throw ImportFailure("The archive contains no supported dataset" + (listed.isEmpty ? "" : " (found: \(listed))"))
        }
        var main = candidates[0]
        if candidates.count > 1 {
            let kmls = candidates.filter { ext($0) == "kml" }
            if kmls.count == candidates.count, let doc = kmls.first(where: { $0.name.lowercased() == "doc.kml" }) ?? kmls.first(where: { !$0.name.contains("/") }) {
                main = doc
            } else {
                let names = candidates.prefix(5).map(\.name).joined(separator: ", ")
                throw ImportFailure("The archive contains several datasets (\(names)); upload one dataset per import")
            }
        }
        guard let format = ImportFormat.byExtension(ext(main)) else { throw ImportFailure("Unsupported dataset \(main.name)") }
        var members = [main]
        let stem = String(main.name.dropLast(ext(main).count)).lowercased() // "dir/name."
        func sibling(_ e: String) -> ZipInspector.Entry? { files.first { $0.name.lowercased() == stem + e } }
        switch format {
        case .shapefile:
            for required in ["shx", "dbf"] {
                guard let s = sibling(required) else {
                    throw ImportFailure("The Shapefile \(main.name) is missing its .\(required) file")
                }
                members.append(s)
            }
            members += ["prj", "cpg"].compactMap(sibling)
        case .csv, .tsv:
            members += ["csvt", "prj"].compactMap(sibling)
        default:
            break
        }
        for m in members where m.name.hasPrefix("-") || m.name.contains(where: { "*?[]\\".contains($0) }) {
            throw ImportFailure("The archive member name \(m.name.prefix(80)) has unsupported characters")
        }
        return (format, main, members)
    }

    static func treeSize(_ dir: String) -> UInt64 {
        guard let e = FileManager.default.enumerator(atPath: dir) else { return 0 }
        var total: UInt64 = 0
        while let name = e.nextObject() as? String {
            total += UInt64(fileSize(dir + "/" + name))
        }
        return total
    }

    func freeBytes(_ path: String) -> UInt64? {
        var st = statvfs()
        guard statvfs(path, &st) == 0 else { return nil }
        return UInt64(st.f_bavail) * UInt64(st.f_frsize)
    }
}
