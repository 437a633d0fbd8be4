import Foundation
import Postgres

/// The LDS SQL Tessera installs into a warehouse (schema `carto_lds`). Every file is idempotent.
public enum LDSWarehouse {
    public static func apply(_ connection: PGConnection) throws -> [String] {
        let dir = Bundle.module.url(forResource: "warehouse", withExtension: nil)!
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".sql") }.sorted()
        for file in files {
            try connection.executeScript(try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8))
        }
        return files
    }
}
