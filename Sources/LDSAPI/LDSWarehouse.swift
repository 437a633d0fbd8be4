import Foundation
import Postgres

/// The LDS SQL Tessera installs into a warehouse (schema `carto_lds`). Every file is idempotent.
public enum LDSWarehouse {
    public static func apply(_ connection: PGConnection) throws -> [String] {
        try connection.executeScriptFiles(in: Bundle.module.url(forResource: "warehouse", withExtension: nil)!)
    }
}
