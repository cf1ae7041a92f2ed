import DeviceSimulators
import InfusionCore
import SessionSimulation
import Supervisor
import Testing

/// End-to-end scenarios in virtual time: simulated New Era pump and Nonin DF2 oximeter (75 frames/s)
/// around the virtual patient, the real driver endpoints and the real supervisor rule engine on one
/// virtual clock (`VirtualSession`). Each runs minutes to tens of minutes of session time in a
/// fraction of a second to a few seconds.
@Suite("Virtual session: end-to-end scenarios")
struct VirtualSessionScenarioTests {
    static let startAt: Duration = .seconds(5)

    // MARK: Uneventful

    @Test("an uneventful 40-min ketamine program completes; the pump's counter matches the commanded volume")
    func uneventfulProgramCompletes() throws {
        let program = try Programs.ketamine()
        let session = try VirtualSession(program: program, scenario: scenario(noise: true), script: .start(at: Self.startAt))
        let summary = session.run(until: .seconds(42 * 60))

        #expect(summary.finalMode == .complete, "\(summary.timeline)")
        #expect(summary.finalPhase == .finished)
        let start = try #require(summary.firstDecision(.startChecks) { $0 == .startCommanded }, "\(summary.timeline)")
        guard case let .start(rate, _)? = start.command else {
            Issue.record("the start decision carries no start command: \(String(describing: start.command))")
            return
        }
        #expect(rate == .millilitresPerHour(28), "80 kg × 0.35 mg/kg/h ÷ 1 mg/mL")
        // One start, one stop: the pump ran once, for the program's 40 minutes.
        #expect(summary.pumpMotion.map(\.pumping) == [true, false], "\(summary.pumpMotion)")
        let started = try #require(summary.pumpStarted())
        let stopped = try #require(summary.pumpStopped())
        #expect(abs((stopped - started - .seconds(40 * 60)).seconds) < 1, "pumped \(stopped - started)")

        // The pump's own counter against the volume the supervisor commanded: New Era pumps are
        // accurate to ±1 % (NE-1000 manual); the program's volume is 28 mL/h × 40 min = 18.67 mL.
        let expected = 28.0 * 40 / 60
        #expect(abs(summary.pumpCounter.millilitres - summary.commandedVolume.millilitres) <= 0.01 * expected,
                "pump counter \(summary.pumpCounter), commanded \(summary.commandedVolume)")
        #expect(abs(summary.pumpCounter.millilitres - expected) <= 0.01 * expected, "pump counter \(summary.pumpCounter)")
        let reported = try #require(summary.reportedCounter)
        #expect(abs(reported.millilitres - summary.pumpCounter.millilitres) <= 0.01, "the driver read \(reported)")

        // No alarm beyond informational: only the low-priority "infusion complete".
        #expect(summary.alarmCauses == [.infusionComplete], "\(summary.alarms.map { "\($0.cause) \($0.phase) \($0.priority)" })")
        #expect((summary.highestAlarmPriority ?? .low) <= .low)
        #expect(summary.stopFramesWritten == 1, "one stop: the end of the program")
        #expect(summary.secondaryStops == 0)
        #expect(summary.actions.map(\.outcome) == [.applied(.start)])
    }

    // MARK: Desaturation (R-MON-01 with its hold time)

    /// SpO2 97 → 86 % at 2 min over 10 s (crosses 90 % 6.4 s in), held 40 s, back to 97 % over 20 s:
    /// below 90 % for about 50 s, never below the immediate-stop 85 %.
    static let longDesaturation = """
        [[event]]
        at = "2 min"
        kind = "desaturation"
        to = "86 %"
        onset = "10 s"
        hold = "40 s"
        recovery = "20 s"
        """

    @Test("SpO2 below 90 % past the hold: the pump stops within hold + 1 s; acknowledge and restart after recovery; completes")
    func desaturationStopsThePumpAfterTheHold() throws {
        let program = try Programs.ketamine()
        var configuration = VirtualSession.Configuration()
        configuration.tracePatient = true
        let script = VirtualSessionScript.start(at: Self.startAt)
            .adding(.operatorAction(.acknowledge), at: .seconds(200))
            .adding(.operatorAction(.start), at: .seconds(205))
        let session = try VirtualSession(program: program, scenario: scenario(Self.longDesaturation), script: script,
                                         configuration: configuration)
        let limits = session.supervisor.limits
        let atStop = session.run(until: .seconds(190))

        let crossed = try #require(session.trueSpO2(below: limits.spo2PauseBelow))
        let stopped = try #require(atStop.pumpStopped(), "the simulated pump should stop\n\(atStop.timeline)")
        print("virtual session: SpO2 crossed \(limits.spo2PauseBelow) at +\(atStop.offset(crossed).humanReadable); "
              + "the simulated pump stopped \((stopped - crossed).humanReadable) later (hold \(limits.spo2PauseHold.humanReadable))")
        #expect(stopped - crossed <= limits.spo2PauseHold + .seconds(1), "stopped \(stopped - crossed) after SpO2 crossed")
        #expect(stopped - crossed >= limits.spo2PauseHold, "the 15 s hold must run its course: stopped \(stopped - crossed) after")
        // The hold path (R-MON-01 after the hold), not the immediate < 85 % stop.
        let stop = try #require(atStop.firstDecision(.spo2Pause) { $0 == .stopCommanded })
        #expect(atStop.firstDecision(.spo2ImmediatePause) == nil)
        #expect(stop.at <= stopped, "the decision comes before the pump stops")
        #expect(atStop.finalMode == .stoppedBySupervisor)
        let alarm = try #require(atStop.firstAlarm(.spo2Low))
        #expect(alarm.priority == .high)
        #expect(session.simulatedPump.prompt.isPumping == false)

        // Recovery, acknowledgement, a fresh start: infusing again, and the program completes.
        let resumed = session.run(until: .seconds(215))
        #expect(resumed.actions.map(\.outcome) == [.applied(.start), .applied(.acknowledge), .applied(.start)], "\(resumed.actions)")
        #expect(resumed.finalMode == .infusing, "\(resumed.timeline)")
        #expect(resumed.pumpStarted(after: .seconds(200)) != nil)

        let end = session.run(until: .seconds(45 * 60))
        #expect(end.finalMode == .complete, "\(end.timeline)")
        #expect(end.pumpMotion.map(\.pumping) == [true, false, true, false], "\(end.pumpMotion)")
        let expected = 28.0 * 40 / 60
        #expect(abs(end.pumpCounter.millilitres - expected) <= 0.01 * expected, "pump counter \(end.pumpCounter)")
        #expect(abs(end.pumpCounter.millilitres - end.commandedVolume.millilitres) <= 0.01 * expected)
    }

    /// SpO2 below 90 % for about 13 s (onset 4 s, hold 10 s, recovery 4 s), under the 15 s hold.
    static let shortDesaturation = """
        [[event]]
        at = "2 min"
        kind = "desaturation"
        to = "86 %"
        onset = "4 s"
        hold = "10 s"
        recovery = "4 s"
        """

    @Test("SpO2 below 90 % for less than the hold time: no stop")
    func shortDesaturationDoesNotStop() throws {
        let program = try Programs.ketamine()
        var configuration = VirtualSession.Configuration()
        configuration.tracePatient = true
        let session = try VirtualSession(program: program, scenario: scenario(Self.shortDesaturation),
                                         script: .start(at: Self.startAt), configuration: configuration)
        let limits = session.supervisor.limits
        let summary = session.run(until: .seconds(4 * 60))

        let below = session.patientTrace.filter { $0.spo2 < limits.spo2PauseBelow }
        let first = try #require(below.first), last = try #require(below.last)
        #expect(last.at - first.at >= .seconds(12), "the dip should come close to the hold (\(last.at - first.at))")
        #expect(last.at - first.at < limits.spo2PauseHold, "the dip must stay under the hold (\(last.at - first.at))")
        #expect(summary.finalMode == .infusing, "\(summary.timeline)")
        #expect(summary.pumpMotion.map(\.pumping) == [true], "\(summary.pumpMotion)")
        #expect(summary.firstDecision(.spo2Pause) == nil)
        #expect(summary.firstAlarm(.spo2Low) == nil)
        #expect(summary.stopFramesWritten == 0)
    }

    // MARK: Loss of monitoring (R-MON-06)

    @Test("probe off: invalid-signal and loss-of-monitoring warnings, then a stop after the profile's 60 s")
    func probeOffStopsAfterTheWindow() throws {
        let program = try Programs.ketamine()
        let probeOff: Duration = .seconds(120)
        let events = """
            [[event]]
            at = "2 min"
            kind = "probe_off"
            duration = "2 min"
            """
        let session = try VirtualSession(program: program, scenario: scenario(events), script: .start(at: Self.startAt))
        let limits = session.supervisor.limits
        let summary = session.run(until: .seconds(200))

        let invalid = try #require(summary.firstAlarm(.invalidSignal), "\(summary.timeline)")
        #expect(summary.offset(invalid.at) - probeOff < .seconds(1), "invalid signal at once (\(summary.offset(invalid.at)))")
        let warning = try #require(summary.firstAlarm(.monitoringLost), "\(summary.timeline)")
        #expect(warning.priority == .medium)
        let warnedAfter = summary.offset(warning.at) - probeOff
        #expect(warnedAfter > limits.monitoringLossAlarmAfter - .milliseconds(400) && warnedAfter <= limits.monitoringLossAlarmAfter + .seconds(1),
                "warned \(warnedAfter) after the probe came off")
        let stop = try #require(summary.firstDecision(.monitoringLoss) { $0 == .stopCommanded }, "\(summary.timeline)")
        let stoppedAfter = summary.offset(stop.at) - probeOff
        #expect(stoppedAfter > limits.monitoringLossPauseAfter - .milliseconds(400) && stoppedAfter <= limits.monitoringLossPauseAfter + .seconds(1),
                "stop decided \(stoppedAfter) after the probe came off")
        let stopped = try #require(summary.pumpStopped())
        #expect(stopped - stop.at < .milliseconds(100), "the pump stops on the stop frame (\(stopped - stop.at))")
        #expect(summary.firstAlarm(.monitoringLost, .escalate)?.priority == .high)
        #expect(summary.finalMode == .stoppedBySupervisor)
    }

    // MARK: Operator pause, resume and stop

    @Test("operator pause, resume and stop reach the simulated pump; no alarm; the session ends stopped by the operator")
    func operatorPauseResumeStop() throws {
        let program = try Programs.ketamine()
        let script = VirtualSessionScript.start(at: Self.startAt)
            .adding(.operatorAction(.pause), at: .seconds(60))
            .adding(.operatorAction(.resume), at: .seconds(90))
            .adding(.operatorAction(.stop), at: .seconds(120))
        let session = try VirtualSession(program: program, scenario: scenario(), script: script)
        let summary = session.run(until: .seconds(130))

        #expect(summary.actions.map(\.outcome) == [.applied(.start), .applied(.pause), .applied(.resume), .applied(.stop)],
                "\(summary.actions)")
        #expect(summary.pumpMotion.map(\.pumping) == [true, false, true, false], "\(summary.pumpMotion)")
        let times = summary.pumpMotion.map { summary.offset($0.at) }
        #expect(times.count == 4)
        if times.count == 4 {
            // Stops go out on the stop frame at once; starts go through the driver (VOL, RAT, DIR, RUN).
            #expect(times[1] - .seconds(60) < .milliseconds(50) && times[1] >= .seconds(60), "paused at +\(times[1])")
            #expect(times[2] - .seconds(90) < .milliseconds(500) && times[2] >= .seconds(90), "resumed at +\(times[2])")
            #expect(times[3] - .seconds(120) < .milliseconds(50) && times[3] >= .seconds(120), "stopped at +\(times[3])")
        }
        #expect(summary.finalMode == .stoppedByOperator, "\(summary.timeline)")
        #expect(summary.alarms.isEmpty, "\(summary.alarms.map(\.cause))")
        #expect(session.simulatedPump.prompt.isPumping == false)
    }

    // MARK: Pump faults

    @Test("pump occlusion: the pump's alarm stops the session (high-priority pump alarm, latched supervisor stop)")
    func occlusionStopsTheSession() throws {
        let program = try Programs.ketamine()
        let faultAt: Duration = .seconds(300)
        let script = VirtualSessionScript.start(at: Self.startAt).adding(.pumpFault(FaultCommand(name: "occlusion")), at: faultAt)
        let session = try VirtualSession(program: program, scenario: scenario(), script: script)
        let summary = session.run(until: .seconds(320))

        let stalled = try #require(summary.pumpStopped())
        #expect(summary.offset(stalled) == faultAt)
        #expect(summary.pumpMotion.last?.reason == "fault occlusion")
        let alarm = try #require(summary.firstAlarm(.pumpAlarm), "\(summary.timeline)")
        #expect(alarm.priority == .high)
        #expect(summary.offset(alarm.at) - faultAt < .seconds(1), "the driver reads the alarm within a heartbeat (\(summary.offset(alarm.at) - faultAt))")
        let stop = try #require(summary.firstDecision(.pumpAlarm) { $0 == .modeChanged })
        #expect(stop.modeAfter == .stoppedBySupervisor)
        #expect(summary.finalMode == .stoppedBySupervisor, "\(summary.timeline)")
        #expect(summary.secondaryStops == 0)
    }

    @Test("pump unplugged mid-infusion: communication-loss stop; the pump's own watchdog stops the motor")
    func unpluggedPumpStopsItself() throws {
        let program = try Programs.ketamine()
        let unplugAt: Duration = .seconds(300)
        let script = VirtualSessionScript.start(at: Self.startAt).adding(.unplugPump, at: unplugAt)
        let session = try VirtualSession(program: program, scenario: scenario(), script: script)
        let summary = session.run(until: .seconds(320))

        let decision = try #require(summary.firstDecision(.pumpCommunication) { $0 == .modeChanged }, "\(summary.timeline)")
        #expect(summary.offset(decision.at) == unplugAt, "the supervisor sees the link go down at once")
        #expect(summary.firstAlarm(.pumpCommunicationLost)?.priority == .high)
        let stopped = try #require(summary.pumpStopped(), "\(summary.pumpMotion)")
        #expect(summary.pumpMotion.last?.reason == "watchdog")
        #expect(summary.offset(stopped) - unplugAt <= session.configuration.watchdogTimeout)
        // No stop can be written or confirmed without a link: after the confirmation deadline twice
        // over, the supervisor engages the secondary stop and ends in `fault` (secure the pump by hand).
        #expect(summary.stopFramesWritten == 0)
        #expect(summary.secondaryStops == 1)
        #expect(summary.finalMode == .fault, "\(summary.timeline)")
    }

    @Test("the controller goes silent: the New Era pump's own safe-mode watchdog stops it within its time-out")
    func silentControllerPumpStopsItself() throws {
        let program = try Programs.ketamine()
        let silentAt: Duration = .seconds(300)
        let script = VirtualSessionScript.start(at: Self.startAt).adding(.controllerSilent, at: silentAt)
        let session = try VirtualSession(program: program, scenario: scenario(), script: script)
        let summary = session.run(until: .seconds(320))

        #expect(summary.pumpMotion.map(\.pumping) == [true, false], "\(summary.pumpMotion)")
        let stopped = try #require(summary.pumpStopped())
        #expect(summary.pumpMotion.last?.reason == "watchdog")
        let after = summary.offset(stopped) - silentAt
        // The watchdog counts from the last packet (a heartbeat at most 400 ms before the silence).
        #expect(after <= session.configuration.watchdogTimeout, "stopped \(after) after the controller went silent")
        #expect(after > session.configuration.watchdogTimeout - .milliseconds(500))
        #expect(summary.decisions.allSatisfy { summary.offset($0.at) < silentAt }, "no decision after the controller died")
        #expect(summary.stopFramesWritten == 0, "nobody sent a stop: the pump stopped itself")
        #expect(session.simulatedPump.alarm == .safeModeTimeout)
    }

    // MARK: Determinism

    @Test("the same scenario gives the same decisions at the same instants, twice")
    func deterministic() throws {
        let program = try Programs.ketamine()
        let script = VirtualSessionScript.start(at: Self.startAt)
            .adding(.operatorAction(.acknowledge), at: .seconds(200))
            .adding(.operatorAction(.start), at: .seconds(205))
            .adding(.oximeterFault(FaultCommand(name: "garbage")), at: .seconds(250))
        func once() throws -> VirtualSessionSummary {
            try VirtualSession(program: program, scenario: scenario(Self.longDesaturation, noise: true), script: script)
                .run(until: .seconds(300))
        }
        let first = try once(), second = try once()
        #expect(first.decisions.count > 10)
        #expect(first.fingerprint == second.fingerprint)
        #expect(first == second)
    }
}
