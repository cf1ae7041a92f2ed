import Foundation

/// Exact decimal arithmetic for the few computations whose rounding direction matters clinically
/// (dose rate → pump rate, rounding to a device's resolution).
///
/// Quantities are stored as `Double`. Every value that enters through text (a prescription, a library
/// file, a device reply) is a short decimal, and the nearest `Double` to a short decimal prints back as
/// that same decimal (Swift prints the shortest representation that round-trips). `ExactDecimal` relies
/// on that: it lifts a `Double` to the decimal it was written as, computes exactly in base 10, and only
/// then converts back. So 0.29 mg/kg/h × 100 kg is 29 mg/h exactly, not 28.999999999999996.
///
/// Pure; any thread.
public enum ExactDecimal {
    /// The decimal a `Double` was written as (its shortest round-tripping representation).
    /// Returns nil for NaN or infinity.
    public static func lift(_ value: Double) -> Decimal? {
        guard value.isFinite else { return nil }
        return Decimal(string: value.description, locale: Locale(identifier: "en_US_POSIX"))
    }

    /// The `Double` nearest to a decimal (correctly rounded through its text form).
    public static func lower(_ value: Decimal) -> Double {
        Double(value.description) ?? .nan
    }

    /// Rounds `value` down (toward zero for positive values) to a whole multiple of `step`.
    /// Both must be finite and `step` positive; otherwise returns nil.
    public static func floor(_ value: Decimal, toMultipleOf step: Decimal) -> Decimal? {
        guard step > 0 else { return nil }
        var quotient = value / step
        var whole = Decimal()
        NSDecimalRound(&whole, &quotient, 0, .down)
        // Division can be inexact in the 38th digit (1/3 × 3 = 0.999…); a quotient that is a hair
        // under a whole number only because of that is not a reason to drop a whole step.
        var nearest = Decimal()
        NSDecimalRound(&nearest, &quotient, 0, .plain)
        if nearest != whole, abs(nearest - quotient) < Decimal(sign: .plus, exponent: -30, significand: 1),
           nearest * step <= value {
            whole = nearest
        }
        return whole * step
    }

    /// Rounds a non-negative `value` down to at most `significantDigits` significant digits and at most
    /// `maxFractionDigits` digits after the decimal point (the New Era pumps accept "up to 4 digits
    /// plus one decimal point; at most 3 after the point").
    public static func floor(_ value: Decimal, significantDigits: Int, maxFractionDigits: Int) -> Decimal {
        guard value > 0 else { return 0 }
        // Number of digits before the point.
        var integerDigits = 0
        var probe = value
        while probe >= 1 { probe /= 10; integerDigits += 1 }
        let fractionDigits = max(0, min(maxFractionDigits, significantDigits - integerDigits))
        var source = value
        var result = Decimal()
        NSDecimalRound(&result, &source, fractionDigits, .down)
        if integerDigits > significantDigits {
            // Too large to express: keep the leading digits, zero the rest.
            var scaled = value
            for _ in 0..<(integerDigits - significantDigits) { scaled /= 10 }
            var truncated = Decimal()
            NSDecimalRound(&truncated, &scaled, 0, .down)
            result = truncated
            for _ in 0..<(integerDigits - significantDigits) { result *= 10 }
        }
        return result
    }
}
