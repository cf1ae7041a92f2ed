/// A validated, checksummed drug library (dose error reduction system, DESIGN.md "Drug library").
///
/// Only `DrugLibrary.load(text:source:)` makes one, after checking the file's SHA-256, every key, type,
/// unit and the consistency of every limit. Values are immutable and `Sendable`; any thread.
public struct DrugLibrary: Sendable, Hashable {
    /// The library's name, as written in `[library] name`.
    public let name: String
    /// The library's version, as written in `[library] version`.
    public let version: String
    /// The lowercase hex SHA-256 of the library text without its `sha256` line; verified at load.
    public let sha256: String
    /// The care-area profiles, in file order.
    public let profiles: [CareAreaProfile]
    /// Where the library was loaded from (a path, or "<built-in>"), for messages.
    public let source: String

    /// The profile whose `id` or `name` equals `name` (case-insensitive), or nil.
    public func profile(named name: String) -> CareAreaProfile? {
        let key = name.lowercased()
        return profiles.first { $0.id.lowercased() == key || $0.name.lowercased() == key }
    }

    /// "InfusionControl default drug library 2026.11.0 (sha256 1a2b3c4d…)".
    public var identity: String { "\(name) \(version) (sha256 \(sha256.prefix(12))…)" }

    init(name: String, version: String, sha256: String, profiles: [CareAreaProfile], source: String) {
        self.name = name
        self.version = version
        self.sha256 = sha256
        self.profiles = profiles
        self.source = source
    }
}

/// A care-area profile: the drugs allowed in one clinical area, with their limits, and the monitoring
/// rules the safety supervisor applies there (clinical.md §6.2 to §6.4).
public struct CareAreaProfile: Sendable, Hashable {
    /// Short identifier used on the command line ("ketamine-chronic-pain").
    public let id: String
    /// Full name ("Ketamine, chronic pain (outpatient infusion suite)").
    public let name: String
    /// The clinical area ("Outpatient infusion suite").
    public let careArea: String
    /// Drug entries, in file order.
    public let drugs: [DrugEntry]
    /// Vital signs required before a start (R-ST-01).
    public let startChecks: StartChecks
    /// Run-time stop and warning rules (R-MON-01 to R-MON-09).
    public let monitoring: MonitoringRules
    /// Alarm-system settings (R-ALM-03).
    public let alarms: AlarmSettings

    /// The drug entry named `name` (case-insensitive), or nil.
    public func drug(named name: String) -> DrugEntry? {
        let key = name.lowercased()
        return drugs.first { $0.name.lowercased() == key }
    }
}

/// Lower and upper limits of one kind, each soft (overridable with a recorded reason) or hard (never).
public struct Limits<Value: Comparable & Hashable & Sendable>: Hashable, Sendable {
    /// Below this: rejected. Optional.
    public let hardMinimum: Value?
    /// Below this: needs a confirmation. Optional.
    public let softMinimum: Value?
    /// Above this: needs a confirmation. Optional.
    public let softMaximum: Value?
    /// Above this: rejected.
    public let hardMaximum: Value

    /// Limits as written in a library; `DrugLibrary.load` checks their order.
    public init(hardMinimum: Value? = nil, softMinimum: Value? = nil, softMaximum: Value? = nil, hardMaximum: Value) {
        self.hardMinimum = hardMinimum
        self.softMinimum = softMinimum
        self.softMaximum = softMaximum
        self.hardMaximum = hardMaximum
    }
}

/// What the pump does when the programmed volume has been infused.
public enum EndOfInfusionAction: String, Hashable, Sendable {
    /// Stop delivery and raise a low-priority "infusion complete" advisory.
    case stop
}

/// One drug at its allowed concentrations, with every dose error reduction limit (clinical.md §1.3).
public struct DrugEntry: Sendable, Hashable {
    /// Drug name ("Ketamine").
    public let name: String
    /// The only concentrations that may be programmed; anything else is a hard reject (R-DL-01).
    public let concentrations: [Concentration]
    /// The unit a continuous dose must be written in (R-DL-03).
    public let doseRateUnit: WeightBasedDoseRateUnit
    /// The unit a loading dose or bolus must be written in (R-DL-03).
    public let bolusDoseUnit: WeightBasedDoseUnit
    /// Allowed patient weights; outside is a hard reject (R-DL-02).
    public let weightRange: ClosedRange<BodyWeight>
    /// Continuous dose-rate limits (R-DL-04 to R-DL-06).
    public let doseRate: Limits<WeightBasedDoseRate>
    /// Absolute dose-rate cap regardless of weight (R-DL-04).
    public let absoluteRateCap: DoseRate
    /// Loading dose / bolus limits (R-DL-07); only maxima are used.
    public let loadingDose: Limits<WeightBasedDose>
    /// Minimum duration of a loading dose (R-DL-07): hard minimum, soft minimum.
    public let loadingDuration: Limits<Duration>
    /// Projected and delivered cumulative dose per session (R-DL-08).
    public let cumulativeDose: Limits<WeightBasedDose>
    /// Session duration limits (clinical.md §1.3).
    public let sessionDuration: Limits<Duration>
    /// What happens at the end of the programmed volume.
    public let endOfInfusion: EndOfInfusionAction
}

/// Vital signs that must be valid, fresh and in range before a start is accepted (R-ST-01).
public struct StartChecks: Sendable, Hashable {
    /// Lowest SpO2 that allows a start.
    public let spo2Minimum: Percentage
    /// Lowest pulse rate that allows a start.
    public let pulseMinimum: PulseRate
    /// Highest pulse rate that allows a start.
    public let pulseMaximum: PulseRate
    /// Oldest a vital-sign sample may be and still count for the start check.
    public let vitalsMaxAge: Duration
}

/// Run-time monitoring rules for the safety supervisor (clinical.md §6.3). All thresholds are
/// configurable per profile; the shipped library carries the proposed defaults.
public struct MonitoringRules: Sendable, Hashable {
    /// R-MON-01: pause and raise a high-priority alarm when SpO2 stays below this for `spo2PauseHold`.
    public let spo2PauseBelow: Percentage
    /// R-MON-01: how long SpO2 must stay below `spo2PauseBelow` (configurable 10 to 30 s).
    public let spo2PauseHold: Duration
    /// R-MON-01: pause at once, with no hold time, below this SpO2.
    public let spo2ImmediatePauseBelow: Percentage
    /// R-MON-02: medium-priority alarm (no pause) when SpO2 stays at or below this for `spo2WarningHold`.
    public let spo2WarningAtOrBelow: Percentage
    /// R-MON-02: hold time of the SpO2 warning.
    public let spo2WarningHold: Duration
    /// R-MON-03: pause and raise a high-priority alarm above this pulse rate after `pulsePauseHold`.
    public let pulsePauseAbove: PulseRate
    /// R-MON-03: pause and raise a high-priority alarm below this pulse rate after `pulsePauseHold`.
    public let pulsePauseBelow: PulseRate
    /// R-MON-03: hold time of the pulse-rate pause rules.
    public let pulsePauseHold: Duration
    /// R-MON-03: medium-priority alarm above this pulse rate after `pulseWarningHold`.
    public let pulseWarningAbove: PulseRate
    /// R-MON-03: hold time of the pulse-rate warning.
    public let pulseWarningHold: Duration
    /// R-MON-06: a medium technical alarm once SpO2 has been invalid for this long (0 s: at once).
    public let invalidSignalAlarmAfter: Duration
    /// R-MON-06: a medium technical alarm when no valid sample has arrived for this long.
    public let monitoringLossAlarmAfter: Duration
    /// R-MON-06: pause delivery and escalate to high priority when monitoring has been lost this long.
    public let monitoringLossPauseAfter: Duration
    /// R-MON-08: a sample older than this (arrival against device time) counts as no data.
    public let sampleMaxAge: Duration
    /// R-MON-09: the pump must report itself stopped within this time of a stop command.
    public let stopConfirmationDeadline: Duration
    /// Largest allowed difference between commanded and pump-reported rate, as a percentage of the
    /// commanded rate.
    public let rateTolerance: Percentage
    /// How long a rate disagreement may last before it stops the infusion.
    public let rateMismatchHold: Duration
    /// Largest allowed difference between the volume the program expects and the pump's counter.
    public let volumeTolerance: Volume
}

/// Alarm-system settings (R-ALM-03).
public struct AlarmSettings: Sendable, Hashable {
    /// Longest an audio pause may last before the sound returns.
    public let audioPauseMax: Duration
    /// A medium-priority alarm whose condition persists this long escalates to high priority.
    public let escalateMediumAfter: Duration
}
