import Testing
@testable import InfusionCore
@testable import Supervisor

/// R-MON-06 (loss of monitoring: warning, then stop) and R-MON-08 (stale or out-of-order samples
/// count as no data).
@Suite("Loss of monitoring and sample freshness (R-MON-06, R-MON-08)")
struct MonitoringLossTests {
    /// Starts infusing, then makes the oximeter stop giving valid data with `loseData`; returns the
    /// scenario with `now` exactly `lost` after the last valid sample's measurement.
    func lose(_ loseData: (inout Scenario) -> Void, after lost: (SupervisorLimits) -> Duration) throws -> Scenario {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        let lastValid = s.now // the sample published at this tick is the last valid one
        loseData(&s)
        let target = lastValid + lost(s.limits)
        while s.now < target { s.tick() }
        #expect(s.now == target)
        return s
    }

    static var losses: [(String, (inout Scenario) -> Void)] { [
        ("probe off", { $0.oximeter.quality = .probeOff }),
        ("no SpO2 value", { $0.oximeter.spo2 = nil }),
        ("oximeter silent", { $0.oximeter.publishing = false }),
        ("oximeter disconnected", { $0.oximeter.publishing = false; $0.oximeter.connection = .disconnected }),
        ("only stale samples", { $0.oximeter.delay = $0.limits.sampleMaxAge + .milliseconds(100) }),
    ] }

    @Test("R-MON-06: no valid data for exactly the alarm window raises nothing; one tick longer raises the medium technical alarm")
    func warningWindow() throws {
        for (name, loseData) in Self.losses {
            var s = try lose(loseData, after: \.monitoringLossAlarmAfter)
            #expect(!s.alarm(.monitoringLost).isPresent, "\(name)")
            let out = s.tick()
            #expect(out.started(.monitoringLost), "\(name)")
            let alarm = s.alarm(.monitoringLost)
            #expect(alarm.priority == .medium && alarm.category == .technical, "\(name)")
            #expect(s.mode == .infusing, "\(name): the warning window does not stop")
        }
    }

    @Test("R-MON-06: no valid data for exactly the pause window keeps infusing; one tick longer stops and escalates to high")
    func pauseWindow() throws {
        for (name, loseData) in Self.losses {
            var s = try lose(loseData, after: \.monitoringLossPauseAfter)
            #expect(s.mode == .infusing, "\(name)")
            #expect(s.alarm(.monitoringLost).priority == .medium, "\(name)")
            let out = s.tick()
            #expect(s.mode == .stoppedBySupervisor, "\(name)")
            #expect(out.commandList == [.stop], "\(name)")
            #expect(out.alarmEvents.contains { $0.cause == .monitoringLost && $0.phase == .escalate && $0.priority == .high }, "\(name)")
            #expect(out.decisions.contains { $0.rule == .monitoringLoss && $0.kind == .stopCommanded }, "\(name)")
        }
    }

    @Test("R-MON-06: an invalid signal raises a medium technical alarm after its own window (0 s in the shipped profile)")
    func invalidSignal() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        #expect(s.limits.invalidSignalAlarmAfter == .zero)
        s.oximeter.quality = [.probeOff]
        let out = s.tick()
        #expect(out.started(.invalidSignal))
        #expect(s.alarm(.invalidSignal).trigger == .signal([.probeOff], lasted: .zero))
        #expect(s.alarm(.invalidSignal).priority == .medium)
        s.oximeter.quality = []
        let back = s.tick()
        #expect(back.alarmEvents.contains { $0.cause == .invalidSignal && $0.phase == .end }, "not latching: it ends with the condition")
    }

    @Test("R-MON-06: an invalid-signal window longer than zero is honoured one tick either side")
    func invalidSignalWindow() throws {
        var s = Scenario(program: try Programs.program()) {
            var l = $0
            l.invalidSignalAlarmAfter = .seconds(10)
            return l
        }
        s.startInfusing()
        s.oximeter.quality = .lowPerfusion
        s.tick() // T0
        s.run(for: .seconds(10) - s.tickLength)
        #expect(!s.alarm(.invalidSignal).isPresent)
        s.tick()
        #expect(s.alarm(.invalidSignal).isPresent)
    }

    @Test("R-MON-08: a sample exactly the maximum age old is used; one tick older is ignored and recorded")
    func staleBoundary() throws {
        for (age, used) in [(Duration.seconds(5), true), (.seconds(5) + .milliseconds(100), false)] {
            var s = Scenario(program: try Programs.program())
            s.startInfusing()
            #expect(s.limits.sampleMaxAge == .seconds(5))
            // A gap, then samples that arrive `age` after they were measured (still in order).
            s.oximeter.publishing = false
            s.run(for: .seconds(6))
            s.oximeter.publishing = true
            s.oximeter.delay = age
            s.oximeter.spo2 = 80
            let out = s.tick()
            if used {
                #expect(s.mode == .stoppedBySupervisor, "a sample exactly sampleMaxAge old is evidence")
            } else {
                #expect(s.mode == .infusing, "a stale sample is no data: it neither stops nor reassures")
                #expect(out.decisions.contains { $0.rule == .sampleFreshness && $0.kind == .sampleIgnored(.stale) })
            }
        }
    }

    @Test("R-MON-08: an out-of-order sample is ignored and does not count as valid data")
    func outOfOrder() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        s.oximeter.spo2 = 89
        s.tick() // T0: the low-SpO2 hold starts
        s.oximeter.publishing = false
        // A sample measured before the last accepted one, with a reassuring value.
        s.inputs.vitals = VitalSample(arrivedAt: s.now, measuredAt: s.now - .seconds(1), spo2: .percent(99), pulseRate: .beatsPerMinute(70))
        let out = s.tick()
        #expect(out.decisions.contains { $0.kind == .sampleIgnored(.outOfOrder) })
        #expect(s.channel.state.lastAcceptedVitals?.spo2 == .percent(89))
        // It is recorded once, not on every tick it stays published.
        let again = s.tick()
        #expect(!again.decisions.contains { $0.kind == .sampleIgnored(.outOfOrder) })
        // The hold was not reset by it: the stop comes at T0 + hold.
        s.oximeter.publishing = true
        let t0 = s.channel.state.spo2LowSince
        #expect(t0 != nil)
        while let t0, s.now < t0 + s.limits.spo2PauseHold - s.tickLength { s.tick() }
        #expect(s.mode == .infusing)
        s.tick()
        #expect(s.mode == .stoppedBySupervisor)
    }

    @Test("R-MON-08: a second sample with the same time stamps as the last one (one read, two samples) is still new")
    func sameStampsNewValue() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        s.oximeter.publishing = false
        let t = s.now + s.tickLength
        let normal = VitalSample(arrivedAt: t, measuredAt: t, spo2: .percent(97), pulseRate: .beatsPerMinute(72))
        s.inputs.vitals = normal
        s.tick()
        #expect(s.channel.state.lastAcceptedVitals == normal)
        #expect(s.mode == .infusing)
        // The driver decoded a second packet from the same read: same arrival and measurement time.
        var critical = normal
        critical.spo2 = .percent(s.limits.spo2ImmediatePauseBelow.percent - 1)
        s.inputs.vitals = critical
        let out = s.tick()
        #expect(s.mode == .stoppedBySupervisor, "the later sample of one read is evidence, not a repeat")
        #expect(out.commandList.contains(.stop))
        #expect(!out.decisions.contains { $0.rule == .sampleFreshness }, "it is neither out of order nor ignored")
        // The same sample read again on the next tick is a repeat: nothing new is recorded for it.
        let again = s.tick()
        #expect(!again.decisions.contains { $0.rule == .sampleFreshness })
        #expect(s.channel.state.lastAcceptedVitals == critical)
    }

    @Test("R-MON-08: a sample stamped after the step's time is not trusted")
    func fromTheFuture() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        s.oximeter.publishing = false
        s.inputs.vitals = VitalSample(arrivedAt: s.now, measuredAt: s.now + .seconds(5), spo2: .percent(80), pulseRate: .beatsPerMinute(70))
        let out = s.tick()
        #expect(out.decisions.contains { $0.kind == .sampleIgnored(.fromTheFuture) })
        #expect(s.mode == .infusing)
    }

    @Test("recovered valid data ends the monitoring-loss alarm's condition; the alarm stays latched until acknowledged")
    func recovery() throws {
        var s = try lose({ $0.oximeter.quality = .probeOff }, after: { $0.monitoringLossAlarmAfter + .seconds(1) })
        #expect(s.alarm(.monitoringLost).state == .active)
        s.oximeter.quality = []
        s.tick()
        #expect(s.alarm(.monitoringLost).state == .latched)
        #expect(s.mode == .infusing)
        s.tick(.acknowledge)
        #expect(s.alarm(.monitoringLost).state == .inactive)
    }
}
