/// Where an installation keeps what a backup holds: the one description the writer reads from and the
/// restorer writes back to.
public struct BackupInstallation {
    public var databaseURL: String
    public var warehouseURL: String
    public var secretKeyFile: String
    public var configDir: String
    public init(databaseURL: String, warehouseURL: String, secretKeyFile: String, configDir: String) {
        self.databaseURL = databaseURL
        self.warehouseURL = warehouseURL
        self.secretKeyFile = secretKeyFile
        self.configDir = configDir
    }
}
