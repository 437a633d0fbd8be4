@testable import Config
import Foundation
import XCTest

/// The one table of keys: every key the code names is in it, its defaults pass its own checks, and the
/// README's configuration section is what `tessera config-docs` generates from it.
final class ConfigKeysTests: XCTestCase {
    private var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Every `TESSERA_*` name in Sources (code, comments and resources alike), minus C header guards and
    /// the table itself (so a row no code reads shows up too).
    private func keysNamedInSources() throws -> Set<String> {
        let regex = try NSRegularExpression(pattern: "TESSERA_[A-Z0-9_]*[A-Z0-9]")
        var found = Set<String>()
        let sources = repoRoot.appendingPathComponent("Sources")
        let walker = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
        for case let url as URL in walker where ["swift", "sql", "sh", "c", "h"].contains(url.pathExtension)
            && url.lastPathComponent != "ConfigKeys.swift" {
            guard let text = try? String(contentsOf: url, encoding: .utf8) else { continue }
            for match in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let key = String(text[Range(match.range, in: text)!])
                if key.hasSuffix("_H") && url.pathExtension == "h" { continue }
                found.insert(key)
            }
        }
        return found
    }

    func testEveryKeyTheCodeNamesIsInTheTable() throws {
        let named = try keysNamedInSources()
        XCTAssertGreaterThan(named.count, 40, "the grep found too little to mean anything")
        let table = Set(ConfigKeys.all.map(\.name))
        XCTAssertEqual(named.subtracting(table).sorted(), [], "keys the code names but the table lacks")
        XCTAssertEqual(table.subtracting(named).sorted(), [], "keys in the table that no code names")
    }

    func testNamesAreUniqueAndDefaultsPassTheirOwnChecks() {
        XCTAssertEqual(Set(ConfigKeys.all.map(\.name)).count, ConfigKeys.all.count)
        for key in ConfigKeys.all {
            XCTAssertNil(key.problem(key.defaultValue), key.name)
            XCTAssertFalse(key.meaning.isEmpty, key.name)
        }
        XCTAssertNoThrow(try TesseraConfig.from([:]))
    }

    func testValidationPerKind() {
        let threads = ConfigKeys.named("TESSERA_THREADS")!
        XCTAssertNil(threads.problem("1024"))
        XCTAssertEqual(threads.problem("1025"), "TESSERA_THREADS must be an integer between 1 and 1024")
        XCTAssertNotNil(threads.problem("four"))
        XCTAssertNotNil(threads.problem(""))
        XCTAssertNotNil(ConfigKeys.named("TESSERA_SIGNUP")!.problem("everyone"))
        XCTAssertNil(ConfigKeys.named("TESSERA_REDIS_URL")!.problem(""))
        XCTAssertNil(ConfigKeys.named("TESSERA_REDIS_URL")!.problem("unix:/run/redis.sock"))
        XCTAssertNotNil(ConfigKeys.named("TESSERA_REDIS_URL")!.problem("localhost:6379"))
        XCTAssertNotNil(ConfigKeys.named("TESSERA_PUBLIC_URL")!.problem(""))
        XCTAssertNotNil(ConfigKeys.named("TESSERA_IMPORT_DIR")!.problem("imports"))
        XCTAssertNotNil(ConfigKeys.named("TESSERA_CONNECTION_HOST_ALLOWLIST")!.problem("db, /run/postgresql"))
        XCTAssertNil(ConfigKeys.named("TESSERA_CONNECTION_HOST_ALLOWLIST")!.problem("db.internal, [::1]:5432"))
        XCTAssertNotNil(ConfigKeys.named("TESSERA_BACKUP_SCHEDULE")!.problem(" "))
        // ACME names reach certbot's command line through a root unit: only DNS names and addresses pass.
        let domain = ConfigKeys.named("TESSERA_ACME_DOMAIN")!
        XCTAssertNil(domain.problem(""))
        XCTAssertNil(domain.problem("tessera.example.com, maps.example.com"))
        XCTAssertEqual(domain.problem("*.example.com"),
                       "TESSERA_ACME_DOMAIN must be comma-separated DNS names (no wildcard, no address): *.example.com")
        XCTAssertNotNil(domain.problem("localhost"))
        XCTAssertNotNil(domain.problem("127.0.0.1"))
        XCTAssertNotNil(domain.problem("a.example.com;reboot"))
        XCTAssertNotNil(domain.problem("-x.example.com"))
        let email = ConfigKeys.named("TESSERA_ACME_EMAIL")!
        XCTAssertNil(email.problem("ops@example.com"))
        XCTAssertNotNil(email.problem("ops"))
        XCTAssertNotNil(email.problem("ops@example.com --server x"))
        XCTAssertNotNil(ConfigKeys.named("TESSERA_ACME_SERVER")!.problem("http://acme.internal/dir"))
        XCTAssertEqual(domain.rule, "comma-separated DNS names (no wildcard, no address) or empty")
        // A newline would smuggle a second key into the env file.
        XCTAssertEqual(ConfigKeys.named("TESSERA_DATABASE_URL")!.problem("dbname=x\nTESSERA_SIGNUP=open"),
                       "TESSERA_DATABASE_URL must be one line")
    }

    func testProblemsNameUnknownKeysFirstThenTableOrder() {
        let found = ConfigKeys.problems(["TESSERA_THREADS": "0", "TESSERA_SIGNUP": "x", "TESSERA_NOPE": "1", "OTHER": "y"])
        XCTAssertEqual(found.map(\.key), ["TESSERA_NOPE", "TESSERA_SIGNUP", "TESSERA_THREADS"])
    }

    func testAffectedUnitsAreOnlyThoseOfChangedKeys() {
        XCTAssertEqual(ConfigKeys.affectedUnits(old: [:], new: ["TESSERA_TILE_MAX_FEATURES": "100"]), ["tessera-maps-api"])
        // Writing a key's default explicitly changes nothing.
        XCTAssertEqual(ConfigKeys.affectedUnits(old: [:], new: ["TESSERA_TILE_MAX_FEATURES": "20000"]), [])
        XCTAssertEqual(ConfigKeys.affectedUnits(old: ["TESSERA_SIGNUP": "open"], new: [:]), ["tessera-workspace-api"])
        let both = ConfigKeys.affectedUnits(old: [:], new: ["TESSERA_SIGNUP": "open", "TESSERA_TILE_MAX_BYTES": "2048"])
        XCTAssertEqual(both, ["tessera-workspace-api", "tessera-maps-api"])
        XCTAssertEqual(ConfigKeys.affectedUnits(old: [:], new: ["TESSERA_BACKUP_SCHEDULE": "weekly"]), ["tessera-backup.timer"])
    }

    func testReadmeConfigurationSectionIsGenerated() throws {
        let readme = try String(contentsOf: repoRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try XCTUnwrap(ConfigDocs.section(of: readme), "README.md lacks the config-keys markers")
        XCTAssertEqual(section, ConfigKeys.markdown(), "README.md is stale: run `make config-docs`")
        XCTAssertEqual(ConfigDocs.replacingSection(in: readme), readme)
    }

    func testReplacingSectionKeepsTheRest() {
        let text = "a\n\(ConfigDocs.begin)\nold\n\(ConfigDocs.end)\nb\n"
        let replaced = ConfigDocs.replacingSection(in: text)!
        XCTAssertTrue(replaced.hasPrefix("a\n\(ConfigDocs.begin)\n| key |"))
        XCTAssertTrue(replaced.hasSuffix("\(ConfigDocs.end)\nb\n"))
        XCTAssertNil(ConfigDocs.replacingSection(in: "no markers"))
    }
}
