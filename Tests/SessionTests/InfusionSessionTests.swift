import DeviceIO
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Records
import Session
import Supervisor
import Synchronization
import Testing

/// Whole sessions over REAL pseudo-terminals, in process: simulated New Era pump and Nonin oximeter,
/// the real drivers, `InfusionSession` (supervisor runner, wiring, records thread) and a real record
/// store, all on one `ScaledClock` so a 2–3 minute program takes a few real seconds.
@Suite("Session: InfusionSession over ptys", .serialized)
struct InfusionSessionTests {
    static let speed = 30.0

    /// Collects emitted events.
    final class Events: Sendable {
        private let storage = Mutex<[SessionEvent]>([])
        func append(_ event: SessionEvent) { storage.withLock { $0.append(event) } }
        var all: [SessionEvent] { storage.withLock { $0 } }
    }

    /// A session on `bedside` with `program`, recording into a fresh database under `directory`.
    static func makeSession(_ bedside: SimulatedBedside, program: ValidatedProgram, store: RecordStore, events: Events)
        throws -> (InfusionSession, NewEraPump, any PulseOximeter) {
        let (pumpPath, oximeterPath) = try bedside.paths()
        let timing = SessionTiming(speed: speed)
        let pump = NewEraPump(path: pumpPath, configuration: timing.newEra, clock: bedside.clock)
        let oximeter = makePulseOximeter(protocol: .noninDF8, path: oximeterPath, clock: bedside.clock)
        var configuration = InfusionSession.Configuration(
            patientID: "P-001", operatorID: "nurse-1",
            devices: [DeviceDescription(role: "pump", model: "New Era (simulated)", wireProtocol: "newera", path: pumpPath),
                      DeviceDescription(role: "oximeter", model: "Nonin DF8 (simulated)", wireProtocol: "nonin-df8", path: oximeterPath)],
            pumpDescription: "newera on \(pumpPath)", oximeterDescription: "nonin-df8 on \(oximeterPath)", doseText: "0.35 mg/kg/h",
            timing: timing, runner: .init(realTimePriority: nil, lockMemory: false))
        configuration.recordInterval = .milliseconds(20)
        let session = try InfusionSession(program: program, configuration: configuration, pump: pump, oximeter: oximeter,
                                          store: store, clock: bedside.clock, onEvent: { events.append($0) })
        return (session, pump, oximeter)
    }

    static func temporaryDatabase() -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("session-tests-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent("records.sqlite").path
    }

    /// Polls (real time) until `condition` or `timeout`.
    static func wait(_ timeout: Duration, _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    @Test("an uneventful 2-minute program completes; the record holds the session, decisions, ~1 Hz samples and pump statuses; the report renders")
    func uneventfulSessionCompletes() async throws {
        let bedside = try SimulatedBedside(speed: Self.speed)
        defer { bedside.stop() }
        let path = Self.temporaryDatabase()
        let store = try RecordStore.open(path: path)
        let events = Events()
        let program = try shortProgram(minutes: 2)
        let (session, pump, oximeter) = try Self.makeSession(bedside, program: program, store: store, events: events)
        defer {
            pump.close()
            oximeter.close()
        }
        try session.start()
        let started = await session.startDelivery(operator: "nurse-1", reason: "initial start", timeout: .seconds(60))
        #expect(started == .started)
        #expect(await Self.wait(.seconds(20)) { session.endCondition != nil }, "the program should run to its end (mode \(session.committedMode))")
        #expect(session.endCondition == .completed)
        let notice = await session.finish(outcome: session.endCondition ?? .error)
        #expect(notice.outcome == .completed)
        #expect(bedside.pump.inspect { $0.prompt } != .infusing, "the simulated pump must have stopped")

        let id = try #require(session.sessionID)
        let loaded = try store.load(id)
        #expect(loaded.session.state == .completed)
        let decisions = loaded.events.filter { $0.kind == .supervisorDecision }
        #expect(decisions.contains { $0.message.contains("start checks passed") }, "the start is recorded")
        #expect(decisions.contains { $0.message.contains("confirmed delivery") }, "the pump's confirmation is recorded")
        #expect(decisions.contains { $0.message.contains("complete") }, "the program's end is recorded")
        #expect(loaded.events.contains { $0.kind == .operatorAction && $0.operatorID == "nurse-1" && $0.reason == "initial start" })
        // Samples: one a second of controller time (the patient is calm: nothing abnormal to add).
        let samples = loaded.samples
        let first = try #require(samples.first?.measuredAt), last = try #require(samples.last?.measuredAt)
        let span = (last - first).seconds
        #expect(span > 110, "samples should cover the program (span \(span) s)")
        #expect(Double(samples.count) >= span * 0.8 && Double(samples.count) <= span * 1.2 + 2,
                "about one sample a second: \(samples.count) over \(span) s")
        #expect(loaded.pumpStatuses.count >= 60, "pump statuses on change and about once a second: \(loaded.pumpStatuses.count)")
        #expect(loaded.pumpStatuses.contains { $0.state == .infusing })
        // Delivered volume from the pump's own counter: 28 mL/h for 2 min = 0.933 mL.
        #expect(abs(notice.delivered.millilitres - 28.0 * 2 / 60) < 0.1, "delivered \(notice.delivered)")
        let html = HTMLReport.render(loaded, options: ReportOptions(timeZone: TimeZone(identifier: "UTC") ?? .current))
        #expect(html.contains("<svg"))
        // Events: in order, recording events only after their commit (every `record` is in the store).
        let emitted = events.all
        #expect(emitted.first?.type == "session-started")
        #expect(emitted.last?.type == "session-ended")
        let sequences = Set(loaded.events.map(\.sequence))
        for event in emitted { if let record = event.record { #expect(sequences.contains(record)) } }
        #expect(emitted.contains { if case .status(let s) = $0.body { s.mode == .infusing } else { false } })
        try store.close()
    }

    /// SpO2 97 %, falling at 40 s to 84 % over 10 s (below the 85 % immediate-stop level), held 20 s,
    /// back to 97 % over 15 s.
    static let desaturation = """
        format = 1

        [scenario]
        name = "Session test: desaturation, stop, acknowledge, restart"

        [patient]
        weight = "80 kg"
        spo2 = "97 %"
        pulse_rate = "76 bpm"
        noise_seed = 3

        [[event]]
        at = "40 s"
        kind = "desaturation"
        to = "84 %"
        onset = "10 s"
        hold = "20 s"
        recovery = "15 s"
        """

    @Test("desaturation → supervisor stop → operator acknowledges → resumes with fresh checks → infusing → complete; who and why are recorded")
    func desaturationStopAcknowledgeResume() async throws {
        let bedside = try SimulatedBedside(speed: Self.speed, scenario: Self.desaturation)
        defer { bedside.stop() }
        let store = try RecordStore.open(path: Self.temporaryDatabase())
        let events = Events()
        let (session, pump, oximeter) = try Self.makeSession(bedside, program: try shortProgram(minutes: 2), store: store, events: events)
        defer {
            pump.close()
            oximeter.close()
        }
        try session.start()
        #expect(await session.startDelivery(operator: "nurse-1", reason: "initial start", timeout: .seconds(30)) == .started)
        #expect(await Self.wait(.seconds(8)) { session.committedMode == .stoppedBySupervisor },
                "the desaturation should stop delivery (mode \(session.committedMode))")
        #expect(await Self.wait(.seconds(2)) { bedside.pump.inspect { $0.prompt } != .infusing }, "the simulated pump must stop")
        #expect(session.status.alarms.contains { $0.cause == .spo2CriticallyLow || $0.cause == .spo2Low })

        // Nothing restarts on its own: a resume before the acknowledgement is refused.
        let early = try session.submit(OperatorCommand.resume.action(in: session.committedMode) ?? .resume,
                                       operator: "nurse-2", reason: "too early", label: "resume")
        #expect(await session.waitForAnswer(early, timeout: .seconds(3))?.accepted == false)

        let ack = try session.submit(.acknowledge, operator: "nurse-2", reason: "patient assessed, airway clear, oxygen on")
        #expect(await session.waitForAnswer(ack, timeout: .seconds(3))?.accepted == true)
        #expect(await Self.wait(.seconds(2)) { session.committedMode == .acknowledged })

        // Wait for the patient to recover, then resume: a new start with fresh checks.
        #expect(await Self.wait(.seconds(5)) { bedside.world.latestObservation.spo2 >= .percent(95) })
        var resumed = false
        for attempt in 1...40 where !resumed {
            let action = OperatorCommand.resume.action(in: session.committedMode) ?? .start
            #expect(action == .start, "after an acknowledged stop, resume is a new start")
            let ticket = try session.submit(action, operator: "nurse-2", reason: "SpO2 back to normal (attempt \(attempt))", label: "resume")
            resumed = await session.waitForAnswer(ticket, timeout: .seconds(3))?.accepted == true
            if !resumed { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(resumed, "the resume should pass the fresh start checks once SpO2 is back")
        #expect(await Self.wait(.seconds(3)) { session.committedMode == .infusing }, "delivery confirmed again (mode \(session.committedMode))")
        #expect(await Self.wait(.seconds(20)) { session.endCondition != nil })
        #expect(session.endCondition == .completed)
        let notice = await session.finish(outcome: session.endCondition ?? .error)
        #expect(notice.outcome == .completed)

        let loaded = try store.load(try #require(session.sessionID))
        #expect(loaded.session.state == .completed)
        #expect(loaded.events.contains { $0.kind == .alarmRaised && $0.priority == .high })
        #expect(loaded.events.contains { $0.kind == .supervisorDecision && $0.message.contains("stop commanded") })
        let requests = loaded.events.filter { $0.kind == .operatorAction && $0.operatorID == "nurse-2" }
        #expect(requests.contains { $0.reason == "patient assessed, airway clear, oxygen on" })
        #expect(requests.contains { $0.reason?.hasPrefix("SpO2 back to normal") == true })
        // The supervisor's answers carry who asked and why.
        #expect(loaded.events.contains { $0.kind == .supervisorDecision && $0.operatorID == "nurse-2" && $0.reason == "patient assessed, airway clear, oxygen on" })
        // Requests are committed before their answers.
        let ackRequest = try #require(requests.first { $0.reason == "patient assessed, airway clear, oxygen on" })
        let ackAnswer = try #require(loaded.events.first { $0.kind != .operatorAction && $0.reason == "patient assessed, airway clear, oxygen on" })
        #expect(ackRequest.sequence < ackAnswer.sequence)
        let actions = events.all.compactMap { event -> OperatorActionNotice? in
            if case .operatorAction(let notice) = event.body { notice } else { nil }
        }
        #expect(actions.contains { $0.action == "acknowledge" && $0.accepted && $0.operatorID == "nurse-2" })
        #expect(actions.contains { $0.action == "resume" && !$0.accepted })
        #expect(actions.contains { $0.action == "resume" && $0.accepted })
        try store.close()
    }

    @Test("recovery: an unfinished session is marked interrupted, the infusing pump is read, stopped and recorded; nothing starts")
    func recoveryStopsAnInfusingPump() async throws {
        let bedside = try SimulatedBedside(speed: Self.speed)
        defer { bedside.stop() }
        let (pumpPath, _) = try bedside.paths()
        let path = Self.temporaryDatabase()
        let store = try RecordStore.open(path: path)
        // A crashed controller's session: started, never ended.
        let program = try shortProgram(minutes: 2)
        let crashed = try store.startSession(SessionStart(patientID: "P-009", operatorID: "nurse-1", startedAt: Date(),
                                                          startedMonotonic: bedside.clock.now(), program: program, devices: []))
        // …and its pump still infusing (basic mode: no pump-side watchdog to stop it).
        let timing = SessionTiming(speed: Self.speed)
        var basic = timing.newEra
        basic.safeModeTimeoutSeconds = 0
        let first = NewEraPump(path: pumpPath, configuration: basic, clock: bedside.clock)
        _ = await first.setRate(.millilitresPerHour(28))
        _ = await first.start()
        #expect(await Self.wait(.seconds(3)) { bedside.pump.inspect { $0.prompt } == .infusing }, "the pump should be infusing before recovery")
        first.close()
        try await Task.sleep(for: .milliseconds(100))

        let pump = NewEraPump(path: pumpPath, configuration: basic, clock: bedside.clock)
        defer { pump.close() }
        let recovery = SessionRecovery(store: store, clock: bedside.clock)
        let unfinished = try recovery.unfinishedSessions()
        #expect(unfinished.map(\.id) == [crashed])
        let reports = try await recovery.recover(unfinished, pump: pump, connectTimeout: .seconds(3))
        let report = try #require(reports.first)
        #expect(report.session == crashed)
        #expect(report.pumpState == .infusing)
        #expect((report.volumeInfused?.millilitres ?? 0) > 0, "the pump's own counter is read")
        #expect(report.stoppedByController)
        #expect(bedside.pump.inspect { $0.prompt } != .infusing, "the recovery must leave the pump stopped")
        try await Task.sleep(for: .milliseconds(300))
        #expect(bedside.pump.inspect { $0.prompt } != .infusing, "…and nothing restarts it")
        let loaded = try store.load(crashed)
        #expect(loaded.session.state == .interrupted)
        #expect(loaded.events.contains { $0.kind == .note && $0.message.contains("the pump reports infusing") && $0.message.contains("infused") })
        #expect(loaded.events.contains { $0.kind == .note && $0.message.contains("stopped the pump") })
        #expect(try store.unfinishedSessions().isEmpty)
        try store.close()
    }

    @Test("recovery with a stopped pump records its state and volume and sends nothing")
    func recoveryOfAStoppedPump() async throws {
        let bedside = try SimulatedBedside(speed: Self.speed)
        defer { bedside.stop() }
        let (pumpPath, _) = try bedside.paths()
        let store = try RecordStore.open(path: Self.temporaryDatabase())
        let crashed = try store.startSession(SessionStart(patientID: "P-010", operatorID: "nurse-1", startedAt: Date(),
                                                          startedMonotonic: bedside.clock.now(), program: try shortProgram(minutes: 2), devices: []))
        let pump = NewEraPump(path: pumpPath, configuration: SessionTiming(speed: Self.speed).newEra, clock: bedside.clock)
        defer { pump.close() }
        let recovery = SessionRecovery(store: store, clock: bedside.clock)
        let reports = try await recovery.recover(try recovery.unfinishedSessions(), pump: pump)
        #expect(reports.count == 1)
        #expect(reports.first?.pumpState == .stopped)
        #expect(reports.first?.stoppedByController == false)
        #expect(bedside.pump.inspect { $0.prompt } != .infusing)
        let loaded = try store.load(crashed)
        #expect(loaded.session.state == .interrupted)
        #expect(loaded.events.contains { $0.kind == .note && $0.message.contains("the pump reports stopped") })
        #expect(!loaded.events.contains { $0.message.contains("stopped the pump") })
        try store.close()
    }
}
