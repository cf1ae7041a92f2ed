import InfusionCore

/// The faults every simulated oximeter accepts, and what the patient looks like to it. Pure; one owner.
///
/// Faults with `[duration]` last that long ("probe-off 30s"), or until `clear` when no duration is
/// given. Measurement faults add to the conditions the virtual patient's scenario reports
/// (`PatientObservation.conditions`); each simulator encodes the union on the wire its own way.
public struct OximeterFaults: Sendable {
    /// A fault's end; `.max` while it has no end.
    private var probeOffUntil: MonotonicInstant?
    private var artifactUntil: MonotonicInstant?
    private var lowPerfusionUntil: MonotonicInstant?
    private var outOfTrackUntil: MonotonicInstant?
    private var silenceUntil: MonotonicInstant?
    private var corruptUntil: MonotonicInstant?
    private var garbagePending = 0
    private var random: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// No faults.
    public init() {}

    /// The help lines (`SimulatedDevice.faultHelp`), common to all oximeters.
    public static let help: [String] = [
        "probe-off [DUR]       probe off the finger (each format's own way), for DUR or until clear",
        "artifact [DUR]        motion artifact (also: motion)",
        "low-perfusion [DUR]   low perfusion",
        "out-of-track [DUR]    out of track: no usable pulse",
        "silence [DUR]         send nothing at all (the device stays plugged in)",
        "garbage               send 32 bytes of noise once, between frames",
        "corrupt [DUR]         corrupt every frame (bad checksums / broken framing)",
        "clear                 end every fault",
    ]

    /// Applies `fault` at `now`; throws for an unknown name or an unreadable duration.
    public mutating func inject(_ fault: FaultCommand, at now: MonotonicInstant) throws(FaultError) -> String {
        var until = MonotonicInstant(nanoseconds: .max)
        var span = "until clear"
        if !fault.arguments.isEmpty {
            guard let duration = fault.duration, duration > .zero else {
                throw FaultError("\(fault.name): cannot read \"\(fault.arguments.joined(separator: " "))\" as a duration; write it like 30s or 2 min")
            }
            until = now + duration
            span = "for \(duration.humanReadable)"
        }
        switch fault.name {
        case "probe-off": probeOffUntil = until
        case "artifact", "motion": artifactUntil = until
        case "low-perfusion": lowPerfusionUntil = until
        case "out-of-track": outOfTrackUntil = until
        case "silence": silenceUntil = until
        case "corrupt": corruptUntil = until
        case "garbage":
            garbagePending += 32
            return "garbage: 32 bytes of noise"
        case "clear":
            self = OximeterFaults()
            return "all faults cleared"
        default:
            throw FaultError("unknown oximeter fault \"\(fault.name)\"; accepted: probe-off, artifact, low-perfusion, out-of-track, silence, garbage, corrupt, clear (unplug and replug are the host's)")
        }
        return "\(fault.name) \(span)"
    }

    private static func active(_ until: MonotonicInstant?, _ now: MonotonicInstant) -> Bool {
        guard let until else { return false }
        return now < until
    }

    /// The measurement conditions the faults add at `now`.
    public func conditions(at now: MonotonicInstant) -> MeasurementConditions {
        var conditions: MeasurementConditions = []
        if Self.active(probeOffUntil, now) { conditions.insert(.probeOff) }
        if Self.active(artifactUntil, now) { conditions.insert(.motionArtifact) }
        if Self.active(lowPerfusionUntil, now) { conditions.insert(.lowPerfusion) }
        if Self.active(outOfTrackUntil, now) { conditions.insert(.outOfTrack) }
        return conditions
    }

    /// True while the device sends nothing.
    public func isSilent(at now: MonotonicInstant) -> Bool { Self.active(silenceUntil, now) }

    /// True while every frame is corrupted.
    public func isCorrupt(at now: MonotonicInstant) -> Bool { Self.active(corruptUntil, now) }

    /// The noise to send now (once per `garbage`), or nil. Deterministic (xorshift).
    public mutating func takeGarbage() -> [UInt8]? {
        guard garbagePending > 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(garbagePending)
        for _ in 0..<garbagePending { bytes.append(nextRandomByte()) }
        garbagePending = 0
        return bytes
    }

    /// A pseudo-random byte (deterministic sequence).
    public mutating func nextRandomByte() -> UInt8 {
        random ^= random << 13
        random ^= random >> 7
        random ^= random << 17
        return UInt8(truncatingIfNeeded: random >> 24)
    }
}

/// The patient as a simulated oximeter sees it between observations: the last `PatientObservation`
/// and when it was given; the cardiac phase is extrapolated at the observed pulse rate. Before the
/// first observation: SpO2 98 %, 72 bpm, PI 3 %, no conditions. Pure.
public struct ObservedPatient: Sendable {
    /// The last observation.
    public private(set) var observation: PatientObservation
    /// When it was given.
    public private(set) var observedAt: MonotonicInstant

    /// A default patient, observed at `now`.
    public init(at now: MonotonicInstant = .origin) {
        observation = PatientObservation(
            time: .zero, vitals: TrueVitals(spo2: .percent(98), pulseRate: .beatsPerMinute(72), perfusionIndex: .percent(3)))
        observedAt = now
    }

    /// Takes a new observation.
    public mutating func observe(_ observation: PatientObservation, at now: MonotonicInstant) {
        self.observation = observation
        observedAt = now
    }

    /// Heart beats since the start at `now` (extrapolated from the last observation).
    public func cardiacCycles(at now: MonotonicInstant) -> Double {
        let bpm = observation.pulseRate.beatsPerMinute
        let elapsed = max(0, (now - observedAt).seconds)
        return observation.cardiacCycles + (bpm.isFinite && bpm > 0 ? bpm * elapsed / 60 : 0)
    }
}
