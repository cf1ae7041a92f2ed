import Foundation
import InfusionCore

/// A simulation scenario read from a TOML file: the patient and a timeline of scripted events.
///
/// File format (format 1; examples in `Simulator/Scenarios/`, reference in `Simulator/README.md`):
///
/// ```toml
/// format = 1
///
/// [scenario]
/// name = "Desaturation during a ketamine infusion"
/// description = "optional free text"
/// duration = "60 min"             # optional; every event must start before it
///
/// [patient]
/// weight = "80 kg"
/// spo2 = "97 %"                    # drug-free baseline
/// pulse_rate = "72 bpm"            # drug-free baseline
/// perfusion_index = "3 %"          # optional, default 3 %
/// noise = true                     # optional, default true: smooth physiological variation
/// noise_seed = 1                   # optional, default 1
///
/// [[event]]
/// at = "12 min"
/// kind = "desaturation"            # or pulse_rate, probe_off, motion_artifact, low_perfusion, out_of_track
/// to = "86 %"
/// onset = "40 s"
/// hold = "3 min"
/// recovery = "30 s"
/// ```
///
/// Every quantity is a quoted number with its unit. Unknown keys and tables are errors, so a misspelt key
/// never silently does nothing. The `[devices]`, `[program]` and `[[fault]]` tables are reserved for the
/// simulated devices, the infusion program and device faults: they are added to the reader below (one
/// reader function each next to `readScenario`, one entry in `ScenarioLoader.topLevelKeys`) when those
/// parts exist.
///
/// A value; any thread.
public struct Scenario: Hashable, Sendable {
    /// The only supported value of the top-level `format` key.
    public static let formatVersion = 1

    /// The scenario's name.
    public var name: String
    /// Optional free text.
    public var description: String?
    /// The session length, when given; every event starts before it.
    public var duration: Duration?
    /// The patient.
    public var patient: PatientProfile
    /// The scripted events.
    public var timeline: ScenarioTimeline
    /// Where the scenario came from (a path or "<text>"), for messages.
    public var source: String

    /// A scenario built in code.
    public init(
        name: String, description: String? = nil, duration: Duration? = nil, patient: PatientProfile,
        timeline: ScenarioTimeline = ScenarioTimeline(), source: String = "<code>"
    ) {
        self.name = name
        self.description = description
        self.duration = duration
        self.patient = patient
        self.timeline = timeline
        self.source = source
    }

    /// Parses and validates a scenario from TOML text. Every problem is collected and reported with the
    /// file (`source`), line, key and a fix; a scenario with any problem is refused whole. Pure: `source`
    /// is only used in messages.
    public static func load(text: String, source: String) throws(ScenarioLoadError) -> Scenario {
        try StrictTOMLReader.read(
            text: text, source: source, subject: "scenario", unreadableFix: "compare the file with Simulator/Scenarios/uneventful.toml"
        ) { reader, root in
            reader.readScenario(&root)
        }
    }

    /// Reads and validates the scenario file at `path` (UTF-8 TOML). Reading is the only I/O; the file
    /// is opened and closed within the call. Any thread.
    public static func load(contentsOfFile path: String) throws(ScenarioLoadError) -> Scenario {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ScenarioLoadError(subject: "scenario", issues: [ScenarioIssue(
                file: path, line: nil, key: nil, problem: "cannot read the scenario file (\(error.localizedDescription))",
                fix: "check that the path exists, is readable and is UTF-8 text")])
        }
        return try load(text: text, source: path)
    }
}

/// One problem in a scenario file: where it is, what is wrong, and how to fix it
/// ("FILE:LINE: KEY: problem. Fix: …"). The shared strict-TOML issue type.
public typealias ScenarioIssue = ConfigIssue

/// Why a scenario was refused ("scenario refused (N problems): …"), with every problem found. A scenario
/// with any problem is never used. The shared strict-TOML load error.
public typealias ScenarioLoadError = ConfigLoadError

// MARK: - Reader

/// What a scenario file may contain, for the reader below and for messages elsewhere.
enum ScenarioLoader {
    /// The top-level keys this version understands. `devices`, `program` and `fault` join this list
    /// (with their readers in `readScenario`) when the device and program parts of scenarios exist.
    static let topLevelKeys = ["format", "scenario", "patient", "event"]
    static let scenarioKeys = ["name", "description", "duration"]
    static let patientKeys = ["weight", "spo2", "pulse_rate", "perfusion_index", "noise", "noise_seed"]
    /// Event kinds and the keys each takes besides `at` and `kind`.
    static let eventKeys: [(kind: String, keys: [String])] = [
        ("desaturation", ["to", "onset", "hold", "recovery"]),
        ("pulse_rate", ["to", "onset", "hold", "recovery"]),
        ("probe_off", ["duration"]),
        ("motion_artifact", ["duration"]),
        ("low_perfusion", ["duration", "perfusion_index"]),
        ("out_of_track", ["duration"]),
    ]
    static var eventKinds: [String] { eventKeys.map(\.kind) }
    /// Perfusion index during a `low_perfusion` event when the file gives none (invented for testing;
    /// oximeters typically flag low perfusion somewhere below 0.5 %).
    static let defaultLowPerfusionIndex = Percentage.percent(0.2)
}

/// The scenario part of the strict TOML reader, collecting every problem instead of stopping at the first.
extension StrictTOMLReader {
    /// Reads the whole scenario from the root table; nil when it cannot be used.
    mutating func readScenario(_ top: inout Table) -> Scenario? {
        checkFormat(&top, supported: Scenario.formatVersion)
        var name: String?, description: String?, duration: Duration?
        if var header = subtable(&top, "scenario") {
            name = string(&header, "name")
            description = string(&header, "description", required: false)
            duration = self.duration(&header, "duration", required: false)
            finish(header, allowed: ScenarioLoader.scenarioKeys)
        }
        var patient: PatientProfile?
        if var table = subtable(&top, "patient") { patient = readPatient(&table) }
        var events: [ScriptedEvent] = []
        var eventsValid = true
        for var table in tableArray(&top, "event", required: false) {
            if let event = readEvent(&table) {
                if let duration, event.at >= duration {
                    report(table.key("at"), "the event starts at \(event.at.humanReadable), not before the end of the scenario "
                           + "(\(duration.humanReadable)), so it would never happen",
                           fix: "move the event earlier or lengthen [scenario] duration")
                    eventsValid = false
                }
                events.append(event)
            } else {
                eventsValid = false
            }
        }
        finish(top, allowed: ScenarioLoader.topLevelKeys)
        guard let name, let patient, eventsValid else { return nil }
        return Scenario(name: name, description: description, duration: duration, patient: patient,
                        timeline: ScenarioTimeline(events), source: source)
    }

    mutating func readPatient(_ t: inout Table) -> PatientProfile? {
        let weight = quantity(&t, "weight", BodyWeight.self, in: .kilograms(3)...(.kilograms(300)))
        let spo2 = quantity(&t, "spo2", Percentage.self, in: .percent(50)...(.percent(100)))
        let pulse = quantity(&t, "pulse_rate", PulseRate.self, in: .beatsPerMinute(20)...(.beatsPerMinute(250)))
        let pi = quantity(&t, "perfusion_index", Percentage.self, required: false, in: .percent(0.02)...(.percent(20)))
        let noise = bool(&t, "noise", required: false)
        let seed = integer(&t, "noise_seed", required: false, in: 0...Int.max).flatMap(UInt64.init(exactly:))
        if noise == false, t.contains("noise_seed") {
            report(t.key("noise_seed"), "a noise seed is given but noise is off", fix: "remove noise_seed or set noise = true")
        }
        finish(t, allowed: ScenarioLoader.patientKeys)
        guard let weight, let spo2, let pulse else { return nil }
        return PatientProfile(
            weight: weight, baselineSpO2: spo2, baselinePulseRate: pulse, baselinePerfusionIndex: pi ?? .percent(3),
            noiseSeed: noise == false ? nil : (seed ?? 1))
    }

    mutating func readEvent(_ t: inout Table) -> ScriptedEvent? {
        let at = duration(&t, "at", allowZero: true)
        guard let kindName = string(&t, "kind") else {
            t.markAllUsed()
            return nil
        }
        guard let allowed = ScenarioLoader.eventKeys.first(where: { $0.kind == kindName })?.keys else {
            report(t.key("kind"), "unknown event kind \"\(kindName)\"", fix: "use one of: \(ScenarioLoader.eventKinds.joined(separator: ", "))")
            t.markAllUsed()
            return nil
        }
        var elsewhere: [String: String] = [:]
        for (kind, keys) in ScenarioLoader.eventKeys where kind != kindName {
            for key in keys where !allowed.contains(key) {
                let owners = ScenarioLoader.eventKeys.filter { $0.keys.contains(key) }.map(\.kind).joined(separator: ", ")
                elsewhere[key] = "\"\(key)\" is for \(owners) events, not \(kindName)"
            }
        }
        let kind: ScriptedEventKind?
        switch kindName {
        case "desaturation":
            kind = excursion(&t, Percentage.self, in: .percent(50)...(.percent(100))).map { .desaturation($0) }
        case "pulse_rate":
            kind = excursion(&t, PulseRate.self, in: .beatsPerMinute(20)...(.beatsPerMinute(250))).map { .pulseRateExcursion($0) }
        case "low_perfusion":
            let d = duration(&t, "duration")
            let pi = quantity(&t, "perfusion_index", Percentage.self, required: false, in: .percent(0.01)...(.percent(20)))
            kind = d.map { .lowPerfusion($0, perfusionIndex: pi ?? ScenarioLoader.defaultLowPerfusionIndex) }
        default:
            let d = duration(&t, "duration")
            switch kindName {
            case "probe_off": kind = d.map { .probeOff($0) }
            case "motion_artifact": kind = d.map { .motionArtifact($0) }
            default: kind = d.map { .outOfTrack($0) }
            }
        }
        finish(t, allowed: ["at", "kind"] + allowed, elsewhere: elsewhere)
        guard let at, let kind else { return nil }
        return ScriptedEvent(at: at, kind)
    }

    mutating func excursion<Q: PhysicalQuantity>(_ t: inout Table, _ type: Q.Type, in range: ClosedRange<Q>) -> VitalExcursion<Q>? {
        let target = quantity(&t, "to", Q.self, in: range)
        let onset = duration(&t, "onset", allowZero: true)
        let hold = duration(&t, "hold", allowZero: true)
        let recovery = duration(&t, "recovery", allowZero: true)
        guard let target, let onset, let hold, let recovery else { return nil }
        if onset + hold + recovery == .zero {
            report(t.key("hold"), "the excursion has no length (onset, hold and recovery are all zero)",
                   fix: "give at least the hold a positive length, e.g. hold = \"1 min\"")
            return nil
        }
        return VitalExcursion(target: target, onset: onset, hold: hold, recovery: recovery)
    }
}
