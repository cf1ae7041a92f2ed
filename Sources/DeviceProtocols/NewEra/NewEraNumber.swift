import Foundation
import InfusionCore

extension NewEra {
    /// A number exactly as the pump reads and writes it: `<float> := up to 4 digits plus one decimal
    /// point; at most 3 digits after the point` (so 0.001 … 9999; a leading "0." counts one digit).
    ///
    /// Stored exactly as a scaled integer, so 26.59 is `scaledValue` 2659 with 2 fraction digits and
    /// nothing is lost to binary floating point. Equality and hashing are by value (1.5 == 1.500);
    /// `text` keeps the written form. A plain value; any thread.
    public struct Number: Hashable, Sendable, Comparable, CustomStringConvertible {
        /// The digits as an integer: 26.59 → 2659, 0.250 → 250.
        public let scaledValue: Int
        /// How many of those digits follow the decimal point (0…3).
        public let fractionDigits: Int

        /// At most this many digits in one number.
        public static let maxDigits = 4
        /// At most this many digits after the decimal point.
        public static let maxFractionDigits = 3

        /// The number `scaledValue / 10^fractionDigits`, or nil when it breaks the pump's grammar
        /// (negative, more than 3 fraction digits, or more than 4 digits in all).
        public init?(scaledValue: Int, fractionDigits: Int) {
            guard scaledValue >= 0, (0...Self.maxFractionDigits).contains(fractionDigits) else { return nil }
            let integerPart = scaledValue / Self.powerOfTen(fractionDigits)
            guard Self.digitCount(integerPart) + fractionDigits <= Self.maxDigits else { return nil }
            self.scaledValue = scaledValue
            self.fractionDigits = fractionDigits
        }

        /// A whole number 0…9999, or nil.
        public init?(_ integer: Int) { self.init(scaledValue: integer, fractionDigits: 0) }

        /// Parses the pump's number text ("26.59", "1.500", "0.25", "28", ".5"), or nil when it is not
        /// 1–4 digits with at most one point and at most 3 digits after it.
        public init?(text: some StringProtocol) {
            var scaled = 0
            var digits = 0
            var fraction = 0
            var seenPoint = false
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"):
                    digits += 1
                    if seenPoint { fraction += 1 }
                    guard digits <= Self.maxDigits else { return nil }
                    scaled = scaled * 10 + Int(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "."):
                    guard !seenPoint else { return nil }
                    seenPoint = true
                default:
                    return nil
                }
            }
            guard digits > 0 else { return nil }
            self.init(scaledValue: scaled, fractionDigits: fraction)
        }

        /// The largest number the pump can express that is ≤ `value` (rounding toward zero): at most
        /// 4 significant digits and 3 decimals, as `ExactDecimal.floor` computes it. Nil when `value`
        /// is negative, not finite, or ≥ 10000.
        public static func roundingDown(_ value: Decimal) -> Number? {
            guard !value.isNaN, value >= 0, value < 10000 else { return nil }
            let floored = ExactDecimal.floor(value, significantDigits: maxDigits, maxFractionDigits: maxFractionDigits)
            for fraction in 0...maxFractionDigits {
                let scaled = floored * Decimal(powerOfTen(fraction))
                var whole = Decimal()
                var source = scaled
                NSDecimalRound(&whole, &source, 0, .down)
                if whole == scaled {
                    let integer = NSDecimalNumber(decimal: whole).intValue
                    if let number = Number(scaledValue: integer, fractionDigits: fraction) { return number }
                }
            }
            return nil
        }

        /// Like `roundingDown(_ value: Decimal)` for a `Double` written as a decimal (exact for short
        /// decimals: 1.5 stays 1.5).
        public static func roundingDown(_ value: Double) -> Number? {
            guard let exact = ExactDecimal.lift(value) else { return nil }
            return roundingDown(exact)
        }

        /// The exact value.
        public var decimal: Decimal {
            Decimal(sign: .plus, exponent: -fractionDigits, significand: Decimal(scaledValue))
        }

        /// The value as a `Double` (the nearest one to the exact decimal).
        public var value: Double { ExactDecimal.lower(decimal) }

        /// The number as written: "26.59", "1.500", "28". No exponent, no sign.
        public var text: String {
            guard fractionDigits > 0 else { return String(scaledValue) }
            let divisor = Self.powerOfTen(fractionDigits)
            let fraction = String(scaledValue % divisor)
            return String(scaledValue / divisor) + "."
                + String(repeating: "0", count: fractionDigits - fraction.count) + fraction
        }

        /// The same value written with exactly 4 digits where the 3-decimal limit allows, and always
        /// with a decimal point, the way the pump prints its settings: 1.5 → "1.500", 26.59 → "26.59",
        /// 28 → "28.00", 1500 → "1500.", 9999 → "9999.". The trailing point of a 4-digit whole number
        /// is **[unverified]**, inferred from the grammar (`<float> := up to 4 digits plus one decimal
        /// point`) and from nesp-lib, which reads every DIA/RAT/VOL/DIS number with `\d+\.\d*` (without
        /// it, nesp-lib fails on "1500UM", the reply to the "RAT1500UM" it sends itself for 1.5 mL/min).
        public var fourDigitText: String {
            let integerDigits = Self.digitCount(scaledValue / Self.powerOfTen(fractionDigits))
            let wanted = min(Self.maxFractionDigits, max(0, Self.maxDigits - integerDigits))
            guard wanted > fractionDigits else { return fractionDigits == 0 ? text + "." : text }
            let padded = Number(
                unchecked: scaledValue * Self.powerOfTen(wanted - fractionDigits), fractionDigits: wanted)
            return padded.text
        }

        /// Human-readable text for logs and error messages.
        public var description: String { text }

        /// The same value with trailing fraction zeros removed (1.500 → 1.5).
        public var normalized: Number {
            var scaled = scaledValue
            var fraction = fractionDigits
            while fraction > 0 && scaled % 10 == 0 {
                scaled /= 10
                fraction -= 1
            }
            return Number(unchecked: scaled, fractionDigits: fraction)
        }

        /// Equal when they encode to the same bytes/value.
        public static func == (lhs: Self, rhs: Self) -> Bool {
            let l = lhs.normalized, r = rhs.normalized
            return l.scaledValue == r.scaledValue && l.fractionDigits == r.fractionDigits
        }

        /// Hashes what `==` compares.
        public func hash(into hasher: inout Hasher) {
            let n = normalized
            hasher.combine(n.scaledValue)
            hasher.combine(n.fractionDigits)
        }

        /// Orders by numeric value.
        public static func < (lhs: Self, rhs: Self) -> Bool {
            let scale = max(lhs.fractionDigits, rhs.fractionDigits)
            return lhs.scaledValue * powerOfTen(scale - lhs.fractionDigits)
                < rhs.scaledValue * powerOfTen(scale - rhs.fractionDigits)
        }

        init(unchecked scaledValue: Int, fractionDigits: Int) {
            self.scaledValue = scaledValue
            self.fractionDigits = fractionDigits
        }

        static func powerOfTen(_ exponent: Int) -> Int {
            var result = 1
            for _ in 0..<max(0, exponent) { result *= 10 }
            return result
        }

        /// Digits of a non-negative integer; 0 has one digit.
        static func digitCount(_ value: Int) -> Int {
            var count = 1
            var rest = value / 10
            while rest > 0 {
                count += 1
                rest /= 10
            }
            return count
        }
    }
}
