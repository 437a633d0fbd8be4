import Foundation

extension PGConnection {
    /// Runs every `.sql` file of a directory in name order (SQL a program ships as resources, e.g. the
    /// warehouse functions); returns the file names. The files are trusted: see `executeScript`.
    public func executeScriptFiles(in directory: URL) throws -> [String] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }.sorted()
        for file in files {
            try executeScript(try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8))
        }
        return files
    }
}
