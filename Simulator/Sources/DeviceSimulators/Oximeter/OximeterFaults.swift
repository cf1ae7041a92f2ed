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
    private var lowBatteryUntil: MonotonicInstant?
    private var garbagePending = 0
    private var random: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// No faults.
    public init() {}

    /// The help line of `low-battery`, which only the formats with a low-battery bit accept.
    public static let lowBatteryHelp = "low-battery [DUR]     the battery is low: the format's low-battery bit (Nonin, Masimo; Contec V7.0 has none)"

    /// The help lines (`SimulatedDevice.faultHelp`) of the oximeters that can show a low battery.
    public static let help: [String] = ObservedPatient.controlHelp + [
        "probe-off [DUR]       probe off the finger (each format's own way), for DUR or until clear",
        "artifact [DUR]        motion artifact (also: motion)",
        "low-perfusion [DUR]   low perfusion",
        "out-of-track [DUR]    out of track: no usable pulse",
        "silence [DUR]         send nothing at all (the device stays plugged in)",
        "garbage               send 32 bytes of noise once, between frames",
        "corrupt [DUR]         corrupt every frame (bad checksums / broken framing)",
        lowBatteryHelp,
        "clear                 end every fault",
    ]

    /// The help lines of an oximeter whose format has no low-battery bit (Contec V7.0).
    public static var helpWithoutLowBattery: [String] { help.filter { $0 != lowBatteryHelp } }

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
        case "low-battery": lowBatteryUntil = until
        case "garbage":
            garbagePending += 32
            return "garbage: 32 bytes of noise"
        case "clear":
            self = OximeterFaults()
            return "all faults cleared"
        default:
            throw FaultError("unknown oximeter fault \"\(fault.name)\"; accepted: spo2-sim, bias, probe-off, artifact, low-perfusion, out-of-track, silence, garbage, corrupt, low-battery, clear (unplug and replug are the host's)")
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

    /// True while the battery is low (`low-battery`): the device sets its format's low-battery bit.
    public func isLowBattery(at now: MonotonicInstant) -> Bool { Self.active(lowBatteryUntil, now) }

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
    /// What the oximeter measures now: the last observation, or the SpO2 simulator's setting while one
    /// is on the probe, with the oximeter's own SpO2 bias added (clamped to 0–100 %).
    public var observation: PatientObservation {
        var seen = patientObservation
        if let setting = simulatorSetting {
            seen.vitals = TrueVitals(spo2: setting.spo2, pulseRate: setting.pulseRate, perfusionIndex: seen.vitals.perfusionIndex)
            seen.conditions = []
        }
        if spo2Bias != 0 {
            seen.vitals.spo2 = .percent(min(100, max(0, seen.vitals.spo2.percent + spo2Bias)))
        }
        return seen
    }
    /// The last observation of the patient.
    public private(set) var patientObservation: PatientObservation
    /// When it was given.
    public private(set) var observedAt: MonotonicInstant
    /// An SpO2 simulator (such as a Fluke Index 2) on the probe: the SpO2 and pulse rate it presents
    /// instead of the patient's, until `spo2-sim off`. Nil: the patient.
    public private(set) var simulatorSetting: (spo2: Percentage, pulseRate: PulseRate)?
    /// The oximeter's own SpO2 error in percentage points, added to every reading (0: accurate).
    public private(set) var spo2Bias: Double = 0

    /// The help lines for the two controls (`SimulatedDevice.faultHelp`).
    public static let controlHelp: [String] = [
        "spo2-sim SPO2 [PR]    an SpO2 simulator on the probe: read SPO2 % and PR bpm (default 75) instead of the patient",
        "spo2-sim off          take the SpO2 simulator off (the patient again)",
        "bias PERCENT          the oximeter reads SpO2 PERCENT points off (e.g. bias 5; bias 0: accurate)",
    ]

    /// A default patient, observed at `now`.
    public init(at now: MonotonicInstant = .origin) {
        patientObservation = PatientObservation(
            time: .zero, vitals: TrueVitals(spo2: .percent(98), pulseRate: .beatsPerMinute(72), perfusionIndex: .percent(3)))
        observedAt = now
    }

    /// Takes a new observation.
    public mutating func observe(_ observation: PatientObservation, at now: MonotonicInstant) {
        patientObservation = observation
        observedAt = now
    }

    /// Applies `spo2-sim` or `bias` (see `controlHelp`) and returns what was done; returns nil for any
    /// other name (a fault for `OximeterFaults`); throws for unreadable arguments.
    public mutating func control(_ command: FaultCommand) throws(FaultError) -> String? {
        switch command.name {
        case "spo2-sim":
            if command.arguments.first?.lowercased() == "off" {
                simulatorSetting = nil
                return "SpO2 simulator off: measuring the patient"
            }
            guard (1...2).contains(command.arguments.count), let spo2 = Double(command.arguments[0]), (0...100).contains(spo2) else {
                throw FaultError("spo2-sim takes SpO2 in % (0-100) and optionally the pulse rate in bpm, e.g. spo2-sim 90 75, or spo2-sim off")
            }
            var rate = 75.0
            if command.arguments.count == 2 {
                guard let value = Double(command.arguments[1]), (20...300).contains(value) else {
                    throw FaultError("spo2-sim: the pulse rate must be 20 to 300 bpm, e.g. spo2-sim 90 75")
                }
                rate = value
            }
            simulatorSetting = (.percent(spo2), .beatsPerMinute(rate))
            return "SpO2 simulator set to \(NumberText.format(spo2, fractionDigits: 1)) % at \(NumberText.format(rate, fractionDigits: 0)) bpm"
        case "bias":
            guard command.arguments.count == 1, let value = Double(String(command.arguments[0].filter { $0 != "%" })),
                  value.isFinite, abs(value) <= 50 else {
                throw FaultError("bias takes the SpO2 error in percentage points, -50 to 50, e.g. bias 5")
            }
            spo2Bias = value
            return "SpO2 bias \(NumberText.format(value, fractionDigits: 1)) points"
        default:
            return nil
        }
    }

    /// Heart beats since the start at `now` (extrapolated from the last observation).
    public func cardiacCycles(at now: MonotonicInstant) -> Double {
        let bpm = observation.pulseRate.beatsPerMinute
        let elapsed = max(0, (now - observedAt).seconds)
        return observation.cardiacCycles + (bpm.isFinite && bpm > 0 ? bpm * elapsed / 60 : 0)
    }
}
