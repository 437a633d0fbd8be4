import Foundation
import Postgres

/// SQL that Tessera installs into a warehouse (the quadbin functions). Every file is idempotent
/// (CREATE OR REPLACE), so applying them again upgrades them.
public enum WarehouseMigrations {
    public static func apply(_ connection: PGConnection) throws -> [String] {
        try connection.executeScriptFiles(in: Bundle.module.url(forResource: "warehouse", withExtension: nil)!)
    }
}
