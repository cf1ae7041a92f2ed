import DeviceIO
import DeviceProtocols
import Drivers
import InfusionCore
import Logging
import Supervisor

/// The controller side of a virtual session: what `SupervisorRunner` and `ChannelWiring` do on real
/// threads, done on the virtual network's single thread. It reads the drivers' outputs as the
/// wiring's cells would hold them, steps the supervisor's rule engine every period and on new input,
/// writes stops straight on the pump driver's link, runs starts and rate changes through the driver
/// one request at a time, polls the pump's full status, and arms the pump's watchdog on connection.
final class Controller {
    unowned let network: VirtualNetwork
    var pumpDriver: VirtualNetwork.NodeID?
    var oximeterDriver: VirtualNetwork.NodeID?

    private(set) var channel: SupervisorChannel
    private var output = StepOutput()
    private let sink: (any DecisionSink)?
    private let logger: Logger
    private let period: Duration
    private let statusInterval: Duration
    private let watchdogSeconds: UInt8
    private let stopFrames: (safe: [UInt8], basic: [UInt8])

    // The cells (what the drivers last published).
    private var vitals: VitalSample?
    private var oximeterLink: DeviceConnection = .disconnected
    private var pump: PumpStatus?
    private var pumpLink: DeviceConnection = .disconnected
    private var watchdogArmed = false
    private var pumpSpeaksSafe = false
    private(set) var lastFullStatusVolume: Volume?

    // Stepping.
    private var nextPeriodAt: MonotonicInstant
    private var newInput = false
    private var pendingActions: [(action: OperatorAction, index: Int)] = []
    private(set) var isHalted = false
    private(set) var driverClosed = false

    // Driver requests (the wiring's command task, status task and watchdog arming).
    private var nextRequestID: NewEraSession.RequestID = 1
    private var commandQueue: [PumpCommand] = []
    private var commandSteps: [NewEraSession.Request] = []
    private var commandInFlight: NewEraSession.RequestID?
    private var statusInFlight: NewEraSession.RequestID?
    private var statusDueAt: MonotonicInstant?
    private var statusRequested = false
    private var armInFlight: NewEraSession.RequestID?
    private var armWanted = false
    private var driverWork = false

    // What happened.
    private(set) var decisions: [DecisionEvent] = []
    private(set) var alarmEvents: [AlarmEvent] = []
    private(set) var actionOutcomes: [ScriptedActionOutcome] = []
    private(set) var steps = 0
    private(set) var stopFramesWritten = 0
    private(set) var stopFramesLost = 0
    private(set) var secondaryStops = 0

    init(network: VirtualNetwork, program: ValidatedProgram, configuration: VirtualSession.Configuration,
         driver: NewEraSession.Configuration, sink: (any DecisionSink)?, logger: Logger, now: MonotonicInstant) {
        self.network = network
        channel = SupervisorChannel(
            configuration: ChannelConfiguration(channel: configuration.channel, program: program, pumpHasWatchdog: true), now: now)
        self.sink = sink
        self.logger = logger
        period = max(configuration.period, .microseconds(100))
        statusInterval = configuration.statusInterval
        watchdogSeconds = driver.safeModeTimeoutSeconds
        stopFrames = NewEraPump.stopFrames(address: driver.address)
        nextPeriodAt = now + period
        statusDueAt = now  // the wiring's status task asks at once (the session waits for the link)
    }

    /// When the controller must run: at once when something is pending, else at the next period.
    var deadline: MonotonicInstant? {
        guard !isHalted else { return nil }
        if newInput || driverWork || !pendingActions.isEmpty { return network.clock.now() }
        if let due = statusDueAt, statusInFlight == nil, !driverClosed, due < nextPeriodAt { return due }
        return nextPeriodAt
    }

    /// Queues an operator action for the next step (the runner's `submit`).
    func submit(_ action: OperatorAction, at now: MonotonicInstant) {
        actionOutcomes.append(ScriptedActionOutcome(at: now, action: action, outcome: nil))
        guard !isHalted else { return }  // nobody is there to step it: its outcome stays nil
        pendingActions.append((action, actionOutcomes.count - 1))
    }

    /// The controller process is gone: no more steps, requests or stops.
    func halt() { isHalted = true }

    // MARK: Driver outputs (the wiring's event tasks and sample handler)

    func oximeterOutput(_ output: OximeterOutput) {
        guard !isHalted else { return }
        switch output {
        case .sample(let sample):
            vitals = sample
            newInput = true
        case let .connection(state, _):
            oximeterLink = state
            newInput = true
        case .noData, .notice:
            break  // the supervisor judges freshness from the samples' own times (R-MON-08)
        }
    }

    func pumpOutput(_ output: NewEraSession.Output) {
        guard !isHalted else { return }
        switch output {
        case .status(let status):
            pump = status
            newInput = true
        case let .connection(state, _):
            pumpLink = state
            newInput = true
            if state != .connected {
                watchdogArmed = false
            } else {
                armWanted = true
                driverWork = true
            }
        case .alarms:
            break  // they also arrive in the next status, which the supervisor judges
        case .framing(let mode):
            pumpSpeaksSafe = mode == .safe
        case let .completed(id, outcome):
            completed(id, outcome)
        }
    }

    private func completed(_ id: NewEraSession.RequestID, _ outcome: NewEraSession.Outcome) {
        if id == statusInFlight {
            statusInFlight = nil
            if case .confirmed(.status(let status)) = outcome { lastFullStatusVolume = status.volumeInfused ?? lastFullStatusVolume }
            statusDueAt = network.clock.now() + statusInterval
        } else if id == armInFlight {
            armInFlight = nil
            switch outcome {
            case .confirmed:
                watchdogArmed = true
                newInput = true
            case let .refused(code, reason):
                logger.error("virtual pump: the pump refused to arm its watchdog (\(code): \(reason)); starts will be refused")
            case .uncertain(let reason):
                logger.error("virtual pump: arming the pump's watchdog is uncertain (\(reason)); starts will be refused")
            }
        } else if id == commandInFlight {
            commandInFlight = nil
            switch outcome {
            case .confirmed: break
            case let .refused(code, reason): logger.error("virtual pump: the pump refused a command (\(code)): \(reason)")
            case .uncertain(let reason): logger.warning("virtual pump: command uncertain (\(reason)); the supervisor judges from the reported status")
            }
        }
        driverWork = true
    }

    // MARK: The tick

    func tick(_ now: MonotonicInstant) {
        guard !isHalted else { return }
        driverWork = false
        submitDriverRequests(now)
        if newInput || !pendingActions.isEmpty || now >= nextPeriodAt {
            while nextPeriodAt <= now { nextPeriodAt = nextPeriodAt + period }
            newInput = false
            step(now)
            // Commands the step queued go to the driver in this same instant.
            submitDriverRequests(now)
        }
    }

    /// One runner tick: one step per queued action (at least one), each dispatched at once.
    private func step(_ now: MonotonicInstant) {
        var inputs = ChannelInputs(vitals: vitals, oximeter: oximeterLink, pump: pump, pumpLink: pumpLink,
                                   pumpWatchdogArmed: watchdogArmed, action: nil)
        guard !pendingActions.isEmpty else {
            channel.step(inputs: inputs, now: now, into: &output)
            steps += 1
            dispatch(now)
            return
        }
        let queued = pendingActions
        pendingActions = []
        for next in queued {
            inputs.action = next.action
            channel.step(inputs: inputs, now: now, into: &output)
            steps += 1
            actionOutcomes[next.index].outcome = output.actionOutcome
            dispatch(now)
        }
    }

    private func dispatch(_ now: MonotonicInstant) {
        if output.stopIsUrgent {
            for command in output.commands where command.isUrgent {
                if command == .secondaryStop {
                    secondaryStops += 1
                    closeDriver()
                } else {
                    writeStop()
                }
            }
            // As in ChannelWiring: a stop overrides every start or rate change decided before it that
            // has not gone out yet (the request already in flight is followed by the stop frame).
            commandQueue.removeAll()
            commandSteps.removeAll { $0 != .status }
        } else {
            for command in output.commands { commandQueue.append(command) }
        }
        for event in output.decisions {
            decisions.append(event)
            if case .alarm(let alarm) = event.kind { alarmEvents.append(alarm) }
            sink?.record(event)
        }
    }

    /// The stop path: the pre-encoded `STP` frame written on the driver's link, past its queue.
    private func writeStop() {
        guard let driver = pumpDriver, !driverClosed, pumpLink != .disconnected else {
            stopFramesLost += 1
            return
        }
        let frame = pumpSpeaksSafe ? stopFrames.safe : stopFrames.basic
        network.perform(driver, as: NewEraSession.self) { _, _, effects in effects.send(frame) }
        stopFramesWritten += 1
    }

    /// The secondary stop: close the pump driver, so its keep-alives stop and the pump's own watchdog
    /// stops the pump.
    private func closeDriver() {
        guard !driverClosed else { return }
        driverClosed = true
        logger.critical("virtual pump: secondary stop: closing the driver so the keep-alives stop and the pump's own watchdog stops it")
        if let driver = pumpDriver { network.disconnect(driver) }
        commandQueue.removeAll()
        commandSteps.removeAll()
        watchdogArmed = false
        pumpLink = .disconnected
    }

    // MARK: Driver requests

    private func submitDriverRequests(_ now: MonotonicInstant) {
        guard !driverClosed else { return }
        if armWanted, armInFlight == nil {
            armWanted = false
            armInFlight = submit(.setSafeMode(seconds: watchdogSeconds), now)
        }
        if commandInFlight == nil {
            if commandSteps.isEmpty, !commandQueue.isEmpty {
                commandSteps = requests(for: commandQueue.removeFirst())
            }
            if !commandSteps.isEmpty {
                let request = commandSteps.removeFirst()
                if request == .status {
                    // The snapshot after a start or rate change (the wiring's `pump.status()`).
                    statusRequested = true
                } else {
                    commandInFlight = submit(request, now)
                }
            }
        }
        if statusInFlight == nil, statusRequested || (statusDueAt.map { $0 <= now } ?? false) {
            statusRequested = false
            statusDueAt = nil
            statusInFlight = submit(.status, now)
        }
    }

    private func submit(_ request: NewEraSession.Request, _ now: MonotonicInstant) -> NewEraSession.RequestID? {
        guard let driver = pumpDriver else { return nil }
        let id = nextRequestID
        nextRequestID += 1
        network.perform(driver, as: NewEraSession.self) { session, now, effects in
            session.submit(request, id: id, now: now, effects: &effects)
        }
        return id
    }

    /// The driver requests for a supervisor command, as `ChannelWiring` sends them through `NewEraPump`.
    private func requests(for command: PumpCommand) -> [NewEraSession.Request] {
        switch command {
        case let .start(rate, volumeLimit):
            var list: [NewEraSession.Request] = []
            if case let (number, unit)? = NewEraPump.volumeSetting(for: volumeLimit) {
                list.append(.setVolume(number, unit))
            } else {
                logger.error("virtual pump: volume limit \(volumeLimit) cannot be sent to a New Era pump")
            }
            if let setting = rateSetting(rate) { list.append(.setRate(setting)) }
            return list + [.start, .status]
        case .setRate(let rate):
            return (rateSetting(rate).map { [NewEraSession.Request.setRate($0)] } ?? []) + [.status]
        case .stop, .secondaryStop:
            return []  // urgent commands never come through the queue
        }
    }

    private func rateSetting(_ rate: VolumeRate) -> NewEra.RateSetting? {
        do {
            return try NewEra.RateSetting.roundingDown(rate).0
        } catch {
            logger.error("virtual pump: rate \(rate) cannot be sent to a New Era pump: \(error)")
            return nil
        }
    }
}
