import Foundation
import Postgres

/// SQL that Tessera installs into a warehouse (the quadbin functions). Every file is idempotent
/// (CREATE OR REPLACE), so applying them again upgrades them.
public enum WarehouseMigrations {
    public static func apply(_ connection: PGConnection) throws -> [String] {
        let dir = Bundle.module.url(forResource: "warehouse", withExtension: nil)!
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".sql") }.sorted()
        for file in files {
            try connection.executeScript(try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8))
        }
        return files
    }
}
