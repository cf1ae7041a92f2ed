import Foundation

// The dimensions InfusionControl works in. Each is its own type; conversions between dimensions are the
// named functions in `Dosing`.

private func dec(_ text: String) -> Decimal { Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) ?? 0 }

// MARK: Mass

/// Units of drug mass.
public enum MassUnit: String, QuantityUnit {
    case milligrams, micrograms, grams
    public static let canonical = MassUnit.milligrams
    public static let dimensionName = "mass"
    public var canonicalFactor: Decimal {
        switch self { case .milligrams: 1; case .micrograms: dec("0.001"); case .grams: 1000 }
    }
    public var symbol: String {
        switch self { case .milligrams: "mg"; case .micrograms: "µg"; case .grams: "g" }
    }
    public var spellings: [String] {
        switch self { case .milligrams: ["mg"]; case .micrograms: ["µg", "ug", "mcg"]; case .grams: ["g"] }
    }
}

/// An amount of drug (canonical unit: mg).
public struct Mass: PhysicalQuantity {
    public typealias Unit = MassUnit
    public let canonicalValue: Double
    public init(canonicalValue: Double) { self.canonicalValue = canonicalValue }
    /// Milligrams.
    public var milligrams: Double { canonicalValue }
    /// `value` milligrams.
    public static func milligrams(_ value: Double) -> Mass { Mass(canonicalValue: value) }
}

// MARK: Volume

/// Units of liquid volume.
public enum VolumeUnit: String, QuantityUnit {
    case millilitres, microlitres, litres
    public static let canonical = VolumeUnit.millilitres
    public static let dimensionName = "volume"
    public var canonicalFactor: Decimal {
        switch self { case .millilitres: 1; case .microlitres: dec("0.001"); case .litres: 1000 }
    }
    public var symbol: String {
        switch self { case .millilitres: "mL"; case .microlitres: "µL"; case .litres: "L" }
    }
    public var spellings: [String] {
        switch self { case .millilitres: ["mL", "ml"]; case .microlitres: ["µL", "uL"]; case .litres: ["L"] }
    }
}

/// A volume of liquid (canonical unit: mL).
public struct Volume: PhysicalQuantity {
    public typealias Unit = VolumeUnit
    public let canonicalValue: Double
    public init(canonicalValue: Double) { self.canonicalValue = canonicalValue }
    /// Millilitres.
    public var millilitres: Double { canonicalValue }
    /// `value` millilitres.
    public static func millilitres(_ value: Double) -> Volume { Volume(canonicalValue: value) }
}

// MARK: Concentration

/// Units of drug concentration.
public enum ConcentrationUnit: String, QuantityUnit {
    case milligramsPerMillilitre, microgramsPerMillilitre
    public static let canonical = ConcentrationUnit.milligramsPerMillilitre
    public static let dimensionName = "concentration"
    public var canonicalFactor: Decimal {
        switch self { case .milligramsPerMillilitre: 1; case .microgramsPerMillilitre: dec("0.001") }
    }
    public var symbol: String {
        switch self { case .milligramsPerMillilitre: "mg/mL"; case .microgramsPerMillilitre: "µg/mL" }
    }
    public var spellings: [String] {
        switch self { case .milligramsPerMillilitre: ["mg/mL"]; case .microgramsPerMillilitre: ["µg/mL", "ug/mL", "mcg/mL"] }
    }
}

/// Drug per volume of solution (canonical unit: mg/mL).
public struct Concentration: PhysicalQuantity {
    public typealias Unit = ConcentrationUnit
    public let canonicalValue: Double
    public init(canonicalValue: Double) { self.canonicalValue = canonicalValue }
    /// Milligrams per millilitre.
    public var milligramsPerMillilitre: Double { canonicalValue }
    /// `value` mg/mL.
    public static func milligramsPerMillilitre(_ value: Double) -> Concentration { Concentration(canonicalValue: value) }
}

// MARK: Body weight

/// Units of patient body weight. Kilograms only: pounds are a classic source of twofold dosing errors.
public enum BodyWeightUnit: String, QuantityUnit {
    case kilograms
    public static let canonical = BodyWeightUnit.kilograms
    public static let dimensionName = "body weight"
    public var canonicalFactor: Decimal { 1 }
    public var symbol: String { "kg" }
    public var spellings: [String] { ["kg"] }
}

/// A patient's body weight (canonical unit: kg).
public struct BodyWeight: PhysicalQuantity {
    public typealias Unit = BodyWeightUnit
    public let canonicalValue: Double
    public init(canonicalValue: Double) { self.canonicalValue = canonicalValue }
    /// Kilograms.
    public var kilograms: Double { canonicalValue }
    /// `value` kilograms.
    public static func kilograms(_ value: Double) -> BodyWeight { BodyWeight(canonicalValue: value) }
}

// MARK: Volume rate (what a pump is programmed in)

/// Units of volume flow rate.
public enum VolumeRateUnit: String, QuantityUnit {
    case millilitresPerHour, millilitresPerMinute, microlitresPerHour, microlitresPerMinute
    public static let canonical = VolumeRateUnit.millilitresPerHour
    public static let dimensionName = "volume rate"
    public var canonicalFactor: Decimal {
        switch self {
        case .millilitresPerHour: 1
        case .millilitresPerMinute: 60
        case .microlitresPerHour: dec("0.001")
        case .microlitresPerMinute: dec("0.06")
        }
    }
    public var symbol: String {
        switch self {
        case .millilitresPerHour: "mL/h"
        case .millilitresPerMinute: "mL/min"
        case .microlitresPerHour: "µL/h"
        case .microlitresPerMinute: "µL/min"
        }
    }
    public var spellings: [String] {
        switch self {
        case .millilitresPerHour: ["mL/h", "mL/hr", "mL/hour"]
        case .millilitresPerMinute: ["mL/min"]
        case .microlitresPerHour: ["µL/h", "uL/h", "µL/hr", "uL/hr"]
        case .microlitresPerMinute: ["µL/min", "uL/min"]
        }
    }
}

/// A pump rate (canonical unit: mL/h).
public struct VolumeRate: PhysicalQuantity {
    public typealias Unit = VolumeRateUnit
    public let canonicalValue: Double
    public init(canonicalValue: Double) { self.canonicalValue = canonicalValue }
    /// Millilitres per hour.
    public var millilitresPerHour: Double { canonicalValue }
    /// `value` mL/h.
    public static func millilitresPerHour(_ value: Double) -> VolumeRate { VolumeRate(canonicalValue: value) }
}

// MARK: Weight-based dose rate (what a prescription is written in)

/// Units of weight-based dose rate.
public enum WeightBasedDoseRateUnit: String, QuantityUnit {
    case milligramsPerKilogramPerHour, microgramsPerKilogramPerMinute, microgramsPerKilogramPerHour, milligramsPerKilogramPerMinute
    public static let canonical = WeightBasedDoseRateUnit.milligramsPerKilogramPerHour
    public static let dimensionName = "weight-based dose rate"
    public var canonicalFactor: Decimal {
        switch self {
        case .milligramsPerKilogramPerHour: 1
        case .microgramsPerKilogramPerMinute: dec("0.06")
        case .microgramsPerKilogramPerHour: dec("0.001")
        case .milligramsPerKilogramPerMinute: 60
        }
    }
    public var symbol: String {
        switch self {
        case .milligramsPerKilogramPerHour: "mg/kg/h"
        case .microgramsPerKilogramPerMinute: "µg/kg/min"
        case .microgramsPerKilogramPerHour: "µg/kg/h"
        case .milligramsPerKilogramPerMinute: "mg/kg/min"
        }
    }
    public var spellings: [String] {
        switch self {
        case .milligramsPerKilogramPerHour: ["mg/kg/h", "mg/kg/hr", "mg/kg/hour"]
        case .microgramsPerKilogramPerMinute: ["µg/kg/min", "ug/kg/min", "mcg/kg/min"]
        case .microgramsPerKilogramPerHour: ["µg/kg/h", "ug/kg/h", "mcg/kg/h", "µg/kg/hr", "mcg/kg/hr"]
        case .milligramsPerKilogramPerMinute: ["mg/kg/min"]
        }
    }
}

/// A dose rate per kilogram of body weight (canonical unit: mg/kg/h).
public struct WeightBasedDoseRate: PhysicalQuantity {
    public typealias Unit = WeightBasedDoseRateUnit
    public let canonicalValue: Double
    public init(canonicalValue: Double) { self.canonicalValue = canonicalValue }
    /// Milligrams per kilogram per hour.
    public var milligramsPerKilogramPerHour: Double { canonicalValue }
    /// `value` mg/kg/h.
    public static func milligramsPerKilogramPerHour(_ value: Double) -> WeightBasedDoseRate {
        WeightBasedDoseRate(canonicalValue: value)
    }
}

// MARK: Absolute dose rate

/// Units of absolute (not weight-based) dose rate.
public enum DoseRateUnit: String, QuantityUnit {
    case milligramsPerHour, milligramsPerMinute, microgramsPerMinute, microgramsPerHour
    public static let canonical = DoseRateUnit.milligramsPerHour
    public static let dimensionName = "dose rate"
    public var canonicalFactor: Decimal {
        switch self {
        case .milligramsPerHour: 1
        case .milligramsPerMinute: 60
        case .microgramsPerMinute: dec("0.06")
        case .microgramsPerHour: dec("0.001")
        }
    }
    public var symbol: String {
        switch self {
        case .milligramsPerHour: "mg/h"
        case .milligramsPerMinute: "mg/min"
        case .microgramsPerMinute: "µg/min"
        case .microgramsPerHour: "µg/h"
        }
    }
    public var spellings: [String] {
        switch self {
        case .milligramsPerHour: ["mg/h", "mg/hr", "mg/hour"]
        case .milligramsPerMinute: ["mg/min"]
        case .microgramsPerMinute: ["µg/min", "ug/min", "mcg/min"]
        case .microgramsPerHour: ["µg/h", "ug/h", "mcg/h", "µg/hr", "mcg/hr"]
        }
    }
}

/// An absolute dose rate (canonical unit: mg/h).
public struct DoseRate: PhysicalQuantity {
    public typealias Unit = DoseRateUnit
    public let canonicalValue: Double
    public init(canonicalValue: Double) { self.canonicalValue = canonicalValue }
    /// Milligrams per hour.
    public var milligramsPerHour: Double { canonicalValue }
    /// `value` mg/h.
    public static func milligramsPerHour(_ value: Double) -> DoseRate { DoseRate(canonicalValue: value) }
}

// MARK: Weight-based dose (bolus, loading, cumulative)

/// Units of weight-based dose.
public enum WeightBasedDoseUnit: String, QuantityUnit {
    case milligramsPerKilogram, microgramsPerKilogram
    public static let canonical = WeightBasedDoseUnit.milligramsPerKilogram
    public static let dimensionName = "weight-based dose"
    public var canonicalFactor: Decimal {
        switch self { case .milligramsPerKilogram: 1; case .microgramsPerKilogram: dec("0.001") }
    }
    public var symbol: String {
        switch self { case .milligramsPerKilogram: "mg/kg"; case .microgramsPerKilogram: "µg/kg" }
    }
    public var spellings: [String] {
        switch self { case .milligramsPerKilogram: ["mg/kg"]; case .microgramsPerKilogram: ["µg/kg", "ug/kg", "mcg/kg"] }
    }
}

/// A dose per kilogram of body weight (canonical unit: mg/kg).
public struct WeightBasedDose: PhysicalQuantity {
    public typealias Unit = WeightBasedDoseUnit
    public let canonicalValue: Double
    public init(canonicalValue: Double) { self.canonicalValue = canonicalValue }
    /// Milligrams per kilogram.
    public var milligramsPerKilogram: Double { canonicalValue }
    /// `value` mg/kg.
    public static func milligramsPerKilogram(_ value: Double) -> WeightBasedDose { WeightBasedDose(canonicalValue: value) }
}

// MARK: Vital-sign magnitudes used in limits

/// Units of percentage (SpO2, perfusion index, tolerances).
public enum PercentageUnit: String, QuantityUnit {
    case percent
    public static let canonical = PercentageUnit.percent
    public static let dimensionName = "percentage"
    public var canonicalFactor: Decimal { 1 }
    public var symbol: String { "%" }
    public var spellings: [String] { ["%", "percent"] }
}

/// A percentage such as SpO2 or a tolerance (canonical unit: %).
public struct Percentage: PhysicalQuantity {
    public typealias Unit = PercentageUnit
    public let canonicalValue: Double
    public init(canonicalValue: Double) { self.canonicalValue = canonicalValue }
    /// Percent.
    public var percent: Double { canonicalValue }
    /// `value` %.
    public static func percent(_ value: Double) -> Percentage { Percentage(canonicalValue: value) }
}

/// Units of pulse rate.
public enum PulseRateUnit: String, QuantityUnit {
    case beatsPerMinute
    public static let canonical = PulseRateUnit.beatsPerMinute
    public static let dimensionName = "pulse rate"
    public var canonicalFactor: Decimal { 1 }
    public var symbol: String { "bpm" }
    public var spellings: [String] { ["bpm", "/min", "beats/min"] }
}

/// A pulse or heart rate (canonical unit: beats per minute).
public struct PulseRate: PhysicalQuantity {
    public typealias Unit = PulseRateUnit
    public let canonicalValue: Double
    public init(canonicalValue: Double) { self.canonicalValue = canonicalValue }
    /// Beats per minute.
    public var beatsPerMinute: Double { canonicalValue }
    /// `value` bpm.
    public static func beatsPerMinute(_ value: Double) -> PulseRate { PulseRate(canonicalValue: value) }
}
