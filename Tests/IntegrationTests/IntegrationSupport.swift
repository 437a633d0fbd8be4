import Foundation
import XCTest

/// Integration tests run under `Tests/harness/stack.py exec`, which starts a throwaway PostgreSQL and
/// Redis and exports their addresses. Run alone (plain `swift test`), they are skipped with a reason.
enum IntegrationEnvironment {
    static var metadataDSN: String? { ProcessInfo.processInfo.environment["STACK_METADATA_DSN"] }
    static var superuserDSN: String? { ProcessInfo.processInfo.environment["STACK_SUPERUSER_DSN"] }
    static var redisSocket: String? { ProcessInfo.processInfo.environment["STACK_REDIS_SOCKET"] }

    static func require(_ value: String?, _ name: String) throws -> String {
        guard let value, !value.isEmpty else { throw XCTSkip("\(name) not set: run through Tests/harness/stack.py exec (make test)") }
        return value
    }
}
