#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import DeviceIO
import Drivers
import Foundation
import InfusionCore
import Records
import Session
import Supervisor
import Synchronization

/// `infusionctl run`: one supervised infusion session on a pump and an oximeter (docs/run-contract.md).
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a supervised infusion session: validate the program, start the pump under the safety supervisor, record everything.",
        discussion: """
            Example: infusionctl run --profile ketamine-chronic-pain --drug Ketamine --concentration "1 mg/mL" \
            --weight "80 kg" --dose "0.35 mg/kg/h" --duration "40 min" --patient P123 --operator nurse1 \
            --pump-protocol newera --oximeter-protocol nonin-df2

            The program is validated first, exactly as `program validate` does. Then, if the record database \
            holds a session a crashed controller left unfinished, that session is recovered instead: it is \
            marked interrupted, the pump is asked for its state and volume (both recorded) and stopped if it \
            is infusing; nothing is started (exit 7). Otherwise the command is the operator's start: it \
            starts delivery once the start checks pass (devices connected, the pump's watchdog armed, fresh \
            valid vital signs), and runs until the program completes or the operator ends the session. After \
            a supervisor stop the session waits for the operator: acknowledge, then resume (fresh start \
            checks). Nothing ever restarts on its own.

            Keys (terminal): p pause, r resume, s stop, a acknowledge, m audio pause, q quit (asks y/n while \
            delivering). Ctrl-C or SIGTERM ends the session the same way as q: delivery stops, the end is recorded.

            --json-events: one JSON object per line on stdout (session-started, status, alarm, decision, \
            operator-action, warning, recovered, session-ended); commands on stdin, one per line with an \
            optional reason after a space: start, pause, resume, stop, ack, silence, quit. End of stdin keeps \
            the session running.

            Exit codes: 0 program completed; 1 internal or record-store error; 2 the program needs \
            --confirm-soft-limits; 3 program rejected (hard limit); 4 ended early by the operator; 5 ended \
            after a supervisor stop or device fault without completing; 6 devices unavailable or the start \
            checks never passed; 7 recovered an interrupted session, nothing started; 64 usage error.
            """)

    @OptionGroup var libraryOption: LibraryOption

    @OptionGroup var program: ProgramOptions

    @Option(help: ArgumentHelp("The patient's id (recorded).", valueName: "ID"))
    var patient: String

    @Option(name: .customLong("operator"), help: ArgumentHelp("The operator's id (recorded with every action).", valueName: "ID"))
    var operatorID: String

    @Option(help: ArgumentHelp("The pump's serial device.", valueName: "PATH"))
    var pump = "/dev/infusion/pump0"

    @Option(name: .customLong("pump-protocol"), help: "The pump's protocol: \(PumpProtocolName.allCases.map(\.rawValue).joined(separator: ", ")).")
    var pumpProtocol: PumpProtocolName

    @Option(help: ArgumentHelp("The oximeter's serial device.", valueName: "PATH"))
    var oximeter = "/dev/infusion/oximeter0"

    @Option(name: .customLong("oximeter-protocol"), help: "The oximeter's protocol: \(OximeterProtocol.allCases.map(\.rawValue).joined(separator: ", ")).")
    var oximeterProtocolName: String

    /// The oximeter's protocol (checked by `validate()`).
    private var oximeterProtocol: OximeterProtocol { OximeterProtocol(rawValue: oximeterProtocolName) ?? .noninDF2 }

    @Option(name: .customLong("confirm-soft-limits"), help: ArgumentHelp("Confirm the program's soft-limit findings, with this reason (recorded with --operator).", valueName: "REASON"))
    var confirmSoftLimits: String?

    @Flag(name: .customLong("json-events"), help: "Print one JSON event per line on stdout and read commands from stdin lines.")
    var jsonEvents = false

    @OptionGroup var database: DatabaseOption

    @Option(help: ArgumentHelp("SIMULATED devices only: run the controller's clock (supervisor, drivers, session) N times faster than real time; must equal the simulator's speed.", valueName: "N"))
    var speed: Double = 1

    @Option(name: .customLong("realtime-cpu"), help: ArgumentHelp("Real devices: the CPU the supervisor's thread and the device links' threads share (under SCHED_FIFO): \"none\" (the default: the kernel places them), a CPU number, or \"auto\" (the highest-numbered CPU this process may use). Pin only to a CPU kept free of other work, and measure. See docs/supervisor.md \"Real-time placement\".", valueName: "CPU"))
    var realtimeCPU = "none"

    @Option(name: .customLong("start-timeout"), help: ArgumentHelp("How long (controller time) the start checks may take before giving up with exit 6, e.g. \"60 s\".", valueName: "DURATION"))
    var startTimeout = "60 s"

    func validate() throws {
        guard OximeterProtocol(rawValue: oximeterProtocolName) != nil else {
            throw ValidationError("unknown oximeter protocol \"\(oximeterProtocolName)\": use one of \(OximeterProtocol.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard speed.isFinite, speed >= 1, speed <= 1000 else { throw ValidationError("--speed must be a number from 1 to 1000") }
        _ = try startTimeoutDuration()
        _ = try realTimeCPUChoice()
        if patient.allSatisfy(\.isWhitespace) { throw ValidationError("--patient must not be blank") }
        if operatorID.allSatisfy(\.isWhitespace) { throw ValidationError("--operator must not be blank") }
        if let reason = confirmSoftLimits, reason.allSatisfy(\.isWhitespace) {
            throw ValidationError("--confirm-soft-limits needs a reason, e.g. --confirm-soft-limits \"opioid-tolerant patient, agreed with Dr X\"")
        }
    }

    /// Where the real-time threads run, from `--realtime-cpu`.
    private func realTimeCPUChoice() throws -> RealTimePlacement {
        switch realtimeCPU {
        case "auto": return RealTimePlacement.automatic()
        case "none": return .unpinned(reason: "--realtime-cpu none")
        default:
            guard let cpu = Int32(realtimeCPU), cpu >= 0, cpu < 1024 else {
                throw ValidationError("--realtime-cpu must be a CPU number (0 to 1023), \"auto\" or \"none\", not \"\(realtimeCPU)\"")
            }
            return .pinned(cpu: cpu)
        }
    }

    private func startTimeoutDuration() throws -> Duration {
        do {
            let value = try Duration.parse(startTimeout)
            guard value > .zero else { throw ValidationError("--start-timeout must be longer than zero") }
            return value
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("--start-timeout: \(error)")
        }
    }

    func run() async throws {
        let console = RunConsole(json: jsonEvents, renderer: StatusRenderer(title: "\(program.drug) \(program.dose)", width: RunConsole.terminalWidth))
        let validated = try validateProgram(console)

        let store: RecordStore
        do {
            store = try RecordStore.open(path: database.path)
        } catch {
            Output.error("\(error)")
            throw ExitCode.failure
        }
        defer { try? store.close() }

        let clock: any MonotonicClock = speed == 1 ? SystemMonotonicClock() : ScaledClock(speed: speed)
        let timing = SessionTiming(speed: speed)
        // Real devices: the supervisor under SCHED_FIFO, and the device links' reader threads (which decode
        // the oximeter's frames and publish them to it) just below it; all on one CPU with `--realtime-cpu`
        // (see `RealTimePlacement` for when that helps). Simulated devices: none of it.
        let placement = speed == 1 ? try realTimeCPUChoice() : .unpinned(reason: "simulated devices")
        if speed == 1, realtimeCPU == "auto", case .unpinned(let reason) = placement {
            Output.note("real-time threads not pinned to a CPU: \(reason)")
        }
        let runnerConfiguration = speed == 1
            ? SupervisorRunner.Configuration(cpu: placement.cpu)
            : SupervisorRunner.Configuration(realTimePriority: nil, lockMemory: false)
        LinkThreadScheduling.useRealTime(priority: runnerConfiguration.realTimePriority.map { max($0 - 1, 1) },
                                         cpu: runnerConfiguration.cpu)

        // Recovery first: a session a crashed controller left unfinished is never continued.
        let recovery = SessionRecovery(store: store, clock: clock)
        let unfinished: [SessionRecord]
        do { unfinished = try recovery.unfinishedSessions() } catch {
            Output.error("\(error)")
            throw ExitCode.failure
        }
        if !unfinished.isEmpty {
            try await recover(unfinished, recovery: recovery, clock: clock, timing: timing, console: console)
        }

        let pumpDriver = try makePumpDriver(clock: clock, timing: timing)
        let oximeterDriver = makePulseOximeter(protocol: oximeterProtocol, path: oximeter, name: "oximeter0 \(oximeterProtocol) on \(oximeter)", clock: clock)
        defer {
            pumpDriver.close()
            oximeterDriver.close()
        }
        let devices = [
            DeviceDescription(role: "pump", model: pumpProtocol.rawValue, wireProtocol: pumpProtocol.rawValue, path: pump),
            DeviceDescription(role: "oximeter", model: oximeterProtocol.rawValue, wireProtocol: oximeterProtocol.rawValue, path: oximeter),
        ]
        var configuration = InfusionSession.Configuration(
            patientID: patient, operatorID: operatorID, devices: devices, pumpDescription: "\(pumpProtocol.rawValue) on \(pump)",
            oximeterDescription: "\(oximeterProtocol) on \(oximeter)", doseText: program.dose, timing: timing)
        configuration.runner = runnerConfiguration
        // From here on SIGINT and SIGTERM end the session the documented way (stop, record, exit 4): the
        // handlers are in place before the session exists, so a signal sent the moment `session-started`
        // is out (or earlier) is never lost and never kills the controller mid-session.
        do throws(TerminationSignals.Unavailable) {
            try TerminationSignals.install()
        } catch {
            Output.error("\(error); nothing was started")
            throw ExitCode.failure
        }
        defer { TerminationSignals.restoreDefaults() }
        let session: InfusionSession
        do {
            session = try InfusionSession(program: validated, configuration: configuration, pump: pumpDriver, oximeter: oximeterDriver,
                                          store: store, clock: clock, onEvent: { console.show($0) })
            try session.start()
        } catch {
            Output.error("\(error)")
            throw ExitCode.failure
        }

        let terminal = console.mode == .terminal ? RawTerminal() : nil
        defer { terminal?.restore() }
        let input = OperatorInputQueue()
        input.start(keys: terminal != nil)

        let outcome = await drive(session, console: console, input: input, interactive: terminal != nil)
        let notice = await session.finish(outcome: outcome.outcome, message: outcome.message)
        terminal?.restore()
        if console.mode != .json {
            console.message("Report: infusionctl report \(notice.session) --db \(database.path)")
        }
        if notice.outcome.exitCode != 0 { throw ExitCode(notice.outcome.exitCode) }
    }

    // MARK: Steps

    /// Validates like `program validate`: exit 3 (rejected or library refused), exit 2 (soft limits not
    /// confirmed), 64 (bad option). Shows the validation in text mode (stderr with --json-events).
    private func validateProgram(_ console: RunConsole) throws -> ValidatedProgram {
        let request = try program.makeRequest(pump: pumpProtocol.capabilities)
        let write: (String) -> Void = { console.message($0) }
        let library: DrugLibrary
        do {
            library = try libraryOption.load()
        } catch {
            Output.error("drug library refused, no programming possible (R-DL-11): \(error)")
            throw ExitCode(3)
        }
        let result = ProgramValidator.validate(request, library: library)
        if console.mode != .json || result.status != .accepted {
            ProgramReport.printHuman(result, request: request, library: library, write: write)
        }
        switch result.status {
        case .accepted:
            guard let accepted = result.acceptedProgram else { throw ExitCode(3) }
            return accepted
        case .rejected:
            Output.error("the program is rejected by a hard limit: nothing was started")
            throw ExitCode(3)
        case .needsConfirmation:
            guard let reason = confirmSoftLimits else {
                Output.error("the program exceeds a soft limit: a clinician must confirm it with --confirm-soft-limits \"reason\" (recorded with --operator); nothing was started")
                throw ExitCode(2)
            }
            do {
                return try result.confirm(SoftLimitConfirmation(reason: reason, confirmedBy: operatorID))
            } catch {
                Output.error("\(error)")
                throw ExitCode(3)
            }
        }
    }

    private func makePumpDriver(clock: any MonotonicClock, timing: SessionTiming) throws -> any InfusionPump {
        var options = PumpFactoryOptions(name: "pump0 \(pumpProtocol.rawValue) on \(pump)", clock: clock, newEra: timing.newEra)
        options.module = 1
        do throws(PumpFactoryError) {
            return try makePump(protocol: pumpProtocol.rawValue, device: pump, options: options)
        } catch {
            Output.error(error.description)
            throw ExitCode(6)
        }
    }

    /// Recovers the unfinished sessions and exits 7 (or 1 when the record cannot be written).
    private func recover(_ sessions: [SessionRecord], recovery: SessionRecovery, clock: any MonotonicClock, timing: SessionTiming,
                         console: RunConsole) async throws -> Never {
        let pumpDriver = try makePumpDriver(clock: clock, timing: timing)
        defer { pumpDriver.close() }
        let reports: [RecoveryReport]
        do {
            reports = try await recovery.recover(sessions, pump: pumpDriver, connectTimeout: .seconds(3))
        } catch {
            Output.error("recovering the interrupted session failed: \(error). Check the pump at the bedside and stop it by hand if it runs.")
            throw ExitCode.failure
        }
        for report in reports {
            let event = SessionEvent(time: .zero, wallClock: Date(), body: .recovered(report))
            if console.mode == .json {
                console.show(event)
                Output.note(report.message)
            } else {
                console.message("RECOVERED: " + report.message)
            }
        }
        throw ExitCode(7)
    }

    /// The run loop: the initial start, then operator input, signals and the session's own end, until
    /// the session ends. Returns the outcome to finish with.
    private func drive(_ session: InfusionSession, console: RunConsole, input: OperatorInputQueue,
                       interactive: Bool) async -> (outcome: SessionOutcome, message: String?) {
        let timeout = (try? startTimeoutDuration()) ?? .seconds(60)
        let startResult = StartResultBox()
        let operatorID = self.operatorID
        let starting = Task {
            let result = await session.startDelivery(operator: operatorID, reason: "initial start (infusionctl run)", timeout: timeout)
            startResult.value.withLock { $0 = result }
        }
        // Ends the session at the operator's request: the initial start is cancelled and awaited first, so
        // no start can reach the supervisor after the stop.
        func end(_ reason: String) async -> SessionOutcome {
            starting.cancel()
            await starting.value
            return await session.requestEnd(operator: operatorID, reason: reason)
        }
        var started = false
        var confirmingQuit = false
        var lastLine = ContinuousClock.now
        let sessionLabel = session.sessionID.map(String.init(describing:)) ?? "?"
        while true {
            if let signal = TerminationSignals.received {
                return (await end("\(TerminationSignals.name(of: signal)): the controller was asked to stop"), nil)
            }
            if let outcome = session.endCondition { return (outcome, nil) }
            if !started, let result = startResult.value.withLock({ $0 }) {
                switch result {
                case .started:
                    started = true
                case .timedOut(let why):
                    let message = "the start checks did not pass within \(timeout.humanReadable): \(why). Nothing was delivered."
                    console.message(message)
                    _ = await session.requestEnd(operator: operatorID, reason: "the start checks never passed")
                    return (.devicesUnavailable, message)
                case .failed(let why):
                    console.message("the session could not start: \(why)")
                    let outcome = await session.requestEnd(operator: operatorID, reason: "the session could not start")
                    return (session.recordFailure == nil ? outcome : .error, why)
                }
            }
            for item in input.take() {
                let parsed: (command: OperatorCommand, reason: String?)?
                switch item {
                case .key(let byte):
                    if confirmingQuit {
                        confirmingQuit = false
                        if byte == UInt8(ascii: "y") || byte == UInt8(ascii: "Y") {
                            return (await end("quit (key q, confirmed)"), nil)
                        }
                        continue
                    }
                    parsed = OperatorCommand.key(byte).map { ($0, nil) }
                case .line(let line):
                    do {
                        parsed = try OperatorCommand.parse(line: line)
                    } catch {
                        try? session.rejectInput(error.input, operator: operatorID, message: error.message)
                        continue
                    }
                }
                guard let parsed else { continue }
                let (command, reason) = (parsed.command, parsed.reason)
                if command == .quit {
                    if interactive && session.committedMode.commandsDelivery {
                        confirmingQuit = true
                        continue
                    }
                    return (await end(reason ?? "quit"), nil)
                }
                guard let action = command.action(in: session.committedMode) else { continue }
                do {
                    try session.submit(action, operator: operatorID, reason: reason, label: command.rawValue)
                } catch {
                    console.message("\(command.rawValue) could not be recorded, so it was not done: \(error)")
                }
            }
            let status = session.status
            switch console.mode {
            case .terminal:
                let footer = confirmingQuit ? "Delivery is running: stop it and end the session? y/n" : StatusRenderer.keys
                console.redraw(console.renderer.block(status, session: sessionLabel, footer: footer))
            case .plain:
                if ContinuousClock.now - lastLine >= .seconds(1) {
                    lastLine = ContinuousClock.now
                    console.statusLine(console.renderer.line(status))
                }
            case .json:
                break
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// Where the initial start's task leaves its result for the run loop.
private final class StartResultBox: Sendable {
    let value = Mutex<InfusionSession.StartResult?>(nil)
}

extension PumpProtocolName {
    /// The family's rate resolution and range, for validation (New Era's depends on the syringe: none).
    var capabilities: PumpCapabilities? {
        switch self {
        case .newera: nil
        case .alaris: AlarisPump.pumpCapabilities
        case .fresenius: FreseniusPump.pumpCapabilities
        }
    }
}
