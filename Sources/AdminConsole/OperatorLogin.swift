import CryptoSupport
import Foundation
import HTTPKit
import Observability
import Platform

/// The console's own login: one operator password (not a platform user), stored as a PasswordHasher
/// hash in a file `tessera admin-password` writes; sessions live in this process only (a restart of
/// the console signs the operator out). Failed logins are logged and throttled per client address.
public final class OperatorLogin: @unchecked Sendable {
    public static let cookieName = "tessera_admin"
    /// Failures from one address before it must wait `lockSeconds`.
    public static let maxFailures = 5
    public static let lockSeconds: TimeInterval = 300
    public static let sessionSeconds: TimeInterval = 8 * 3600

    private let passwordFile: String
    private let lock = NSLock()
    private var sessions: [String: Date] = [:]
    private var failures: [String: (count: Int, lockedUntil: Date?)] = [:]

    public init(passwordFile: String) { self.passwordFile = passwordFile }

    /// Reads the stored hash; a missing file means no operator can log in yet (503 with the fix).
    private func storedHash() throws -> String {
        guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8),
              let hash = text.split(whereSeparator: { $0.isNewline }).first.map(String.init), !hash.isEmpty else {
            throw APIError.unavailable("No operator password is set", code: "no_operator_password")
                .with(hint: "Run `tessera admin-password` on the server")
        }
        return hash
    }

    /// Checks the password; returns a new session id. Throttled: 429 with Retry-After while locked.
    public func login(password: String, from address: String) throws -> String {
        let now = Date()
        let lockedUntil: Date? = lock.withLock {
            if let until = failures[address]?.lockedUntil, until > now { return until }
            return nil
        }
        if let lockedUntil {
            Log.warning("admin_login_throttled", [("remote", address)])
            var e = APIError.tooManyRequests("Too many failed logins from this address", code: "login_throttled")
            e.retryAfter = max(1, Int(lockedUntil.timeIntervalSince(now).rounded(.up)))
            throw e
        }
        let hash = try storedHash()
        guard PasswordHasher.verify(password, against: hash) else {
            let count: Int = lock.withLock {
                var entry = failures[address] ?? (0, nil)
                entry.count += 1
                if entry.count >= Self.maxFailures { entry = (0, now.addingTimeInterval(Self.lockSeconds)) }
                failures[address] = entry
                return entry.lockedUntil == nil ? entry.count : Self.maxFailures
            }
            Log.warning("admin_login_failed", [("remote", address), ("failures", count)])
            throw APIError.unauthorized("Wrong operator password", code: "invalid_credentials")
        }
        let id = Encoding.randomToken()
        lock.withLock {
            failures[address] = nil
            sessions = sessions.filter { $0.value > now }
            sessions[id] = now.addingTimeInterval(Self.sessionSeconds)
        }
        Log.info("admin_login", [("remote", address)])
        return id
    }

    public func logout(_ request: HTTPRequest) {
        guard let id = Self.sessionId(request) else { return }
        lock.withLock { sessions[id] = nil }
    }

    /// The one gate every console route but login passes (AdminRoutes wraps them all).
    public func requireOperator(_ request: HTTPRequest) throws {
        guard let id = Self.sessionId(request), lock.withLock({ (sessions[id] ?? .distantPast) > Date() }) else {
            throw APIError.unauthorized("Log in to the admin console", code: "login_required")
        }
        // Cookies ride along on cross-site form posts; a custom header cannot be sent without CORS.
        if request.method != "GET" && request.method != "HEAD" && request.header("x-tessera-admin") != "1" {
            throw APIError.forbidden("Missing X-Tessera-Admin header", code: "csrf")
        }
    }

    public static func cookie(_ id: String) -> String {
        "\(cookieName)=\(id); Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=\(Int(sessionSeconds))"
    }

    static func sessionId(_ request: HTTPRequest) -> String? {
        guard let header = request.header("cookie") else { return nil }
        for part in header.split(separator: ";") {
            let pair = part.trimmingCharacters(in: .whitespaces)
            if pair.hasPrefix("\(cookieName)=") { return String(pair.dropFirst(cookieName.count + 1)) }
        }
        return nil
    }
}

extension APIError {
    func with(hint: String) -> APIError { var e = self; e.hint = hint; return e }
}
