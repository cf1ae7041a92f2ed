import Foundation

/// Units for durations written by people ("40 min", "4 h", "90 s"). Durations themselves are
/// `Swift.Duration`, the type every clock in the system speaks.
public enum DurationUnit: String, QuantityUnit {
    case seconds, minutes, hours
    public static let canonical = DurationUnit.seconds
    public static let dimensionName = "duration"
    public var canonicalFactor: Decimal {
        switch self { case .seconds: 1; case .minutes: 60; case .hours: 3600 }
    }
    public var symbol: String {
        switch self { case .seconds: "s"; case .minutes: "min"; case .hours: "h" }
    }
    public var spellings: [String] {
        switch self {
        case .seconds: ["s", "sec", "secs", "second", "seconds"]
        case .minutes: ["min", "mins", "minute", "minutes"]
        case .hours: ["h", "hr", "hrs", "hour", "hours"]
        }
    }
}

extension Duration {
    /// The duration in hours, as a `Double` (for rate × time).
    public var hours: Double { seconds / 3600 }

    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        let (whole, atto) = components
        return Double(whole) + Double(atto) / 1e18
    }

    /// The duration in whole nanoseconds (saturating).
    public var nanoseconds: Int64 {
        let (whole, atto) = components
        let (ns, overflow) = whole.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return whole < 0 ? .min : .max }
        return ns &+ atto / 1_000_000_000
    }

    /// The duration as an exact decimal number of seconds (nanosecond resolution).
    public var exactSeconds: Decimal { Decimal(nanoseconds) / Decimal(1_000_000_000) }

    /// Parses "40 min", "4h", "90 s": a non-negative decimal number and one of s, min, h. A missing or
    /// unknown unit is an error naming the accepted units. Resolution: one nanosecond (rounded down).
    public static func parse(_ text: String) throws(QuantityParseError) -> Duration {
        let accepted = DurationUnit.acceptedSymbols
        let (number, unitText) = try NumberText.split(text, dimension: DurationUnit.dimensionName, accepted: accepted)
        guard let unit = DurationUnit.unit(named: unitText) else {
            throw .unknownUnit(text: text, unit: unitText, dimension: DurationUnit.dimensionName, accepted: accepted)
        }
        var nanos = number * unit.canonicalFactor * Decimal(1_000_000_000)
        var whole = Decimal()
        NSDecimalRound(&whole, &nanos, 0, .down)
        guard whole < Decimal(Int64.max / 2) else { throw .badNumber(text: text, dimension: DurationUnit.dimensionName) }
        return .nanoseconds(Int64(ExactDecimal.lower(whole)))
    }

    /// A person-readable form: "40 min", "4 h", "1 h 30 min", "90 s", "2.5 s".
    public var humanReadable: String {
        let total = seconds
        if total < 60 || (total.truncatingRemainder(dividingBy: 60) != 0 && total < 600) {
            return "\(NumberText.format(total, fractionDigits: 3)) s"
        }
        let minutes = total / 60
        if minutes < 60 { return "\(NumberText.format(minutes, fractionDigits: 2)) min" }
        let wholeHours = (minutes / 60).rounded(.down)
        let rest = minutes - wholeHours * 60
        if rest < 0.005 { return "\(NumberText.format(wholeHours, fractionDigits: 0)) h" }
        return "\(NumberText.format(wholeHours, fractionDigits: 0)) h \(NumberText.format(rest, fractionDigits: 2)) min"
    }
}
