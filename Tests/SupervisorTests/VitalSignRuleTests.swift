import Testing
@testable import InfusionCore
@testable import Supervisor

/// R-MON-01 to R-MON-03: SpO2 and pulse-rate bands, hold times and the immediate-stop threshold, each
/// on both sides of its threshold and one tick either side of its hold time. All thresholds are read
/// from the profile, never written here.
@Suite("Vital-sign rules (R-MON-01 to R-MON-03)")
struct VitalSignRuleTests {
    enum Expect { case stop(AlarmCause), warning(AlarmCause), nothing }

    /// Starts infusing, applies `change` at T0, then checks one tick before T0 + hold and at T0 + hold.
    func checkHold(_ change: (inout Scenario) -> Void, hold: (SupervisorLimits) -> Duration, expect: Expect,
                   sourceLocation: SourceLocation = #_sourceLocation) throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        change(&s)
        s.tick() // T0: the first sample in the band
        let h = hold(s.limits)
        s.run(for: h - s.tickLength) // one tick under the hold
        #expect(s.mode == .infusing, "one tick under the hold: still infusing", sourceLocation: sourceLocation)
        for cause in AlarmCause.allCases where cause != .pumpWatchdogDisarmed {
            #expect(!s.alarm(cause).isPresent, "one tick under the hold: no \(cause) alarm", sourceLocation: sourceLocation)
        }
        let out = s.tick() // exactly the hold
        switch expect {
        case let .stop(cause):
            #expect(s.mode == .stoppedBySupervisor, sourceLocation: sourceLocation)
            #expect(out.commandList == [.stop], sourceLocation: sourceLocation)
            #expect(out.started(cause), sourceLocation: sourceLocation)
            #expect(s.alarm(cause).priority == .high && s.alarm(cause).category == .physiological, sourceLocation: sourceLocation)
            #expect(out.decisions.contains { $0.kind == .stopCommanded && $0.command == .stop && $0.rule == SupervisorRule(cause: cause) },
                    sourceLocation: sourceLocation)
        case let .warning(cause):
            #expect(s.mode == .infusing, "a warning never stops", sourceLocation: sourceLocation)
            #expect(out.commands.isEmpty, sourceLocation: sourceLocation)
            #expect(out.started(cause), sourceLocation: sourceLocation)
            #expect(s.alarm(cause).priority == .medium, sourceLocation: sourceLocation)
        case .nothing:
            #expect(s.mode == .infusing, sourceLocation: sourceLocation)
            #expect(out.alarmEvents.isEmpty, sourceLocation: sourceLocation)
        }
    }

    @Test("R-MON-01: SpO2 just below the pause threshold stops at the hold time, not one tick before")
    func spo2BelowPause() throws {
        try checkHold({ $0.oximeter.spo2 = $0.limits.spo2PauseBelow.percent - 0.1 }, hold: \.spo2PauseHold, expect: .stop(.spo2Low))
    }

    @Test("R-MON-01: SpO2 at the pause threshold does not stop (it is in the R-MON-02 warning band)")
    func spo2AtPause() throws {
        try checkHold({ $0.oximeter.spo2 = $0.limits.spo2PauseBelow.percent }, hold: \.spo2PauseHold, expect: .warning(.spo2Warning))
    }

    @Test("R-MON-01: SpO2 below the immediate threshold stops on the same tick")
    func spo2Immediate() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        s.oximeter.spo2 = s.limits.spo2ImmediatePauseBelow.percent - 0.1
        let out = s.tick()
        #expect(s.mode == .stoppedBySupervisor)
        #expect(out.commandList == [.stop])
        #expect(out.started(.spo2CriticallyLow))
        #expect(s.alarm(.spo2CriticallyLow).trigger == .spo2(.percent(84.9), limit: .percent(85), lasted: .zero))
    }

    @Test("R-MON-01: SpO2 at the immediate threshold waits for the hold time")
    func spo2AtImmediate() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        s.oximeter.spo2 = s.limits.spo2ImmediatePauseBelow.percent
        s.tick()
        #expect(s.mode == .infusing)
        #expect(!s.alarm(.spo2CriticallyLow).isPresent)
        s.run(for: s.limits.spo2PauseHold)
        #expect(s.mode == .stoppedBySupervisor)
        #expect(s.alarm(.spo2Low).isPresent)
    }

    @Test("R-MON-02: SpO2 at or below the warning level raises a medium alarm at its hold time, never a stop")
    func spo2Warning() throws {
        try checkHold({ $0.oximeter.spo2 = $0.limits.spo2WarningAtOrBelow.percent }, hold: \.spo2WarningHold, expect: .warning(.spo2Warning))
    }

    @Test("R-MON-02: SpO2 just above the warning level raises nothing")
    func spo2AboveWarning() throws {
        try checkHold({ $0.oximeter.spo2 = $0.limits.spo2WarningAtOrBelow.percent + 0.1 }, hold: \.spo2WarningHold, expect: .nothing)
    }

    @Test("R-MON-03: pulse just above the pause threshold stops at the hold time")
    func pulseHigh() throws {
        try checkHold({ $0.oximeter.pulse = $0.limits.pulsePauseAbove.beatsPerMinute + 0.1 }, hold: \.pulsePauseHold, expect: .stop(.pulseHigh))
    }

    @Test("R-MON-03: pulse at the pause threshold only warns")
    func pulseAtHigh() throws {
        try checkHold({ $0.oximeter.pulse = $0.limits.pulsePauseAbove.beatsPerMinute }, hold: \.pulsePauseHold, expect: .warning(.pulseWarning))
    }

    @Test("R-MON-03: pulse just below the low pause threshold stops at the hold time")
    func pulseLow() throws {
        try checkHold({ $0.oximeter.pulse = $0.limits.pulsePauseBelow.beatsPerMinute - 0.1 }, hold: \.pulsePauseHold, expect: .stop(.pulseLow))
    }

    @Test("R-MON-03: pulse at the low pause threshold does not stop")
    func pulseAtLow() throws {
        try checkHold({ $0.oximeter.pulse = $0.limits.pulsePauseBelow.beatsPerMinute }, hold: \.pulsePauseHold, expect: .nothing)
    }

    @Test("R-MON-03: pulse just above the warning threshold raises a medium alarm at its hold time")
    func pulseWarning() throws {
        try checkHold({ $0.oximeter.pulse = $0.limits.pulseWarningAbove.beatsPerMinute + 0.1 }, hold: \.pulseWarningHold, expect: .warning(.pulseWarning))
    }

    @Test("R-MON-03: pulse at the warning threshold raises nothing")
    func pulseAtWarning() throws {
        try checkHold({ $0.oximeter.pulse = $0.limits.pulseWarningAbove.beatsPerMinute }, hold: \.pulseWarningHold, expect: .nothing)
    }

    @Test("a valid in-range sample restarts the hold; an invalid sample does not (no evidence of recovery)")
    func recoveryResetsHold() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        let hold = s.limits.spo2PauseHold
        s.oximeter.spo2 = 89
        s.run(for: hold - .seconds(1))
        s.oximeter.spo2 = 95 // one valid recovered sample
        s.tick()
        s.oximeter.spo2 = 89
        s.tick() // the hold restarts here
        s.run(for: hold - .seconds(1))
        #expect(s.mode == .infusing, "the recovery restarted the hold")

        var t = Scenario(program: try Programs.program())
        t.startInfusing()
        t.oximeter.spo2 = 89
        t.tick() // T0
        t.run(for: hold - .seconds(2))
        t.oximeter.quality = .probeOff // a probe-off sample (high SpO2 value, but invalid)
        t.oximeter.spo2 = 99
        t.tick()
        t.oximeter.quality = []
        t.oximeter.spo2 = 89
        t.run(for: .seconds(2) - .milliseconds(200))
        #expect(t.mode == .infusing)
        t.tick() // T0 + hold: the invalid sample did not restart the hold
        #expect(t.mode == .stoppedBySupervisor)
        #expect(t.alarm(.spo2Low).isPresent)
    }

    @Test("the physiological alarm stays active while the condition lasts and latches when it ends (R-MON-07)")
    func latching() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        s.oximeter.spo2 = 80
        s.tick()
        #expect(s.alarm(.spo2CriticallyLow).state == .active)
        s.oximeter.spo2 = 97
        let out = s.tick()
        #expect(s.alarm(.spo2CriticallyLow).state == .latched)
        #expect(out.alarmEvents.contains { $0.cause == .spo2CriticallyLow && $0.phase == .latch })
        #expect(s.mode == .stoppedBySupervisor, "recovery never resumes delivery")
        s.run(for: .seconds(30))
        #expect(s.mode == .stoppedBySupervisor)
        #expect(!s.commands.contains { $0.1.commandedRate != nil && $0.0 > s.now - .seconds(30) })
    }
}
