import Foundation
import InfusionCore

/// A demo scenario: one whole simulated ketamine session as `infusionctl demo` plays it. The patient (a
/// patient scenario, embedded or referenced), the infusion program, the simulated devices, a script of
/// timed steps (operator commands, device faults, killing and restarting the controller), the default
/// speed, and the outcome the session must reach.
///
/// File format (format 1; the shipped files are in `Sources/infusionctl/Resources/demo/`, the reference is
/// in `Simulator/README.md`):
///
/// ```toml
/// format = 1
///
/// [demo]
/// title = "Uneventful 40-minute session"
/// description = "one line for `infusionctl demo --list`"
/// speed = 80                        # default speed (times real time)
/// timeout = "60 min"                # optional: give up after this much session time (default: 1.5 × duration + 10 min)
/// patient_scenario = "file.toml"    # optional: a patient scenario file, relative to this file; otherwise
///                                   # [patient] and [[event]] are written here as in a patient scenario
///
/// [program]
/// profile = "ketamine-chronic-pain"
/// drug = "Ketamine"
/// concentration = "1 mg/mL"
/// weight = "80 kg"
/// dose = "0.35 mg/kg/h"
/// duration = "40 min"
/// patient_id = "DEMO-001"           # optional
/// operator = "demo-nurse"           # optional
///
/// [devices]
/// pump = "newera"                   # a simulated pump kind: newera, alaris, fresenius
/// oximeter = "nonin-df8"            # a simulated oximeter kind: nonin-df2, nonin-df7, nonin-df8, masimo, contec
///
/// [[step]]                          # played in file order, each once
/// at = "5 min"                      # session time (from the controller's session-started), or:
/// when = "stopped-by-supervisor"    # a controller mode, "pump-stopped" or "controller-exited",
///                                   # first seen after the previous step was played
/// delay = "30 s"                    # optional, after `when`
/// action = "operator"               # operator | pump-fault | oximeter-fault | kill-controller | restart-controller
/// command = "ack"                   # operator: start, pause, resume, stop, ack, silence, quit
/// reason = "SpO2 back to 96 %"      # operator: optional reason
/// fault = "occlusion"               # pump-fault / oximeter-fault: a fault of the simulated device
/// arguments = ["30s"]               # optional fault arguments
///
/// [expect]
/// exit_codes = [0]                  # exit codes of the controller runs that ended by themselves, in order
/// outcomes = ["completed"]          # optional: session-ended outcomes, in order
/// alarms = ["spo2-low"]             # optional: alarm causes that must appear
/// modes = ["infusing", "complete"]  # optional: controller modes that must appear in this order
/// session_state = "completed"       # optional: the recorded session's final state
/// pump_watchdog_stop = true         # optional: the simulated pump stopped itself (its own watchdog)
/// recovered = true                  # optional: a restarted controller recovered the interrupted session
/// summary = "…"                     # one line: what should happen, for the summary
/// ```
///
/// Patient events (`[[event]]`) count from the start of the simulated world, a few seconds of scenario
/// time before the controller's session starts; `at` steps count from the session start.
///
/// Every problem is reported as "FILE:LINE: KEY: problem. Fix: …" and a file with any problem is refused
/// whole. A value; any thread.
public struct DemoScenario: Hashable, Sendable {
    /// The only supported value of the top-level `format` key.
    public static let formatVersion = 1

    /// The scenario's short name (the file name without `.toml`), as given to `--scenario`.
    public var name: String
    /// One line: what the session shows.
    public var title: String
    /// One line for `--list`.
    public var description: String
    /// Default speed (times real time).
    public var speed: Double
    /// Give up (and fail) after this much session time.
    public var timeout: Duration
    /// The infusion program the controller runs.
    public var program: DemoProgram
    /// The simulated devices.
    public var devices: DemoDevices
    /// The virtual patient and the patient's scripted events.
    public var patient: Scenario
    /// The script, played in order.
    public var steps: [DemoStep]
    /// What must happen.
    public var expectation: DemoExpectation
    /// Where it came from (a path), for messages.
    public var source: String
}

/// The infusion program of a demo, as text the controller's command line takes (each value was checked
/// to parse as its quantity).
public struct DemoProgram: Hashable, Sendable {
    /// Drug-library profile.
    public var profile: String
    /// Drug name.
    public var drug: String
    /// "1 mg/mL".
    public var concentration: String
    /// "80 kg".
    public var weight: String
    /// "0.35 mg/kg/h".
    public var dose: String
    /// The programmed duration.
    public var duration: Duration
    /// "40 min" as written.
    public var durationText: String
    /// The patient id given to the controller.
    public var patientID: String
    /// The operator id given to the controller.
    public var operatorID: String
}

/// The simulated devices of a demo: one pump and one oximeter, by simulator kind (the same names as
/// the controller's `--pump-protocol` and `--oximeter-protocol`).
public struct DemoDevices: Hashable, Sendable {
    /// "newera", "alaris", "fresenius".
    public var pump: String
    /// "nonin-df8", "masimo", …
    public var oximeter: String
}

/// One step of a demo script.
public struct DemoStep: Hashable, Sendable {
    /// When a step becomes due.
    public enum Trigger: Hashable, Sendable {
        /// At this session time (from the controller's `session-started`).
        case at(Duration)
        /// When the condition is first seen after the previous step was played, plus `delay`.
        case when(DemoCondition, delay: Duration)
    }

    /// What the step does.
    public enum Action: Hashable, Sendable {
        /// A line on the controller's standard input: the command and an optional reason.
        case operatorCommand(String, reason: String?)
        /// A fault of the simulated pump.
        case pumpFault(FaultCommand)
        /// A fault of the simulated oximeter.
        case oximeterFault(FaultCommand)
        /// SIGKILL the controller process.
        case killController
        /// Start the controller again with the same arguments.
        case restartController
    }

    /// When.
    public var trigger: Trigger
    /// What.
    public var action: Action
    /// The step's line in its file, for messages.
    public var line: Int?

    /// A step; see each property.
    public init(trigger: Trigger, action: Action, line: Int? = nil) {
        self.trigger = trigger
        self.action = action
        self.line = line
    }

    /// "operator ack", "pump fault occlusion", "kill the controller".
    public var summary: String {
        switch action {
        case let .operatorCommand(command, reason): "operator: \(command)" + (reason.map { " (\($0))" } ?? "")
        case let .pumpFault(fault): "pump fault: \(([fault.name] + fault.arguments).joined(separator: " "))"
        case let .oximeterFault(fault): "oximeter fault: \(([fault.name] + fault.arguments).joined(separator: " "))"
        case .killController: "kill the controller (SIGKILL)"
        case .restartController: "restart the controller"
        }
    }
}

/// A condition a `when` step waits for.
public enum DemoCondition: Hashable, Sendable, CustomStringConvertible {
    /// The controller reports this mode ("stopped-by-supervisor", "acknowledged", …).
    case mode(String)
    /// The simulated pump itself is not pumping.
    case pumpStopped
    /// The controller process has exited (or was killed).
    case controllerExited

    /// As written in a file.
    public var description: String {
        switch self {
        case .mode(let mode): mode
        case .pumpStopped: "pump-stopped"
        case .controllerExited: "controller-exited"
        }
    }
}

/// What a demo must reach to succeed.
public struct DemoExpectation: Hashable, Sendable {
    /// Exit codes of the controller runs that ended by themselves (not killed), in order.
    public var exitCodes: [Int]
    /// `session-ended` outcomes, in order, when given.
    public var outcomes: [String]?
    /// Alarm causes that must appear.
    public var alarms: [String]
    /// Modes that must appear in this order (others may come between).
    public var modes: [String]
    /// The recorded session's final state ("completed", "stopped", "interrupted"), when given.
    public var sessionState: String?
    /// When given: whether the simulated pump must have stopped itself by its own watchdog.
    public var pumpWatchdogStop: Bool?
    /// When given: whether a restarted controller must report a recovered session.
    public var recovered: Bool?
    /// One line: what should happen.
    public var summary: String
}

extension DemoScenario {
    /// Controller modes (docs/run-contract.md `status.mode`, and `stopped-by-operator`, which `run` reports
    /// after the operator ended the session).
    public static let modes = ["idle", "checked", "infusing", "paused-by-operator", "stopped-by-supervisor", "acknowledged",
                               "stopped-by-operator", "complete", "fault"]
    /// Operator commands (docs/run-contract.md, operator input).
    public static let operatorCommands = ["start", "pause", "resume", "stop", "ack", "silence", "quit"]
    /// Session outcomes (docs/run-contract.md `session-ended.outcome`).
    public static let outcomes = ["completed", "stopped-by-operator", "ended-after-supervisor-stop", "devices-unavailable", "error"]
    /// Recorded session states.
    public static let sessionStates = ["running", "completed", "stopped", "interrupted"]
    /// Step actions as written.
    public static let actions = ["operator", "pump-fault", "oximeter-fault", "kill-controller", "restart-controller"]

    /// Parses and validates a demo scenario. `name` is its short name; `baseDirectory` resolves a
    /// `patient_scenario` reference (the only I/O, and only when the file has one). Every problem is
    /// collected and thrown with file, line, key and a fix.
    public static func load(text: String, source: String, name: String, baseDirectory: String?) throws(ConfigLoadError) -> DemoScenario {
        var referenced: (path: String, key: String)?
        var scenario = try StrictTOMLReader.read(
            text: text, source: source, subject: "demo scenario",
            unreadableFix: "compare the file with Sources/infusionctl/Resources/demo/uneventful.toml"
        ) { reader, root -> DemoScenario? in
            reader.readDemo(&root, name: name, reference: &referenced)
        }
        if let referenced {
            let path = referenced.path.hasPrefix("/") ? referenced.path
                : ((baseDirectory ?? ".") as NSString).appendingPathComponent(referenced.path)
            do {
                scenario.patient = try Scenario.load(contentsOfFile: path)
            } catch {
                let locator = TOMLKeyLocator(text: text)
                throw ConfigLoadError(subject: "demo scenario", issues: [ConfigIssue(
                    file: source, line: locator.line(of: referenced.key), key: referenced.key,
                    problem: "the patient scenario \(path) cannot be used: \(error)",
                    fix: "give a patient scenario file relative to this file (e.g. Simulator/Scenarios/uneventful.toml), or embed [patient]")])
            }
        }
        return scenario
    }

    /// Reads and validates the demo scenario file at `path`; its short name is the file name without
    /// `.toml`. Reads the file (and a referenced patient scenario); any thread.
    public static func load(contentsOfFile path: String) throws(ConfigLoadError) -> DemoScenario {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigLoadError(subject: "demo scenario", issues: [ConfigIssue(
                file: path, line: nil, key: nil, problem: "cannot read the demo scenario file (\(error.localizedDescription))",
                fix: "check that the path exists, is readable and is UTF-8 text")])
        }
        let url = URL(fileURLWithPath: path)
        return try load(text: text, source: path, name: url.deletingPathExtension().lastPathComponent,
                        baseDirectory: url.deletingLastPathComponent().path)
    }
}

// MARK: - Reader

extension StrictTOMLReader {
    mutating func readDemo(_ top: inout Table, name: String, reference: inout (path: String, key: String)?) -> DemoScenario? {
        checkFormat(&top, supported: DemoScenario.formatVersion)
        var title: String?, description: String?, speed: Double?, timeout: Duration?
        var patientFile: String?
        var patientFileKey = "demo.patient_scenario"
        if var header = subtable(&top, "demo") {
            title = string(&header, "title")
            description = string(&header, "description")
            speed = number(&header, "speed", in: 1...1000)
            timeout = duration(&header, "timeout", required: false)
            patientFile = string(&header, "patient_scenario", required: false)
            patientFileKey = header.key("patient_scenario")
            finish(header, allowed: ["title", "description", "speed", "timeout", "patient_scenario"])
        }
        let program = subtable(&top, "program").flatMap { (table: Table) -> DemoProgram? in
            var t = table
            return readDemoProgram(&t)
        }
        let deviceKinds = subtable(&top, "devices").map { (table: Table) -> (pump: String?, oximeter: String?) in
            var t = table
            return readDemoDevices(&t)
        }
        let devices = deviceKinds.flatMap { kinds in kinds.pump.flatMap { pump in kinds.oximeter.map { DemoDevices(pump: pump, oximeter: $0) } } }

        // The patient: embedded ([patient] and [[event]]) or referenced (patient_scenario), not both.
        var patient: Scenario?
        let embedded = top.contains("patient")
        if let patientFile {
            if embedded || top.contains("event") {
                report(patientFileKey, "both patient_scenario and an embedded [patient] are given",
                       fix: "keep one: remove patient_scenario, or remove [patient] and [[event]]")
                top.markUsed("patient", "event")
            } else {
                reference = (patientFile, patientFileKey)
            }
        } else if var table = subtable(&top, "patient", required: false) {
            let profile = readPatient(&table)
            var events: [ScriptedEvent] = []
            var valid = true
            for var event in tableArray(&top, "event", required: false) {
                if let read = readEvent(&event) { events.append(read) } else { valid = false }
            }
            if let profile, valid {
                patient = Scenario(name: title ?? name, description: description, duration: nil, patient: profile,
                                   timeline: ScenarioTimeline(events), source: source)
            }
        } else {
            report(nil, "no patient: neither [patient] nor [demo] patient_scenario is given",
                   fix: "add a [patient] table (weight, spo2, pulse_rate) or `patient_scenario = \"file.toml\"` in [demo]")
            top.markUsed("event")
        }

        var steps: [DemoStep] = []
        var stepsValid = true
        var killed = false
        for var table in tableArray(&top, "step", required: false) {
            guard let step = readDemoStep(&table, pump: deviceKinds?.pump, oximeter: deviceKinds?.oximeter) else { stepsValid = false; continue }
            switch step.action {
            case .killController: killed = true
            case .restartController:
                if !killed {
                    report(table.key("action"), "restart-controller without an earlier kill-controller step",
                           fix: "the demo starts the controller itself; restart it only after a kill-controller step")
                    stepsValid = false
                }
                killed = false
            default: break
            }
            steps.append(step)
        }
        let expectation = subtable(&top, "expect").flatMap { (table: Table) -> DemoExpectation? in
            var t = table
            return readDemoExpectation(&t)
        }
        finish(top, allowed: ["format", "demo", "program", "devices", "patient", "event", "step", "expect"])

        guard let title, let description, let speed, let program, let devices, stepsValid, let expectation else { return nil }
        let placeholder = Scenario(name: title, patient: PatientProfile(weight: .kilograms(70), baselineSpO2: .percent(97),
                                                                        baselinePulseRate: .beatsPerMinute(72)), source: source)
        guard let resolved = patient ?? (reference != nil ? placeholder : nil) else { return nil }
        let limit = timeout ?? (program.duration * 1.5 + .seconds(600))
        return DemoScenario(name: name, title: title, description: description, speed: speed, timeout: limit,
                            program: program, devices: devices, patient: resolved, steps: steps,
                            expectation: expectation, source: source)
    }

    mutating func readDemoProgram(_ t: inout Table) -> DemoProgram? {
        let profile = string(&t, "profile")
        let drug = string(&t, "drug")
        let concentration = checkedText(&t, "concentration", Concentration.self)
        let weight = checkedText(&t, "weight", BodyWeight.self)
        let dose = checkedText(&t, "dose", WeightBasedDoseRate.self)
        let durationText = t.value("duration")?.string
        let length = duration(&t, "duration")
        let patientID = string(&t, "patient_id", required: false)
        let operatorID = string(&t, "operator", required: false)
        finish(t, allowed: ["profile", "drug", "concentration", "weight", "dose", "duration", "patient_id", "operator"])
        guard let profile, let drug, let concentration, let weight, let dose, let length, let durationText else { return nil }
        return DemoProgram(profile: profile, drug: drug, concentration: concentration, weight: weight, dose: dose,
                           duration: length, durationText: durationText, patientID: patientID ?? "DEMO-PATIENT",
                           operatorID: operatorID ?? "demo-operator")
    }

    /// A quantity's text as written, after checking it parses as `Q`.
    private mutating func checkedText<Q: PhysicalQuantity>(_ t: inout Table, _ name: String, _ type: Q.Type) -> String? {
        let text = t.value(name)?.string
        guard quantity(&t, name, type) != nil else { return nil }
        return text
    }

    /// The simulator kinds of the pump and oximeter (nil for a missing or unknown one).
    mutating func readDemoDevices(_ t: inout Table) -> (pump: String?, oximeter: String?) {
        var kinds: [String?] = []
        for (key, role) in [("pump", SimulatedRole.pump), ("oximeter", .oximeter)] {
            guard let kind = string(&t, key) else { kinds.append(nil); continue }
            guard DeviceRegistry.entry(kind: kind, role: role) != nil else {
                report(t.key(key), "unknown simulated \(key) \"\(kind)\"", fix: "use one of: \(DeviceRegistry.kinds(of: role))")
                kinds.append(nil)
                continue
            }
            kinds.append(kind.lowercased())
        }
        finish(t, allowed: ["pump", "oximeter"])
        return (kinds[0], kinds[1])
    }

    /// One `[[step]]`; faults are checked against the simulated `pump` and `oximeter` kinds when known.
    mutating func readDemoStep(_ t: inout Table, pump: String?, oximeter: String?) -> DemoStep? {
        let line = locator.line(of: t.path)
        var trigger: DemoStep.Trigger?
        let hasAt = t.contains("at"), hasWhen = t.contains("when")
        if hasAt == hasWhen {
            report(t.path, hasAt ? "a step has both `at` and `when`" : "a step has neither `at` nor `when`",
                   fix: "give exactly one: at = \"5 min\" (session time) or when = \"stopped-by-supervisor\"")
            t.markUsed("at", "when", "delay")
        } else if hasAt {
            trigger = duration(&t, "at", allowZero: true).map { .at($0) }
            if t.contains("delay") {
                report(t.key("delay"), "`delay` applies to `when` steps only", fix: "add the delay to `at`")
                t.markUsed("delay")
            }
        } else if let text = string(&t, "when") {
            let delay = duration(&t, "delay", required: false, allowZero: true) ?? .zero
            let condition: DemoCondition? = switch text {
            case "pump-stopped": .pumpStopped
            case "controller-exited": .controllerExited
            case let mode where DemoScenario.modes.contains(mode): .mode(mode)
            default: nil
            }
            if let condition {
                trigger = .when(condition, delay: delay)
            } else {
                report(t.key("when"), "unknown condition \"\(text)\"",
                       fix: "use a controller mode (\(DemoScenario.modes.joined(separator: ", "))), pump-stopped or controller-exited")
            }
        }
        var action: DemoStep.Action?
        var allowed = ["at", "when", "delay", "action"]
        if let name = string(&t, "action") {
            switch name {
            case "operator":
                allowed += ["command", "reason"]
                let command = string(&t, "command")
                let reason = string(&t, "reason", required: false)
                if let command {
                    if DemoScenario.operatorCommands.contains(command) {
                        action = .operatorCommand(command, reason: reason)
                    } else {
                        report(t.key("command"), "unknown operator command \"\(command)\"",
                               fix: "use one of: \(DemoScenario.operatorCommands.joined(separator: ", "))")
                    }
                }
            case "pump-fault", "oximeter-fault":
                allowed += ["fault", "arguments"]
                let role: SimulatedRole = name == "pump-fault" ? .pump : .oximeter
                let fault = string(&t, "fault")
                var arguments: [String] = []
                if let value = t.value("arguments") {
                    if let array = value.array, array.allSatisfy({ $0.string != nil }) {
                        arguments = array.compactMap(\.string)
                    } else {
                        report(t.key("arguments"), "\"arguments\" must be an array of strings", fix: "write e.g. arguments = [\"30s\"]")
                    }
                }
                if let fault, let kind = role == .pump ? pump : oximeter {
                    let known = (DeviceRegistry.entry(kind: kind, role: role)?.faultHelp ?? [])
                        .map { String($0.prefix { $0 != " " }) }
                    if known.contains(fault) || (role == .oximeter && fault == "motion") {
                        let command = FaultCommand(name: fault, arguments: arguments)
                        action = role == .pump ? .pumpFault(command) : .oximeterFault(command)
                    } else {
                        report(t.key("fault"), "the simulated \(kind) has no fault \"\(fault)\"", fix: "use one of: \(known.joined(separator: ", "))")
                    }
                }
            case "kill-controller": action = .killController
            case "restart-controller": action = .restartController
            default:
                report(t.key("action"), "unknown action \"\(name)\"", fix: "use one of: \(DemoScenario.actions.joined(separator: ", "))")
                t.markAllUsed()
            }
        }
        finish(t, allowed: allowed)
        guard let trigger, let action else { return nil }
        return DemoStep(trigger: trigger, action: action, line: line)
    }

    mutating func readDemoExpectation(_ t: inout Table) -> DemoExpectation? {
        var valid = true
        func strings(_ name: String, from allowed: [String]?, reader: inout StrictTOMLReader, table: inout Table) -> [String]? {
            guard let value = table.value(name) else { return nil }
            guard let array = value.array, array.allSatisfy({ $0.string != nil }) else {
                reader.report(table.key(name), "\"\(name)\" must be an array of strings", fix: "write e.g. \(name) = [\"…\"]")
                valid = false
                return nil
            }
            let texts = array.compactMap(\.string)
            if let allowed {
                for text in texts where !allowed.contains(text) {
                    reader.report(table.key(name), "unknown value \"\(text)\" in \(name)", fix: "use: \(allowed.joined(separator: ", "))")
                    valid = false
                }
            }
            return texts
        }
        var exitCodes: [Int]?
        if let value = t.value("exit_codes") {
            if let array = value.array, array.allSatisfy({ $0.int.map { (0...255).contains($0) } ?? false }) {
                exitCodes = array.compactMap(\.int)
            } else {
                report(t.key("exit_codes"), "\"exit_codes\" must be an array of exit codes (0 to 255)", fix: "write e.g. exit_codes = [0]")
                valid = false
            }
        } else {
            report(t.key("exit_codes"), "missing required key \"exit_codes\"", fix: "add e.g. `exit_codes = [0]` to [expect]")
            valid = false
        }
        let outcomes = strings("outcomes", from: DemoScenario.outcomes, reader: &self, table: &t)
        let alarms = strings("alarms", from: nil, reader: &self, table: &t) ?? []
        let modes = strings("modes", from: DemoScenario.modes, reader: &self, table: &t) ?? []
        let state = string(&t, "session_state", required: false)
        if let state, !DemoScenario.sessionStates.contains(state) {
            report(t.key("session_state"), "unknown session state \"\(state)\"", fix: "use one of: \(DemoScenario.sessionStates.joined(separator: ", "))")
            valid = false
        }
        let watchdog = bool(&t, "pump_watchdog_stop", required: false)
        let recovered = bool(&t, "recovered", required: false)
        let summary = string(&t, "summary")
        finish(t, allowed: ["exit_codes", "outcomes", "alarms", "modes", "session_state", "pump_watchdog_stop", "recovered", "summary"])
        guard valid, let exitCodes, let summary else { return nil }
        return DemoExpectation(exitCodes: exitCodes, outcomes: outcomes, alarms: alarms, modes: modes, sessionState: state,
                               pumpWatchdogStop: watchdog, recovered: recovered, summary: summary)
    }
}
