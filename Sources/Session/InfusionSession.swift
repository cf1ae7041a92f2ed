#if canImport(Glibc)
import Glibc
#endif
import Drivers
import Foundation
import InfusionCore
import Logging
import Records
import Supervisor
import Synchronization

/// Why a session could not do what was asked; each says what to do.
public enum SessionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The record store refused or failed a write: nothing of that call was recorded.
    case record(RecordStoreError)
    /// The supervisor runner could not be set up or started.
    case supervisor(RunnerError)
    /// `start()` has not been called (or failed).
    case notStarted
    /// `start()` was called twice.
    case alreadyStarted
    /// The session has ended.
    case ended

    public var description: String {
        switch self {
        case .record(let error): "the session record could not be written: \(error)"
        case .supervisor(let error): "the safety supervisor could not run: \(error). Nothing was started; stop the pump by hand if it runs"
        case .notStarted: "the session has not started: call start() first"
        case .alreadyStarted: "the session was already started: make a new session"
        case .ended: "the session has ended: start a new session"
        }
    }
}

/// One supervised infusion session end to end (DESIGN.md "Data flow of one session"): the validated
/// program, one pump and one oximeter (constructed and owned by the caller), the safety supervisor
/// (`SupervisorRunner` over a `ChannelWiring`) and the durable record.
///
/// What is committed when (docs/session.md):
/// - `start()` commits the session row (program, library identity, devices) before anything runs.
/// - Operator actions (`submit`) are committed BEFORE they are handed to the supervisor.
/// - The supervisor's real-time stop is written to the pump by the supervisor's own thread first (a
///   safety stop never waits for a disk); its decision is committed by the records thread right after,
///   and only then shown. Every other decision and alarm change is likewise committed, then emitted.
/// - Vital samples are recorded at 1 Hz plus every abnormal one; pump statuses on change and at 1 Hz;
///   both in the records thread's batches (every `recordInterval`).
/// - Everything the session SHOWS (events, `status`) comes from committed records only.
///
/// Threads: the supervisor's thread (the runner), the wiring's threads and tasks, one records thread
/// (drains the `DecisionRing`, commits, emits), one task reading the oximeter's `samples`. `onEvent`
/// is called with one event at a time, in order, from whichever thread commits it (never the
/// supervisor's). Every public method may be called from any thread; `submit` calls are serialised.
public final class InfusionSession: @unchecked Sendable {
    // @unchecked: mutable state lives in `state` (Mutex), atomics and the locks below; the rest is
    // immutable after init.

    /// Settings of a session.
    public struct Configuration: Sendable {
        /// The patient's id (recorded; must not be blank).
        public var patientID: String
        /// The operator who starts the session (recorded; must not be blank).
        public var operatorID: String
        /// The devices, for the record and the report.
        public var devices: [DeviceDescription]
        /// The pump for people ("newera on /dev/pts/3").
        public var pumpDescription: String
        /// The oximeter for people.
        public var oximeterDescription: String
        /// The dose as entered ("0.35 mg/kg/h").
        public var doseText: String
        /// The supervisor runner's settings (production: SCHED_FIFO and locked memory when allowed).
        public var runner: SupervisorRunner.Configuration
        /// The pump's own communication watchdog time-out (families that have one), controller time.
        public var watchdogTimeout: Duration
        /// How often (real time) the wiring asks the pump for a full status.
        public var statusInterval: Duration
        /// The least value (controller time) of the supervisor's device-timing limits: zero in production,
        /// a real-time floor when the controller clock runs faster (see `SessionTiming.deviceTimingLimitFloor`).
        public var deviceTimingLimitFloor: Duration
        /// How often (real time) the records thread drains decisions and commits a batch.
        public var recordInterval: Duration
        /// How often (real time) a `status` event is emitted besides mode changes (at most 1 s).
        public var statusEventInterval: Duration

        /// Settings; see each property. `timing` supplies the clock-dependent ones.
        public init(patientID: String, operatorID: String, devices: [DeviceDescription], pumpDescription: String,
                    oximeterDescription: String, doseText: String, timing: SessionTiming = SessionTiming(speed: 1),
                    runner: SupervisorRunner.Configuration = .init()) {
            self.patientID = patientID
            self.operatorID = operatorID
            self.devices = devices
            self.pumpDescription = pumpDescription
            self.oximeterDescription = oximeterDescription
            self.doseText = doseText
            self.runner = runner
            watchdogTimeout = .seconds(Int(timing.watchdogTimeoutSeconds))
            statusInterval = timing.statusInterval
            deviceTimingLimitFloor = timing.deviceTimingLimitFloor
            recordInterval = .milliseconds(20)
            statusEventInterval = .milliseconds(500)
        }
    }

    /// How an attempt to start delivery ended.
    public enum StartResult: Hashable, Sendable {
        /// The start checks passed and the start was commanded (mode `checked` or `infusing`).
        case started
        /// The start checks did not pass in time; the text says what was missing.
        case timedOut(String)
        /// The session reached a final mode or could not record.
        case failed(String)
    }

    /// The validated program.
    public let program: ValidatedProgram
    /// The settings.
    public let configuration: Configuration
    /// The pump (owned by the caller).
    public let pump: any InfusionPump
    /// The oximeter (owned by the caller).
    public let oximeter: any PulseOximeter
    /// The record store (owned by the caller).
    public let store: RecordStore
    /// The controller clock shared by drivers, supervisor and records.
    public let clock: any MonotonicClock
    /// The supervisor's limits for this program.
    public let limits: SupervisorLimits
    /// The wiring between the supervisor and the drivers.
    public let wiring: ChannelWiring
    /// The supervisor runner (one channel).
    public let runner: SupervisorRunner

    private let decisions = DecisionRing(capacity: 8192)
    private let logger: Logger
    private let onEvent: @Sendable (SessionEvent) -> Void
    private let submitLock = NSLock()
    private let emitLock = NSLock()
    private let running = Atomic<Bool>(false)
    private let recordsDone = DispatchSemaphore(value: 0)
    private let samples = Mutex<[VitalSample]>([])
    private let state = Mutex(State())

    private struct State: Sendable {
        var phase = Phase.created
        var session: SessionID?
        var startedWall = Date()
        var tracker: SessionTracker?
        var pending: [PendingOperatorAction] = []
        var answers: [Int: OperatorActionAnswer] = [:]
        var nextTicket = 0
        var recordFailure: RecordStoreError?
        var sampleTask: Task<Void, Never>?
        var endNotice: SessionEndNotice?
    }

    private enum Phase: Sendable { case created, running, ending, ended }

    /// Work the records thread prepared but could not commit yet (kept for the next attempt).
    private struct Prepared {
        var items: [Item] = []
        var samples: [VitalSample] = []
        var statuses: [PumpStatus] = []
        var isEmpty: Bool { items.isEmpty && samples.isEmpty && statuses.isEmpty }

        enum Item {
            case decision(DecisionEvent, NewEvent, answering: PendingOperatorAction?, accepted: Bool, message: String)
            case unanswered(PendingOperatorAction, NewEvent)
        }
    }

    /// A session (not started): builds the wiring and the supervisor runner. `onEvent` receives every
    /// `SessionEvent` in order (see the type's documentation). Throws when the runner cannot be set up.
    public init(program: ValidatedProgram, configuration: Configuration, pump: any InfusionPump, oximeter: any PulseOximeter,
                store: RecordStore, clock: any MonotonicClock, logger: Logger = Logger(label: "infusioncontrol.session"),
                onEvent: @escaping @Sendable (SessionEvent) -> Void = { _ in }) throws(SessionError) {
        self.program = program
        self.configuration = configuration
        self.pump = pump
        self.oximeter = oximeter
        self.store = store
        self.clock = clock
        self.logger = logger
        self.onEvent = onEvent
        limits = SupervisorLimits(program: program).raisingDeviceTimingLimits(toAtLeast: configuration.deviceTimingLimitFloor)
        do {
            wiring = try ChannelWiring(pump: pump, oximeter: oximeter, watchdogTimeout: configuration.watchdogTimeout,
                                       statusInterval: configuration.statusInterval, logger: logger)
            let channel = ChannelConfiguration(channel: 0, limits: limits, pumpHasWatchdog: pump.safety.stopsWhenControllerSilent)
            runner = try SupervisorRunner(configuration: configuration.runner, channels: [wiring.channelSetup(configuration: channel)],
                                          decisions: decisions, clock: clock)
        } catch {
            throw .supervisor(error)
        }
    }

    deinit {
        runner.stop()
        wiring.close()
        running.store(false, ordering: .releasing)
    }

    /// The supervised channel.
    public var channel: RunnerChannel { runner.channels[0] }

    /// The session's id once `start()` has committed it.
    public var sessionID: SessionID? { state.withLock { $0.session } }

    /// Starts the session: commits the session row (patient, operator, program with its library
    /// identity, devices), emits `session-started`, warns (recorded, logged, emitted) when the pump
    /// family has no pump-side stop when the controller goes silent, then starts the supervisor, the
    /// wiring and the records thread. Nothing is delivered until `startDelivery` or `submit(.start…)`.
    /// Throws (nothing running) when the record or the supervisor cannot start. Any thread; once.
    public func start() throws(SessionError) {
        let alreadyStarted = state.withLock { state -> Bool in
            guard state.phase == .created else { return true }
            state.phase = .running
            return false
        }
        if alreadyStarted { throw .alreadyStarted }
        let now = clock.now()
        let wall = Date()
        let id: SessionID
        do {
            id = try store.startSession(SessionStart(patientID: configuration.patientID, operatorID: configuration.operatorID,
                                                     startedAt: wall, startedMonotonic: now, program: program,
                                                     devices: configuration.devices))
        } catch {
            state.withLock { $0.phase = .ended }
            throw .record(error)
        }
        state.withLock {
            $0.session = id
            $0.startedWall = wall
            $0.tracker = SessionTracker(program: program, startedAt: now)
        }
        logger.notice("session \(id) started: \(program.drug.name) \(configuration.doseText), patient \(configuration.patientID), operator \(configuration.operatorID)")
        emit(.sessionStarted(SessionStartedInfo(
            session: id, patient: configuration.patientID, operatorID: configuration.operatorID, drug: program.drug.name,
            dose: configuration.doseText, rate: limits.maintenanceRate, duration: program.calculation.totalDuration,
            pump: configuration.pumpDescription, oximeter: configuration.oximeterDescription)), at: now)
        if !pump.safety.stopsWhenControllerSilent {
            let message = "this pump family has no known pump-side stop when the controller goes silent: stay at the bedside"
            let action = "Only the supervisor's own stop protects the patient if this controller fails (\(pump.safety.explanation)). Watch the pump for the whole session and stop it by hand if the controller stops responding."
            logger.warning("WARNING: \(message)")
            let record = try note("WARNING: \(message). \(action)", details: ["warning": "no-pump-side-stop", "pump": .string(pump.name)])
            emit(.warning(WarningNotice(record: record, message: "WARNING: \(message)", action: action)), at: clock.now())
        }
        wiring.connect(to: channel)
        do {
            try runner.start()
        } catch {
            wiring.close()
            _ = try? store.finishSession(id, as: .stopped, wallClock: Date(), monotonic: clock.now(),
                                         message: "session stopped: the safety supervisor could not start (\(error))")
            state.withLock { $0.phase = .ended }
            throw .supervisor(error)
        }
        let stream = oximeter.samples
        let sampleLimits = limits
        let task = Task { [self] in
            var selection = SampleSelection(limits: sampleLimits)
            for await sample in stream where sample.measuredAt >= now {
                if selection.shouldRecord(sample) { samples.withLock { $0.append(sample) } }
            }
        }
        state.withLock { $0.sampleTask = task }
        running.store(true, ordering: .releasing)
        let thread = Thread { [self] in recordsLoop(startedAt: now) }
        thread.name = "session-records"
        thread.start()
    }

    // MARK: Operator actions

    /// Records an operator action (who, why) and, once that record is committed, hands it to the
    /// supervisor. Returns a ticket for `answer(for:)` / `waitForAnswer`. The supervisor's answer is
    /// committed as a decision carrying the operator's id and reason, then emitted as `operator-action`.
    /// `label` is the word the operator used when it differs from the action ("resume" submitted as a
    /// start after an acknowledged stop). Throws (nothing handed over) when the record cannot be written,
    /// for example a blank operator id. Any thread; calls are serialised.
    @discardableResult
    public func submit(_ action: OperatorAction, operator operatorID: String, reason: String?, label: String? = nil) throws(SessionError) -> Int {
        submitLock.lock()
        defer { submitLock.unlock() }
        let (phase, session) = state.withLock { ($0.phase, $0.session) }
        guard let session else { throw .notStarted }
        guard phase == .running || phase == .ending else { throw .ended }
        let word = label ?? SessionNames.action(action)
        let now = clock.now()
        let reasonText = reason.map { ": \($0)" } ?? ""
        let event = NewEvent.operatorAction(
            "operator \(operatorID) asks to \(word)\(reasonText)", operatorID: operatorID, reason: reason, monotonic: now,
            wallClock: Date(), channel: "1",
            details: ["action": .string(word), "supervisor_action": .string(SessionNames.action(action)), "mode": .string(SessionNames.mode(channel.mode))])
        let sequence: Int64
        do { sequence = try store.append(event, to: session) } catch { throw .record(error) }
        let ticket = state.withLock { state -> Int in
            state.nextTicket += 1
            state.pending.append(PendingOperatorAction(ticket: state.nextTicket, action: action, operatorID: operatorID,
                                                       reason: reason, requestRecord: sequence, label: word))
            return state.nextTicket
        }
        if !channel.submit(action) {
            // Never handed over: the supervisor's action queue is full.
            let entry = state.withLock { state -> PendingOperatorAction? in
                guard let index = state.pending.firstIndex(where: { $0.ticket == ticket }) else { return nil }
                return state.pending.remove(at: index)
            }
            if let entry { try refuseUnhandled(entry, why: "the supervisor's action queue is full: try again in a moment", session: session) }
        }
        return ticket
    }

    /// Records and emits an operator input that was not understood (an `operator-action` with
    /// `accepted: false`). Nothing is handed to the supervisor. Any thread.
    public func rejectInput(_ input: String, operator operatorID: String, message: String) throws(SessionError) {
        submitLock.lock()
        defer { submitLock.unlock() }
        guard let session = sessionID else { throw .notStarted }
        let now = clock.now()
        let event = NewEvent.operatorAction("operator input refused: \"\(input)\": \(message)", operatorID: operatorID,
                                            monotonic: now, wallClock: Date(), channel: "1", details: ["input": .string(input)])
        let sequence: Int64
        do { sequence = try store.append(event, to: session) } catch { throw .record(error) }
        emit(.operatorAction(OperatorActionNotice(record: sequence, action: input, operatorID: operatorID, reason: nil,
                                                  accepted: false, message: message)), at: now)
    }

    /// The supervisor's committed answer to the action with `ticket`, or nil while there is none yet.
    public func answer(for ticket: Int) -> OperatorActionAnswer? { state.withLock { $0.answers[ticket] } }

    /// Waits (real time, polling) up to `timeout` for the committed answer to `ticket`.
    public func waitForAnswer(_ ticket: Int, timeout: Duration) async -> OperatorActionAnswer? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let answer = answer(for: ticket) { return answer }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return answer(for: ticket)
    }

    /// The operator's start: waits until the devices are ready (both connected, a valid reading, the
    /// pump's status known and, for families that have one, its watchdog armed), then submits `start`
    /// (recorded with `reason`), and submits it again after each refusal until the start checks pass or
    /// `timeout` (controller time) passes. Never starts anything the supervisor's checks refuse.
    public func startDelivery(operator operatorID: String, reason: String, timeout: Duration) async -> StartResult {
        let deadline = clock.now() + timeout
        var attempts = 0
        var why = "the devices did not become ready"
        let retryPause = min(max(clock.realDuration(of: .seconds(1)), .milliseconds(50)), .seconds(1))
        while clock.now() < deadline {
            if Task.isCancelled { return .failed("the start was cancelled") }
            let mode = committedMode
            if mode.commandsDelivery { return .started }
            if let failure = recordFailure { return .failed("the record store failed: \(failure)") }
            if mode == .complete || mode == .stoppedByOperator || mode == .fault {
                return .failed("the session is \(mode): no start possible")
            }
            if let missing = readinessProblem() {
                why = missing
                try? await Task.sleep(for: .milliseconds(20))
                continue
            }
            attempts += 1
            let ticket: Int
            do {
                ticket = try submit(.start, operator: operatorID, reason: attempts == 1 ? reason : "\(reason) (attempt \(attempts))")
            } catch {
                return .failed("\(error)")
            }
            guard let answer = await waitForAnswer(ticket, timeout: .seconds(5)) else {
                why = "the supervisor did not answer the start"
                continue
            }
            if answer.accepted {
                // The answer is committed; the mode follows in the same batch.
                return .started
            }
            why = answer.message
            try? await Task.sleep(for: retryPause)
        }
        return .timedOut(why)
    }

    /// Which precondition of a start is missing, for the operator; nil when the devices look ready (the
    /// supervisor's start checks still decide).
    public func readinessProblem() -> String? {
        if oximeter.connection != .connected { return "the oximeter (\(oximeter.name)) is not sending data: check its cable and probe" }
        guard oximeter.latestSample?.isValid == true else { return "no valid oximeter reading yet: check the probe" }
        if channel.pump.linkState != .connected || pump.lastStatus == nil {
            return "the pump (\(pump.name)) is not responding: check its cable, power and protocol"
        }
        if pump.safety.stopsWhenControllerSilent, !channel.pump.watchdogArmed {
            return "the pump's own communication watchdog is not armed yet (\(pump.name))"
        }
        return nil
    }

    // MARK: State

    /// The snapshot of committed state for the display (see `SessionStatus`). Any thread.
    public var status: SessionStatus {
        let now = clock.now()
        return state.withLock { state in
            state.tracker?.status(at: now)
                ?? SessionTracker(program: program, startedAt: now).status(at: now)
        }
    }

    /// The mode as of the last committed decision.
    public var committedMode: ChannelMode { state.withLock { $0.tracker?.mode ?? .idle } }

    /// The record-store failure that stopped recording, if any (the session must then end: exit 1).
    public var recordFailure: RecordStoreError? { state.withLock { $0.recordFailure } }

    /// How the session ends by itself, once it does: `completed` when the program has run to its end,
    /// the operator's stop, or `error` when recording failed. Nil while it runs or waits for the
    /// operator (after a supervisor stop the session stays open: nothing restarts on its own).
    public var endCondition: SessionOutcome? {
        state.withLock { state in
            if state.recordFailure != nil { return .error }
            guard let tracker = state.tracker else { return nil }
            switch tracker.mode {
            case .complete: return .completed
            case .stoppedByOperator: return tracker.stoppedBySupervisorSinceDelivery ? .endedAfterSupervisorStop : .stoppedByOperator
            default: return nil
            }
        }
    }

    /// The operator ends the session: stops delivery when it may be running (a recorded `stop` with
    /// `reason`), waits for the answer, and returns how the session ends: `completed` when the program
    /// had already completed, `ended-after-supervisor-stop` when the last thing that stopped delivery
    /// was the supervisor, otherwise `stopped-by-operator`. Call `finish(outcome:)` next.
    public func requestEnd(operator operatorID: String, reason: String) async -> SessionOutcome {
        if let outcome = endCondition { return outcome }
        let mode = committedMode
        let afterSupervisorStop = state.withLock { $0.tracker?.stoppedBySupervisorSinceDelivery ?? false }
        if let ticket = try? submit(.stop, operator: operatorID, reason: reason) {
            _ = await waitForAnswer(ticket, timeout: .seconds(5))
        }
        if recordFailure != nil { return .error }
        if mode == .fault || afterSupervisorStop { return .endedAfterSupervisorStop }
        return .stoppedByOperator
    }

    /// Ends the session: waits (bounded) for the pump to report itself stopped, stops the supervisor,
    /// commits what is left (decisions, samples, statuses), commits the session's end (`completed` for
    /// `.completed`, otherwise `stopped`, with the outcome in the message), closes the wiring (not the
    /// drivers) and emits `session-ended`. Returns the notice (its outcome is `error` when the end could
    /// not be recorded). Idempotent: later calls return the first notice.
    @discardableResult
    public func finish(outcome requested: SessionOutcome, message: String? = nil) async -> SessionEndNotice {
        let (phase, session) = state.withLock { state -> (Phase, SessionID?) in
            let phase = state.phase
            if phase == .running { state.phase = .ending }
            return (phase, state.session)
        }
        if phase == .ending || phase == .ended {
            while true {
                if let notice = state.withLock({ $0.endNotice }) { return notice }
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        guard let session else {
            let notice = SessionEndNotice(session: SessionID(rawValue: 0), outcome: .error, delivered: .zero, deliveredMass: Mass.zero,
                                          record: nil, message: "the session never started")
            state.withLock { $0.phase = .ended; $0.endNotice = notice }
            return notice
        }
        // Let a stop that was commanded be confirmed and recorded before the supervisor stops watching.
        let wait = max(clock.realDuration(of: limits.stopConfirmationDeadline * 2), .milliseconds(500))
        let deadline = ContinuousClock.now + wait
        while ContinuousClock.now < deadline {
            let reported = pump.lastStatus?.state
            if channel.mode.commandsDelivery == false, reported?.isKnownStopped ?? false { break }
            try? await Task.sleep(for: .milliseconds(10))
        }
        try? await Task.sleep(for: max(clock.realDuration(of: .milliseconds(500)), .milliseconds(30)))
        runner.stop()
        running.store(false, ordering: .releasing)
        _ = recordsDone.wait(timeout: .now() + 10)
        state.withLock { $0.sampleTask?.cancel() }
        wiring.close()

        var outcome = requested
        if recordFailure != nil { outcome = .error }
        let stored: SessionState = outcome == .completed ? .completed : .stopped
        let text = message ?? Self.endMessage(outcome)
        var record: Int64?
        do {
            record = try store.finishSession(session, as: stored, wallClock: Date(), monotonic: clock.now(),
                                             message: "session \(stored.rawValue): \(outcome.rawValue): \(text)",
                                             operatorID: configuration.operatorID)
        } catch {
            logger.critical("session \(session): its end could not be recorded: \(error)")
            outcome = .error
        }
        let delivered = state.withLock { $0.tracker?.delivered ?? .zero }
        let notice = SessionEndNotice(session: session, outcome: outcome, delivered: delivered,
                                      deliveredMass: Dosing.deliveredDose(volume: delivered, concentration: program.concentration),
                                      record: record, message: text)
        emit(.sessionEnded(notice), at: clock.now())
        state.withLock {
            $0.phase = .ended
            $0.endNotice = notice
        }
        logger.notice("session \(session) ended: \(outcome.rawValue), \(delivered.formatted(fractionDigits: 3)) delivered")
        return notice
    }

    static func endMessage(_ outcome: SessionOutcome) -> String {
        switch outcome {
        case .completed: "the program ran to its end"
        case .stoppedByOperator: "the operator ended the session before the program's end"
        case .endedAfterSupervisorStop: "the session ended after a supervisor stop or device fault, without completing the program"
        case .devicesUnavailable: "the devices were unavailable or the start checks never passed: nothing was delivered"
        case .error: "an internal or record-store error ended the session: check the pump at the bedside"
        }
    }

    // MARK: Records thread

    private func recordsLoop(startedAt: MonotonicInstant) {
        var prepared = Prepared()
        var pumpSelection = PumpStatusSelection()
        var lastStatusEvent = ContinuousClock.now
        var failures = 0
        let interval = configuration.recordInterval
        while running.load(ordering: .acquiring) {
            failures = flush(&prepared, &pumpSelection, startedAt: startedAt, failures: failures)
            if ContinuousClock.now - lastStatusEvent >= configuration.statusEventInterval {
                lastStatusEvent = ContinuousClock.now
                emit(.status(status), at: clock.now())
            }
            Thread.sleep(forTimeInterval: interval.seconds)
        }
        // The supervisor has stopped: commit everything it decided.
        for _ in 0..<3 where !prepared.isEmpty || decisions.count > 0 || !samples.withLock({ $0.isEmpty }) {
            failures = flush(&prepared, &pumpSelection, startedAt: startedAt, failures: failures)
        }
        if let last = pump.lastStatus, last.receivedAt >= startedAt, pumpSelection.shouldRecord(last) {
            prepared.statuses.append(last)
            failures = flush(&prepared, &pumpSelection, startedAt: startedAt, failures: failures)
        }
        recordsDone.signal()
    }

    /// One batch: drain decisions, match answers, take samples and a pump status, commit them in one
    /// transaction, then (only then) update the committed view and emit. Returns the consecutive
    /// failure count; after three the session reports a record failure (and must end).
    private func flush(_ prepared: inout Prepared, _ pumpSelection: inout PumpStatusSelection, startedAt: MonotonicInstant, failures: Int) -> Int {
        guard let session = sessionID else { return failures }
        var drained: [DecisionEvent] = []
        decisions.drain { drained.append($0) }
        let now = clock.now()
        if !drained.isEmpty {
            let tracker = state.withLock { $0.tracker }
            guard let tracker else { return failures }
            state.withLock { state in
                for decision in drained {
                    let wall = wallClock(for: decision.at, now: now)
                    if let match = OperatorAnswers.match(decision, in: &state.pending) {
                        for lost in match.unanswered {
                            let event = NewEvent.operatorAction(
                                "the supervisor did not answer \(lost.label) (operator \(lost.operatorID))", operatorID: lost.operatorID,
                                reason: lost.reason, monotonic: decision.at, wallClock: wall, channel: "1",
                                details: ["action": .string(lost.label), "request_record": .number(Double(lost.requestRecord))])
                            prepared.items.append(.unanswered(lost, event))
                        }
                        prepared.items.append(.decision(decision, tracker.record(for: decision, wallClock: wall, answering: match.answered),
                                                        answering: match.answered, accepted: match.accepted, message: match.message))
                    } else {
                        prepared.items.append(.decision(decision, tracker.record(for: decision, wallClock: wall), answering: nil,
                                                        accepted: false, message: ""))
                    }
                }
            }
        }
        prepared.samples.append(contentsOf: samples.withLock { taken in
            defer { taken.removeAll(keepingCapacity: true) }
            return taken
        })
        if let status = pump.lastStatus, status.receivedAt >= startedAt, pumpSelection.shouldRecord(status) {
            prepared.statuses.append(status)
        }
        guard !prepared.isEmpty else { return failures }
        let events = prepared.items.map { item -> NewEvent in
            switch item {
            case let .decision(_, event, _, _, _): event
            case let .unanswered(_, event): event
            }
        }
        let sequences: [Int64]
        do {
            sequences = try store.append(RecordBatch(events: events, samples: prepared.samples, pumpStatuses: prepared.statuses), to: session)
        } catch {
            logger.critical("session \(session): a batch of \(events.count) events could not be committed (\(error)); retrying")
            if failures + 1 >= 3 {
                state.withLock { if $0.recordFailure == nil { $0.recordFailure = error } }
            }
            return failures + 1
        }
        // Committed: now update what is shown, then show it.
        let batch = prepared
        prepared = Prepared()
        let (modeBefore, modeAfter) = state.withLock { state -> (ChannelMode, ChannelMode) in
            let before = state.tracker?.mode ?? .idle
            for item in batch.items { if case let .decision(decision, _, _, _, _) = item { state.tracker?.apply(decision) } }
            state.tracker?.noteRecorded(samples: batch.samples, pumpStatuses: batch.statuses)
            return (before, state.tracker?.mode ?? .idle)
        }
        for (item, sequence) in zip(batch.items, sequences) {
            switch item {
            case let .unanswered(lost, event):
                let message = "the supervisor did not answer this action; check the session's state and try again"
                answerCommitted(lost, OperatorActionAnswer(accepted: false, message: message, record: sequence), at: event.monotonic)
            case let .decision(decision, _, answering, accepted, message):
                let notice = state.withLock { $0.tracker?.notice(for: decision, record: sequence) }
                if let notice { emit(notice, at: decision.at) }
                if let answering {
                    answerCommitted(answering, OperatorActionAnswer(accepted: accepted, message: message, record: sequence), at: decision.at)
                }
            }
        }
        if modeBefore != modeAfter { emit(.status(status), at: clock.now()) }
        return 0
    }

    private func answerCommitted(_ action: PendingOperatorAction, _ answer: OperatorActionAnswer, at instant: MonotonicInstant) {
        state.withLock { $0.answers[action.ticket] = answer }
        emit(.operatorAction(OperatorActionNotice(record: answer.record, action: action.label, operatorID: action.operatorID,
                                                  reason: action.reason, accepted: answer.accepted, message: answer.message)), at: instant)
    }

    private func refuseUnhandled(_ entry: PendingOperatorAction, why: String, session: SessionID) throws(SessionError) {
        let now = clock.now()
        let event = NewEvent.operatorAction("\(entry.label) not handed to the supervisor: \(why)", operatorID: entry.operatorID,
                                            reason: entry.reason, monotonic: now, wallClock: Date(), channel: "1",
                                            details: ["action": .string(entry.label), "request_record": .number(Double(entry.requestRecord))])
        let sequence: Int64
        do { sequence = try store.append(event, to: session) } catch { throw .record(error) }
        answerCommitted(entry, OperatorActionAnswer(accepted: false, message: why, record: sequence), at: now)
    }

    /// Records a note (committed) and returns its sequence number.
    private func note(_ message: String, details: [String: JSONValue]) throws(SessionError) -> Int64 {
        guard let session = sessionID else { throw .notStarted }
        do {
            return try store.append(NewEvent(kind: .note, monotonic: clock.now(), wallClock: Date(), message: message, channel: "1",
                                             details: .object(details)), to: session)
        } catch {
            throw .record(error)
        }
    }

    /// The wall-clock time of a controller instant (`now` is the controller's present).
    private func wallClock(for instant: MonotonicInstant, now: MonotonicInstant) -> Date {
        let ago = clock.realDuration(of: max(.zero, now - instant))
        return Date().addingTimeInterval(-ago.seconds)
    }

    private func emit(_ body: SessionEvent.Body, at instant: MonotonicInstant) {
        let started = state.withLock { $0.tracker?.startedAt } ?? instant
        let event = SessionEvent(time: max(.zero, instant - started), wallClock: Date(), body: body)
        emitLock.lock()
        defer { emitLock.unlock() }
        onEvent(event)
    }
}
