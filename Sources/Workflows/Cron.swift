import Foundation

/// A five-field cron expression (minute hour day-of-month month day-of-week), evaluated in UTC. Fields take
/// `*`, numbers, ranges `a-b`, steps `*/n` or `a-b/n` and comma lists; day-of-week 0 and 7 are Sunday. As
/// in cron, when both day fields are restricted a day matching either one runs.
public struct Cron: Sendable, Equatable {
    public let text: String
    let minutes: Set<Int>, hours: Set<Int>, days: Set<Int>, months: Set<Int>, weekdays: Set<Int>
    let daysRestricted: Bool, weekdaysRestricted: Bool

    public struct Invalid: Error { public let reason: String }

    public init(_ text: String) throws {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else { throw Invalid(reason: "a cron expression has 5 fields (minute hour day month weekday), got \(fields.count)") }
        self.text = fields.joined(separator: " ")
        minutes = try Self.field(fields[0], 0...59, "minute")
        hours = try Self.field(fields[1], 0...23, "hour")
        days = try Self.field(fields[2], 1...31, "day of month")
        months = try Self.field(fields[3], 1...12, "month")
        weekdays = Set(try Self.field(fields[4], 0...7, "day of week").map { $0 % 7 })
        daysRestricted = fields[2] != "*"
        weekdaysRestricted = fields[4] != "*"
    }

    static func field(_ text: String, _ range: ClosedRange<Int>, _ name: String) throws -> Set<Int> {
        var out = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw Invalid(reason: "\(name): bad step in \(part)") }
            var step = 1
            if pieces.count == 2 {
                guard let s = Int(pieces[1]), s > 0 else { throw Invalid(reason: "\(name): bad step in \(part)") }
                step = s
            }
            var lo = range.lowerBound, hi = range.upperBound
            if pieces[0] != "*" {
                let bounds = pieces[0].split(separator: "-", omittingEmptySubsequences: false)
                guard (1...2).contains(bounds.count), let a = Int(bounds[0]), let b = Int(bounds.last!) else {
                    throw Invalid(reason: "\(name): \(part) is not a number, range or *")
                }
                lo = a
                hi = bounds.count == 2 ? b : (pieces.count == 2 ? range.upperBound : a)
            }
            guard range.contains(lo), range.contains(hi), lo <= hi else {
                throw Invalid(reason: "\(name): \(part) is outside \(range.lowerBound)-\(range.upperBound)")
            }
            out.formUnion(stride(from: lo, through: hi, by: step))
        }
        return out
    }

    static let utc: Calendar = {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")!
        return c
    }()

    func dayMatches(day: Int, weekday: Int) -> Bool {
        switch (daysRestricted, weekdaysRestricted) {
        case (true, true): return days.contains(day) || weekdays.contains(weekday)
        case (true, false): return days.contains(day)
        case (false, true): return weekdays.contains(weekday)
        default: return true
        }
    }

    /// The first minute strictly after `date` that matches; nil when none does within five years (Feb 30).
    public func next(after date: Date) -> Date? {
        let cal = Self.utc
        var t = cal.date(bySetting: .second, value: 0, of: date.addingTimeInterval(60)) ?? date
        if t <= date { t = t.addingTimeInterval(60) }
        // Whole-minute start: drop sub-second and seconds.
        t = Date(timeIntervalSince1970: (t.timeIntervalSince1970 / 60).rounded(.down) * 60)
        let limit = date.addingTimeInterval(5 * 366 * 86400)
        while t < limit {
            let c = cal.dateComponents([.year, .month, .day, .hour, .minute, .weekday], from: t)
            guard months.contains(c.month!) else {
                t = cal.date(from: DateComponents(year: c.year!, month: c.month! + 1, day: 1))!
                continue
            }
            guard dayMatches(day: c.day!, weekday: c.weekday! - 1) else {
                t = cal.date(from: DateComponents(year: c.year!, month: c.month!, day: c.day! + 1))!
                continue
            }
            guard hours.contains(c.hour!) else {
                t = cal.date(from: DateComponents(year: c.year!, month: c.month!, day: c.day!, hour: c.hour! + 1))!
                continue
            }
            guard minutes.contains(c.minute!) else { t = t.addingTimeInterval(60); continue }
            return t
        }
        return nil
    }
}
