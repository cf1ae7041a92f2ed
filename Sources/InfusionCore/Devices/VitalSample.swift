/// Measurement-quality conditions an oximeter reports with a sample. Any of `invalidating` means the
/// SpO2 and pulse values must not be trusted: the supervisor treats such a sample as no data.
///
/// An `OptionSet` over a `UInt32`: no allocation, safe to copy into the real-time supervisor.
public struct OximetryQuality: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Probe off the finger, or sensor disconnected (Nonin SNSD/SNSA, Masimo sensor off/no sensor,
    /// Contec "finger out").
    public static let probeOff = OximetryQuality(rawValue: 1 << 0)
    /// The sensor reports an alarm or a defect (Nonin SNSA, Masimo defective sensor).
    public static let sensorFault = OximetryQuality(rawValue: 1 << 1)
    /// Motion or other artifact on this pulse.
    public static let artifact = OximetryQuality(rawValue: 1 << 2)
    /// Out of track: sustained absence of good pulses.
    public static let outOfTrack = OximetryQuality(rawValue: 1 << 3)
    /// Low or no perfusion.
    public static let lowPerfusion = OximetryQuality(rawValue: 1 << 4)
    /// Marginal perfusion.
    public static let marginalPerfusion = OximetryQuality(rawValue: 1 << 5)
    /// Searching for a pulse.
    public static let searching = OximetryQuality(rawValue: 1 << 6)
    /// The oximeter's battery is low.
    public static let lowBattery = OximetryQuality(rawValue: 1 << 7)
    /// Interference or ambient light (Masimo).
    public static let interference = OximetryQuality(rawValue: 1 << 8)
    /// Low signal quality (Masimo low SIQ).
    public static let lowSignalQuality = OximetryQuality(rawValue: 1 << 9)

    /// Conditions under which SpO2 and pulse rate are not evidence of safety (clinical.md §4.2).
    public static let invalidating: OximetryQuality = [.probeOff, .sensorFault, .outOfTrack, .lowPerfusion, .searching, .lowSignalQuality]

    /// Names of the set flags, for messages and records ("probe off, artifact").
    public var names: [String] {
        let all: [(OximetryQuality, String)] = [
            (.probeOff, "probe off"), (.sensorFault, "sensor fault"), (.artifact, "artifact"), (.outOfTrack, "out of track"),
            (.lowPerfusion, "low perfusion"), (.marginalPerfusion, "marginal perfusion"), (.searching, "searching"),
            (.lowBattery, "low battery"), (.interference, "interference"), (.lowSignalQuality, "low signal quality"),
        ]
        return all.filter { contains($0.0) }.map(\.1)
    }
}

/// One vital-sign sample from a pulse oximeter, as a driver publishes it.
///
/// A missing value is `nil`, never 0 and never the previous value. Times are on the host's monotonic
/// clock (the injected `MonotonicClock`). A plain value with no references: copying it into the
/// supervisor's input cell never allocates.
public struct VitalSample: Hashable, Sendable {
    /// When the sample's last byte arrived.
    public var arrivedAt: MonotonicInstant
    /// When the device measured it, mapped onto the host clock: the driver's best estimate from the
    /// device's own timestamp where the format has one, otherwise `arrivedAt`. R-MON-08 ages samples by this.
    public var measuredAt: MonotonicInstant
    /// Oxygen saturation, or nil when the device reports it missing.
    public var spo2: Percentage?
    /// Pulse rate, or nil when missing.
    public var pulseRate: PulseRate?
    /// Perfusion index, where the device reports one.
    public var perfusionIndex: Percentage?
    /// Quality conditions reported with the sample.
    public var quality: OximetryQuality

    /// A sample; see each property.
    public init(arrivedAt: MonotonicInstant, measuredAt: MonotonicInstant? = nil, spo2: Percentage?, pulseRate: PulseRate?,
                perfusionIndex: Percentage? = nil, quality: OximetryQuality = []) {
        self.arrivedAt = arrivedAt
        self.measuredAt = measuredAt ?? arrivedAt
        self.spo2 = spo2
        self.pulseRate = pulseRate
        self.perfusionIndex = perfusionIndex
        self.quality = quality
    }

    /// True when SpO2 and pulse rate are both present and no invalidating condition is set.
    public var isValid: Bool {
        spo2 != nil && pulseRate != nil && quality.isDisjoint(with: .invalidating)
    }
}
