import Foundation
import InfusionCore

/// Conditions of the measurement (not of the patient) that a simulated oximeter must encode in its output:
/// the flags of a real device's status bits. A set; any thread.
public struct MeasurementConditions: OptionSet, Hashable, Sendable, Codable, CustomStringConvertible {
    /// The bits: probe off 0x01, motion artifact 0x02, low perfusion 0x04, out of track 0x08.
    public let rawValue: UInt8
    /// Creates a set from its bits.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The probe is off the finger or disconnected: a real oximeter reports no values.
    public static let probeOff = MeasurementConditions(rawValue: 1 << 0)
    /// Motion artifact: values unreliable.
    public static let motionArtifact = MeasurementConditions(rawValue: 1 << 1)
    /// Low perfusion: pulse amplitude too small for a confident reading.
    public static let lowPerfusion = MeasurementConditions(rawValue: 1 << 2)
    /// Out of track: sustained absence of good pulses.
    public static let outOfTrack = MeasurementConditions(rawValue: 1 << 3)

    /// Every condition, in a fixed order.
    public static let all: [(MeasurementConditions, String)] = [
        (.probeOff, "probe off"), (.motionArtifact, "motion artifact"), (.lowPerfusion, "low perfusion"),
        (.outOfTrack, "out of track"),
    ]

    /// The active conditions by name ("probe off, motion artifact"), or "none".
    public var description: String {
        let names = Self.all.filter { contains($0.0) }.map(\.1)
        return names.isEmpty ? "none" : names.joined(separator: ", ")
    }
}

/// A scripted change of one vital sign: starting at the event's time, the value moves linearly from what
/// the patient model gives to `target` over `onset`, stays at `target` for `hold`, then returns linearly
/// to the model's value over `recovery`.
///
/// For example "at 12 min SpO2 falls to 86 % over 40 s and recovers after 3 min" is
/// `VitalExcursion(target: .percent(86), onset: .seconds(40), hold: .seconds(180), recovery: .seconds(30))`
/// at 12 min. A value; any thread.
public struct VitalExcursion<Value: PhysicalQuantity>: Hashable, Sendable {
    /// The value reached at the end of the onset.
    public var target: Value
    /// The time to move from the model's value to the target (zero: a step).
    public var onset: Duration
    /// The time spent at the target.
    public var hold: Duration
    /// The time to return to the model's value (zero: a step).
    public var recovery: Duration

    /// An excursion to `target`.
    public init(target: Value, onset: Duration, hold: Duration, recovery: Duration) {
        self.target = target
        self.onset = onset
        self.hold = hold
        self.recovery = recovery
    }

    /// How long the excursion lasts from its start to full recovery.
    public var totalDuration: Duration { onset + hold + recovery }

    /// The weight of the target at `elapsed` after the start: 0 before and after, rising linearly over the
    /// onset, 1 during the hold, falling linearly over the recovery. Exact in virtual time (nanosecond
    /// resolution): 0 at the start instant, above 0 one nanosecond later (when the onset is positive), 1 at
    /// the end of the onset.
    public func weight(at elapsed: Duration) -> Double {
        Self.weight(elapsed.nanoseconds, onset: onset.nanoseconds, hold: hold.nanoseconds, recovery: recovery.nanoseconds)
    }

    static func weight(_ elapsed: Int64, onset: Int64, hold: Int64, recovery: Int64) -> Double {
        if elapsed < 0 { return 0 }
        if elapsed < onset { return Double(elapsed) / Double(onset) }
        let intoRecovery = elapsed - onset - hold
        if intoRecovery < 0 { return 1 }
        if intoRecovery < recovery { return 1 - Double(intoRecovery) / Double(recovery) }
        return 0
    }
}

/// What a scripted event does.
public enum ScriptedEventKind: Hashable, Sendable {
    /// SpO2 moves to a target and back.
    case desaturation(VitalExcursion<Percentage>)
    /// Pulse rate moves to a target and back (tachycardia or bradycardia).
    case pulseRateExcursion(VitalExcursion<PulseRate>)
    /// The probe is off for the duration.
    case probeOff(Duration)
    /// Motion artifact for the duration.
    case motionArtifact(Duration)
    /// Low perfusion for the duration: the perfusion index is `perfusionIndex` and the flag is set.
    case lowPerfusion(Duration, perfusionIndex: Percentage)
    /// The oximeter is out of track for the duration.
    case outOfTrack(Duration)

    /// The name used in scenario files (`kind = "..."`).
    public var name: String {
        switch self {
        case .desaturation: "desaturation"
        case .pulseRateExcursion: "pulse_rate"
        case .probeOff: "probe_off"
        case .motionArtifact: "motion_artifact"
        case .lowPerfusion: "low_perfusion"
        case .outOfTrack: "out_of_track"
        }
    }

    /// How long the event has an effect.
    public var duration: Duration {
        switch self {
        case .desaturation(let e): e.totalDuration
        case .pulseRateExcursion(let e): e.totalDuration
        case .probeOff(let d), .motionArtifact(let d), .lowPerfusion(let d, _), .outOfTrack(let d): d
        }
    }
}

/// One event on a scenario's timeline: what happens, and when (time since the session started).
public struct ScriptedEvent: Hashable, Sendable {
    /// When the event starts, from the start of the session.
    public var at: Duration
    /// What happens.
    public var kind: ScriptedEventKind

    /// An event of `kind` starting `at` after the session start.
    public init(at: Duration, _ kind: ScriptedEventKind) {
        self.at = at
        self.kind = kind
    }

    /// True while the event has an effect: from `at` (inclusive) to `at + duration` (exclusive).
    public func isActive(at t: Duration) -> Bool { t >= at && t - at < kind.duration }
}

/// The vital signs a perfect oximeter would report, before measurement conditions are applied.
public struct TrueVitals: Hashable, Sendable {
    /// Arterial oxygen saturation.
    public var spo2: Percentage
    /// Pulse rate.
    public var pulseRate: PulseRate
    /// Perfusion index (pulsatile ÷ non-pulsatile absorbance, %).
    public var perfusionIndex: Percentage

    /// Vitals from their three values.
    public init(spo2: Percentage, pulseRate: PulseRate, perfusionIndex: Percentage) {
        self.spo2 = spo2
        self.pulseRate = pulseRate
        self.perfusionIndex = perfusionIndex
    }
}

/// A scenario's scripted events, in time order.
///
/// `apply(to:at:)` is a pure function of the model's vitals and the time: events are applied in start
/// order, each excursion blending the value so far toward its target by its weight w (value·(1−w) + target·w,
/// so the target is reached exactly at w = 1), and the condition
/// flags of all active events are combined. Events of the same vital that overlap therefore compose (the
/// later one acts on the result of the earlier). Codable (JSON-friendly: durations in seconds) for
/// recording and replay. A value; any thread.
public struct ScenarioTimeline: Hashable, Sendable {
    /// The events, sorted by start time (stable for equal times).
    public let events: [ScriptedEvent]
    /// The same events with their times in nanoseconds, for a cheap `apply` at 75 Hz.
    private let compiled: [CompiledEvent]

    private struct CompiledEvent: Hashable, Sendable {
        enum Kind: Hashable, Sendable { case spo2, pulseRate, flag(MeasurementConditions), lowPerfusion }
        let kind: Kind
        let start: Int64
        let onset: Int64, hold: Int64, recovery: Int64 // excursions
        let duration: Int64 // flags
        let value: Double // excursion target or perfusion index (canonical unit)
    }

    /// A timeline of `events` (sorted by start time; the order of events with equal times is kept).
    public init(_ events: [ScriptedEvent] = []) {
        self.events = events.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
        compiled = self.events.map { event in
            let start = event.at.nanoseconds
            func excursion<Q>(_ kind: CompiledEvent.Kind, _ e: VitalExcursion<Q>) -> CompiledEvent {
                CompiledEvent(kind: kind, start: start, onset: e.onset.nanoseconds, hold: e.hold.nanoseconds,
                              recovery: e.recovery.nanoseconds, duration: e.totalDuration.nanoseconds, value: e.target.canonicalValue)
            }
            func flag(_ kind: CompiledEvent.Kind, _ d: Duration, _ value: Double = 0) -> CompiledEvent {
                CompiledEvent(kind: kind, start: start, onset: 0, hold: 0, recovery: 0, duration: d.nanoseconds, value: value)
            }
            switch event.kind {
            case .desaturation(let e): return excursion(.spo2, e)
            case .pulseRateExcursion(let e): return excursion(.pulseRate, e)
            case .probeOff(let d): return flag(.flag(.probeOff), d)
            case .motionArtifact(let d): return flag(.flag(.motionArtifact), d)
            case .outOfTrack(let d): return flag(.flag(.outOfTrack), d)
            case .lowPerfusion(let d, let pi): return flag(.lowPerfusion, d, pi.canonicalValue)
            }
        }
    }

    /// Timelines are equal when their (sorted) events are.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.events == rhs.events }
    /// Hashes the events.
    public func hash(into hasher: inout Hasher) { hasher.combine(events) }

    /// The vitals and measurement conditions at time `t` (nanosecond resolution), given what the patient
    /// model says. Allocation-free.
    public func apply(to vitals: TrueVitals, at t: Duration) -> (vitals: TrueVitals, conditions: MeasurementConditions) {
        let now = t.nanoseconds
        var v = vitals
        var conditions: MeasurementConditions = []
        for event in compiled {
            if event.start > now { break }
            let elapsed = now - event.start
            if elapsed >= event.duration { continue }
            switch event.kind {
            case .spo2:
                let w = VitalExcursion<Percentage>.weight(elapsed, onset: event.onset, hold: event.hold, recovery: event.recovery)
                if w > 0 { v.spo2 = .percent(v.spo2.percent * (1 - w) + event.value * w) }
            case .pulseRate:
                let w = VitalExcursion<PulseRate>.weight(elapsed, onset: event.onset, hold: event.hold, recovery: event.recovery)
                if w > 0 { v.pulseRate = .beatsPerMinute(v.pulseRate.beatsPerMinute * (1 - w) + event.value * w) }
            case .flag(let flag):
                conditions.insert(flag)
            case .lowPerfusion:
                conditions.insert(.lowPerfusion)
                v.perfusionIndex = .percent(min(v.perfusionIndex.percent, event.value))
            }
        }
        return (v, conditions)
    }

    /// The first instant after `t` at which some event starts or ends, or nil when nothing changes any more.
    /// Useful to a stepper that wants to land exactly on event edges.
    public func nextEdge(after t: Duration) -> Duration? {
        var best: Duration?
        for event in events {
            var edges = [event.at, event.at + event.kind.duration]
            switch event.kind {
            case .desaturation(let e):
                edges += [event.at + e.onset, event.at + e.onset + e.hold]
            case .pulseRateExcursion(let e):
                edges += [event.at + e.onset, event.at + e.onset + e.hold]
            default: break
            }
            for edge in edges where edge > t && (best.map { edge < $0 } ?? true) { best = edge }
        }
        return best
    }
}

// MARK: - Codable

extension ScriptedEvent: Codable {
    private enum CodingKeys: String, CodingKey {
        case at, kind, target, onset, hold, recovery, duration, perfusionIndex = "perfusion_index"
    }

    /// Decodes `{"at": seconds, "kind": "probe_off", "duration": seconds, ...}` (the scenario-file keys, with
    /// durations as numbers of seconds and targets in %, bpm). Throws `DecodingError` for an unknown kind,
    /// a missing key, or a negative or non-finite time.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let at = try Self.seconds(c, .at)
        let name = try c.decode(String.self, forKey: .kind)
        func excursion<Q: PhysicalQuantity>(_: Q.Type) throws -> VitalExcursion<Q> {
            VitalExcursion(
                target: Q(canonicalValue: try c.decode(Double.self, forKey: .target)),
                onset: try Self.seconds(c, .onset), hold: try Self.seconds(c, .hold), recovery: try Self.seconds(c, .recovery))
        }
        let kind: ScriptedEventKind
        switch name {
        case "desaturation": kind = .desaturation(try excursion(Percentage.self))
        case "pulse_rate": kind = .pulseRateExcursion(try excursion(PulseRate.self))
        case "probe_off": kind = .probeOff(try Self.seconds(c, .duration))
        case "motion_artifact": kind = .motionArtifact(try Self.seconds(c, .duration))
        case "out_of_track": kind = .outOfTrack(try Self.seconds(c, .duration))
        case "low_perfusion":
            kind = .lowPerfusion(try Self.seconds(c, .duration),
                                 perfusionIndex: .percent(try c.decode(Double.self, forKey: .perfusionIndex)))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: c,
                debugDescription: "unknown event kind \"\(name)\": use one of \(ScenarioLoader.eventKinds.joined(separator: ", "))")
        }
        self.init(at: at, kind)
    }

    /// Encodes the form `init(from:)` reads.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(at.seconds, forKey: .at)
        try c.encode(kind.name, forKey: .kind)
        func excursion<Q>(_ e: VitalExcursion<Q>) throws {
            try c.encode(e.target.canonicalValue, forKey: .target)
            try c.encode(e.onset.seconds, forKey: .onset)
            try c.encode(e.hold.seconds, forKey: .hold)
            try c.encode(e.recovery.seconds, forKey: .recovery)
        }
        switch kind {
        case .desaturation(let e): try excursion(e)
        case .pulseRateExcursion(let e): try excursion(e)
        case .probeOff(let d), .motionArtifact(let d), .outOfTrack(let d): try c.encode(d.seconds, forKey: .duration)
        case .lowPerfusion(let d, let pi):
            try c.encode(d.seconds, forKey: .duration)
            try c.encode(pi.percent, forKey: .perfusionIndex)
        }
    }

    /// A non-negative, finite number of seconds, as a Duration with nanosecond resolution.
    private static func seconds(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Duration {
        let s = try c.decode(Double.self, forKey: key)
        guard s.isFinite, s >= 0, s < 1e9 else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: c, debugDescription: "\(key.stringValue) must be a non-negative number of seconds, not \(s)")
        }
        return .nanoseconds(Int64((s * 1e9).rounded()))
    }
}

extension ScenarioTimeline: Codable {
    /// Decodes an array of events (any order; they are sorted by start time).
    public init(from decoder: any Decoder) throws {
        self.init(try [ScriptedEvent](from: decoder))
    }

    /// Encodes the events as an array, in start order.
    public func encode(to encoder: any Encoder) throws {
        try events.encode(to: encoder)
    }
}
