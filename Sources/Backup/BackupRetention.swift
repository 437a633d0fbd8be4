import Foundation

/// Keeps the newest `keep` archives of a backup directory. Only files named like `tessera backup`
/// names them are considered; their UTC timestamps sort in time order.
public enum BackupRetention {
    public static func prune(directory: String, keep: Int) throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasPrefix(BackupWriter.namePrefix) && ($0.hasSuffix(".tar") || $0.hasSuffix(".tar.enc")) }
            .sorted()
        let doomed = names.dropLast(max(keep, 1))
        for name in doomed { try FileManager.default.removeItem(atPath: directory + "/" + name) }
        return Array(doomed)
    }
}
