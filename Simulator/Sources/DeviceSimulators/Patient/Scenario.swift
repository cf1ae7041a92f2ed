import Foundation
import InfusionCore
import TOMLKit

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
/// simulated devices, the infusion program and device faults: they are added to `ScenarioLoader` (one
/// reader function each, one entry in `ScenarioLoader.topLevelKeys`) when those parts exist.
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
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ScenarioLoadError(issues: [ScenarioIssue(
                file: source, line: error.source.begin.line, key: nil, problem: "not valid TOML: \(error.description)",
                fix: "correct the syntax at that line (strings and quantities need double quotes, tables [name], "
                    + "arrays of tables [[name]])")])
        } catch {
            throw ScenarioLoadError(issues: [ScenarioIssue(
                file: source, line: nil, key: nil, problem: "not valid TOML: \(error)", fix: "correct the file's syntax")])
        }
        var loader = ScenarioLoader(source: source, locator: ScenarioKeyLocator(text: text))
        let scenario = loader.readScenario(root)
        if !loader.issues.isEmpty {
            throw ScenarioLoadError(issues: loader.issues.enumerated()
                .sorted { ($0.element.line ?? 0, $0.offset) < ($1.element.line ?? 0, $1.offset) }.map(\.element))
        }
        guard let scenario else {
            throw ScenarioLoadError(issues: [ScenarioIssue(
                file: source, line: nil, key: nil, problem: "the scenario could not be read",
                fix: "compare the file with Simulator/Scenarios/uneventful.toml")])
        }
        return scenario
    }

    /// Reads and validates the scenario file at `path` (UTF-8 TOML). Reading is the only I/O; the file
    /// is opened and closed within the call. Any thread.
    public static func load(contentsOfFile path: String) throws(ScenarioLoadError) -> Scenario {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ScenarioLoadError(issues: [ScenarioIssue(
                file: path, line: nil, key: nil, problem: "cannot read the scenario file (\(error.localizedDescription))",
                fix: "check that the path exists, is readable and is UTF-8 text")])
        }
        return try load(text: text, source: path)
    }
}

/// One problem in a scenario file: where it is, what is wrong, and how to fix it.
public struct ScenarioIssue: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file (path or "<text>").
    public let file: String
    /// 1-based line of the key or table, when it could be located.
    public let line: Int?
    /// The key's path, such as `event[2].at`, when the problem is one key.
    public let key: String?
    /// What is wrong.
    public let problem: String
    /// What to do about it.
    public let fix: String

    /// "file:line: key: problem. Fix: fix".
    public var description: String {
        var location = file
        if let line { location += ":\(line)" }
        if let key { location += ": \(key)" }
        return "\(location): \(problem). Fix: \(fix)"
    }
}

/// Why a scenario was refused: every problem found. A scenario with any problem is never used.
public struct ScenarioLoadError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The problems, in file order where possible.
    public let issues: [ScenarioIssue]

    /// Every problem, one per line, after a summary line.
    public var description: String {
        "scenario refused (\(issues.count) problem\(issues.count == 1 ? "" : "s")):\n"
            + issues.map { "  - \($0)" }.joined(separator: "\n")
    }
}

// MARK: - Reader

/// Reads the TOML tree of a scenario, collecting every problem instead of stopping at the first.
struct ScenarioLoader {
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

    let source: String
    let locator: ScenarioKeyLocator
    private(set) var issues: [ScenarioIssue] = []

    init(source: String, locator: ScenarioKeyLocator) {
        self.source = source
        self.locator = locator
    }

    mutating func report(_ path: String?, _ problem: String, fix: String) {
        issues.append(ScenarioIssue(file: source, line: path.flatMap { locator.line(of: $0) }, key: path, problem: problem, fix: fix))
    }

    /// A table being read; remembers the keys used so that leftovers are reported as unknown.
    struct Table {
        let path: String
        let table: TOMLTable
        var used: Set<String> = []
        func key(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }
        var header: String { path.isEmpty ? "the top level" : "[\(path)]" }
    }

    mutating func finish(_ t: Table, allowed: [String], elsewhere: [String: String] = [:]) {
        for key in t.table.keys.sorted() where !t.used.contains(key) {
            if let owner = elsewhere[key] {
                report(t.key(key), "\"\(key)\" does not apply here", fix: "\(owner); in \(t.header) use only: \(allowed.joined(separator: ", "))")
                continue
            }
            let nearest = allowed.min { Self.distance($0, key) < Self.distance($1, key) }
            let hint = nearest.flatMap { Self.distance($0, key) <= 3 ? "did you mean \"\($0)\"? " : nil } ?? ""
            report(t.key(key), "unknown key \"\(key)\" in \(t.header)", fix: "\(hint)remove it or use one of: \(allowed.joined(separator: ", "))")
        }
    }

    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var diagonal = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let above = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1))
                diagonal = above
            }
        }
        return row[b.count]
    }

    // MARK: Values

    mutating func string(_ t: inout Table, _ name: String, required: Bool) -> String? {
        t.used.insert(name)
        guard let value = t.table[name] else {
            if required { report(t.key(name), "missing required key \"\(name)\"", fix: "add `\(name) = \"…\"` to \(t.header)") }
            return nil
        }
        guard let text = value.string else {
            report(t.key(name), "\"\(name)\" must be a string, not a \(value.type)", fix: "write it in double quotes")
            return nil
        }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            report(t.key(name), "\"\(name)\" is empty", fix: "give it a value or remove the key")
            return nil
        }
        return text
    }

    /// A quantity written as a quoted number with its unit, checked against `range` (in canonical units).
    mutating func quantity<Q: PhysicalQuantity>(
        _ t: inout Table, _ name: String, _ type: Q.Type, in range: ClosedRange<Double>, required: Bool
    ) -> Q? {
        t.used.insert(name)
        let example = "\"\(NumberText.format(range.lowerBound, fractionDigits: 3)) \(Q.Unit.canonical.symbol)\""
        guard let value = t.table[name] else {
            if required {
                report(t.key(name), "missing required key \"\(name)\"",
                       fix: "add `\(name) = \"<number> <unit>\"` with a unit of \(Q.Unit.acceptedSymbols)")
            }
            return nil
        }
        guard let text = value.string else {
            report(t.key(name), "\"\(name)\" must be a quoted \(Q.Unit.dimensionName) with its unit, not a bare \(value.type)",
                   fix: "write it as \"\(value.debugDescription) \(Q.Unit.canonical.symbol)\" (units: \(Q.Unit.acceptedSymbols))")
            return nil
        }
        let q: Q
        do {
            q = try Q.parse(text)
        } catch {
            report(t.key(name), error.description, fix: "write \"<number> <unit>\" with a unit of \(Q.Unit.acceptedSymbols), e.g. \(example)")
            return nil
        }
        guard range.contains(q.canonicalValue) else {
            let low = Q(canonicalValue: range.lowerBound).formatted(), high = Q(canonicalValue: range.upperBound).formatted()
            report(t.key(name), "\(q.formatted()) is outside the accepted range \(low) to \(high)",
                   fix: "use a value from \(low) to \(high)")
            return nil
        }
        return q
    }

    /// A duration written as a quoted number with its unit ("40 s", "12 min"); never negative, and
    /// positive unless `allowZero`.
    mutating func duration(_ t: inout Table, _ name: String, required: Bool, allowZero: Bool) -> Duration? {
        t.used.insert(name)
        guard let value = t.table[name] else {
            if required { report(t.key(name), "missing required key \"\(name)\"", fix: "add `\(name) = \"<number> s|min|h\"` to \(t.header)") }
            return nil
        }
        guard let text = value.string else {
            report(t.key(name), "\"\(name)\" must be a quoted duration with its unit, not a bare \(value.type)",
                   fix: "write it as \"\(value.debugDescription) s\", \"… min\" or \"… h\"")
            return nil
        }
        let d: Duration
        do {
            d = try Duration.parse(text)
        } catch {
            let fix: String
            if case .negative = error {
                fix = "times are measured from the start of the session and durations are lengths: use a value of 0 or more"
            } else {
                fix = "write \"<number> <unit>\" with a unit of \(DurationUnit.acceptedSymbols), e.g. \"40 s\" or \"12 min\""
            }
            report(t.key(name), error.description, fix: fix)
            return nil
        }
        if d == .zero && !allowZero {
            report(t.key(name), "\"\(name)\" must be longer than zero", fix: "give it a positive length, e.g. \"30 s\"")
            return nil
        }
        return d
    }

    mutating func bool(_ t: inout Table, _ name: String) -> Bool? {
        t.used.insert(name)
        guard let value = t.table[name] else { return nil }
        guard let b = value.bool else {
            report(t.key(name), "\"\(name)\" must be true or false, not \(value.debugDescription)", fix: "write `\(name) = true` or `\(name) = false` (no quotes)")
            return nil
        }
        return b
    }

    mutating func seed(_ t: inout Table, _ name: String) -> UInt64? {
        t.used.insert(name)
        guard let value = t.table[name] else { return nil }
        guard let n = value.int, n >= 0 else {
            report(t.key(name), "\"\(name)\" must be a whole number of 0 or more, not \(value.debugDescription)",
                   fix: "write a plain integer without quotes, e.g. `\(name) = 7`")
            return nil
        }
        return UInt64(n)
    }

    mutating func subtable(_ parent: inout Table, _ name: String, required: Bool) -> Table? {
        parent.used.insert(name)
        guard let value = parent.table[name] else {
            if required { report(parent.key(name), "missing table [\(parent.key(name))]", fix: "add a [\(parent.key(name))] table") }
            return nil
        }
        guard let table = value.table else {
            report(parent.key(name), "\"\(name)\" must be a table", fix: "write it as [\(parent.key(name))] followed by its keys")
            return nil
        }
        return Table(path: parent.key(name), table: table)
    }

    mutating func tableArray(_ parent: inout Table, _ name: String) -> [Table] {
        parent.used.insert(name)
        guard let value = parent.table[name] else { return [] }
        guard let array = value.array else {
            report(parent.key(name), "\"\(name)\" must be an array of tables", fix: "write each entry as [[\(name)]]")
            return []
        }
        var tables: [Table] = []
        for (index, element) in array.enumerated() {
            let path = "\(parent.key(name))[\(index)]"
            guard let table = element.table else {
                report(path, "entry \(index) of \"\(name)\" is not a table", fix: "write each entry as [[\(name)]]")
                continue
            }
            tables.append(Table(path: path, table: table))
        }
        return tables
    }

    // MARK: The scenario

    mutating func readScenario(_ root: TOMLTable) -> Scenario? {
        var top = Table(path: "", table: root)
        top.used.insert("format")
        if let format = root["format"] {
            if format.int != Scenario.formatVersion {
                report("format", "unsupported scenario format \(format.debugDescription)",
                       fix: "this version reads `format = \(Scenario.formatVersion)`")
            }
        } else {
            report("format", "missing required key \"format\"", fix: "add `format = \(Scenario.formatVersion)` at the top of the file")
        }
        var name: String?, description: String?, duration: Duration?
        if var header = subtable(&top, "scenario", required: true) {
            name = string(&header, "name", required: true)
            description = string(&header, "description", required: false)
            duration = self.duration(&header, "duration", required: false, allowZero: false)
            finish(header, allowed: Self.scenarioKeys)
        }
        var patient: PatientProfile?
        if var table = subtable(&top, "patient", required: true) { patient = readPatient(&table) }
        var events: [ScriptedEvent] = []
        var eventsValid = true
        for var table in tableArray(&top, "event") {
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
        finish(top, allowed: Self.topLevelKeys)
        guard let name, let patient, eventsValid else { return nil }
        return Scenario(name: name, description: description, duration: duration, patient: patient,
                        timeline: ScenarioTimeline(events), source: source)
    }

    mutating func readPatient(_ t: inout Table) -> PatientProfile? {
        let weight = quantity(&t, "weight", BodyWeight.self, in: 3...300, required: true)
        let spo2 = quantity(&t, "spo2", Percentage.self, in: 50...100, required: true)
        let pulse = quantity(&t, "pulse_rate", PulseRate.self, in: 20...250, required: true)
        let pi = quantity(&t, "perfusion_index", Percentage.self, in: 0.02...20, required: false)
        let noise = bool(&t, "noise")
        let seed = seed(&t, "noise_seed")
        if noise == false, t.table["noise_seed"] != nil {
            report(t.key("noise_seed"), "a noise seed is given but noise is off", fix: "remove noise_seed or set noise = true")
        }
        finish(t, allowed: Self.patientKeys)
        guard let weight, let spo2, let pulse else { return nil }
        return PatientProfile(
            weight: weight, baselineSpO2: spo2, baselinePulseRate: pulse, baselinePerfusionIndex: pi ?? .percent(3),
            noiseSeed: noise == false ? nil : (seed ?? 1))
    }

    mutating func readEvent(_ t: inout Table) -> ScriptedEvent? {
        let at = duration(&t, "at", required: true, allowZero: true)
        guard let kindName = string(&t, "kind", required: true) else {
            t.used.formUnion(t.table.keys)
            return nil
        }
        guard let allowed = Self.eventKeys.first(where: { $0.kind == kindName })?.keys else {
            report(t.key("kind"), "unknown event kind \"\(kindName)\"", fix: "use one of: \(Self.eventKinds.joined(separator: ", "))")
            t.used.formUnion(t.table.keys)
            return nil
        }
        var elsewhere: [String: String] = [:]
        for (kind, keys) in Self.eventKeys where kind != kindName {
            for key in keys where !allowed.contains(key) {
                let owners = Self.eventKeys.filter { $0.keys.contains(key) }.map(\.kind).joined(separator: ", ")
                elsewhere[key] = "\"\(key)\" is for \(owners) events, not \(kindName)"
            }
        }
        let kind: ScriptedEventKind?
        switch kindName {
        case "desaturation":
            kind = excursion(&t, Percentage.self, in: 50...100).map { .desaturation($0) }
        case "pulse_rate":
            kind = excursion(&t, PulseRate.self, in: 20...250).map { .pulseRateExcursion($0) }
        case "low_perfusion":
            let d = duration(&t, "duration", required: true, allowZero: false)
            let pi = quantity(&t, "perfusion_index", Percentage.self, in: 0.01...20, required: false)
            kind = d.map { .lowPerfusion($0, perfusionIndex: pi ?? Self.defaultLowPerfusionIndex) }
        default:
            let d = duration(&t, "duration", required: true, allowZero: false)
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

    mutating func excursion<Q: PhysicalQuantity>(_ t: inout Table, _ type: Q.Type, in range: ClosedRange<Double>) -> VitalExcursion<Q>? {
        let target = quantity(&t, "to", Q.self, in: range, required: true)
        let onset = duration(&t, "onset", required: true, allowZero: true)
        let hold = duration(&t, "hold", required: true, allowZero: true)
        let recovery = duration(&t, "recovery", required: true, allowZero: true)
        guard let target, let onset, let hold, let recovery else { return nil }
        if onset + hold + recovery == .zero {
            report(t.key("hold"), "the excursion has no length (onset, hold and recovery are all zero)",
                   fix: "give at least the hold a positive length, e.g. hold = \"1 min\"")
            return nil
        }
        return VitalExcursion(target: target, onset: onset, hold: hold, recovery: recovery)
    }
}

// MARK: - Locating keys

/// Finds the 1-based line of a key path such as `event[2].at` in scenario text, by following table
/// headers (`[a]`, `[[a]]`) and `key = value` lines. Good enough for messages; nil when not found.
struct ScenarioKeyLocator {
    private var lines: [String: Int] = [:]

    init(text: String) {
        var counts: [String: Int] = [:]
        var prefix = ""
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#") || line.isEmpty { continue }
            if line.hasPrefix("[["), let end = line.range(of: "]]") {
                let name = line[line.index(line.startIndex, offsetBy: 2)..<end.lowerBound].trimmingCharacters(in: .whitespaces)
                let index = counts[name, default: 0]
                counts[name] = index + 1
                prefix = "\(name)[\(index)]"
                if lines[prefix] == nil { lines[prefix] = number + 1 }
            } else if line.hasPrefix("["), let end = line.firstIndex(of: "]") {
                prefix = line[line.index(after: line.startIndex)..<end].trimmingCharacters(in: .whitespaces)
                if lines[prefix] == nil { lines[prefix] = number + 1 }
            } else if let equals = line.firstIndex(of: "=") {
                let key = line[..<equals].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
                let path = prefix.isEmpty ? key : "\(prefix).\(key)"
                if lines[path] == nil { lines[path] = number + 1 }
            }
        }
    }

    /// The line of `path`, or of its nearest enclosing table.
    func line(of path: String) -> Int? {
        var candidate = path
        while true {
            if let line = lines[candidate] { return line }
            guard let dot = candidate.lastIndex(of: ".") else { return nil }
            candidate = String(candidate[..<dot])
        }
    }
}
