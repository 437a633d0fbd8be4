import HTTPKit
import Observability
import Platform

/// Password reset. Asking never reveals whether an email has an account (same 202 and body either way);
/// with SMTP configured the link is emailed, otherwise an admin creates one with
/// `tessera password-reset-link`. Confirming sets the password once and signs the user out everywhere.
struct PasswordResetRoutes {
    let services: Services

    func register(_ r: Router) {
        r.post("/api/v3/auth/password-reset", request)
        r.post("/api/v3/auth/password-reset/confirm", confirm)
    }

    static let accepted: JSON = ["ok": true, "message": "If an account exists for this email, a link to reset its password is on its way."]

    func request(_ request: HTTPRequest) throws -> HTTPResponse {
        let email = try services.parameters(request).required("email")
        guard AccountStore.isPlausibleEmail(email) else { throw APIError.badRequest("Enter a valid email address", code: "invalid_email") }
        if let mailer = Mailer(smtpURL: services.config.smtpURL, publicURL: services.config.publicURL),
           let user = try AccountStore(services.metadata).userByEmail(email),
           let token = try PasswordResetStore(services.metadata).create(userId: user.id) {
            mailer.send(to: user.email, subject: "Reset your Tessera password", body: """
                Someone (hopefully you) asked to reset the password of your Tessera account.
                Open this link within an hour to choose a new password:

                \(PasswordResetStore.link(base: services.config.publicURL, token: token))

                If you did not ask for this, ignore this email: your password stays as it is.
                """)
            AuditLog(services.metadata).record(account: user.accountId, actor: "user:\(user.id)", action: "password_reset_requested",
                                               requestId: request.requestId)
        }
        return .json(Self.accepted, status: 202, headers: [("Cache-Control", "no-store")])
    }

    func confirm(_ request: HTTPRequest) throws -> HTTPResponse {
        try Authenticator.requireSameOriginForm(request)
        let p = try services.parameters(request)
        let token = try p.required("token"), password = try p.required("password")
        if let problem = PasswordHasher.policyViolation(password) { throw APIError.badRequest(problem, code: "weak_password") }
        let store = PasswordResetStore(services.metadata)
        // The cheap token check comes first: hashing (~0.2 s of CPU) is only spent on a live link.
        guard try store.isRedeemable(token: token),
              let userId = try store.redeem(token: token, passwordHash: try PasswordHasher.hash(password)) else {
            throw APIError.badRequest("This reset link is invalid, expired or already used", code: "invalid_reset_token")
        }
        AuditLog(services.metadata).record(account: nil, actor: "user:\(userId)", action: "password_reset", requestId: request.requestId)
        return .noContent(headers: [("Cache-Control", "no-store")])
    }
}
