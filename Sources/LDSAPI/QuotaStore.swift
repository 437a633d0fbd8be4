import Config
import Foundation
import HTTPKit
import Platform
import Postgres

/// Monthly LDS quotas per organisation and service, counted in the metadata database.
public struct QuotaStore: Sendable {
    let metadata: PGPool
    let config: TesseraConfig

    public init(metadata: PGPool, config: TesseraConfig) {
        self.metadata = metadata
        self.config = config
    }

    public func defaultQuota(_ service: LDSService) -> Int {
        switch service {
        case .geocoding: return config.ldsQuotaGeocoding
        case .isolines: return config.ldsQuotaIsolines
        case .routing: return config.ldsQuotaRouting
        }
    }

    /// Takes `units` from this month's allowance in one statement, or throws 429 with the quota and use in the
    /// body. The conditional upsert locks the usage row, so concurrent charges serialise and never overshoot.
    public func charge(account: String, service: LDSService, units: Int) throws {
        guard units > 0 else { return }
        let r = try metadata.withConnection { db in
            try db.execute("""
                WITH q AS (
                    SELECT COALESCE((SELECT quota FROM lds_quotas WHERE account_id = $1 AND service = $2), $4::bigint) AS quota)
                INSERT INTO lds_usage AS u (account_id, service, period, used)
                SELECT $1, $2, date_trunc('month', now() AT TIME ZONE 'UTC')::date, $3::bigint FROM q WHERE $3::bigint <= q.quota
                ON CONFLICT (account_id, service, period)
                DO UPDATE SET used = u.used + EXCLUDED.used
                WHERE u.used + EXCLUDED.used <= (SELECT quota FROM q)
                RETURNING used
                """, [account, service.rawValue, String(units), String(defaultQuota(service))], prepare: true)
        }
        if r.rowCount == 1 { return }
        let usage = try self.usage(account: account).first { $0.service == service }
        throw Self.exceeded(service, quota: usage?.quota ?? 0, used: usage?.used ?? 0, requested: units)
    }

    static func exceeded(_ service: LDSService, quota: Int, used: Int, requested: Int) -> APIError {
        var e = APIError.tooManyRequests("Monthly \(service.rawValue) quota exceeded", code: "quota_exceeded")
        e.hint = "The quota resets at the start of next month (UTC); an admin can raise it with `tessera lds quota set`"
        e.extra = ["service": .string(service.rawValue), "quota": .int(quota), "used": .int(used), "requested": .int(requested)]
        return e
    }

    /// Units taken from this month's allowance for a process to hand out itself (see `QuotaLeases`).
    struct Grant {
        let units: Int
        /// The month the units were charged to (`YYYY-MM-DD`), and when it ends (Unix seconds).
        let period: String
        let periodEnd: Double
    }

    /// Charges `units` plus up to `extra` more (never more than an eighth of what would be left, so the
    /// last units of a quota are charged one request at a time), after first giving back `returning` units of
    /// this month. The usage row is locked for the whole transaction, so concurrent charges serialise and
    /// never overshoot. Throws 429 (with the returned units given back) when `units` do not fit.
    func lease(account: String, service: LDSService, units: Int, extra: Int, returning: Int) throws -> Grant {
        let outcome = try metadata.transaction { db -> (Grant?, quota: Int, used: Int) in
            let r = try db.execute("""
                INSERT INTO lds_usage AS u (account_id, service, period, used)
                VALUES ($1, $2, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 0)
                ON CONFLICT (account_id, service, period) DO UPDATE SET used = u.used
                RETURNING used, COALESCE((SELECT quota FROM lds_quotas WHERE account_id = $1 AND service = $2), $3::bigint),
                          period::text, extract(epoch FROM (period + interval '1 month'))::float8
                """, [account, service.rawValue, String(defaultQuota(service))], prepare: true)
            guard r.rowCount == 1, let locked = r.int(0, 0), let quota = r.int(0, 1), let period = r.string(0, 2),
                  let periodEnd = r.double(0, 3) else { throw APIError.internalError("The quota row could not be locked") }
            let used = max(locked - returning, 0)
            let available = quota - used
            let granted = available >= units ? units + max(0, min(extra, (available - units) / 8)) : 0
            if used + granted != locked {
                try db.execute("UPDATE lds_usage SET used = $4::bigint WHERE account_id = $1 AND service = $2 AND period = $3::date",
                               [account, service.rawValue, period, String(used + granted)], prepare: true)
            }
            return (granted > 0 ? Grant(units: granted, period: period, periodEnd: periodEnd) : nil, quota, used)
        }
        guard let grant = outcome.0 else { throw Self.exceeded(service, quota: outcome.quota, used: outcome.used, requested: units) }
        return grant
    }

    /// Gives back units leased for `period` that were never handed out.
    func giveBack(account: String, service: LDSService, period: String, units: Int) throws {
        guard units > 0 else { return }
        _ = try metadata.withConnection { db in
            try db.execute("""
                UPDATE lds_usage SET used = greatest(used - $4::bigint, 0) WHERE account_id = $1 AND service = $2 AND period = $3::date
                """, [account, service.rawValue, period, String(units)], prepare: true)
        }
    }

    /// Gives back units charged for work that did not happen (the provider failed).
    public func refund(account: String, service: LDSService, units: Int) {
        guard units > 0 else { return }
        _ = try? metadata.withConnection { db in
            try db.execute("""
                UPDATE lds_usage SET used = greatest(used - $3::bigint, 0)
                WHERE account_id = $1 AND service = $2 AND period = date_trunc('month', now() AT TIME ZONE 'UTC')::date
                """, [account, service.rawValue, String(units)])
        }
    }

    public struct Usage: Sendable {
        public let service: LDSService
        public let quota: Int
        public let used: Int
        public let period: String
    }

    /// This month's use of every service.
    public func usage(account: String) throws -> [Usage] {
        let r = try metadata.withConnection { db in
            try db.execute("""
                SELECT s.service, q.quota, COALESCE(u.used, 0), to_char(date_trunc('month', now() AT TIME ZONE 'UTC'), 'YYYY-MM')
                FROM unnest(ARRAY['geocoding', 'isolines', 'routing']) AS s(service)
                LEFT JOIN lds_quotas q ON q.account_id = $1 AND q.service = s.service
                LEFT JOIN lds_usage u ON u.account_id = $1 AND u.service = s.service
                                     AND u.period = date_trunc('month', now() AT TIME ZONE 'UTC')::date
                """, [account])
        }
        return (0..<r.rowCount).compactMap { i in
            guard let service = LDSService(rawValue: r.string(i, 0) ?? "") else { return nil }
            return Usage(service: service, quota: r.int(i, 1) ?? defaultQuota(service), used: r.int(i, 2) ?? 0, period: r.string(i, 3) ?? "")
        }
    }

    /// An organisation's own quota (nil: back to the default).
    public func setQuota(account: String, service: LDSService, quota: Int?) throws {
        _ = try metadata.withConnection { db in
            if let quota {
                try db.execute("""
                    INSERT INTO lds_quotas (account_id, service, quota) VALUES ($1, $2, $3)
                    ON CONFLICT (account_id, service) DO UPDATE SET quota = EXCLUDED.quota
                    """, [account, service.rawValue, String(quota)])
            } else {
                try db.execute("DELETE FROM lds_quotas WHERE account_id = $1 AND service = $2", [account, service.rawValue])
            }
        }
    }
}
