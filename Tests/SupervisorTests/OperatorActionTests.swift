import Testing
@testable import InfusionCore
@testable import Supervisor

/// Operator actions and the state machine: pause, resume (fresh checks), stop, acknowledge, start
/// after a supervisor stop, audio pause with expiry, titration within validated limits, and R-MON-07
/// (nothing restarts delivery without an operator start).
@Suite("Operator actions and the state machine")
struct OperatorActionTests {
    @Test("pause stops and keeps the program; resume runs fresh start checks")
    func pauseResume() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        let pause = s.tick(.pause)
        #expect(pause.commandList == [.stop])
        #expect(pause.actionOutcome == .applied(.pause))
        #expect(s.mode == .pausedByOperator)
        s.tick()
        #expect(!s.channel.state.stopPending)

        s.oximeter.spo2 = 91 // below the start minimum, above the pause threshold
        s.tick()
        let refused = s.tick(.resume)
        #expect(refused.actionOutcome == .startRefused(.spo2TooLow))
        #expect(refused.commands.isEmpty)
        #expect(s.mode == .pausedByOperator)

        s.oximeter.spo2 = 97
        s.tick()
        let resumed = s.tick(.resume)
        #expect(resumed.actionOutcome == .applied(.resume))
        #expect(resumed.commandList.first?.commandedRate == s.limits.maintenanceRate)
        #expect(s.mode == .checked)
        s.tick()
        #expect(s.mode == .infusing)
    }

    @Test("actions that do not apply are refused with a reason and change nothing")
    func refusals() throws {
        var s = Scenario(program: try Programs.program())
        s.tick()
        #expect(s.tick(.pause).actionOutcome == .refused(.pause, .notDelivering))
        #expect(s.tick(.resume).actionOutcome == .refused(.resume, .notPaused))
        s.tick(.start)
        s.tick()
        #expect(s.tick(.start).actionOutcome == .startRefused(.alreadyDelivering))
        #expect(s.tick(.resume).actionOutcome == .refused(.resume, .notPaused))
        #expect(s.mode == .infusing)
        #expect(s.decisions.contains { $0.kind == .actionRefused(.pause, .notDelivering) })
    }

    @Test("stop ends the session: the pump is stopped and no start is possible afterwards")
    func operatorStop() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        let out = s.tick(.stop)
        #expect(out.commandList == [.stop])
        #expect(s.mode == .stoppedByOperator)
        s.tick()
        #expect(s.tick(.start).actionOutcome == .startRefused(.sessionEnded))
        #expect(s.tick(.stop).actionOutcome == .refused(.stop, .sessionEnded))
    }

    @Test("R-MON-07: after a supervisor stop nothing restarts delivery — not recovery, not acknowledgement — until an operator start with fresh checks")
    func noAutomaticResume() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        s.oximeter.spo2 = 80
        s.tick()
        #expect(s.mode == .stoppedBySupervisor)
        let stopAt = s.now
        s.oximeter.spo2 = 97
        s.run(for: .seconds(60))
        #expect(s.mode == .stoppedBySupervisor)
        #expect(s.tick(.start).actionOutcome == .startRefused(.notAcknowledged))
        #expect(s.tick(.resume).actionOutcome == .refused(.resume, .notPaused))
        let ack = s.tick(.acknowledge)
        #expect(ack.actionOutcome == .applied(.acknowledge))
        #expect(s.mode == .acknowledged)
        #expect(s.alarm(.spo2CriticallyLow).state == .inactive, "acknowledging clears the latched alarm")
        s.run(for: .seconds(60))
        #expect(s.mode == .acknowledged)
        #expect(!s.commands.contains { $0.0 > stopAt && $0.1.commandedRate != nil }, "no start or rate command without an operator start")

        s.oximeter.spo2 = 91
        s.tick()
        #expect(s.tick(.start).actionOutcome == .startRefused(.spo2TooLow), "the new start runs the checks again")
        s.oximeter.spo2 = 96
        s.tick()
        let start = s.tick(.start)
        #expect(start.actionOutcome == .applied(.start))
        s.tick()
        #expect(s.mode == .infusing)
    }

    @Test("acknowledging an alarm whose condition persists keeps it active but silences it")
    func acknowledgeActive() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        s.oximeter.spo2 = 80
        s.tick()
        #expect(s.channel.alarms.isAudible(at: s.now))
        s.tick(.acknowledge)
        let alarm = s.alarm(.spo2CriticallyLow)
        #expect(alarm.state == .active && alarm.acknowledged)
        #expect(!s.channel.alarms.isAudible(at: s.now))
        #expect(s.mode == .acknowledged)
        #expect(s.tick(.start).actionOutcome == .startRefused(.spo2TooLow))
        s.oximeter.spo2 = 97
        s.tick()
        #expect(s.alarm(.spo2CriticallyLow).state == .inactive, "acknowledged before it ended: it does not latch")
    }

    @Test("audio pause silences for exactly the profile's maximum, never hides the alarm, and a new high alarm ends it")
    func audioPause() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        s.oximeter.pulse = 125 // warning band
        s.run(for: s.limits.pulseWarningHold + s.tickLength)
        #expect(s.alarm(.pulseWarning).isPresent)
        #expect(s.channel.alarms.isAudible(at: s.now))
        let pause = s.tick(.audioPause)
        let until = s.now + s.limits.audioPauseMax
        #expect(pause.audio == .paused(until: until))
        #expect(!s.channel.alarms.isAudible(at: s.now))
        #expect(s.alarm(.pulseWarning).isPresent, "the visual indication stays")
        while s.now < until - s.tickLength { s.tick() }
        #expect(!s.channel.alarms.isAudible(at: s.now))
        let expiry = s.tick()
        #expect(expiry.audio == .expired)
        #expect(s.channel.alarms.isAudible(at: s.now))
        #expect(expiry.decisions.contains { $0.kind == .audio(.expired) })

        s.tick(.audioPause)
        s.oximeter.spo2 = 80
        let high = s.tick()
        #expect(high.audio == .resumedByNewAlarm)
        #expect(s.channel.alarms.isAudible(at: s.now))
    }

    @Test("a medium alarm escalates to high when its condition persists for escalateMediumAfter, not one tick sooner")
    func escalation() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        s.oximeter.pulse = 125
        s.run(until: { $0.alarm(.pulseWarning).isPresent })
        let since = s.alarm(.pulseWarning).since
        while s.now < since + s.limits.escalateMediumAfter - s.tickLength { s.tick() }
        #expect(s.alarm(.pulseWarning).priority == .medium)
        let out = s.tick()
        #expect(s.alarm(.pulseWarning).priority == .high)
        #expect(out.alarmEvents.contains { $0.cause == .pulseWarning && $0.phase == .escalate })
        #expect(s.mode == .infusing, "escalation is about the alarm, not a stop")
    }

    @Test("titration to a re-validated program changes the rate and the validated maximum")
    func titration() throws {
        let current = try Programs.program()
        var s = Scenario(program: current)
        s.startInfusing()
        let order = try TitrationOrder.make(current: current, new: try Programs.program(dose: 0.5, minutes: 20))
        let out = s.tick(.titrate(order))
        #expect(out.actionOutcome == .applied(.titrate(order)))
        #expect(out.commandList == [.setRate(.millilitresPerHour(40))])
        #expect(s.limits.maximumRate == .millilitresPerHour(40))
        s.run(for: s.limits.rateMismatchHold * 2)
        #expect(s.mode == .infusing, "the pump follows the new rate")
        #expect(s.pump.rate == .millilitresPerHour(40))
        // The new maintenance duration counts from the titration.
        #expect(s.channel.state.programEndsAfter == s.channel.state.deliveryElapsed - s.limits.rateMismatchHold * 2 + .seconds(20 * 60))
    }

    @Test("a titration for another patient, above its limits, or during the loading phase is refused")
    func titrationRefusals() throws {
        let current = try Programs.program()
        #expect(throws: TitrationError.differentProgram) {
            try TitrationOrder.make(current: current, new: try Programs.program(weight: 90))
        }
        #expect(throws: TitrationError.differentProgram) {
            try TitrationOrder.make(current: current, new: try Programs.program(concentration: 2))
        }
        #expect(throws: TitrationError.hasLoadingPhase) {
            try TitrationOrder.make(current: current, new: try Programs.program(loading: (0.2, 10)))
        }

        var s = Scenario(program: current)
        s.startInfusing()
        let identity = s.limits.programIdentity
        let forged = TitrationOrder(maintenanceRate: .millilitresPerHour(30), maximumRate: .millilitresPerHour(30),
                                    maintenanceDuration: .seconds(600), programIdentity: ProgramIdentity(program: try Programs.program(weight: 81)))
        #expect(s.tick(.titrate(forged)).actionOutcome == .refused(.titrate(forged), .titrationForAnotherProgram))
        // Above the drug's hard ceiling (1 mg/kg/h × 80 kg = 80 mL/h at 1 mg/mL).
        #expect(s.limits.rateCeiling == .millilitresPerHour(80))
        let tooHigh = TitrationOrder(maintenanceRate: .millilitresPerHour(81), maximumRate: .millilitresPerHour(81),
                                     maintenanceDuration: .seconds(600), programIdentity: identity)
        #expect(s.tick(.titrate(tooHigh)).actionOutcome == .refused(.titrate(tooHigh), .titrationAboveLimit))
        let overOwnMax = TitrationOrder(maintenanceRate: .millilitresPerHour(50), maximumRate: .millilitresPerHour(40),
                                        maintenanceDuration: .seconds(600), programIdentity: identity)
        #expect(s.tick(.titrate(overOwnMax)).actionOutcome == .refused(.titrate(overOwnMax), .titrationAboveLimit))
        #expect(s.limits.maximumRate == .millilitresPerHour(28))
        #expect(s.pump.rate == .millilitresPerHour(28))

        let loading = try Programs.program(loading: (0.2, 10))
        var l = Scenario(program: loading)
        l.startInfusing()
        let order = try TitrationOrder.make(current: loading, new: try Programs.program(dose: 0.4, minutes: 20))
        #expect(l.tick(.titrate(order)).actionOutcome == .refused(.titrate(order), .titrationNotAllowedNow))
    }

    @Test("the last-resort guard never sends a rate above the validated maximum")
    func rateGuard() throws {
        var s = Scenario(program: try Programs.program()) {
            var l = $0
            l.maintenanceRate = .millilitresPerHour(29) // an inconsistent limit set (never produced by init(program:))
            return l
        }
        s.tick()
        let out = s.tick(.start)
        #expect(!out.commandList.contains { $0.commandedRate != nil })
        #expect(out.decisions.contains { $0.kind == .rateRefused(.millilitresPerHour(29)) })
        #expect(s.alarm(.internalLimitGuard).isPresent)
        #expect(s.mode == .fault)
    }

    @Test("every decision carries its rule, inputs, time and command")
    func decisionsAreComplete() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        s.oximeter.spo2 = 80
        s.tick()
        let stop = try #require(s.decisions.first { $0.kind == .stopCommanded })
        #expect(stop.rule == .spo2ImmediatePause)
        #expect(stop.command == .stop)
        #expect(stop.at == s.now)
        #expect(stop.channel == 1)
        #expect(stop.modeBefore == .infusing && stop.modeAfter == .infusing || stop.modeAfter == .stoppedBySupervisor)
        #expect(stop.inputs.spo2 == .percent(80))
        #expect(stop.inputs.pumpState == .infusing)
        #expect(stop.inputs.pumpRate == .millilitresPerHour(28))
        #expect(String(describing: stop.rule.requirement) == "R-MON-01")
        let alarm = try #require(s.decisions.first { if case .alarm = $0.kind { true } else { false } })
        #expect(alarm.rule == .spo2ImmediatePause)
    }
}
