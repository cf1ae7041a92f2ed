import Foundation

/// The conversions between dose, volume and time that an infusion needs, as explicit named functions.
///
/// All are exact in decimal for decimal inputs (0.35 mg/kg/h × 80 kg ÷ 1 mg/mL is exactly 28 mL/h) and
/// none rounds: rounding to a device's resolution is a separate, visible step (`roundedDown`), which
/// always rounds toward less drug. Pure; any thread.
public enum Dosing {
    /// Pump rate for a weight-based dose rate: mL/h = (mg/kg/h × kg) ÷ mg/mL.
    /// Returns nil for a non-positive concentration.
    public static func pumpRate(
        doseRate: WeightBasedDoseRate, weight: BodyWeight, concentration: Concentration
    ) -> VolumeRate? {
        pumpRate(doseRate: absoluteDoseRate(doseRate, weight: weight), concentration: concentration)
    }

    /// Pump rate for an absolute dose rate: mL/h = mg/h ÷ mg/mL. Nil for a non-positive concentration.
    public static func pumpRate(doseRate: DoseRate, concentration: Concentration) -> VolumeRate? {
        guard concentration.isPositive, let d = doseRate.exactCanonicalValue, let c = concentration.exactCanonicalValue
        else { return nil }
        return VolumeRate(exactCanonicalValue: d / c)
    }

    /// The weight-based dose rate a pump rate delivers: mg/kg/h = mL/h × mg/mL ÷ kg.
    /// Nil for a non-positive weight.
    public static func doseRate(
        pumpRate: VolumeRate, weight: BodyWeight, concentration: Concentration
    ) -> WeightBasedDoseRate? {
        guard weight.isPositive, let w = weight.exactCanonicalValue else { return nil }
        guard let absolute = doseRate(pumpRate: pumpRate, concentration: concentration).exactCanonicalValue else { return nil }
        return WeightBasedDoseRate(exactCanonicalValue: absolute / w)
    }

    /// The absolute dose rate a pump rate delivers: mg/h = mL/h × mg/mL.
    public static func doseRate(pumpRate: VolumeRate, concentration: Concentration) -> DoseRate {
        guard let r = pumpRate.exactCanonicalValue, let c = concentration.exactCanonicalValue else {
            return DoseRate(canonicalValue: pumpRate.canonicalValue * concentration.canonicalValue)
        }
        return DoseRate(exactCanonicalValue: r * c)
    }

    /// A weight-based dose rate for a given patient: mg/h = mg/kg/h × kg.
    public static func absoluteDoseRate(_ doseRate: WeightBasedDoseRate, weight: BodyWeight) -> DoseRate {
        guard let d = doseRate.exactCanonicalValue, let w = weight.exactCanonicalValue else {
            return DoseRate(canonicalValue: doseRate.canonicalValue * weight.canonicalValue)
        }
        return DoseRate(exactCanonicalValue: d * w)
    }

    /// Drug delivered in a volume of solution: mg = mL × mg/mL.
    public static func deliveredDose(volume: Volume, concentration: Concentration) -> Mass {
        guard let v = volume.exactCanonicalValue, let c = concentration.exactCanonicalValue else {
            return Mass(canonicalValue: volume.canonicalValue * concentration.canonicalValue)
        }
        return Mass(exactCanonicalValue: v * c)
    }

    /// Drug delivered per kilogram: mg/kg = mL × mg/mL ÷ kg. Nil for a non-positive weight.
    public static func deliveredDose(volume: Volume, concentration: Concentration, weight: BodyWeight) -> WeightBasedDose? {
        perKilogram(deliveredDose(volume: volume, concentration: concentration), weight: weight)
    }

    /// A mass per kilogram of body weight: mg/kg = mg ÷ kg. Nil for a non-positive weight.
    public static func perKilogram(_ mass: Mass, weight: BodyWeight) -> WeightBasedDose? {
        guard weight.isPositive, let m = mass.exactCanonicalValue, let w = weight.exactCanonicalValue else { return nil }
        return WeightBasedDose(exactCanonicalValue: m / w)
    }

    /// The absolute amount of a weight-based dose: mg = mg/kg × kg.
    public static func absoluteDose(_ dose: WeightBasedDose, weight: BodyWeight) -> Mass {
        guard let d = dose.exactCanonicalValue, let w = weight.exactCanonicalValue else {
            return Mass(canonicalValue: dose.canonicalValue * weight.canonicalValue)
        }
        return Mass(exactCanonicalValue: d * w)
    }

    /// The volume that holds a given mass of drug: mL = mg ÷ mg/mL. Nil for a non-positive concentration.
    public static func volume(containing mass: Mass, concentration: Concentration) -> Volume? {
        guard concentration.isPositive, let m = mass.exactCanonicalValue, let c = concentration.exactCanonicalValue
        else { return nil }
        return Volume(exactCanonicalValue: m / c)
    }

    /// Volume pumped at a rate for a time: mL = mL/h × h.
    public static func volume(rate: VolumeRate, over duration: Duration) -> Volume {
        guard let r = rate.exactCanonicalValue else { return Volume(canonicalValue: rate.canonicalValue * duration.hours) }
        return Volume(exactCanonicalValue: r * duration.exactSeconds / 3600)
    }

    /// The rate that delivers a volume over a time: mL/h = mL ÷ h. Nil for a non-positive duration.
    public static func rate(toDeliver volume: Volume, over duration: Duration) -> VolumeRate? {
        guard duration > .zero, let v = volume.exactCanonicalValue else { return nil }
        return VolumeRate(exactCanonicalValue: v * 3600 / duration.exactSeconds)
    }

    /// Weight-based dose given at a weight-based rate for a time: mg/kg = mg/kg/h × h.
    public static func dose(rate: WeightBasedDoseRate, over duration: Duration) -> WeightBasedDose {
        guard let r = rate.exactCanonicalValue else {
            return WeightBasedDose(canonicalValue: rate.canonicalValue * duration.hours)
        }
        return WeightBasedDose(exactCanonicalValue: r * duration.exactSeconds / 3600)
    }
}
