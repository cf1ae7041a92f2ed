import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import InfusionCore
import Testing

/// The New Era driver session against the simulated pump in virtual time: every request and reply
/// kind, alarms, faults, timing edges.
@Suite("New Era driver session (virtual time)")
struct NewEraSessionTests {
    @Test("handshake: the power-up A?R is acknowledged, SAF is resent, safe mode armed, no alarm latched")
    func handshake() {
        let bench = NewEraBench()
        #expect(bench.waitReady())
        let session = bench.session
        #expect(session.framing == .safe)
        #expect(session.connection == .connected)
        #expect(session.alarms.isEmpty)
        let pump = bench.pump
        #expect(pump.mode == .safe)
        #expect(pump.safeModeTimeoutSeconds == 5)
        #expect(pump.alarm == nil)
        // First SAF5 got A?R, the resend got 00S.
        let replies = bench.allDeviceEvents.compactMap { if case let .reply(text) = $0 { text } else { nil } }
        #expect(Array(replies.prefix(2)) == ["00A?R", "00S"])
    }

    @Test("basic mode when configured with 0 s: SAF0 sent in safe framing, answered in basic framing")
    func basicMode() {
        let bench = NewEraBench(session: .init(safeModeTimeoutSeconds: 0))
        #expect(bench.waitReady())
        #expect(bench.session.framing == .basic)
        #expect(bench.pump.mode == .basic)
        #expect(bench.submit(.identify)?.answer == .version(NewEra.Version(model: 1000, major: 3, minor: "928")))
    }

    @Test("every request kind is confirmed with what the pump reads back")
    func everyRequest() throws {
        let bench = NewEraBench()
        #expect(bench.waitReady())
        #expect(bench.submit(.identify)?.answer == .version(NewEra.Version(model: 1000, major: 3, minor: "928")))
        let diameter = try #require(NewEra.Number(text: "26.59"))
        #expect(bench.submit(.setDiameter(diameter))?.answer == .diameter(diameter))
        let (setting, rounded) = try NewEra.RateSetting.roundingDown(.millilitresPerHour(60))
        #expect(rounded.actual == .millilitresPerHour(60))
        #expect(bench.submit(.setRate(setting))?.answer == .rate(setting))
        let volume = try #require(NewEra.Number(text: "5"))
        #expect(bench.submit(.setVolume(volume, .millilitres))?.answer == .volume(NewEra.VolumeSetting(volume, .millilitres)))
        let started = try #require(bench.submit(.start)?.status)
        #expect(started.state == .infusing)
        bench.run(for: .seconds(60))  // 60 mL/h for 1 min: 1 mL
        let status = try #require(bench.submit(.status)?.status)
        #expect(status.state == .infusing)
        #expect(status.rate == .millilitresPerHour(60))
        let infused = try #require(status.volumeInfused).value(in: .millilitres)
        #expect(abs(infused - 1.0) < 0.01)
        let stopped = try #require(bench.submit(.stop)?.status)
        #expect(stopped.state == .paused)
        #expect(bench.submit(.stop)?.status?.state == .stopped)
        guard case .dispensed(let cleared)? = bench.submit(.clearInfused)?.answer else {
            Issue.record("clearInfused not confirmed")
            return
        }
        #expect(cleared.infused.scaledValue == 0)
        #expect(bench.submit(.setSafeMode(seconds: 0))?.answer == .safeMode(seconds: 0))
        #expect(bench.session.framing == .basic)
        #expect(bench.pump.mode == .basic)
        #expect(bench.submit(.identify)?.answer != nil, "basic framing works after disarming")
        #expect(bench.submit(.setSafeMode(seconds: 2))?.answer == .safeMode(seconds: 2))
        #expect(bench.pump.mode == .safe)
        #expect(bench.session.heartbeatInterval <= .milliseconds(667))
    }

    @Test("the volume to infuse stops the pump; the heartbeat publishes the stopped state")
    func volumeReached() throws {
        let bench = NewEraBench()
        bench.waitReady()
        let (rate, _) = try NewEra.RateSetting.roundingDown(.millilitresPerHour(360))
        _ = bench.submit(.setRate(rate))
        _ = bench.submit(.setVolume(try #require(NewEra.Number(text: "0.5")), .millilitres))
        #expect(bench.submit(.start)?.status?.state == .infusing)
        bench.run(for: .seconds(6))  // 0.5 mL at 0.1 mL/s: 5 s
        #expect(bench.pump.prompt == .stopped)
        #expect(abs(bench.pump.infusedMillilitres - 0.5) < 1e-9)
        #expect(bench.session.lastStatus?.state == .stopped)
    }

    @Test("refusals: ?OOR for a rate beyond the syringe's limits, ?NA for a diameter change while pumping")
    func refusals() throws {
        let bench = NewEraBench()
        bench.waitReady()
        let (tooFast, _) = try NewEra.RateSetting.roundingDown(.millilitresPerHour(5000))
        let refused = bench.submit(.setRate(tooFast))
        #expect(refused?.refusalCode == "?OOR")
        if case let .refused(_, reason)? = refused { #expect(reason.contains("out of range")) }
        let (ok, _) = try NewEra.RateSetting.roundingDown(.millilitresPerHour(10))
        _ = bench.submit(.setRate(ok))
        _ = bench.submit(.start)
        let na = bench.submit(.setDiameter(try #require(NewEra.Number(text: "20"))))
        #expect(na?.refusalCode == "?NA")
        if case let .refused(_, reason)? = na { #expect(reason.contains("stop it first")) }
        #expect(bench.submit(.start)?.status?.state == .infusing, "start while infusing is confirmed (DIR ?NA tolerated)")
    }

    @Test("start with no valid rate is refused, not assumed")
    func startWithoutRate() {
        let bench = NewEraBench()
        bench.waitReady()
        #expect(bench.submit(.start)?.refusalCode == "?OOR")
        #expect(bench.pump.prompt == .stopped)
    }

    @Test("a stall raises a high-priority occlusion alarm; it stays latched until a confirmed start")
    func stall() throws {
        let bench = NewEraBench()
        bench.waitReady()
        _ = bench.submit(.setRate(try NewEra.RateSetting.roundingDown(.millilitresPerHour(10)).setting))
        _ = bench.submit(.start)
        bench.run(for: .seconds(1))
        #expect(bench.inject("stall") != nil)
        bench.run(for: .milliseconds(50))  // the auto-alarm packet arrives unsolicited
        #expect(bench.publishedAlarms.contains(.occlusion))
        #expect(bench.publishedAlarms.highestPriority == .high)
        bench.run(for: .seconds(1))  // heartbeat acknowledges A?S and resends
        #expect(bench.pump.alarm == nil)
        let status = try #require(bench.submit(.status)?.status)
        #expect(status.state == .stopped)
        #expect(status.alarms.contains(.occlusion))
        #expect(bench.submit(.start)?.status?.state == .infusing)
        #expect(bench.publishedAlarms.isEmpty)
    }

    @Test("a stall pending at RUN: the alarm reply to the next command is latched, acknowledged and the command resent")
    func stallAtRun() throws {
        let bench = NewEraBench(session: .init(safeModeTimeoutSeconds: 0, pollInterval: .seconds(60)))
        bench.waitReady()
        _ = bench.submit(.setRate(try NewEra.RateSetting.roundingDown(.millilitresPerHour(10)).setting))
        _ = bench.inject("occlusion")
        #expect(bench.submit(.start)?.status?.state == .infusing)
        bench.run(for: .milliseconds(200))  // the motor stalls 100 ms after RUN (basic mode: no auto-alarm)
        #expect(bench.pump.alarm == .stalled)
        // The next start: DIR gets A?S (latched, acknowledged, resent), RUN then starts.
        #expect(bench.submit(.start)?.status?.state == .infusing)
        #expect(bench.allOutputs.contains { if case let .alarms(a, _) = $0 { a.contains(.occlusion) } else { false } })
        #expect(bench.publishedAlarms.isEmpty, "a confirmed start clears the latch")
    }

    @Test("RUN answered with an alarm is refused, never retried")
    func runAnsweredWithAlarm() throws {
        var session = NewEraSession(configuration: .init(safeModeTimeoutSeconds: 0))
        var effects = EndpointEffects<NewEraSession.Output>()
        let reply = { (status: NewEra.Status) in NewEra.Framing.basicReply(NewEra.Reply(address: .zero, status: status)) }
        session.linkUp(at: .origin, effects: &effects)
        session.receive(reply(.prompt(.stopped)), at: .origin, effects: &effects)
        #expect(session.isReady)
        effects = EndpointEffects()
        session.submit(.start, id: 1, now: .origin, effects: &effects)
        session.receive(reply(.prompt(.stopped)), at: .origin, effects: &effects)  // DIR INF
        #expect(effects.outgoing.last == Array("0RUN\r".utf8))
        session.receive(reply(.alarm(.stalled)), at: .origin, effects: &effects)  // RUN
        #expect(effects.outgoing.count == 2, "RUN is not sent again")
        let done = effects.outputs.compactMap { if case let .completed(1, outcome) = $0 { outcome } else { nil } }
        #expect(done.first?.refusalCode == "A?S")
        #expect(session.alarms.contains(.occlusion))
    }

    @Test("watchdog: the pump goes deaf, stops within its time-out, and the driver reports alarm T on return")
    func watchdog() throws {
        let bench = NewEraBench(session: .init(safeModeTimeoutSeconds: 2))
        bench.waitReady()
        _ = bench.submit(.setRate(try NewEra.RateSetting.roundingDown(.millilitresPerHour(10)).setting))
        _ = bench.submit(.start)
        let silencedAt = bench.now
        _ = bench.inject("silence", ["3s"])
        var stoppedAt: MonotonicInstant?
        while bench.now < silencedAt + .seconds(3) {
            bench.run(for: .milliseconds(10))
            if stoppedAt == nil, bench.pump.prompt == .stopped { stoppedAt = bench.now }
        }
        let stop = try #require(stoppedAt)
        #expect(stop - silencedAt <= .seconds(2) + .milliseconds(10))
        #expect(bench.connections.contains(.silent))
        bench.run(for: .seconds(2))
        #expect(bench.session.connection == .connected)
        #expect(bench.publishedAlarms.contains(.communicationTimeout))
        #expect(bench.session.lastStatus?.state == .stopped)
    }

    @Test("no reply: the request ends uncertain after the bounded attempts and the connection turns silent")
    func noReply() {
        let bench = NewEraBench(session: .init(replyTimeout: .milliseconds(100), maxAttempts: 3))
        bench.waitReady()
        _ = bench.inject("silence", ["10s"])
        let started = bench.now
        let outcome = bench.submit(.identify)
        #expect(outcome?.isUncertain == true)
        #expect(bench.now - started < .seconds(1))
        #expect(bench.connections.last == .silent || bench.connections.last == .connected)
        #expect(bench.connections.contains(.silent))
    }

    @Test("unplug mid-request: the request ends uncertain and the driver reports disconnected")
    func unplug() {
        let bench = NewEraBench()
        bench.waitReady()
        var completed: NewEraSession.Outcome?
        bench.network.perform(bench.driver, as: NewEraSession.self) { s, now, fx in s.submit(.identify, id: 99, now: now, effects: &fx) }
        bench.network.disconnect(bench.driver)
        completed = bench.completion(99)
        #expect(completed?.isUncertain == true)
        #expect(bench.session.connection == .disconnected)
        // Submitting while down waits `connectTimeout` for the link, then is uncertain (not sent).
        let before = bench.now
        #expect(bench.submit(.status)?.isUncertain == true)
        #expect(bench.now - before <= .seconds(2) + .milliseconds(5))
    }

    @Test("a power reset during the session is latched as powerReset")
    func powerReset() {
        let bench = NewEraBench()
        bench.waitReady()
        _ = bench.inject("power-reset")
        bench.run(for: .seconds(1))
        #expect(bench.publishedAlarms.contains(.powerReset))
    }

    @Test("program error A?E and phase out of range A?O become typed high-priority pump alarms; a start clears them",
          arguments: [("program-error", NewEra.Alarm.programError, PumpAlarms.programError),
                      ("phase-out-of-range", .phaseOutOfRange, .outOfRange)])
    func programAlarms(fault: String, alarm: NewEra.Alarm, expected: PumpAlarms) throws {
        #expect(NewEraSession.pumpAlarm(alarm) == expected)
        let bench = NewEraBench()
        #expect(bench.waitReady())
        _ = bench.submit(.setRate(try NewEra.RateSetting.roundingDown(.millilitresPerHour(36)).setting))
        #expect(bench.submit(.start)?.status?.state == .infusing)
        #expect(bench.inject(fault) != nil)
        let raisedAt = bench.now
        bench.run(for: .milliseconds(10))  // the auto-alarm packet is on the wire at once (no pacing)
        #expect(bench.publishedAlarms == expected)
        #expect(bench.publishedAlarms.highestPriority == .high)
        let when = bench.allOutputs.compactMap { if case let .alarms(a, at) = $0, a == expected { at } else { nil } }.first
        #expect(when.map { $0 - raisedAt <= .milliseconds(10) } == true, "reported as soon as the auto-alarm arrives")
        let status = try #require(bench.submit(.status)?.status)
        #expect(status.alarms == expected)
        #expect(status.state == .stopped)
        #expect(bench.pump.prompt == .stopped)
        #expect(bench.session.lastStatus?.alarms == expected)
        // A start the pump confirms clears the latched alarm (the operator saw it and restarted)...
        #expect(bench.submit(.start)?.status?.state == .infusing)
        #expect(bench.publishedAlarms.isEmpty)
        // ...and an alarm armed while stopped fires 100 ms after the next start.
        _ = bench.submit(.stop)
        _ = bench.submit(.stop)
        #expect(bench.inject(fault) != nil)
        #expect(bench.submit(.start)?.status?.state == .infusing)
        bench.run(for: .milliseconds(150))
        #expect(bench.publishedAlarms == expected)
    }

    @Test("in basic mode (no auto-alarm) a program alarm is found by the next heartbeat, within the poll interval")
    func programAlarmBasicMode() throws {
        let bench = NewEraBench(session: .init(safeModeTimeoutSeconds: 0, pollInterval: .milliseconds(400)))
        #expect(bench.waitReady())
        _ = bench.submit(.setRate(try NewEra.RateSetting.roundingDown(.millilitresPerHour(36)).setting))
        #expect(bench.submit(.start)?.status?.state == .infusing)
        #expect(bench.inject("phase-out-of-range") != nil)
        let raisedAt = bench.now
        bench.run(for: .milliseconds(450))
        let when = try #require(bench.allOutputs.compactMap { if case let .alarms(a, at) = $0, a == .outOfRange { at } else { nil } }.first)
        #expect(when - raisedAt <= .milliseconds(400) + .milliseconds(5))
        #expect(bench.publishedAlarms.highestPriority == .high)
    }

    @Test("an empty syringe stops at the end of travel with a stall alarm")
    func empty() throws {
        let bench = NewEraBench()
        bench.waitReady()
        _ = bench.submit(.setRate(try NewEra.RateSetting.roundingDown(.millilitresPerHour(36)).setting))
        _ = bench.inject("empty", ["0.01mL"])
        _ = bench.submit(.start)
        bench.run(for: .seconds(2))  // 0.01 mL at 0.01 mL/s: 1 s
        #expect(bench.pump.prompt == .stopped)
        #expect(bench.pump.contentsMillilitres < 1e-9)
        #expect(bench.publishedAlarms.contains(.occlusion))
    }

    @Test("address filtering: a driver for address 1 gets no answer from pump 0, and talks to pump 1")
    func addresses() throws {
        let wrong = NewEraBench(session: .init(address: try #require(NewEra.Address(1)), replyTimeout: .milliseconds(50)))
        wrong.run(for: .seconds(1))
        #expect(!wrong.session.isReady)
        #expect(wrong.submit(.identify)?.isUncertain == true)
        let right = NewEraBench(session: .init(address: try #require(NewEra.Address(1))),
                                pump: .init(address: try #require(NewEra.Address(1))))
        #expect(right.waitReady())
        #expect(right.submit(.identify)?.answer != nil)
    }

    @Test("19200-baud pacing: a status round trip takes the bytes' time on the wire")
    func pacing() {
        let bench = NewEraBench(bitsPerSecond: 19200)
        bench.waitReady()
        let start = bench.now
        _ = bench.submit(.status)
        // 3 exchanges; each ≥ (8 + 8..20 bytes) × 0.52 ms.
        #expect(bench.now - start >= .milliseconds(15))
    }

    @Test("random bytes from the line never crash or wedge the session")
    func randomBytes() throws {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<50 {
            var session = NewEraSession()
            var effects = EndpointEffects<NewEraSession.Output>()
            var now = MonotonicInstant.origin
            session.linkUp(at: now, effects: &effects)
            for _ in 0..<20 {
                let count = Int.random(in: 0...64, using: &generator)
                let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
                now = now + .milliseconds(Int.random(in: 0...300, using: &generator))
                session.receive(bytes, at: now, effects: &effects)
                if let deadline = session.nextDeadline, deadline <= now { session.tick(at: now, effects: &effects) }
            }
            // Not wedged: once the handshake is (re)sent, a genuine answer completes it.
            let sent = effects.outgoing.count
            while effects.outgoing.count == sent, let deadline = session.nextDeadline {
                now = max(now, deadline)
                session.tick(at: now, effects: &effects)
            }
            let ok = try NewEra.Framing.safePacket(NewEra.Reply(address: .zero, status: .prompt(.stopped)))
            session.receive(ok, at: now, effects: &effects)
            #expect(session.isReady, "round \(round): the session recovers on the next valid reply")
        }
        // And over the wire: garbage from the pump between exchanges.
        let bench = NewEraBench()
        bench.waitReady()
        for _ in 0..<10 {
            _ = bench.inject("garbage", ["64"])
            bench.run(for: .milliseconds(30))
        }
        #expect(bench.submit(.identify)?.answer != nil)
    }

    @Test("replies from another address and unsolicited replies are ignored")
    func strayReplies() throws {
        var session = NewEraSession(configuration: .init(replyTimeout: .milliseconds(100)))
        var effects = EndpointEffects<NewEraSession.Output>()
        session.linkUp(at: .origin, effects: &effects)
        let other = try NewEra.Framing.safePacket(NewEra.Reply(address: try #require(NewEra.Address(7)), status: .prompt(.stopped)))
        session.receive(other, at: .origin + .milliseconds(1), effects: &effects)
        #expect(!session.isReady)
        #expect(session.statistics.ignored == 1)
        let mine = try NewEra.Framing.safePacket(NewEra.Reply(address: .zero, status: .prompt(.stopped)))
        session.receive(mine, at: .origin + .milliseconds(2), effects: &effects)
        #expect(session.isReady)
        session.receive(mine, at: .origin + .milliseconds(3), effects: &effects)
        #expect(session.statistics.unsolicited == 1)
    }

    @Test("?COM is retried within the attempt budget, then refused; reply deadline one tick under/over")
    func comErrorAndDeadline() throws {
        var session = NewEraSession(configuration: .init(safeModeTimeoutSeconds: 0, replyTimeout: .milliseconds(100), maxAttempts: 2))
        var effects = EndpointEffects<NewEraSession.Output>()
        session.linkUp(at: .origin, effects: &effects)
        session.receive(NewEra.Framing.basicReply(NewEra.Reply(address: .zero, status: .prompt(.stopped))), at: .origin, effects: &effects)
        #expect(session.isReady)
        effects = EndpointEffects()
        let t0 = MonotonicInstant.origin + .seconds(1)
        session.submit(.identify, id: 1, now: t0, effects: &effects)
        #expect(effects.outgoing == [Array("0VER\r".utf8)])
        #expect(session.nextDeadline == t0 + .milliseconds(100))
        session.tick(at: t0 + .milliseconds(100) - .nanoseconds(1), effects: &effects)  // not yet due: hosts only tick at deadlines
        let com = NewEra.Framing.basicReply(NewEra.Reply(address: .zero, status: .prompt(.stopped), body: .error(.invalidPacket)))
        session.receive(com, at: t0 + .milliseconds(10), effects: &effects)
        #expect(effects.outgoing.count == 2, "?COM: sent again")
        session.receive(com, at: t0 + .milliseconds(20), effects: &effects)
        let done = effects.outputs.compactMap { if case let .completed(1, outcome) = $0 { outcome } else { nil } }
        #expect(done.first?.refusalCode == "?COM")
    }

    @Test("heartbeat feeds the watchdog at no more than a third of its time-out")
    func heartbeat() {
        let bench = NewEraBench(session: .init(safeModeTimeoutSeconds: 3, pollInterval: .seconds(10)))
        bench.waitReady()
        #expect(bench.session.heartbeatInterval == .seconds(1))
        bench.run(for: .seconds(30))
        #expect(bench.pump.alarm == nil, "the pump's watchdog never fired")
        #expect(bench.pump.isWatchdogRunning)
    }
}
