import Foundation

/// The density of the test liquid in grams per millilitre (g/mL, numerically g/cm³), used to turn the
/// balance's mass into delivered volume (V = m / ρ).
///
/// Guarantees: finite and within 0.5...2.0 g/mL (every aqueous infusion liquid is near 1). Pure value;
/// any thread.
public struct LiquidDensity: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Grams per millilitre.
    public let gramsPerMillilitre: Double

    /// The accepted range, g/mL.
    public static let plausibleRange: ClosedRange<Double> = 0.5...2.0

    /// A density of `gramsPerMillilitre`; throws for a non-finite value or one outside 0.5...2.0 g/mL
    /// (a density in kg/m³, such as 998.2, is the usual mistake).
    public init(gramsPerMillilitre: Double) throws(CalibrationInputError) {
        guard gramsPerMillilitre.isFinite, Self.plausibleRange.contains(gramsPerMillilitre) else {
            throw CalibrationInputError(
                "liquid density \(gramsPerMillilitre) g/mL is outside 0.5...2.0 g/mL",
                fix: "give the density in g/mL (water at 20 °C is 0.99820 g/mL; 998.2 kg/m³ is 0.9982 g/mL)")
        }
        self.gramsPerMillilitre = gramsPerMillilitre
    }

    /// Water at 20 °C, air-saturated: 0.998204 g/mL (reference/protocols.md §A7 gives 0.99820).
    public static let waterAt20C = LiquidDensity(unchecked: 0.998204)

    init(unchecked value: Double) { gramsPerMillilitre = value }

    /// Decodes the value from the record's JSON form; throws `DecodingError` for malformed or out-of-range data.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let value = try container.decode(Double.self)
        do {
            try self.init(gramsPerMillilitre: value)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    /// Encodes the value in the record's JSON form (see the type's documentation).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(gramsPerMillilitre)
    }

    /// A short human-readable form, for logs, messages and reports.
    public var description: String { "\(Fixed.text(gramsPerMillilitre, 6)) g/mL" }
}

/// The density of air-saturated pure water between 15 °C and 30 °C, tabulated every 1 °C and linearly
/// interpolated between entries.
///
/// Source: M. Tanaka, G. Girard, R. Davis, A. Peuto, N. Bignell, "Recommended table for the density of
/// water between 0 °C and 40 °C based on recent experimental reports", Metrologia 38 (2001) 301–309
/// (the CIPM formula, ITS-90): ρ = a5 [1 − (t + a1)² (t + a2) / (a3 (t + a4))] with a1 = −3.983035 °C,
/// a2 = 301.797 °C, a3 = 522528.9 °C², a4 = 69.34881 °C, a5 = 999.974950 kg/m³, plus the same paper's
/// air-saturation correction Δρ = s0 + s1 t, s0 = −4.612 × 10⁻³ kg/m³, s1 = 0.106 × 10⁻³ kg/m³/°C. Values
/// agree with Kell (1975) to within 1 × 10⁻⁶ g/mL. Water in an open collection vessel is air-saturated; the
/// air-free values are about 3 × 10⁻⁶ g/mL (0.0003 %) higher, negligible against any pump claim.
///
/// Linear interpolation between 1 °C entries is within 2 × 10⁻⁶ g/mL of the formula. 20 °C gives
/// 0.998204 g/mL, which is reference/protocols.md §A7's 0.99820 g/mL. Pure; any thread.
public enum WaterDensity {
    /// One table row.
    public struct Entry: Hashable, Sendable {
        /// Temperature, °C (ITS-90).
        public let celsius: Double
        /// Density, g/mL.
        public let gramsPerMillilitre: Double
    }

    /// The table, 15...30 °C in 1 °C steps, g/mL to six decimals (computed from the formula above).
    public static let table: [Entry] = [
        (15, 0.999100), (16, 0.998943), (17, 0.998775), (18, 0.998596), (19, 0.998405), (20, 0.998204),
        (21, 0.997993), (22, 0.997771), (23, 0.997539), (24, 0.997297), (25, 0.997045), (26, 0.996784),
        (27, 0.996513), (28, 0.996234), (29, 0.995945), (30, 0.995647),
    ].map { Entry(celsius: $0.0, gramsPerMillilitre: $0.1) }

    /// The temperatures the table covers, °C.
    public static let temperatureRange: ClosedRange<Double> = 15...30

    /// A one-line citation for records and reports.
    public static let source = "Tanaka et al., Metrologia 38 (2001) 301-309, air-saturated water, linear interpolation of 1 °C table"

    /// The density of air-saturated water at `celsius`, linearly interpolated. Throws for a temperature
    /// outside 15...30 °C (the table does not extrapolate).
    public static func density(celsius: Double) throws(CalibrationInputError) -> LiquidDensity {
        guard celsius.isFinite, temperatureRange.contains(celsius) else {
            throw CalibrationInputError(
                "water temperature \(Fixed.text(celsius, 1)) °C is outside the density table (15...30 °C)",
                fix: "bring the test liquid to room temperature (IEC 60601-2-24 tests at 20 ± 2 °C), or give the density in g/mL directly")
        }
        let lowerIndex = min(Int(celsius - temperatureRange.lowerBound), table.count - 2)
        let lower = table[lowerIndex]
        let upper = table[lowerIndex + 1]
        let fraction = (celsius - lower.celsius) / (upper.celsius - lower.celsius)
        return LiquidDensity(unchecked: lower.gramsPerMillilitre + fraction * (upper.gramsPerMillilitre - lower.gramsPerMillilitre))
    }
}
