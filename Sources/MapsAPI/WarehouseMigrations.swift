import Foundation
import Platform
import Postgres

/// SQL that Tessera installs into a warehouse (the quadbin functions), then the tessera_h3 extension
/// where the server has it. Every file is idempotent (CREATE OR REPLACE), so applying them again upgrades them.
public enum WarehouseMigrations {
    public static func apply(_ connection: PGConnection) throws -> [String] {
        let files = try connection.executeScriptFiles(in: Bundle.module.url(forResource: "warehouse", withExtension: nil)!)
        return files + [try WarehouseH3.install(connection)]
    }
}
