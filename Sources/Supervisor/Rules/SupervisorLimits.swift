import InfusionCore

/// Every threshold, hold time and rate the safety supervisor uses for one channel, taken from a
/// `ValidatedProgram` and its care-area profile (clinical.md §6.2 to §6.4). Nothing here is
/// hard-coded: change the library profile and the supervisor follows.
///
/// A plain value with no references (no strings, no arrays), so the real-time tick can copy and read
/// it without retain/release or allocation. Build it once, outside the tick, with
/// `init(program:)`; only a `ValidatedProgram` (which only the validator makes) can produce one, and
/// its properties cannot be changed outside this module (titration goes through `TitrationOrder`).
public struct SupervisorLimits: Hashable, Sendable {
    // MARK: Start interlocks (R-ST-01)

    /// Lowest SpO2 that allows a start.
    public internal(set) var startSpO2Minimum: Percentage
    /// Lowest pulse rate that allows a start.
    public internal(set) var startPulseMinimum: PulseRate
    /// Highest pulse rate that allows a start.
    public internal(set) var startPulseMaximum: PulseRate
    /// Oldest (by `VitalSample.measuredAt`) a sample may be and still count for a start check.
    public internal(set) var startVitalsMaxAge: Duration

    // MARK: Run-time monitoring (R-MON-01 to R-MON-09)

    /// R-MON-01: stop when SpO2 stays below this for `spo2PauseHold`.
    public internal(set) var spo2PauseBelow: Percentage
    /// R-MON-01: hold time; the stop comes on the first tick at which the condition has lasted this long.
    public internal(set) var spo2PauseHold: Duration
    /// R-MON-01: stop on the first valid sample below this, with no hold.
    public internal(set) var spo2ImmediatePauseBelow: Percentage
    /// R-MON-02: medium alarm (no stop) when SpO2 stays at or below this for `spo2WarningHold`.
    public internal(set) var spo2WarningAtOrBelow: Percentage
    /// R-MON-02: hold time of the SpO2 warning.
    public internal(set) var spo2WarningHold: Duration
    /// R-MON-03: stop above this pulse rate after `pulsePauseHold`.
    public internal(set) var pulsePauseAbove: PulseRate
    /// R-MON-03: stop below this pulse rate after `pulsePauseHold`.
    public internal(set) var pulsePauseBelow: PulseRate
    /// R-MON-03: hold time of both pulse-rate stops.
    public internal(set) var pulsePauseHold: Duration
    /// R-MON-03: medium alarm above this pulse rate after `pulseWarningHold`.
    public internal(set) var pulseWarningAbove: PulseRate
    /// R-MON-03: hold time of the pulse-rate warning.
    public internal(set) var pulseWarningHold: Duration
    /// R-MON-06: medium technical alarm once the latest sample has been invalid this long.
    public internal(set) var invalidSignalAlarmAfter: Duration
    /// R-MON-06: medium technical alarm when no valid sample has been measured for longer than this.
    public internal(set) var monitoringLossAlarmAfter: Duration
    /// R-MON-06: stop, and escalate to high, when no valid sample has been measured for longer than this.
    public internal(set) var monitoringLossPauseAfter: Duration
    /// R-MON-08: a sample (or pump status) older than this counts as no data. Also the freshness limit of
    /// pump status: a status older than this means the pump's state is unknown.
    public internal(set) var sampleMaxAge: Duration
    /// R-MON-09: the pump must report itself stopped within this time of a stop command.
    public internal(set) var stopConfirmationDeadline: Duration
    /// Largest allowed difference between commanded and reported rate, in percent of the commanded rate.
    public internal(set) var rateTolerance: Percentage
    /// How long a rate disagreement may last before it stops the infusion (also: how long the pump may
    /// take to start after a start command).
    public internal(set) var rateMismatchHold: Duration
    /// Largest allowed difference between the volume the commanded rates imply and the pump's counter.
    public internal(set) var volumeTolerance: Volume

    // MARK: Alarm system (R-ALM-03)

    /// Longest an audio pause lasts.
    public internal(set) var audioPauseMax: Duration
    /// A medium alarm whose condition persists this long escalates to high.
    public internal(set) var escalateMediumAfter: Duration

    // MARK: The program

    /// Loading-phase pump rate (zero when the program has no loading phase).
    public internal(set) var loadingRate: VolumeRate
    /// Loading-phase duration (zero when none).
    public internal(set) var loadingDuration: Duration
    /// Maintenance pump rate (the validated, rounded-down rate).
    public internal(set) var maintenanceRate: VolumeRate
    /// Maintenance duration.
    public internal(set) var maintenanceDuration: Duration
    /// The highest rate the validated program may command: the supervisor never commands more.
    public internal(set) var maximumRate: VolumeRate
    /// The highest maintenance rate any program for this drug, concentration and patient could ever
    /// validate at (the drug's hard maximum dose rate and absolute cap, converted to mL/h). A second,
    /// independent ceiling checked on every maintenance rate command, titrations included. (A loading
    /// dose is a bolus with its own validated limits and may run faster; it is held to `maximumRate`.)
    public internal(set) var rateCeiling: VolumeRate
    /// The delivered volume at which the session's hard cumulative dose is reached (R-DL-08).
    public internal(set) var cumulativeHardLimitVolume: Volume
    /// Identifies the library, profile, drug, concentration and weight this channel runs: a titration
    /// must carry the same identity.
    public internal(set) var programIdentity: ProgramIdentity

    /// Takes every limit from `program` and its profile. Pure; any thread; allocates (call it outside
    /// the real-time tick).
    public init(program: ValidatedProgram) {
        let start = program.profile.startChecks
        let m = program.profile.monitoring
        let a = program.profile.alarms
        startSpO2Minimum = start.spo2Minimum
        startPulseMinimum = start.pulseMinimum
        startPulseMaximum = start.pulseMaximum
        startVitalsMaxAge = start.vitalsMaxAge
        spo2PauseBelow = m.spo2PauseBelow
        spo2PauseHold = m.spo2PauseHold
        spo2ImmediatePauseBelow = m.spo2ImmediatePauseBelow
        spo2WarningAtOrBelow = m.spo2WarningAtOrBelow
        spo2WarningHold = m.spo2WarningHold
        pulsePauseAbove = m.pulsePauseAbove
        pulsePauseBelow = m.pulsePauseBelow
        pulsePauseHold = m.pulsePauseHold
        pulseWarningAbove = m.pulseWarningAbove
        pulseWarningHold = m.pulseWarningHold
        invalidSignalAlarmAfter = m.invalidSignalAlarmAfter
        monitoringLossAlarmAfter = m.monitoringLossAlarmAfter
        monitoringLossPauseAfter = m.monitoringLossPauseAfter
        sampleMaxAge = m.sampleMaxAge
        stopConfirmationDeadline = m.stopConfirmationDeadline
        rateTolerance = m.rateTolerance
        rateMismatchHold = m.rateMismatchHold
        volumeTolerance = m.volumeTolerance
        audioPauseMax = a.audioPauseMax
        escalateMediumAfter = a.escalateMediumAfter
        let c = program.calculation
        loadingRate = c.loading?.pumpRate.actual ?? .zero
        loadingDuration = c.loading?.duration ?? .zero
        maintenanceRate = c.pumpRate.actual
        maintenanceDuration = c.duration
        maximumRate = program.maximumPumpRate
        rateCeiling = Self.ceiling(drug: program.drug, weight: program.weight, concentration: program.concentration)
        cumulativeHardLimitVolume = program.cumulativeHardLimitVolume
        programIdentity = ProgramIdentity(program: program)
    }

    /// The same limits with the three DEVICE-TIMING limits (`sampleMaxAge`, which is also the pump-status
    /// freshness limit, `stopConfirmationDeadline` and `rateMismatchHold`) raised to at least `minimum`.
    ///
    /// Only for simulated devices on a controller clock running faster than real time (`SessionTiming`):
    /// at 80× the profile's 5 s freshness limit is 62 ms of real time, and the pump status the wiring
    /// asks for every 50 ms of real time arrives later than that whenever a loaded machine delays a pty
    /// round trip by a few milliseconds, so a healthy simulated pump was taken for a silent one.
    /// Production (speed 1) passes `.zero`, which changes nothing. The clinical limits (SpO2 and pulse
    /// bands, their hold times, the monitoring-loss windows, dose limits) are never changed. Pure.
    public func raisingDeviceTimingLimits(toAtLeast minimum: Duration) -> SupervisorLimits {
        var copy = self
        copy.sampleMaxAge = max(sampleMaxAge, minimum)
        copy.stopConfirmationDeadline = max(stopConfirmationDeadline, minimum)
        copy.rateMismatchHold = max(rateMismatchHold, minimum)
        return copy
    }

    /// The same limits with a titrated maintenance phase (already checked against `rateCeiling`).
    func titrated(to order: TitrationOrder) -> SupervisorLimits {
        var copy = self
        copy.maintenanceRate = order.maintenanceRate
        copy.maintenanceDuration = order.maintenanceDuration
        copy.maximumRate = order.maximumRate
        return copy
    }

    /// The smaller of the drug's hard maximum dose rate and its absolute cap, as a pump rate.
    static func ceiling(drug: DrugEntry, weight: BodyWeight, concentration: Concentration) -> VolumeRate {
        let byWeight = Dosing.pumpRate(doseRate: drug.doseRate.hardMaximum, weight: weight, concentration: concentration) ?? .zero
        let byCap = Dosing.pumpRate(doseRate: drug.absoluteRateCap, concentration: concentration) ?? .zero
        return min(byWeight, byCap)
    }
}

/// A fingerprint of what must not change within one session: library (SHA-256), profile, drug,
/// concentration and patient weight. Deterministic across processes (FNV-1a, not `Hasher`).
public struct ProgramIdentity: Hashable, Sendable, CustomStringConvertible {
    /// The 64-bit fingerprint.
    public internal(set) var value: UInt64

    /// The identity of `program`. Allocation-free is not required here (outside the tick).
    public init(program: ValidatedProgram) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) {
            for b in bytes { hash = (hash ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
            hash = (hash ^ 0xff) &* 0x0000_0100_0000_01b3 // field separator
        }
        mix(program.librarySHA256.utf8)
        mix(program.profile.id.utf8)
        mix(program.drug.name.lowercased().utf8)
        withUnsafeBytes(of: program.concentration.canonicalValue.bitPattern.littleEndian) { mix($0) }
        withUnsafeBytes(of: program.weight.canonicalValue.bitPattern.littleEndian) { mix($0) }
        value = hash
    }

    public var description: String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
