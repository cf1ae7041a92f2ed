import Testing
@testable import InfusionCore
@testable import Supervisor

/// Pump alarms and faults, unknown or stale pump state, unexpected delivery, commanded against reported
/// rate and volume, and the pump's volume counter.
@Suite("Pump rules")
struct PumpRuleTests {
    func infusing() throws -> Scenario {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        return s
    }

    @Test("a high-priority pump alarm stops at once with a high technical latching alarm", arguments: [
        PumpAlarms.occlusion, .empty, .airInLine, .doorOpen, .deviceFault, .communicationTimeout, .powerReset, .remoteControlLost,
    ])
    func highPumpAlarm(alarm: PumpAlarms) throws {
        var s = try infusing()
        s.pump.alarms = alarm
        s.pump.state = .stopped // a pump stops itself on such an alarm
        let out = s.tick()
        #expect(s.mode == .stoppedBySupervisor)
        #expect(out.commandList == [.stop])
        let status = s.alarm(.pumpAlarm)
        #expect(status.state == .active && status.priority == .high && status.category == .technical)
        #expect(status.trigger == .pumpAlarms(alarm))
        s.pump.alarms = []
        s.tick()
        #expect(s.alarm(.pumpAlarm).state == .latched)
    }

    @Test("a second status with the same receive time as the last one (two replies in one read) is still new")
    func sameReceiveTimeNewStatus() throws {
        var s = try infusing()
        s.pumpReporting = false
        let t = s.now + s.tickLength
        s.pump.advance(to: t)
        let first = s.pump.status(at: t)
        s.inputs.pump = first
        s.tick()
        #expect(s.mode == .infusing)
        var occluded = first
        occluded.state = .stopped
        occluded.alarms = .occlusion
        s.inputs.pump = occluded
        let out = s.tick()
        #expect(s.mode == .stoppedBySupervisor, "the later status of one read is evidence, not a repeat")
        #expect(s.alarm(.pumpAlarm).trigger == .pumpAlarms(.occlusion))
        #expect(out.commandList == [.stop])
    }

    @Test("low battery is a medium and near-empty a low alarm; neither stops")
    func advisoryPumpAlarms() throws {
        var s = try infusing()
        s.pump.alarms = [.lowBattery, .nearEmpty]
        s.run(for: .seconds(1))
        #expect(s.mode == .infusing)
        #expect(s.alarm(.pumpBatteryLow).priority == .medium && s.alarm(.pumpBatteryLow).isPresent)
        #expect(s.alarm(.pumpNearEmpty).priority == .low && s.alarm(.pumpNearEmpty).isPresent)
    }

    @Test("pump status exactly the maximum age old keeps infusing; one tick older stops (unknown moves toward safe)")
    func staleStatus() throws {
        var s = try infusing()
        let last = s.now
        s.pumpReporting = false
        while s.now < last + s.limits.sampleMaxAge { s.tick() }
        #expect(s.mode == .infusing)
        let out = s.tick()
        #expect(s.mode == .stoppedBySupervisor)
        #expect(out.commandList == [.stop])
        #expect(out.started(.pumpCommunicationLost))
        #expect(s.alarm(.pumpCommunicationLost).priority == .high)
    }

    @Test("a pump link that goes down, or a state the driver cannot read, stops at once", arguments: [0, 1, 2])
    func linkDownOrUnknown(variant: Int) throws {
        var s = try infusing()
        switch variant {
        case 0: s.pumpLink = .disconnected
        case 1: s.pumpLink = .silent
        default: s.pump.state = .unknown
        }
        let out = s.tick()
        #expect(s.mode == .stoppedBySupervisor)
        #expect(out.commandList == [.stop])
        #expect(out.started(.pumpCommunicationLost))
    }

    @Test("a reported rate at the tolerance agrees; just beyond it stops one tick after the hold")
    func rateTolerance() throws {
        for (reported, stops) in [(29.4, false), (29.5, true), (26.6, false), (26.5, true)] {
            var s = try infusing()
            #expect(s.limits.maintenanceRate == .millilitresPerHour(28) && s.limits.rateTolerance == .percent(5))
            s.pump.reportedRate = .millilitresPerHour(reported)
            s.tick() // T0: the first disagreeing status
            s.run(for: s.limits.rateMismatchHold) // disagreed for exactly the hold
            #expect(s.mode == .infusing, "\(reported) mL/h at exactly the hold")
            let out = s.tick()
            #expect((s.mode == .stoppedBySupervisor) == stops, "\(reported) mL/h one tick past the hold")
            #expect(out.started(.rateMismatch) == stops)
        }
    }

    @Test("a pump that stops by itself while infusing is a rate disagreement")
    func pumpStopsItself() throws {
        var s = try infusing()
        s.pump.state = .stopped
        s.tick()
        s.run(for: s.limits.rateMismatchHold)
        #expect(s.mode == .infusing)
        s.tick()
        #expect(s.mode == .stoppedBySupervisor)
        #expect(s.alarm(.rateMismatch).trigger == .rate(commanded: .millilitresPerHour(28), reported: .zero,
                                                         lasted: s.limits.rateMismatchHold + s.tickLength))
    }

    @Test("a volume counter within tolerance of the commanded volume keeps infusing; just beyond stops")
    func volumeTolerance() throws {
        for (offset, stops) in [(-0.001, false), (0.001, true)] {
            var s = try infusing()
            s.pump.counterOffset = s.limits.volumeTolerance + .millilitres(offset)
            let out = s.tick()
            #expect((s.mode == .stoppedBySupervisor) == stops, "offset tolerance\(offset)")
            #expect(out.started(.volumeMismatch) == stops)
            if stops {
                #expect(s.alarm(.volumeMismatch).priority == .high)
                #expect(out.commandList == [.stop])
            }
        }
    }

    @Test("the expected volume tracks the pump's counter over a long run")
    func volumeTracks() throws {
        var s = try infusing()
        s.run(for: .seconds(300))
        #expect(s.mode == .infusing)
        let counted = try #require(s.channel.state.counterDelivered)
        #expect(abs(counted.millilitres - s.channel.state.expectedVolume.millilitres) < 1e-9)
        #expect(abs(counted.millilitres - 28.0 * 300 / 3600) < 0.01)
    }

    @Test("a counter that goes backwards is a reset: the delivered volume is carried over, a medium alarm latches, no stop")
    func counterReset() throws {
        var s = try infusing()
        s.run(for: .seconds(60))
        let before = try #require(s.channel.state.counterDelivered)
        s.pump.volume = .zero
        let out = s.tick()
        #expect(out.started(.volumeCounterReset))
        #expect(out.decisions.contains { if case .counterReset = $0.kind { true } else { false } })
        #expect(s.alarm(.volumeCounterReset).state == .latched && s.alarm(.volumeCounterReset).priority == .medium)
        s.run(for: .seconds(60))
        #expect(s.mode == .infusing)
        let after = try #require(s.channel.state.counterDelivered)
        #expect(after > before, "counting continues from the carried volume")
        #expect(abs(after.millilitres - s.channel.state.expectedVolume.millilitres) < 0.01)
        #expect(s.channel.state.deliveredVolume >= after)
    }

    @Test("a pump counter that started non-zero is counted from the first start")
    func counterBaseline() throws {
        var s = Scenario(program: try Programs.program())
        s.pump.volume = .millilitres(12.5) // left over from a previous use
        s.startInfusing()
        s.run(for: .seconds(10))
        let counted = try #require(s.channel.state.counterDelivered)
        #expect(counted < .millilitres(0.1))
        #expect(s.mode == .infusing)
    }

    @Test("delivery while paused by the operator is unexpected: stop, alarm, and a latched supervisor stop")
    func unexpectedDelivery() throws {
        var s = try infusing()
        s.tick(.pause)
        s.tick() // the pump confirms the stop
        #expect(s.mode == .pausedByOperator && !s.channel.state.stopPending)
        s.pump.state = .infusing // someone pressed start on the pump's keypad
        let out = s.tick()
        #expect(out.commandList == [.stop])
        #expect(out.started(.unexpectedDelivery))
        #expect(s.mode == .stoppedBySupervisor)
    }

    @Test("purging while delivery is commanded is unexpected and stops")
    func purging() throws {
        var s = try infusing()
        s.pump.state = .purging
        let out = s.tick()
        #expect(out.commandList == [.stop])
        #expect(out.started(.unexpectedDelivery))
        #expect(s.mode == .stoppedBySupervisor)
    }

    @Test("a pump without its watchdog armed during delivery raises a medium alarm (one of two stops is missing)")
    func watchdogDisarmed() throws {
        var s = try infusing()
        s.watchdogArmed = false
        let out = s.tick()
        #expect(out.started(.pumpWatchdogDisarmed))
        #expect(s.mode == .infusing)
    }
}
