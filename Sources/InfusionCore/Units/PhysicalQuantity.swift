import Foundation

/// A unit of one physical dimension (say, `VolumeRateUnit.millilitresPerHour`).
///
/// Every unit states how many canonical units one of it is, as an exact decimal, so conversions
/// between units of a dimension are exact for values written as decimals.
public protocol QuantityUnit: CaseIterable, Hashable, Sendable, CustomStringConvertible {
    /// The unit values of this dimension are stored in.
    static var canonical: Self { get }
    /// What the dimension is called in error messages ("volume rate").
    static var dimensionName: String { get }
    /// How many canonical units one of this unit is (exact).
    var canonicalFactor: Decimal { get }
    /// The symbol printed for this unit ("mL/h").
    var symbol: String { get }
    /// Every accepted spelling, compared case-insensitively with white space removed and µ/μ/u/mc unified.
    var spellings: [String] { get }
}

extension QuantityUnit {
    public var description: String { symbol }

    /// The units of this dimension, as shown in error messages: "mL/h, mL/min, µL/h, µL/min".
    public static var acceptedSymbols: String { allCases.map(\.symbol).joined(separator: ", ") }

    /// The unit written as `text`, or nil.
    public static func unit(named text: some StringProtocol) -> Self? {
        let key = UnitSpelling.normalise(text)
        return allCases.first { unit in unit.spellings.contains { UnitSpelling.normalise($0) == key } }
    }
}

/// A physical quantity: a magnitude in one dimension, stored as a `Double` in the dimension's
/// canonical unit. Quantities of different dimensions are different types, so a dose rate in
/// mg/kg/h cannot be passed where a pump rate in mL/h is expected.
///
/// Values are immutable and `Sendable`; any thread may use them.
public protocol PhysicalQuantity: Comparable, Hashable, Sendable, CustomStringConvertible {
    associatedtype Unit: QuantityUnit
    /// The magnitude in `Unit.canonical`.
    var canonicalValue: Double { get }
    /// Creates a quantity from a magnitude already in `Unit.canonical` (no conversion, no allocation).
    init(canonicalValue: Double)
}

extension PhysicalQuantity {
    /// Creates a quantity of `value` in `unit`. The conversion to the canonical unit is exact in
    /// decimal (5 µg/kg/min is exactly 0.3 mg/kg/h).
    public init(_ value: Double, _ unit: Unit) {
        if unit == Unit.canonical {
            self.init(canonicalValue: value)
        } else if let exact = ExactDecimal.lift(value) {
            self.init(canonicalValue: ExactDecimal.lower(exact * unit.canonicalFactor))
        } else {
            self.init(canonicalValue: value)
        }
    }

    /// The magnitude in `unit` (exact in decimal for values written as decimals).
    public func value(in unit: Unit) -> Double {
        if unit == Unit.canonical { return canonicalValue }
        guard let exact = ExactDecimal.lift(canonicalValue) else { return canonicalValue }
        return ExactDecimal.lower(exact / unit.canonicalFactor)
    }

    /// The magnitude as an exact decimal in the canonical unit (nil when not finite).
    public var exactCanonicalValue: Decimal? { ExactDecimal.lift(canonicalValue) }

    /// Creates a quantity from an exact decimal in the canonical unit.
    public init(exactCanonicalValue value: Decimal) { self.init(canonicalValue: ExactDecimal.lower(value)) }

    /// Zero in this dimension.
    public static var zero: Self { Self(canonicalValue: 0) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.canonicalValue < rhs.canonicalValue }
    public static func + (lhs: Self, rhs: Self) -> Self { Self(canonicalValue: lhs.canonicalValue + rhs.canonicalValue) }
    public static func - (lhs: Self, rhs: Self) -> Self { Self(canonicalValue: lhs.canonicalValue - rhs.canonicalValue) }
    public static func * (lhs: Self, factor: Double) -> Self { Self(canonicalValue: lhs.canonicalValue * factor) }
    public static func / (lhs: Self, divisor: Double) -> Self { Self(canonicalValue: lhs.canonicalValue / divisor) }
    /// The dimensionless ratio of two quantities of one dimension.
    public static func / (lhs: Self, rhs: Self) -> Double { lhs.canonicalValue / rhs.canonicalValue }

    /// The sum computed exactly in decimal (for limit checks and totals; `+` is plain binary floating
    /// point, which can be one unit in the last place off and is meant for hot paths).
    public func exactlyAdding(_ other: Self) -> Self {
        guard let a = exactCanonicalValue, let b = other.exactCanonicalValue else { return self + other }
        return Self(exactCanonicalValue: a + b)
    }

    /// True when the magnitude is finite and greater than zero.
    public var isPositive: Bool { canonicalValue.isFinite && canonicalValue > 0 }

    /// The quantity printed in `unit` with at most `fractionDigits` decimals, trailing zeros removed:
    /// "28 mL/h", "0.35 mg/kg/h".
    public func formatted(in unit: Unit = Unit.canonical, fractionDigits: Int = 3) -> String {
        "\(NumberText.format(value(in: unit), fractionDigits: fractionDigits)) \(unit.symbol)"
    }

    public var description: String { formatted() }

    /// Parses "80 kg", "0.5mg/kg/h" or "40 min"-style text: a non-negative decimal number, optional
    /// white space, then one of this dimension's units. A missing or unknown unit is an error that
    /// names the accepted units.
    public static func parse(_ text: String) throws(QuantityParseError) -> Self {
        try parseEntry(text).quantity
    }

    /// Like `parse`, but also returns the unit the text was written in (program validation checks that
    /// a dose is written in the drug library's dosing unit).
    public static func parseEntry(_ text: String) throws(QuantityParseError) -> (quantity: Self, unit: Unit) {
        let (number, unitText) = try NumberText.split(text, dimension: Unit.dimensionName, accepted: Unit.acceptedSymbols)
        guard let unit = Unit.unit(named: unitText) else {
            throw .unknownUnit(text: text, unit: unitText, dimension: Unit.dimensionName, accepted: Unit.acceptedSymbols)
        }
        return (Self(exactCanonicalValue: number * unit.canonicalFactor), unit)
    }
}

/// A quantity rounded to what a device can deliver. Rounding always goes toward less drug, and the
/// value actually set is reported next to the one asked for: nothing is rounded up silently.
public struct Rounded<Q: PhysicalQuantity>: Hashable, Sendable {
    /// What was asked for.
    public let requested: Q
    /// What will actually be delivered (≤ `requested`).
    public let actual: Q

    /// Pairs a request with the value actually set. Callers must pass `actual ≤ requested`;
    /// the rounding functions below guarantee it.
    public init(requested: Q, actual: Q) {
        self.requested = requested
        self.actual = actual
    }

    /// True when the device cannot deliver exactly what was asked for.
    public var wasRounded: Bool { actual != requested }
    /// How much less than requested will be delivered.
    public var reduction: Q { requested - actual }
}

extension PhysicalQuantity {
    /// Rounds down to a whole multiple of `resolution` (a device's step), exactly in decimal.
    /// A non-positive or non-finite resolution leaves the value unchanged.
    public func roundedDown(toMultipleOf resolution: Self) -> Rounded<Self> {
        guard let value = exactCanonicalValue, let step = resolution.exactCanonicalValue,
              let floored = ExactDecimal.floor(value, toMultipleOf: step)
        else { return Rounded(requested: self, actual: self) }
        let actual = Self(exactCanonicalValue: floored)
        return Rounded(requested: self, actual: min(actual, self))
    }

    /// Rounds down to what a display of `significantDigits` digits (at most `maxFractionDigits` after
    /// the point) can express in `unit`, exactly in decimal.
    public func roundedDown(significantDigits: Int, maxFractionDigits: Int, in unit: Unit) -> Rounded<Self> {
        guard let value = ExactDecimal.lift(value(in: unit)) else { return Rounded(requested: self, actual: self) }
        let floored = ExactDecimal.floor(value, significantDigits: significantDigits, maxFractionDigits: maxFractionDigits)
        let actual = Self(exactCanonicalValue: floored * unit.canonicalFactor)
        return Rounded(requested: self, actual: min(actual, self))
    }
}

/// Why a quantity could not be read from text. Each case says what was wrong and what is accepted.
public enum QuantityParseError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty(dimension: String, accepted: String)
    case missingUnit(text: String, dimension: String, accepted: String)
    case unknownUnit(text: String, unit: String, dimension: String, accepted: String)
    case badNumber(text: String, dimension: String)
    case negative(text: String, dimension: String)

    public var description: String {
        switch self {
        case let .empty(dimension, accepted):
            return "no \(dimension) given: write a number with a unit (\(accepted))"
        case let .missingUnit(text, dimension, accepted):
            return "\"\(text)\" has no unit: write the \(dimension) with one of \(accepted)"
        case let .unknownUnit(text, unit, dimension, accepted):
            return "unknown unit \"\(unit)\" in \"\(text)\": a \(dimension) takes one of \(accepted)"
        case let .badNumber(text, dimension):
            return "\"\(text)\" is not a \(dimension): write a plain decimal number such as 0.35, then the unit"
        case let .negative(text, dimension):
            return "\"\(text)\": a \(dimension) cannot be negative"
        }
    }
}

/// Spelling normalisation for units: case-insensitive, white space removed, the micro sign, the Greek
/// mu, "u" and "mc" prefixes before g/L unified.
enum UnitSpelling {
    static func normalise(_ text: some StringProtocol) -> String {
        var s = text.lowercased().filter { !$0.isWhitespace }
        s = s.replacingOccurrences(of: "\u{03BC}", with: "\u{00B5}") // Greek mu -> micro sign
        s = s.replacingOccurrences(of: "mcg", with: "\u{00B5}g")
        if s.hasPrefix("u") { s = "\u{00B5}" + s.dropFirst() }
        return s
    }
}

/// Number formatting and the number half of quantity parsing.
public enum NumberText {
    /// `value` with at most `fractionDigits` decimals (rounded half away from zero), trailing zeros and a
    /// trailing point removed: 28.0 → "28", 0.3500 → "0.35".
    public static func format(_ value: Double, fractionDigits: Int) -> String {
        guard var exact = ExactDecimal.lift(value) else { return value.description }
        var rounded = Decimal()
        NSDecimalRound(&rounded, &exact, fractionDigits, .plain)
        var text = rounded.description
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text == "-0" ? "0" : text
    }

    /// Splits "0.5mg/kg/h" into the exact number 0.5 and the unit text "mg/kg/h".
    static func split(_ text: String, dimension: String, accepted: String) throws(QuantityParseError) -> (Decimal, String) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw .empty(dimension: dimension, accepted: accepted) }
        if trimmed.hasPrefix("-") { throw .negative(text: text, dimension: dimension) }
        let numberPart = trimmed.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        let unitPart = trimmed.dropFirst(numberPart.count).trimmingCharacters(in: .whitespaces)
        let digits = numberPart.filter(\.isNumber)
        guard !digits.isEmpty, numberPart.filter({ $0 == "." }).count <= 1, digits.count <= 15 else {
            throw .badNumber(text: text, dimension: dimension)
        }
        guard let number = Decimal(string: String(numberPart), locale: Locale(identifier: "en_US_POSIX")) else {
            throw .badNumber(text: text, dimension: dimension)
        }
        guard !unitPart.isEmpty else { throw .missingUnit(text: text, dimension: dimension, accepted: accepted) }
        return (number, unitPart)
    }
}
