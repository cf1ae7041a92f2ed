import Testing
@testable import InfusionCore
@testable import Supervisor

/// R-MON-09 (stop confirmation deadline), R-DL-08 (cumulative dose from the pump's own counter) and
/// the program's schedule (loading → maintenance → end).
@Suite("Stop confirmation, cumulative dose and schedule")
struct StopAndScheduleTests {
    /// Infusing, then a stop-worthy SpO2 sample; returns the scenario right after the stop tick.
    func stopped(pumpIgnoresStops: Bool) throws -> Scenario {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        s.pump.ignoresStops = pumpIgnoresStops
        s.oximeter.spo2 = 80
        let out = s.tick()
        #expect(out.commandList == [.stop])
        return s
    }

    @Test("R-MON-09: a stop confirmed exactly at the deadline raises no alarm")
    func confirmedAtDeadline() throws {
        var s = try stopped(pumpIgnoresStops: true)
        let stopAt = s.now
        while s.now < stopAt + s.limits.stopConfirmationDeadline - s.tickLength { s.tick() }
        s.pump.state = .stopped // the pump's next status (at the deadline) reports it stopped
        let out = s.tick()
        #expect(s.now == stopAt + s.limits.stopConfirmationDeadline)
        #expect(!s.channel.state.stopPending)
        #expect(!s.alarm(.stopNotConfirmed).isPresent)
        #expect(out.decisions.contains { $0.kind == .stopConfirmed(after: s.limits.stopConfirmationDeadline) })
    }

    @Test("R-MON-09: no confirmation one tick past the deadline: high technical alarm and a repeated stop; then the secondary stop and fault")
    func unconfirmed() throws {
        var s = try stopped(pumpIgnoresStops: true)
        let stopAt = s.now
        let deadline = s.limits.stopConfirmationDeadline
        while s.now < stopAt + deadline { s.tick() }
        #expect(!s.alarm(.stopNotConfirmed).isPresent, "at the deadline: not yet")
        let miss = s.tick()
        #expect(miss.started(.stopNotConfirmed))
        let alarm = s.alarm(.stopNotConfirmed)
        #expect(alarm.priority == .high && alarm.category == .technical)
        #expect(alarm.trigger == .stopUnconfirmed(elapsed: deadline + s.tickLength, attempts: 2))
        #expect(miss.commandList == [.stop], "the stop is repeated")
        #expect(miss.decisions.contains { $0.kind == .stopRepeated(attempt: 2) && $0.rule == .stopConfirmation })
        #expect(s.mode == .stoppedBySupervisor)

        let repeatAt = s.now
        while s.now < repeatAt + deadline { s.tick() }
        #expect(s.mode == .stoppedBySupervisor)
        let escalation = s.tick()
        #expect(escalation.commandList == [.stop, .secondaryStop])
        #expect(escalation.decisions.contains { $0.kind == .secondaryStopEngaged })
        #expect(s.mode == .fault)

        // Still unconfirmed: the stop keeps being repeated every deadline.
        let before = s.commands.count
        s.run(for: deadline * 2 + s.tickLength * 2)
        #expect(s.commands.count > before)
        #expect(s.commands.suffix(from: before).allSatisfy { $0.1 == .stop })

        // Confirmation at last: the alarm latches; the fault stays (it is final).
        s.pump.ignoresStops = false
        s.pump.state = .stopped
        s.tick()
        #expect(s.alarm(.stopNotConfirmed).state == .latched)
        #expect(s.mode == .fault)
        let refused = s.tick(.acknowledge)
        #expect(refused.actionOutcome == .applied(.acknowledge))
        #expect(s.tick(.start).actionOutcome == .startRefused(.sessionEnded))
    }

    @Test("R-MON-09 also covers an operator pause that the pump does not confirm")
    func pauseUnconfirmed() throws {
        var s = Scenario(program: try Programs.program())
        s.startInfusing()
        s.pump.ignoresStops = true
        s.tick(.pause)
        s.run(for: s.limits.stopConfirmationDeadline + s.tickLength)
        #expect(s.alarm(.stopNotConfirmed).isPresent)
    }

    @Test("R-DL-08: delivery stops on the first tick at which the delivered volume reaches the hard cumulative limit")
    func cumulativeLimit() throws {
        var s = Scenario(program: try Programs.program()) {
            var l = $0
            l.cumulativeHardLimitVolume = .millilitres(1)
            return l
        }
        s.startInfusing()
        var previous = s.channel.state.deliveredVolume
        var stopTick: StepOutput?
        for _ in 0..<3000 {
            let out = s.tick()
            if out.commandList.contains(.stop) {
                stopTick = out
                break
            }
            previous = s.channel.state.deliveredVolume
        }
        let out = try #require(stopTick)
        #expect(previous < .millilitres(1), "the tick before: under the limit, still infusing")
        #expect(s.channel.state.deliveredVolume >= .millilitres(1))
        #expect(out.started(.cumulativeDoseLimit))
        #expect(s.alarm(.cumulativeDoseLimit).priority == .high)
        #expect(s.mode == .stoppedBySupervisor)
        s.tick(.acknowledge)
        #expect(s.tick(.start).actionOutcome == .startRefused(.cumulativeLimitReached))
    }

    @Test("R-DL-08 from the pump's own counter: a counter running ahead (within the volume tolerance) stops a full-dose program at the limit, before its end")
    func cumulativeFromCounter() throws {
        // 0.8 mg/kg/h for 5 h at 80 kg is exactly the 4 mg/kg hard cumulative limit (320 mL at 1 mg/mL).
        let program = try Programs.program(dose: 0.8, minutes: 300)
        #expect(program.cumulativeHardLimitVolume == .millilitres(320))
        var s = Scenario(program: program, tick: .seconds(1))
        s.startInfusing()
        s.pump.counterOffset = .millilitres(0.3)
        s.run(until: { !$0.mode.commandsDelivery }, limit: .seconds(6 * 3600))
        #expect(s.mode == .stoppedBySupervisor)
        #expect(s.alarm(.cumulativeDoseLimit).isPresent)
        #expect(!s.alarm(.infusionComplete).isPresent)
        #expect(s.channel.state.deliveryElapsed < .seconds(5 * 3600))
        #expect(s.channel.state.deliveryElapsed > .seconds(5 * 3600 - 30))
    }

    @Test("schedule: the loading phase runs at the loading rate until its time is up, then maintenance; the program ends with a stop and a low advisory")
    func schedule() throws {
        // 0.2 mg/kg over 10 min at 80 kg, 1 mg/mL: 96 mL/h; then 0.35 mg/kg/h: 28 mL/h for 40 min.
        let program = try Programs.program(minutes: 40, loading: (0.2, 10))
        var s = Scenario(program: program, tick: .seconds(1))
        #expect(s.limits.loadingRate == .millilitresPerHour(96))
        #expect(s.channel.state.phase == .loading)
        s.tick()
        let start = s.tick(.start)
        #expect(start.commandList.first?.commandedRate == .millilitresPerHour(96))
        let startedAt = s.now
        while s.now < startedAt + .seconds(599) { s.tick() }
        #expect(s.channel.state.phase == .loading)
        #expect(s.pump.rate == .millilitresPerHour(96))
        let change = s.tick() // 600 s of delivery
        #expect(change.commandList == [.setRate(.millilitresPerHour(28))])
        #expect(change.decisions.contains { $0.kind == .phaseChanged(.maintenance) })
        #expect(s.channel.state.phase == .maintenance)
        while s.now < startedAt + .seconds(2999) { s.tick() }
        #expect(s.mode == .infusing)
        let end = s.tick() // 3000 s: loading + maintenance
        #expect(end.commandList == [.stop])
        #expect(s.mode == .complete)
        #expect(s.alarm(.infusionComplete).state == .latched && s.alarm(.infusionComplete).priority == .low)
        #expect(end.decisions.contains { $0.kind == .phaseChanged(.finished) && $0.modeAfter == .complete })
        s.tick()
        #expect(!s.channel.state.stopPending, "the pump confirmed the final stop")
        #expect(s.tick(.start).actionOutcome == .startRefused(.sessionEnded))
        // Delivered: 16 mL loading + 18.67 mL maintenance.
        let delivered = try #require(s.channel.state.counterDelivered)
        #expect(abs(delivered.millilitres - program.calculation.totalVolume.millilitres) < 0.01)
    }

    @Test("paused time does not count toward the schedule")
    func pauseExtendsSchedule() throws {
        var s = Scenario(program: try Programs.program(minutes: 40), tick: .seconds(1))
        s.startInfusing()
        s.run(for: .seconds(600))
        s.tick(.pause)
        s.run(for: .seconds(600))
        s.tick(.resume)
        s.run(until: { $0.mode == .complete }, limit: .seconds(3600))
        #expect(s.channel.state.deliveryElapsed >= .seconds(2400))
        #expect(s.channel.state.deliveryElapsed < .seconds(2400) + .seconds(2))
    }
}
