import Foundation
import InfusionCore
import Records
import Session
@testable import Supervisor
import Testing

/// The session's pure pieces: JSON event encoding, operator input, the terminal renderer, which samples
/// and statuses are recorded, the pump's counter, answer matching and the decision tracker.
@Suite("Session: pure pieces")
struct SessionPiecesTests {
    static let wall = Date(timeIntervalSince1970: 1_800_000_000.25)

    static func object(_ event: SessionEvent) throws -> [String: Any] {
        let data = Data(event.jsonLine.utf8)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func status(mode: ChannelMode = .infusing, spo2: Double? = 97, alarms: [AlarmSummary] = []) -> SessionStatus {
        SessionStatus(mode: mode, elapsed: .seconds(18 * 60), remaining: .seconds(22 * 60), progress: 0.45,
                      spo2: spo2.map { .percent($0) }, pulseRate: .beatsPerMinute(76), vitalsValid: true,
                      pumpRate: .millilitresPerHour(28), pumpState: .infusing, delivered: Volume(8.4, .millilitres),
                      deliveredMass: .milligrams(8.4), alarms: alarms, audioPaused: false)
    }

    @Test("status JSON: type, t, wall (ISO 8601 UTC), snake_case fields, null for absent values, alarms as objects")
    func statusJSON() throws {
        let alarm = AlarmSummary(cause: .spo2Low, priority: .high, state: .latched, acknowledged: false)
        let event = SessionEvent(time: .milliseconds(12_500), wallClock: Self.wall, body: .status(Self.status(mode: .pausedByOperator, spo2: nil, alarms: [alarm])))
        let json = try Self.object(event)
        #expect(json["type"] as? String == "status")
        #expect(json["t"] as? Double == 12.5)
        #expect(json["wall"] as? String == "2027-01-15T08:00:00.250Z")
        #expect(json["mode"] as? String == "paused-by-operator")
        #expect(json["elapsed_s"] as? Double == 1080)
        #expect(json["remaining_s"] as? Double == 1320)
        #expect(json["progress"] as? Double == 0.45)
        #expect(json["spo2"] is NSNull, "an absent value is null, not missing")
        #expect(json["pulse_rate"] as? Double == 76)
        #expect(json["rate_ml_h"] as? Double == 28)
        #expect(json["delivered_ml"] as? Double == 8.4)
        #expect(json["delivered_mg"] as? Double == 8.4)
        #expect(json["audio_paused"] as? Bool == false)
        let alarms = json["alarms"] as? [[String: Any]] ?? []
        #expect(alarms.count == 1)
        #expect(alarms[0]["cause"] as? String == "spo2-low")
        #expect(alarms[0]["priority"] as? String == "high")
        #expect(alarms[0]["state"] as? String == "latched")
        #expect(alarms[0]["acknowledged"] as? Bool == false)
        #expect(!event.jsonLine.contains("\n"))
    }

    @Test("every event type encodes its contract fields; recording events carry their record")
    func everyType() throws {
        let started = SessionEvent(time: .zero, wallClock: Self.wall, body: .sessionStarted(SessionStartedInfo(
            session: SessionID(rawValue: 7), patient: "P1", operatorID: "n1", drug: "Ketamine", dose: "0.35 mg/kg/h",
            rate: .millilitresPerHour(28), duration: .seconds(2400), pump: "newera on /dev/pts/3", oximeter: "nonin-df2 on /dev/pts/4")))
        var json = try Self.object(started)
        #expect(json["type"] as? String == "session-started")
        #expect(json["session"] as? Double == 7)
        #expect(json["operator"] as? String == "n1")
        #expect(json["rate_ml_h"] as? Double == 28)
        #expect(json["duration_s"] as? Double == 2400)
        #expect(json["pump"] as? String == "newera on /dev/pts/3")

        let alarm = SessionEvent(time: .seconds(3), wallClock: Self.wall, body: .alarm(AlarmNotice(
            record: 12, cause: .spo2CriticallyLow, phase: .start, priority: .high, state: .active, message: "*** SpO2 critically low", action: "Assess")))
        json = try Self.object(alarm)
        #expect(json["cause"] as? String == "spo2-critically-low")
        #expect(json["priority"] as? String == "high")
        #expect(json["state"] as? String == "active")
        #expect(json["action"] as? String == "Assess")
        #expect(json["record"] as? Double == 12)
        #expect(alarm.record == 12)

        let decision = SessionEvent(time: .seconds(3), wallClock: Self.wall, body: .decision(DecisionNotice(
            record: 13, rule: .spo2ImmediatePause, kind: "stop-commanded", modeBefore: .infusing, modeAfter: .stoppedBySupervisor,
            command: "stop", message: "stop")))
        json = try Self.object(decision)
        #expect(json["rule"] as? String == "spo2-immediate-pause")
        #expect(json["kind"] as? String == "stop-commanded")
        #expect(json["mode_before"] as? String == "infusing")
        #expect(json["mode_after"] as? String == "stopped-by-supervisor")
        #expect(json["command"] as? String == "stop")

        let action = SessionEvent(time: .seconds(4), wallClock: Self.wall, body: .operatorAction(OperatorActionNotice(
            record: 14, action: "ack", operatorID: "n2", reason: nil, accepted: true, message: "applied")))
        json = try Self.object(action)
        #expect(json["action"] as? String == "ack")
        #expect(json["operator"] as? String == "n2")
        #expect(json["reason"] is NSNull)
        #expect(json["accepted"] as? Bool == true)

        let recovered = SessionEvent(time: .zero, wallClock: Self.wall, body: .recovered(RecoveryReport(
            session: SessionID(rawValue: 3), pumpState: .stopped, volumeInfused: Volume(1.25, .millilitres), stoppedByController: false, message: "m")))
        json = try Self.object(recovered)
        #expect(json["pump_state"] as? String == "stopped")
        #expect(json["volume_ml"] as? Double == 1.25)
        #expect(json["stopped_by_controller"] as? Bool == false)

        let ended = SessionEvent(time: .seconds(120), wallClock: Self.wall, body: .sessionEnded(SessionEndNotice(
            session: SessionID(rawValue: 7), outcome: .endedAfterSupervisorStop, delivered: Volume(0.5, .millilitres),
            deliveredMass: .milligrams(0.5), record: 40, message: "m")))
        json = try Self.object(ended)
        #expect(json["outcome"] as? String == "ended-after-supervisor-stop")
        #expect(json["exit_code"] as? Double == 5)
        #expect(json["delivered_ml"] as? Double == 0.5)
    }

    @Test("outcomes map to the contract's exit codes")
    func exitCodes() {
        #expect(SessionOutcome.completed.exitCode == 0)
        #expect(SessionOutcome.error.exitCode == 1)
        #expect(SessionOutcome.stoppedByOperator.exitCode == 4)
        #expect(SessionOutcome.endedAfterSupervisorStop.exitCode == 5)
        #expect(SessionOutcome.devicesUnavailable.exitCode == 6)
    }

    @Test("stdin lines: command words with optional reasons; blank lines ignored; anything else refused with the accepted words")
    func lines() throws {
        let pause = try #require(try OperatorCommand.parse(line: "  pause   patient asked for a break  "))
        #expect(pause.command == .pause)
        #expect(pause.reason == "patient asked for a break")
        #expect(try OperatorCommand.parse(line: "ACK")?.command == .ack)
        #expect(try OperatorCommand.parse(line: "acknowledge")?.command == .ack)
        #expect(try OperatorCommand.parse(line: "silence")?.reason == nil)
        #expect(try OperatorCommand.parse(line: "   ") == nil)
        #expect(throws: OperatorInputError.self) { try OperatorCommand.parse(line: "explode now") }
        do {
            _ = try OperatorCommand.parse(line: "explode")
        } catch {
            #expect(error.message.contains("start, pause, resume, stop, ack, silence, quit"))
        }
    }

    @Test("keys and what they ask of the supervisor; resume after an acknowledged stop is a new start")
    func keys() {
        #expect(OperatorCommand.key(UInt8(ascii: "p")) == .pause)
        #expect(OperatorCommand.key(UInt8(ascii: "r")) == .resume)
        #expect(OperatorCommand.key(UInt8(ascii: "s")) == .stop)
        #expect(OperatorCommand.key(UInt8(ascii: "a")) == .ack)
        #expect(OperatorCommand.key(UInt8(ascii: "m")) == .silence)
        #expect(OperatorCommand.key(UInt8(ascii: "q")) == .quit)
        #expect(OperatorCommand.key(UInt8(ascii: "x")) == nil)
        #expect(OperatorCommand.resume.action(in: .pausedByOperator) == .resume)
        #expect(OperatorCommand.resume.action(in: .acknowledged) == .start)
        #expect(OperatorCommand.resume.action(in: .stoppedBySupervisor) == .resume, "not acknowledged: the supervisor refuses it")
        #expect(OperatorCommand.silence.action(in: .infusing) == .audioPause)
        #expect(OperatorCommand.quit.action(in: .infusing) == nil)
    }

    @Test("renderer: progress bar, clock, block with vitals, dose, alarms and keys; event lines; rewind")
    func renderer() {
        #expect(StatusRenderer.progressBar(0.5, width: 12) == "[#####-----]")
        #expect(StatusRenderer.progressBar(2, width: 6) == "[####]")
        #expect(StatusRenderer.progressBar(.nan, width: 6) == "[----]")
        #expect(StatusRenderer.clock(.seconds(75)) == "01:15")
        #expect(StatusRenderer.clock(.seconds(3725)) == "1:02:05")
        #expect(StatusRenderer.clock(.seconds(-3)) == "00:00")
        let renderer = StatusRenderer(title: "Ketamine 0.35 mg/kg/h", width: 100)
        let alarm = AlarmSummary(cause: .spo2Low, priority: .high, state: .active, acknowledged: true)
        let block = renderer.block(Self.status(alarms: [alarm]), session: "12")
        #expect(block.count == 5)
        #expect(block[0].contains("session 12") && block[0].contains("INFUSING"))
        #expect(block[1].contains("45%") && block[1].contains("elapsed 18:00") && block[1].contains("remaining 22:00"))
        #expect(block[2].contains("SpO2 97 %") && block[2].contains("pulse 76 bpm") && block[2].contains("28") && block[2].contains("8.4"))
        #expect(block[3].contains("*** SpO2 low [active, acknowledged]"))
        #expect(block[4] == StatusRenderer.keys)
        #expect(block.allSatisfy { $0.count <= 100 })
        let narrow = StatusRenderer(title: String(repeating: "x", count: 200), width: 40)
        #expect(narrow.block(Self.status(), session: "1").allSatisfy { $0.count <= 40 })
        #expect(renderer.line(Self.status()).contains("infusing"))
        #expect(StatusRenderer.rewind(previousLines: 0) == "")
        #expect(StatusRenderer.rewind(previousLines: 5) == "\u{1B}[5A\r\u{1B}[J")
        let status = SessionEvent(time: .zero, wallClock: Self.wall, body: .status(Self.status()))
        #expect(renderer.eventLine(status) == nil, "the status block shows status; no extra line")
        let refused = SessionEvent(time: .seconds(61), wallClock: Self.wall, body: .operatorAction(OperatorActionNotice(
            record: 3, action: "resume", operatorID: "n2", reason: "better", accepted: false, message: "not acknowledged")))
        #expect(renderer.eventLine(refused) == "01:01 n2: resume (better) REFUSED: not acknowledged")
    }

    @Test("samples: one a second, plus every abnormal one")
    func sampleSelection() throws {
        let limits = SupervisorLimits(program: try shortProgram(minutes: 2))
        var selection = SampleSelection(limits: limits)
        func sample(_ ms: Int64, spo2: Double = 97, pulse: Double = 76, quality: OximetryQuality = []) -> VitalSample {
            VitalSample(arrivedAt: MonotonicInstant(nanoseconds: ms * 1_000_000), spo2: .percent(spo2), pulseRate: .beatsPerMinute(pulse),
                        perfusionIndex: nil, quality: quality)
        }
        var kept = 0
        for ms in stride(from: Int64(0), to: 10_000, by: 13) where selection.shouldRecord(sample(ms)) { kept += 1 }
        #expect(kept == 10 || kept == 11, "75 Hz normal samples for 10 s: one a second (\(kept))")
        let lowSpO2 = selection.shouldRecord(sample(10_010, spo2: 89))
        let highPulse = selection.shouldRecord(sample(10_020, pulse: 125))
        let invalid = selection.shouldRecord(sample(10_030, quality: .probeOff))
        let normal = selection.shouldRecord(sample(10_040))
        var jittery = SampleSelection(limits: limits)
        let jitter: [Int64] = [0, 1_030, 1_960, 3_080, 3_990, 4_700, 6_010, 7_250, 7_990, 9_020]
        let keptJittery = jitter.filter { jittery.shouldRecord(sample($0)) }.count
        #expect(lowSpO2, "SpO2 in the warning band is kept")
        #expect(highPulse, "pulse above the warning level is kept")
        #expect(invalid, "an invalid sample is kept")
        #expect(!normal, "a normal one right after is not")
        #expect(keptJittery == jitter.count, "a 1 Hz oximeter whose frames jitter is recorded whole")
    }

    @Test("pump statuses: every change of state, rate or alarms, otherwise one a second")
    func statusSelection() {
        var selection = PumpStatusSelection()
        func status(_ ms: Int64, _ state: PumpRunState = .infusing, rate: Double = 28) -> PumpStatus {
            PumpStatus(receivedAt: MonotonicInstant(nanoseconds: ms * 1_000_000), state: state, rate: .millilitresPerHour(rate),
                       volumeInfused: Volume(Double(ms) / 1e6, .millilitres), alarms: [])
        }
        let kept = [status(0), status(0), status(400), status(500, .stopped), status(600, .stopped, rate: 0),
                    status(1_500, .stopped, rate: 0), status(1_600, .stopped, rate: 0)].map { selection.shouldRecord($0) }
        // first; the same again; too soon; a state change; a rate change; too soon; a second later
        #expect(kept == [true, false, false, true, true, false, true])
    }

    @Test("the pump's counter: from its first reading, resets carried over")
    func counter() {
        var counter = PumpVolumeCounter()
        #expect(counter.delivered == .zero)
        counter.observe(Volume(2, .millilitres))
        counter.observe(Volume(3.5, .millilitres))
        #expect(abs(counter.delivered.millilitres - 1.5) < 1e-9)
        counter.observe(Volume(0.25, .millilitres))  // the pump was reset
        #expect(abs(counter.delivered.millilitres - 1.75) < 1e-9)
    }

    static func decision(_ kind: DecisionKind, rule: SupervisorRule = .operatorAction, before: ChannelMode = .idle, after: ChannelMode? = nil,
                         at seconds: Int64 = 1, command: PumpCommand? = nil) -> DecisionEvent {
        DecisionEvent(at: MonotonicInstant(nanoseconds: seconds * 1_000_000_000), channel: 0, rule: rule, kind: kind, command: command,
                      modeBefore: before, modeAfter: after ?? before, inputs: .empty)
    }

    @Test("answers: each action matched in order; a start answered by its start command; skipped actions reported unanswered")
    func answers() {
        func pending(_ ticket: Int, _ action: OperatorAction) -> PendingOperatorAction {
            PendingOperatorAction(ticket: ticket, action: action, operatorID: "n1", reason: nil, requestRecord: Int64(ticket), label: "x")
        }
        var queue = [pending(1, .pause), pending(2, .start), pending(3, .acknowledge)]
        let start = Self.decision(.startCommanded, rule: .startChecks, before: .idle, after: .checked,
                                  command: .start(rate: .millilitresPerHour(28), volumeLimit: Volume(320, .millilitres)))
        let match = OperatorAnswers.match(start, in: &queue)
        #expect(match?.answered.ticket == 2)
        #expect(match?.accepted == true)
        #expect(match?.unanswered.map(\.ticket) == [1])
        #expect(queue.map(\.ticket) == [3])
        #expect(OperatorAnswers.match(Self.decision(.deliveryConfirmed), in: &queue) == nil, "not an answer")
        let ack = OperatorAnswers.match(Self.decision(.actionApplied(.acknowledge)), in: &queue)
        #expect(ack?.answered.ticket == 3)
        #expect(queue.isEmpty)
        var resume = [pending(4, .resume)]
        let refused = OperatorAnswers.match(Self.decision(.actionRefused(.resume, .notPaused)), in: &resume)
        #expect(refused?.accepted == false)
        #expect(refused?.message.contains("not paused") == true)
    }

    @Test("tracker: records and events per decision, mode and delivery time, alarms and audio from committed decisions")
    func tracker() throws {
        let program = try shortProgram(minutes: 2)
        var tracker = SessionTracker(program: program, startedAt: .origin)
        let start = Self.decision(.startCommanded, rule: .startChecks, before: .idle, after: .checked, at: 10,
                                  command: .start(rate: .millilitresPerHour(28), volumeLimit: Volume(320, .millilitres)))
        let record = tracker.record(for: start, wallClock: Self.wall)
        #expect(record.kind == .supervisorDecision)
        #expect(record.ruleID == "R-ST-01")
        #expect(record.message.contains("start checks passed"))
        tracker.apply(start)
        #expect(tracker.status(at: MonotonicInstant(nanoseconds: 40_000_000_000)).elapsed == .seconds(30))
        let alarm = AlarmEvent(cause: .spo2CriticallyLow, phase: .start, priority: .high, category: .physiological, state: .active,
                               trigger: .none, at: MonotonicInstant(nanoseconds: 50_000_000_000))
        let raised = Self.decision(.alarm(alarm), rule: .spo2ImmediatePause, before: .checked, at: 50)
        let alarmRecord = tracker.record(for: raised, wallClock: Self.wall)
        #expect(alarmRecord.kind == .alarmRaised)
        #expect(alarmRecord.priority == .high)
        if case .alarm(let notice) = tracker.notice(for: raised, record: 9) {
            #expect(notice.cause == .spo2CriticallyLow)
            #expect(notice.record == 9)
        } else {
            Issue.record("an alarm decision becomes an alarm event")
        }
        tracker.apply(raised)
        let stop = Self.decision(.stopCommanded, rule: .spo2ImmediatePause, before: .checked, after: .stoppedBySupervisor, at: 50, command: .stop)
        tracker.apply(stop)
        tracker.apply(Self.decision(.audio(.paused(until: MonotonicInstant(nanoseconds: 170_000_000_000))), rule: .alarmSystem, before: .stoppedBySupervisor, at: 51))
        let status = tracker.status(at: MonotonicInstant(nanoseconds: 60_000_000_000))
        #expect(status.mode == .stoppedBySupervisor)
        #expect(status.elapsed == .seconds(40), "delivery time stops counting at the stop")
        #expect(status.remaining == .seconds(80))
        #expect(status.alarms.map(\.cause) == [.spo2CriticallyLow])
        #expect(status.audioPaused)
        #expect(tracker.stoppedBySupervisorSinceDelivery)
        let ack = AlarmEvent(cause: .spo2CriticallyLow, phase: .acknowledged, priority: .high, category: .physiological, state: .inactive,
                             trigger: .none, at: MonotonicInstant(nanoseconds: 70_000_000_000))
        tracker.apply(Self.decision(.alarm(ack), rule: .spo2ImmediatePause, before: .stoppedBySupervisor, after: .acknowledged, at: 70))
        #expect(tracker.status(at: MonotonicInstant(nanoseconds: 71_000_000_000)).alarms.isEmpty)
        tracker.apply(Self.decision(.startCommanded, rule: .startChecks, before: .acknowledged, after: .checked, at: 80))
        #expect(!tracker.stoppedBySupervisorSinceDelivery, "delivery started again")
        tracker.noteRecorded(samples: [], pumpStatuses: [
            PumpStatus(receivedAt: .origin, state: .stopped, rate: nil, volumeInfused: Volume(1, .millilitres), alarms: []),
            PumpStatus(receivedAt: .origin, state: .infusing, rate: .millilitresPerHour(28), volumeInfused: Volume(1.5, .millilitres), alarms: []),
        ])
        let later = tracker.status(at: MonotonicInstant(nanoseconds: 90_000_000_000))
        #expect(abs(later.delivered.millilitres - 0.5) < 1e-9)
        #expect(abs(later.deliveredMass.milligrams - 0.5) < 1e-9)
        #expect(later.pumpRate == .millilitresPerHour(28))
    }

    @Test("timing: production defaults at speed 1; real-time floors at high speed")
    func timing() {
        let production = SessionTiming(speed: 1)
        #expect(production.watchdogTimeoutSeconds == 5)
        #expect(production.newEra.replyTimeout == .milliseconds(400))
        #expect(production.newEra.pollInterval == .milliseconds(400))
        #expect(production.statusInterval == .seconds(1))
        let fast = SessionTiming(speed: 60)
        #expect(fast.watchdogTimeoutSeconds == 90, "1.5 s of real time")
        #expect(fast.newEra.replyTimeout == .seconds(15), "250 ms of real time")
        #expect(fast.statusInterval == .milliseconds(50))
        #expect(SessionTiming(speed: 1000).watchdogTimeoutSeconds == 255)
        #expect(SessionTiming(speed: .nan).speed == 1)
        #expect(production.deviceTimingLimitFloor == .zero)
        #expect(fast.deviceTimingLimitFloor == .seconds(15), "250 ms of real time")
        #expect(SessionTiming(speed: 80).deviceTimingLimitFloor == .seconds(20))
    }

    @Test("device-timing limits: raised to the floor, never lowered; clinical limits untouched; zero changes nothing")
    func deviceTimingFloor() throws {
        let limits = SupervisorLimits(program: try shortProgram(minutes: 40))
        #expect(limits.raisingDeviceTimingLimits(toAtLeast: .zero) == limits)
        let raised = limits.raisingDeviceTimingLimits(toAtLeast: .seconds(20))
        #expect(raised.sampleMaxAge == .seconds(20) && limits.sampleMaxAge == .seconds(5))
        #expect(raised.stopConfirmationDeadline == .seconds(20) && limits.stopConfirmationDeadline == .seconds(2))
        #expect(raised.rateMismatchHold == .seconds(20))
        // Only those three: every other limit is the profile's.
        var putBack = raised
        putBack.sampleMaxAge = limits.sampleMaxAge
        putBack.stopConfirmationDeadline = limits.stopConfirmationDeadline
        putBack.rateMismatchHold = limits.rateMismatchHold
        #expect(putBack == limits)
        // A floor below a limit leaves it as it is.
        let low = limits.raisingDeviceTimingLimits(toAtLeast: .seconds(3))
        #expect(low.sampleMaxAge == .seconds(5) && low.stopConfirmationDeadline == .seconds(3) && low.rateMismatchHold == .seconds(5))
    }
}
