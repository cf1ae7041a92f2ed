import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import InfusionCore
import Logging
import Supervisor

/// The whole system in virtual time: the simulated New Era pump and a simulated Nonin DF2 oximeter
/// (75 frames a second) around the virtual patient, connected through a `VirtualNetwork` to the REAL
/// driver state machines (`NewEraSession`, `NoninSession`) and the REAL supervisor rule engine
/// (`SupervisorChannel`), all on ONE `VirtualClock`, with no threads and no sleeps. A 4-hour session
/// runs in as long as the computation takes (DESIGN.md budget: under 5 s).
///
/// It does what the production wiring does (`ChannelWiring` + `SupervisorRunner`), in virtual time:
/// - the supervisor steps every `period` and at once on every new input (sample, pump status,
///   connection change, operator action), with the same inputs the runner builds from its cells;
/// - a stop goes out as the pump's pre-encoded `STP` frame written straight on the driver's link
///   (`NewEraPump.stopFrames`, the bytes `sendStopNow()` writes), bypassing the driver's queue;
/// - a secondary stop closes the pump driver's port (its keep-alives stop, so the pump's own
///   watchdog stops it);
/// - starts and rate changes go through the driver, one request at a time, as `ChannelWiring` runs
///   them (`VOL`, `RAT`, `DIR`/`RUN`, then a status snapshot);
/// - the driver is asked for a full status snapshot every `statusInterval`;
/// - when the pump connects, its safe-mode watchdog is armed and reported armed once confirmed;
/// - the patient is coupled to the pump's real delivery every `worldStep` (`WorldModel`).
///
/// Scripted operator actions and faults (`VirtualSessionScript`) happen at their times.
///
/// Single-threaded: create it, `run`, and read it on one thread. Deterministic: the same
/// configuration, scenario and script give the same decisions at the same instants.
public final class VirtualSession {
    /// How the virtual session is set up. Defaults are the production ones.
    public struct Configuration: Sendable {
        /// The supervisor's period (the runner's: 10 ms).
        public var period: Duration = .milliseconds(10)
        /// How often the driver is asked for a full status snapshot (`ChannelWiring.statusInterval`: 1 s).
        public var statusInterval: Duration = .seconds(1)
        /// The pump's safe-mode watchdog time-out armed at connection (whole seconds, 1…255; 5 s).
        public var watchdogTimeout: Duration = .seconds(5)
        /// The pump driver's settings (400 ms reply time-out and heartbeat...); its safe-mode time-out is
        /// taken from `watchdogTimeout`.
        public var pumpDriver = NewEraSession.Configuration()
        /// The simulated pump (NE-1000, 60 mL B-D syringe, full).
        public var pump = NewEraSimulatedPump.Configuration()
        /// The pump's serial line: bytes are paced at this rate (10 bits per byte); nil for no pacing.
        public var pumpBitsPerSecond: Int? = 19200
        /// The oximeter's serial line (Nonin: 9600 baud).
        public var oximeterBitsPerSecond: Int? = 9600
        /// How often the patient is coupled to the pump's delivery and shown to the oximeter
        /// (`SimulatedWorld`'s step: 100 ms).
        public var worldStep: Duration = .milliseconds(100)
        /// The supervisor channel's number.
        public var channel: UInt16 = 0
        /// Record every `worldStep` the patient's true SpO2 and conditions (`VirtualSession.patientTrace`).
        public var tracePatient = false

        /// The defaults.
        public init() {}
    }

    /// One point of the patient's trace: the true SpO2 and the measurement conditions at `at`.
    public struct PatientPoint: Hashable, Sendable {
        /// When.
        public var at: MonotonicInstant
        /// The true SpO2 (what a perfect oximeter would read).
        public var spo2: Percentage
        /// Probe off, motion, ...
        public var conditions: MeasurementConditions
    }

    /// The instant every virtual session starts at (its `startedAt`): 1000 s, not zero, so that nothing
    /// can pass by treating the clock's origin as "never".
    public static let origin = MonotonicInstant(nanoseconds: 1_000_000_000_000)

    /// The virtual clock everything runs on.
    public let clock: VirtualClock
    /// Time zero of the script and of the patient scenario.
    public let startedAt: MonotonicInstant
    /// The configuration.
    public let configuration: Configuration

    private let network: VirtualNetwork
    private let pumpDriverNode: VirtualNetwork.NodeID
    private let oximeterDriverNode: VirtualNetwork.NodeID
    private let pumpNode: VirtualNetwork.NodeID
    private let oximeterNode: VirtualNetwork.NodeID
    private let controller: Controller
    private let world: World
    private let script: ScriptRunner

    /// A session of `program` with a patient from `scenario`, acted on by `script`. The devices are
    /// plugged in at once; nothing else happens until `run`. `sink` (optional) receives every
    /// supervisor decision as it is made, on the calling thread (an `InMemoryDecisionSink`, or a sink
    /// that writes the durable record). Throws when the scenario's patient has unusable
    /// pharmacokinetic parameters.
    public init(program: ValidatedProgram, scenario: Scenario, script: VirtualSessionScript,
                configuration: Configuration = Configuration(), sink: (any DecisionSink)? = nil,
                logger: Logger = Logger(label: "infusioncontrol.virtual-session")) throws(PharmacokineticParameterError) {
        self.configuration = configuration
        clock = VirtualClock(start: Self.origin)
        startedAt = clock.now()
        let network = VirtualNetwork(clock: clock)
        self.network = network
        let patient = try VirtualPatient(scenario: scenario)
        let world = World(model: WorldModel(patient: patient, concentration: program.concentration),
                          step: configuration.worldStep, trace: configuration.tracePatient, start: startedAt)
        self.world = world
        var driverConfiguration = configuration.pumpDriver
        driverConfiguration.safeModeTimeoutSeconds = UInt8(clamping: max(1, configuration.watchdogTimeout.components.seconds))
        let controller = Controller(
            network: network, program: program, configuration: configuration, driver: driverConfiguration,
            sink: sink, logger: logger, now: startedAt)
        self.controller = controller
        let script = ScriptRunner(script: script, start: startedAt)
        self.script = script

        // Order matters at equal instants: devices and drivers first, then the world, the script and
        // the controller, so that the controller steps on everything that happened at that instant.
        let pumpNode = network.add(ObservedPump(NewEraSimulatedPump(configuration: configuration.pump)))
        let oximeterNode = network.add(SimulatedNoninDF2())
        let pumpDriverNode = network.add(NewEraSession(configuration: driverConfiguration)) { [unowned controller] in
            controller.pumpOutput($0)
        }
        let oximeterDriverNode = network.add(NoninSession(configuration: .init(format: .df2))) { [unowned controller] in
            controller.oximeterOutput($0)
        }
        self.pumpNode = pumpNode
        self.oximeterNode = oximeterNode
        self.pumpDriverNode = pumpDriverNode
        self.oximeterDriverNode = oximeterDriverNode
        controller.pumpDriver = pumpDriverNode
        controller.oximeterDriver = oximeterDriverNode
        world.couple = { [unowned network, unowned world] now in
            let delivered = network.perform(pumpNode, as: ObservedPump.self) { pump, now, _ in pump.update(to: now) } ?? .zero
            let observation = world.advance(to: now, delivered: delivered)
            _ = network.perform(oximeterNode, as: SimulatedNoninDF2.self) { oximeter, now, _ in oximeter.observe(observation, at: now) }
        }
        world.couple(startedAt)  // the oximeter has a patient before its first frame
        let lines = (pump: configuration.pumpBitsPerSecond, oximeter: configuration.oximeterBitsPerSecond)
        script.perform = { [unowned network, unowned controller] action, now in
            Self.apply(action, at: now, network: network, controller: controller, logger: logger,
                       nodes: (pumpNode, oximeterNode), drivers: (pumpDriverNode, oximeterDriverNode), lines: lines)
        }
        network.addTimer(deadline: { world.nextAt }, tick: { world.tick($0) })
        network.addTimer(deadline: { script.nextAt }, tick: { script.tick($0) })
        network.addTimer(deadline: { controller.deadline }, tick: { controller.tick($0) })
        network.connect(pumpDriverNode, pumpNode, bitsPerSecond: configuration.pumpBitsPerSecond)
        network.connect(oximeterDriverNode, oximeterNode, bitsPerSecond: configuration.oximeterBitsPerSecond)
    }

    /// Runs until `duration` of session time has passed since the start (or further, when called
    /// again), then returns what happened so far.
    @discardableResult
    public func run(until duration: Duration) -> VirtualSessionSummary {
        network.run(until: startedAt + duration)
        return summary
    }

    /// Runs for `duration` more of virtual time.
    @discardableResult
    public func run(for duration: Duration) -> VirtualSessionSummary {
        network.run(for: duration)
        return summary
    }

    /// Session time now.
    public var elapsed: Duration { clock.now() - startedAt }

    /// The supervisor channel (mode, state, alarms) now.
    public var supervisor: SupervisorChannel { controller.channel }

    /// The simulated pump now (its prompt, rate, counters).
    public var simulatedPump: NewEraSimulatedPump {
        network.perform(pumpNode, as: ObservedPump.self) { pump, _, _ in pump.device }
            ?? NewEraSimulatedPump(configuration: configuration.pump)
    }

    /// The patient's true state at the last coupling.
    public var latestObservation: PatientObservation { world.latest }

    /// The patient's true SpO2 and conditions every `worldStep` (empty unless `tracePatient`).
    public var patientTrace: [PatientPoint] { world.trace }

    /// The first coupling instant at or after `after` (session time) at which the patient's true SpO2
    /// was below `threshold`, from the trace (`tracePatient` must be on), or nil.
    public func trueSpO2(below threshold: Percentage, after: Duration = .zero) -> MonotonicInstant? {
        world.trace.first { $0.spo2 < threshold && $0.at - startedAt >= after }?.at
    }

    /// What happened so far.
    public var summary: VirtualSessionSummary {
        let pump = network.perform(pumpNode, as: ObservedPump.self) { pump, _, _ in pump }
        let counters = network.perform(oximeterDriverNode, as: NoninSession.self) { session, _, _ in session.counters }
        let state = controller.channel.state
        return VirtualSessionSummary(
            startedAt: startedAt, endedAt: clock.now(), finalMode: state.mode, finalPhase: state.phase,
            decisions: controller.decisions, alarms: controller.alarmEvents, actions: controller.actionOutcomes,
            pumpMotion: pump?.motion ?? [],
            pumpCounter: .millilitres(pump?.device.infusedMillilitres ?? 0),
            reportedCounter: controller.lastFullStatusVolume,
            commandedVolume: state.commandedVolume, deliveredVolume: state.deliveredVolume,
            stopFramesWritten: controller.stopFramesWritten, stopFramesLost: controller.stopFramesLost,
            secondaryStops: controller.secondaryStops, supervisorSteps: controller.steps,
            samplesPublished: counters?.samplesPublished ?? 0, oximeterFramesDecoded: counters?.framesDecoded ?? 0)
    }

    // MARK: Script

    private static func apply(_ action: VirtualSessionAction, at now: MonotonicInstant, network: VirtualNetwork, controller: Controller,
                              logger: Logger, nodes: (pump: VirtualNetwork.NodeID, oximeter: VirtualNetwork.NodeID),
                              drivers: (pump: VirtualNetwork.NodeID, oximeter: VirtualNetwork.NodeID),
                              lines: (pump: Int?, oximeter: Int?)) {
        switch action {
        case .operatorAction(let operatorAction):
            controller.submit(operatorAction, at: now)
        case .pumpFault(let fault):
            let answer = network.perform(nodes.pump, as: ObservedPump.self) { pump, now, _ -> String in
                do { return try pump.inject(fault, at: now) } catch { return "refused: \(error)" }
            }
            logger.info("virtual session: pump fault \(fault.name): \(answer ?? "no pump")")
        case .oximeterFault(let fault):
            let answer = network.perform(nodes.oximeter, as: SimulatedNoninDF2.self) { oximeter, now, _ -> String in
                do { return try oximeter.inject(fault, at: now) } catch { return "refused: \(error)" }
            }
            logger.info("virtual session: oximeter fault \(fault.name): \(answer ?? "no oximeter")")
        case .unplugPump:
            network.disconnect(nodes.pump)
        case .replugPump:
            if !controller.isHalted, !controller.driverClosed {
                network.connect(drivers.pump, nodes.pump, bitsPerSecond: lines.pump)
            }
        case .unplugOximeter:
            network.disconnect(nodes.oximeter)
        case .replugOximeter:
            if !controller.isHalted {
                network.connect(drivers.oximeter, nodes.oximeter, bitsPerSecond: lines.oximeter)
            }
        case .controllerSilent:
            // The process is gone, and with it both ports.
            controller.halt()
            network.disconnect(drivers.pump)
            network.disconnect(drivers.oximeter)
        }
    }
}

// MARK: - The world (patient coupling)

/// Couples the virtual patient to the pump's delivery every `step` (as `SimulatedWorld` does on real time).
private final class World {
    private var model: WorldModel
    private let step: Duration
    private let tracing: Bool
    private(set) var latest: PatientObservation
    private(set) var trace: [VirtualSession.PatientPoint] = []
    private(set) var nextAt: MonotonicInstant
    var couple: (MonotonicInstant) -> Void = { _ in }

    init(model: WorldModel, step: Duration, trace: Bool, start: MonotonicInstant) {
        self.model = model
        self.step = max(step, .milliseconds(1))
        tracing = trace
        latest = model.patient.observation
        nextAt = start + self.step
    }

    func advance(to now: MonotonicInstant, delivered: Volume) -> PatientObservation {
        latest = model.advance(to: now, totalDelivered: delivered)
        if tracing { trace.append(.init(at: now, spo2: latest.spo2, conditions: latest.conditions)) }
        return latest
    }

    func tick(_ now: MonotonicInstant) {
        while nextAt <= now { nextAt = nextAt + step }
        couple(now)
    }
}

// MARK: - The script

private final class ScriptRunner {
    private let steps: [VirtualSessionStep]
    private let start: MonotonicInstant
    private var index = 0
    var perform: (VirtualSessionAction, MonotonicInstant) -> Void = { _, _ in }

    init(script: VirtualSessionScript, start: MonotonicInstant) {
        steps = script.steps
        self.start = start
    }

    var nextAt: MonotonicInstant? { index < steps.count ? start + max(.zero, steps[index].at) : nil }

    func tick(_ now: MonotonicInstant) {
        while let due = nextAt, due <= now {
            let action = steps[index].action
            index += 1
            perform(action, now)
        }
    }
}
