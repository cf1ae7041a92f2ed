/// A continuous dose as entered, with the unit it was written in, because the drug library requires a
/// specific dosing unit (R-DL-03) and a basic mL/h infusion is not allowed for library drugs (R-DL-12).
public enum DoseEntry: Hashable, Sendable {
    /// A weight-based dose rate ("0.35 mg/kg/h").
    case weightBased(WeightBasedDoseRate, WeightBasedDoseRateUnit)
    /// An absolute dose rate ("28 mg/h").
    case absolute(DoseRate, DoseRateUnit)
    /// A bare pump rate ("28 mL/h"): programming outside the drug library.
    case volumeRate(VolumeRate, VolumeRateUnit)

    /// Parses a dose written with any dose-rate or volume-rate unit. An unknown or missing unit is an error
    /// naming every accepted unit.
    public static func parse(_ text: String) throws(QuantityParseError) -> DoseEntry {
        if let (q, u) = try? WeightBasedDoseRate.parseEntry(text) { return .weightBased(q, u) }
        if let (q, u) = try? DoseRate.parseEntry(text) { return .absolute(q, u) }
        if let (q, u) = try? VolumeRate.parseEntry(text) { return .volumeRate(q, u) }
        let accepted = [WeightBasedDoseRateUnit.acceptedSymbols, DoseRateUnit.acceptedSymbols, VolumeRateUnit.acceptedSymbols]
            .joined(separator: ", ")
        do {
            _ = try WeightBasedDoseRate.parse(text)
        } catch {
            switch error {
            case .empty: throw .empty(dimension: "dose rate", accepted: accepted)
            case .missingUnit: throw .missingUnit(text: text, dimension: "dose rate", accepted: accepted)
            case let .unknownUnit(_, unit, _, _): throw .unknownUnit(text: text, unit: unit, dimension: "dose rate", accepted: accepted)
            case .badNumber: throw .badNumber(text: text, dimension: "dose rate")
            case .negative: throw .negative(text: text, dimension: "dose rate")
            }
        }
        throw .badNumber(text: text, dimension: "dose rate")
    }

    /// The entry as written: "0.35 mg/kg/h".
    public var text: String {
        switch self {
        case let .weightBased(q, u): q.formatted(in: u, fractionDigits: 4)
        case let .absolute(q, u): q.formatted(in: u, fractionDigits: 4)
        case let .volumeRate(q, u): q.formatted(in: u, fractionDigits: 4)
        }
    }
}

/// A loading dose (bolus before the maintenance infusion) as entered.
public struct LoadingEntry: Hashable, Sendable {
    /// The dose per kilogram.
    public let dose: WeightBasedDose
    /// The unit it was written in (must be the drug's bolus unit, R-DL-03).
    public let unit: WeightBasedDoseUnit
    /// Over how long it is given (R-DL-07 minimum duration).
    public let over: Duration

    /// A loading dose of `dose` (written in `unit`) given over `over`.
    public init(dose: WeightBasedDose, unit: WeightBasedDoseUnit = .milligramsPerKilogram, over: Duration) {
        self.dose = dose
        self.unit = unit
        self.over = over
    }
}

/// What the target pump can do, when known: its rate resolution and range. The program's rates are
/// rounded down to the resolution and must fit the range.
public struct PumpCapabilities: Hashable, Sendable {
    /// The pump's rate step (say 0.01 mL/h); nil when the pump accepts any decimal.
    public let rateResolution: VolumeRate?
    /// The pump's highest rate.
    public let maximumRate: VolumeRate?
    /// The pump's lowest non-zero rate.
    public let minimumRate: VolumeRate?
    /// The pump's volume step for the volume to be infused; nil when any decimal is accepted.
    public let volumeResolution: Volume?

    /// Capabilities of a pump; pass nil for what is not known.
    public init(rateResolution: VolumeRate? = nil, maximumRate: VolumeRate? = nil, minimumRate: VolumeRate? = nil, volumeResolution: Volume? = nil) {
        self.rateResolution = rateResolution
        self.maximumRate = maximumRate
        self.minimumRate = minimumRate
        self.volumeResolution = volumeResolution
    }
}

/// Everything program validation needs (clinical.md §6.1). Optional fields are optional so that a
/// missing value is reported as the rule it breaks (no weight: R-DL-02) rather than being impossible to say.
public struct ProgramRequest: Hashable, Sendable {
    /// The care-area profile (id or name); nil means none was selected (R-DL-09).
    public var profile: String?
    /// The drug's name.
    public var drug: String
    /// The solution's concentration; nil means not given (R-DL-01).
    public var concentration: Concentration?
    /// The patient's weight; nil means not given (R-DL-02).
    public var weight: BodyWeight?
    /// The maintenance dose rate as entered.
    public var dose: DoseEntry
    /// How long the maintenance infusion runs (after any loading dose).
    public var duration: Duration
    /// An optional loading dose given before the maintenance infusion.
    public var loading: LoadingEntry?
    /// The target pump's limits, when known.
    public var pump: PumpCapabilities?

    /// A request; see each property for its meaning.
    public init(
        profile: String?, drug: String, concentration: Concentration?, weight: BodyWeight?, dose: DoseEntry,
        duration: Duration, loading: LoadingEntry? = nil, pump: PumpCapabilities? = nil
    ) {
        self.profile = profile
        self.drug = drug
        self.concentration = concentration
        self.weight = weight
        self.dose = dose
        self.duration = duration
        self.loading = loading
        self.pump = pump
    }
}
