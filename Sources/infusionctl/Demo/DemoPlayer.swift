import DeviceProtocols
import DeviceSimulators
import Foundation
import InfusionCore
import Records
import Synchronization

/// Plays one demo scenario: hosts the simulated devices and the virtual patient on pseudo-terminals in
/// this process, runs the real controller (`infusionctl run --json-events`) as a child process over them,
/// shows its live status, plays the scenario's steps, then writes the session's HTML report and checks
/// the outcome against the scenario's expectation. Runs on the calling thread (blocking); not reentrant.
final class DemoPlayer {
    private let scenario: DemoScenario
    private let speed: Double
    private let directory: String
    private let clock: ScaledClock
    private let display: DemoDisplay

    private var world: SimulatedWorld?
    private var pump: (any HostedSimulation)?
    private var oximeter: (any HostedSimulation)?
    private var controller: ControllerProcess?
    private var runCount = 0
    private var endings: [ControllerProcess.Ending] = []

    // What the controller reported.
    private var sessionStart: MonotonicInstant?
    private var sessionID: Int64?
    private var mode: String?
    private var modes: [String] = []
    private var alarms: [(cause: String, priority: String)] = []
    private var outcomes: [String] = []
    private var recovered: ControllerEvent?
    private var status = DemoDisplay.Status()
    private var rejectedCommands: [String] = []
    private var lastDecisionShown = ""

    // What the simulated pump itself did.
    private var pumpPumping: Bool?
    private var pumpAlarm: String?
    private var lastVolume: Volume = .zero
    private var lastVolumeChange: MonotonicInstant?
    private var pumpStoppedItself = false
    private var controllerKilledAt: MonotonicInstant?

    // The script.
    private var stepIndex = 0
    private var conditionSeenAt: MonotonicInstant?
    private var lastRedraw = ContinuousClock.now

    /// A player for `scenario` at `speed` times real time, writing into `outputDirectory`.
    init(scenario: DemoScenario, speed: Double, outputDirectory: String) {
        self.scenario = scenario
        self.speed = speed
        self.directory = outputDirectory
        self.clock = ScaledClock(speed: speed)
        self.display = DemoDisplay(interactive: isatty(STDOUT_FILENO) == 1)
        status.total = scenario.program.duration.seconds
    }

    private var databasePath: String { (directory as NSString).appendingPathComponent("infusioncontrol.sqlite") }
    private var reportPath: String { (directory as NSString).appendingPathComponent("report.html") }

    /// Session time now, in seconds (nil before the session started).
    private var sessionSeconds: Double? { sessionStart.map { (clock.now() - $0).seconds } }

    /// Plays the scenario to its end; true when the expected outcome was reached. Throws when the demo
    /// itself cannot run (output folder, pseudo-terminals, the controller cannot be started).
    func play() throws -> Bool {
        try prepareOutput()
        signal(SIGPIPE, SIG_IGN)  // a controller that exits while the demo writes to it must not kill the demo
        // Ctrl-C or SIGTERM from the first line on: ask the controller to quit, then summarise.
        do throws(TerminationSignals.Unavailable) {
            try TerminationSignals.install()
        } catch {
            throw DemoError(error.description)
        }
        defer { TerminationSignals.restoreDefaults() }

        display.note("Demo: \(scenario.title)")
        display.note("  \(scenario.description)")
        display.note("  speed \(NumberText.format(speed, fractionDigits: 1))x real time; output in \(directory)/")
        try startDevices()
        defer { world?.stop() }
        try startController()
        let finishedNormally = loop()
        display.finish()
        world?.stop()
        world = nil
        return summarize(finishedNormally: finishedNormally)
    }

    // MARK: Setup

    private func prepareOutput() throws {
        let manager = FileManager.default
        do {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw DemoError("cannot create the output folder \(directory): \(error.localizedDescription). Choose another with --out")
        }
        // A fresh record database each time: an unfinished session left by an interrupted earlier demo
        // would otherwise be recovered (and nothing started).
        for suffix in ["", "-wal", "-shm"] { try? manager.removeItem(atPath: databasePath + suffix) }
        try? manager.removeItem(atPath: reportPath)
    }

    private func startDevices() throws {
        let patient: VirtualPatient
        do { patient = try VirtualPatient(scenario: scenario.patient) } catch {
            throw DemoError("the scenario's patient cannot be simulated: \(error)")
        }
        let concentration: Concentration
        do { concentration = try Concentration.parse(scenario.program.concentration) } catch {
            throw DemoError("the scenario's concentration: \(error)")
        }
        // Couple the patient and the devices about every 10 ms of real time (at least every 100 ms of
        // scenario time): the oximeters sample the patient once a second, and a finer step only costs CPU
        // that the controller needs to keep its own (scaled) deadlines.
        let step = Duration.milliseconds(Int64(max(100, min(1000, speed * 10))))
        let world = SimulatedWorld(model: WorldModel(patient: patient, concentration: concentration), clock: clock, step: step)
        for (role, kind) in [(SimulatedRole.pump, scenario.devices.pump), (.oximeter, scenario.devices.oximeter)] {
            guard let entry = DeviceRegistry.entry(kind: kind, role: role) else {
                throw DemoError("no simulated \(role.rawValue) \"\(kind)\": use one of \(DeviceRegistry.kinds(of: role))")
            }
            let device: any HostedSimulation
            let setup = HostedDeviceSetup(name: "\(role.rawValue)0", clock: clock)
            if role == .pump, kind == NewEraSimulatedPump.kind, speed > 10 {
                // Above 10x, replies are not paced at 19200 baud: pacing wakes the simulator once per byte
                // (every 6 µs of real time at 80x) to model a wire time of under 10 ms per reply, which
                // at that speed is far below anything the controller times.
                device = PTYHostedDevice(device: NewEraSimulatedPump(), role: .pump, setup: setup)
            } else {
                do { device = try entry.makeHosted(nil, setup) } catch {
                    throw DemoError("cannot simulate the \(role.rawValue) \(kind): \(error)")
                }
            }
            world.add(device)
            if role == .pump { pump = device } else { oximeter = device }
        }
        world.start()
        self.world = world
        let deadline = ContinuousClock.now + .seconds(5)
        while pump?.devicePath == nil || oximeter?.devicePath == nil {
            guard ContinuousClock.now < deadline else {
                throw DemoError("the simulated devices did not get pseudo-terminals within 5 s: check /dev/ptmx and /dev/pts are usable")
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        display.note("  simulated \(scenario.devices.pump) pump on \(pump?.devicePath ?? "?"), \(scenario.devices.oximeter) oximeter on \(oximeter?.devicePath ?? "?")")
    }

    /// The running executable (the controller is the same program).
    private static var executable: String {
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return resolved }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    }

    private var controllerArguments: [String] {
        let p = scenario.program
        return [
            "run", "--json-events", "--speed", NumberText.format(speed, fractionDigits: 3), "--db", databasePath,
            "--profile", p.profile, "--drug", p.drug, "--concentration", p.concentration, "--weight", p.weight,
            "--dose", p.dose, "--duration", p.durationText, "--patient", p.patientID, "--operator", p.operatorID,
            "--pump", pump?.devicePath ?? "", "--pump-protocol", scenario.devices.pump,
            "--oximeter", oximeter?.devicePath ?? "", "--oximeter-protocol", scenario.devices.oximeter,
            "--start-timeout", "5 min",
        ]
    }

    private func startController() throws {
        runCount += 1
        let arguments = controllerArguments
        display.event("controller run \(runCount): infusionctl \(arguments.joined(separator: " "))", at: sessionSeconds)
        do {
            controller = try ControllerProcess(
                executable: Self.executable, arguments: arguments,
                eventLog: (directory as NSString).appendingPathComponent("controller-run\(runCount)-events.jsonl"),
                errorLog: (directory as NSString).appendingPathComponent("controller-run\(runCount).log"))
        } catch {
            throw DemoError("cannot start the controller (\(Self.executable) run): \(error.localizedDescription)")
        }
        status.controller = "running (pid \(controller?.pid ?? 0))"
    }

    // MARK: Main loop

    /// Runs until no controller runs and no step is left to restart one. False when interrupted or
    /// timed out.
    private func loop() -> Bool {
        let worldStart = clock.now()
        var quitSentAt: ContinuousClock.Instant?
        var normal = true
        while true {
            if let controller {
                for event in controller.drain() { handle(event) }
                if let ending = controller.ending {
                    for event in controller.drain() { handle(event) }
                    self.controller = nil
                    endings.append(ending)
                    switch ending {
                    case .exited(let code): status.controller = "exited with \(code)"
                    case .killed(let signal): status.controller = "killed (signal \(signal))"
                    }
                    // What the dead controller last said is no longer live.
                    status.mode = "no controller"
                    status.rate = nil
                    status.spo2 = nil
                    status.pulse = nil
                    status.alarms = []
                    display.event("controller run \(runCount) \(status.controller)" + logHint(), at: sessionSeconds)
                }
            }
            observePump()
            if quitSentAt == nil {
                if let signal = TerminationSignals.received {
                    display.event("interrupted: asking the controller to quit", at: sessionSeconds)
                    controller?.send("quit interrupted by the demo's operator (\(TerminationSignals.name(of: signal)))")
                    quitSentAt = .now
                    normal = false
                } else if (clock.now() - worldStart) > scenario.timeout + .seconds(300) || (sessionSeconds ?? 0) > scenario.timeout.seconds {
                    display.event("the scenario did not finish within \(scenario.timeout.humanReadable) of session time: asking the controller to quit", at: sessionSeconds)
                    controller?.send("quit the demo timed out")
                    quitSentAt = .now
                    normal = false
                } else {
                    playSteps()
                }
            } else if let sent = quitSentAt, ContinuousClock.now - sent > .seconds(10) {
                controller?.kill()
            }
            if controller == nil {
                let restartPending = stepIndex < scenario.steps.count && scenario.steps[stepIndex].action == .restartController
                if !restartPending || quitSentAt != nil { break }
            }
            redraw()
            Thread.sleep(forTimeInterval: 0.02)
        }
        return normal
    }

    private func logHint() -> String {
        " (log: \((directory as NSString).appendingPathComponent("controller-run\(runCount).log")))"
    }

    private func redraw(force: Bool = false) {
        if let s = sessionSeconds, mode != "complete" { status.elapsed = max(status.elapsed, min(s, status.total)) }
        status.pump = pumpDescription
        guard force || ContinuousClock.now - lastRedraw > .milliseconds(100) else { return }
        lastRedraw = .now
        display.show(status, force: force)
    }

    private var pumpDescription: String {
        var text = pumpPumping.map { $0 ? "pumping" : "stopped" } ?? "?"
        if let pumpAlarm { text += ", alarm: \(pumpAlarm)" }
        let delivered = pump?.totalVolumeDelivered()?.value(in: .millilitres) ?? 0
        return text + ", \(NumberText.format(delivered, fractionDigits: 2)) mL pushed"
    }

    // MARK: Controller events

    private func handle(_ event: ControllerEvent) {
        let at = sessionSeconds ?? event.t
        switch event.type {
        case "session-started":
            if sessionStart == nil { sessionStart = clock.now() }
            sessionID = sessionID ?? event.session
            if let duration = event.durationS { status.total = duration }
            display.event("session \(event.session.map(String.init) ?? "?") started: \(event.drug ?? scenario.program.drug) "
                          + "\(event.dose ?? scenario.program.dose) at \(NumberText.format(event.rateMlH ?? 0, fractionDigits: 2)) mL/h "
                          + "for \(scenario.program.durationText)", at: sessionSeconds)
        case "status":
            if let m = event.mode { setMode(m, at: at) }
            status.spo2 = event.spo2
            status.pulse = event.pulseRate
            status.rate = event.rateMlH
            if let e = event.elapsedS { status.elapsed = e }
            if let e = event.elapsedS, let r = event.remainingS { status.total = e + r }
            if let d = event.deliveredMl { status.deliveredML = d }
            if let d = event.deliveredMg { status.deliveredMG = d }
            status.alarms = (event.alarms ?? []).map { "\($0.cause) (\($0.priority ?? "?"), \($0.state ?? "?")\($0.acknowledged == true ? ", ack" : ""))" }
        case "alarm":
            let cause = event.cause ?? "?"
            if !alarms.contains(where: { $0.cause == cause }) { alarms.append((cause, event.priority ?? "?")) }
            display.event("ALARM \(cause) (\(event.priority ?? "?"), \(event.state ?? "?")): \(event.message ?? "")"
                          + (event.action.map { ". \($0)" } ?? ""), at: at)
        case "decision":
            if let after = event.modeAfter { setMode(after, at: at, announce: false) }
            // Repeats (a stop sent again and again) are shown once.
            let key = "\(event.rule ?? "")/\(event.kind ?? "")"
            if event.modeBefore != event.modeAfter || (event.command != nil && key != lastDecisionShown) {
                lastDecisionShown = key
                display.event("supervisor: \(event.rule ?? "?") \(event.kind ?? ""): \(event.modeBefore ?? "?") -> \(event.modeAfter ?? "?")"
                              + (event.command.map { ", pump command: \($0)" } ?? ""), at: at)
            }
        case "operator-action":
            if event.accepted == false { rejectedCommands.append(event.action ?? "?") }
            display.event("operator \(event.action ?? "?")\(event.reason.map { " (\($0))" } ?? ""): "
                          + "\(event.accepted == false ? "REFUSED" : "accepted")\(event.message.map { ": \($0)" } ?? "")", at: at)
        case "recovered":
            recovered = event
            sessionID = sessionID ?? event.session
            display.event("recovered session \(event.session.map(String.init) ?? "?"): pump \(event.pumpState ?? "?"), "
                          + "\(NumberText.format(event.volumeMl ?? 0, fractionDigits: 3)) mL infused by the pump's counter, "
                          + "\(event.stoppedByController == true ? "stopped by the controller" : "not restarted")"
                          + (event.message.map { ": \($0)" } ?? ""), at: at)
        case "session-ended":
            if let outcome = event.outcome { outcomes.append(outcome) }
            if let d = event.deliveredMl { status.deliveredML = d }
            if let d = event.deliveredMg { status.deliveredMG = d }
            display.event("session ended: \(event.outcome ?? "?") (exit \(event.exitCode.map(String.init) ?? "?")), delivered "
                          + "\(NumberText.format(status.deliveredML, fractionDigits: 3)) mL = \(NumberText.format(status.deliveredMG, fractionDigits: 3)) mg", at: at)
        default:
            break
        }
    }

    private func setMode(_ newMode: String, at: Double?, announce: Bool = true) {
        guard newMode != mode else { return }
        mode = newMode
        status.mode = newMode
        if modes.last != newMode { modes.append(newMode) }
        if announce { display.event("mode: \(newMode)", at: at) }
        if newMode == "complete" { status.elapsed = status.total }
        redraw(force: true)
    }

    // MARK: The simulated pump

    private func observePump() {
        guard let pump else { return }
        let now = clock.now()
        var pumping: Bool?
        var alarmText: String?
        var watchdog = false
        if let newEra = pump as? PTYHostedDevice<NewEraSimulatedPump> {
            let state = newEra.inspect { ($0.prompt.isPumping, $0.alarm) }
            pumping = state.0
            alarmText = state.1.map(Self.describe)
            watchdog = state.1 == .safeModeTimeout
        } else if let volume = pump.totalVolumeDelivered() {
            // Other families: pumping while the delivered volume keeps rising.
            if volume > lastVolume { lastVolume = volume; lastVolumeChange = now }
            pumping = lastVolumeChange.map { now - $0 < .seconds(3) } ?? false
        }
        if pumping == false, pumpPumping == true, controller == nil, controllerKilledAt != nil {
            pumpStoppedItself = pumpStoppedItself || watchdog || !(pump is PTYHostedDevice<NewEraSimulatedPump>)
            let after = controllerKilledAt.map { (now - $0).humanReadable } ?? "?"
            display.event("the pump stopped ITSELF \(after) after the controller died"
                          + (alarmText.map { ": alarm \($0)" } ?? "") + " (its own watchdog: the second, independent stop)", at: sessionSeconds)
        }
        if alarmText != pumpAlarm, let alarmText, sessionStart != nil {
            display.event("simulated pump: alarm \(alarmText)", at: sessionSeconds)
        }
        pumpPumping = pumping
        pumpAlarm = alarmText
    }

    private static func describe(_ alarm: NewEra.Alarm) -> String {
        switch alarm {
        case .reset: "R (power reset)"
        case .stalled: "S (stalled: occlusion)"
        case .safeModeTimeout: "T (safe-mode watchdog timed out)"
        case .programError: "E (program error)"
        case .phaseOutOfRange: "O (phase out of range)"
        }
    }

    // MARK: The script

    private func playSteps() {
        while stepIndex < scenario.steps.count {
            let step = scenario.steps[stepIndex]
            let now = clock.now()
            switch step.trigger {
            case .at(let time):
                guard let s = sessionSeconds, s >= time.seconds else { return }
            case .when(let condition, let delay):
                if conditionSeenAt == nil, holds(condition) { conditionSeenAt = now }
                guard let seen = conditionSeenAt, now >= seen + delay else { return }
            }
            stepIndex += 1
            conditionSeenAt = nil
            perform(step)
        }
    }

    private func holds(_ condition: DemoCondition) -> Bool {
        switch condition {
        case .mode(let wanted): mode == wanted && controller != nil
        case .pumpStopped: pumpPumping == false
        case .controllerExited: controller == nil
        }
    }

    private func perform(_ step: DemoStep) {
        let at = sessionSeconds
        switch step.action {
        case let .operatorCommand(command, reason):
            display.event("script: operator \(command)" + (reason.map { " (\($0))" } ?? ""), at: at)
            controller?.send(command + (reason.map { " \($0)" } ?? ""))
        case .pumpFault(let fault), .oximeterFault(let fault):
            let device = step.action == .pumpFault(fault) ? pump : oximeter
            let result = device?.inject(fault)
            switch result {
            case .success(let message): display.event("script: \(step.summary): \(message)", at: at)
            case .failure(let error): display.event("script: \(step.summary) FAILED: \(error)", at: at)
            case nil: break
            }
        case .killController:
            display.event("script: kill -9 the controller (pid \(controller?.pid ?? 0)) mid-infusion; the pump is not told", at: at)
            controllerKilledAt = clock.now()
            controller?.kill()
        case .restartController:
            display.event("script: restart the controller with the same arguments", at: at)
            do { try startController() } catch { display.event("cannot restart the controller: \(error)", at: at) }
        }
    }

    // MARK: End

    private func summarize(finishedNormally: Bool) -> Bool {
        let report = writeReport()
        let expect = scenario.expectation
        var allPassed = finishedNormally
        var lines: [String] = []
        func check(_ passed: Bool, _ text: String) {
            allPassed = allPassed && passed
            lines.append("  \(passed ? "ok  " : "FAIL") \(text)")
        }
        let exitCodes = endings.compactMap { ending -> Int? in if case .exited(let code) = ending { Int(code) } else { nil } }
        let shown = endings.map { ending in
            switch ending {
            case .exited(let code): String(code)
            case .killed(let signal): "killed(" + String(signal) + ")"
            }
        }.joined(separator: ", ")
        check(exitCodes == expect.exitCodes, "controller runs ended: \(shown.isEmpty ? "none" : shown) (expected exit codes \(expect.exitCodes.map(String.init).joined(separator: ", ")))")
        if let wanted = expect.outcomes {
            check(outcomes == wanted, "session outcome: \(outcomes.isEmpty ? "none" : outcomes.joined(separator: ", ")) (expected \(wanted.isEmpty ? "none" : wanted.joined(separator: ", ")))")
        }
        for wanted in expect.alarms {
            let seen = alarms.contains { Self.normalized($0.cause) == Self.normalized(wanted) }
            check(seen, "alarm \(wanted) raised")
        }
        if !expect.modes.isEmpty {
            check(Self.isSubsequence(expect.modes, of: modes), "modes in order: \(expect.modes.joined(separator: " -> ")) (seen: \(modes.joined(separator: " -> ")))")
        }
        if let wanted = expect.sessionState {
            check(report.state == wanted, "recorded session state: \(report.state ?? "none") (expected \(wanted))")
        }
        if let wanted = expect.pumpWatchdogStop {
            check(pumpStoppedItself == wanted, wanted ? "the pump stopped itself (its own watchdog)" : "the pump's watchdog did not have to stop it")
        }
        if let wanted = expect.recovered {
            check((recovered != nil) == wanted, wanted ? "the restarted controller recovered the interrupted session" : "no recovery")
        }
        if pump is PTYHostedDevice<NewEraSimulatedPump> {
            // Whatever happened, delivery must end stopped, as the simulated pump itself reports.
            check(pumpPumping == false, "the simulated pump is stopped at the end (its own state: \(pumpDescription))")
        }
        check(stepIndex == scenario.steps.count, "script played: \(stepIndex) of \(scenario.steps.count) steps")
        if !rejectedCommands.isEmpty { lines.append("  note operator commands refused: \(rejectedCommands.joined(separator: ", "))") }
        check(report.path != nil, report.path.map { _ in "report written" } ?? "report: \(report.problem ?? "not written")")

        display.note("")
        display.note("Summary: \(scenario.title)")
        display.note("  expected: \(expect.summary)")
        for line in lines { display.note(line) }
        display.note("  alarms: \(alarms.isEmpty ? "none" : alarms.map { "\($0.cause) (\($0.priority))" }.joined(separator: ", "))")
        var delivered = "  delivered: \(NumberText.format(status.deliveredML, fractionDigits: 3)) mL = \(NumberText.format(status.deliveredMG, fractionDigits: 3)) mg (controller's record)"
        if let recovered, let volume = recovered.volumeMl {
            delivered += "; the pump's own counter at recovery: \(NumberText.format(volume, fractionDigits: 3)) mL"
        }
        display.note(delivered)
        if let path = report.path { display.note("  report: \(path)") }
        display.note(allPassed ? "Outcome: as expected." : "Outcome: NOT as expected (see FAIL above and the logs in \(directory)/).")
        return allPassed
    }

    /// Writes the session's HTML report; its path (or why not) and the recorded state.
    private func writeReport() -> (path: String?, state: String?, problem: String?) {
        guard FileManager.default.fileExists(atPath: databasePath) else {
            return (nil, nil, "the controller wrote no record database at \(databasePath)")
        }
        do {
            let store = try RecordStore.open(path: databasePath, createIfMissing: false)
            let id: SessionID
            if let sessionID { id = SessionID(rawValue: sessionID) } else {
                guard let last = try store.sessions().map(\.session.id).max() else {
                    return (nil, nil, "the record database holds no session")
                }
                id = last
            }
            let loaded = try store.load(id)
            let html = HTMLReport.render(loaded, options: ReportOptions(timeZone: .current, generatedAt: Date()))
            try Data(html.utf8).write(to: URL(fileURLWithPath: reportPath), options: .atomic)
            return (reportPath, loaded.session.state.rawValue, nil)
        } catch {
            return (nil, nil, "cannot write the report: \(error)")
        }
    }

    /// "spo2-low", "spo2Low", "SPO2_LOW" compare equal.
    static func normalized(_ cause: String) -> String {
        String(cause.lowercased().unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) }.map(Character.init))
    }

    /// True when `wanted` appears in `seen` in order (other elements may come between).
    static func isSubsequence(_ wanted: [String], of seen: [String]) -> Bool {
        var index = seen.startIndex
        for item in wanted {
            guard let found = seen[index...].firstIndex(of: item) else { return false }
            index = seen.index(after: found)
        }
        return true
    }
}

/// Why the demo itself could not run, with what to do.
struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
