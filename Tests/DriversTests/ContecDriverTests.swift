import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import InfusionCore
import Testing

@Suite("Contec driver against its simulator (virtual time)")
struct ContecDriverTests {
    func rig(_ observation: PatientObservation = knownObservation(), device: SimulatedContec = SimulatedContec())
        -> OximeterRig<ContecSession, SimulatedContec> {
        OximeterRig(session: ContecSession(), device: device, bitsPerSecond: 115_200, observation: observation)
    }

    @Test("start real-time at connect; 60 samples/s whose values and flags match what the simulator was told")
    func values() {
        let rig = rig(knownObservation(spo2: 92, pulse: 66, pi: 2.35))
        rig.run(.seconds(10))
        let samples = rig.samples()
        #expect(abs(samples.count - 600) <= 1)
        #expect(samples.allSatisfy {
            $0.spo2 == .percent(92) && $0.pulseRate == .beatsPerMinute(66) && $0.perfusionIndex == .percent(2.35) && $0.quality == []
        })
        #expect(rig.connections().map(\.1) == [.connected])
        #expect(rig.counters.framingErrors == 0)
    }

    @Test("keep-alive every 5 s keeps the stream going past the simulator's 15-s keep-alive limit")
    func keepAlive() {
        let rig = rig()
        rig.run(.seconds(60))
        #expect(rig.connections().map(\.1) == [.connected])
        #expect(rig.samples(after: rig.now - .seconds(1)).count >= 59)
        // The simulator logs nothing about stopping.
        #expect(!rig.deviceLog.contains { $0.contains("stopped") })
    }

    @Test("a host that sends no keep-alive: the simulator stops after 15 s")
    func simulatorKeepAliveRule() {
        var device = SimulatedContec()
        var fx = EndpointEffects<String>()
        device.linkUp(at: .origin, effects: &fx)
        device.receive(Contec.ControlCommand.startRealTime.encoded(), at: .origin, effects: &fx)
        #expect(device.streaming)
        device.tick(at: .origin + .seconds(15) - .nanoseconds(1), effects: &fx)
        #expect(device.streaming)
        device.tick(at: .origin + .seconds(15), effects: &fx)
        #expect(!device.streaming)
    }

    @Test("each fault shows up as its flag within one packet period", arguments: [
        ("probe-off", OximetryQuality.probeOff), ("artifact", .searching), ("low-perfusion", .lowPerfusion), ("out-of-track", .outOfTrack),
    ])
    func faults(_ fault: String, _ flag: OximetryQuality) {
        let rig = rig()
        rig.run(.seconds(2))
        let start = rig.now
        #expect(rig.inject(fault, "2s") == "\(fault) for 2 s")
        rig.run(.seconds(2))
        let found = rig.firstSample(with: flag, after: start)
        #expect(found != nil)
        if let (delay, sample) = found {
            #expect(delay <= .milliseconds(18))  // next packet (≤ 16.7 ms) + 0.8 ms on the wire
            if fault == "probe-off" || fault == "out-of-track" {
                #expect(sample.spo2 == nil && sample.pulseRate == nil && sample.perfusionIndex == nil)
            }
            if fault == "low-perfusion" { #expect(sample.perfusionIndex == .percent(0.2) && !sample.isValid) }
            if fault == "artifact" { #expect(!sample.quality.contains(.lowPerfusion)) }
        }
        rig.run(.seconds(1))
        #expect(rig.samples(after: rig.now - .milliseconds(500)).allSatisfy { $0.isValid && $0.quality == [] })
        #expect(rig.connections().map(\.1) == [.connected])
    }

    @Test("worst phase: a fault starting just after a packet was sampled shows on the next one, within 18 ms", arguments: [
        ("probe-off", OximetryQuality.probeOff), ("artifact", .searching), ("low-perfusion", .lowPerfusion), ("out-of-track", .outOfTrack),
    ])
    func faultsWorstPhase(_ fault: String, _ flag: OximetryQuality) {
        let rig = rig()
        // Packets go out every 1/60 s from the "start" command's arrival (0.78 ms: 9 bytes at 115 200 baud);
        // one is sent at 2.00078 s, so 2.001 s is just after a packet was sampled without the fault.
        rig.run(.milliseconds(2_001))
        let start = rig.now
        #expect(rig.inject(fault, "1s") == "\(fault) for 1 s")
        rig.run(.seconds(1))
        let found = rig.firstSample(with: flag, after: start)
        #expect(found != nil)
        if let (delay, _) = found {
            // More than 15 ms: this is the worst phase (the next packet, 1/60 s later, plus 0.8 ms on the wire).
            #expect(delay > .milliseconds(15) && delay <= .milliseconds(18), "\(fault) took \(delay)")
        }
    }

    @Test("a scenario's probe-off: probe error bit and invalid markers")
    func scenarioProbeOff() {
        let rig = rig()
        rig.run(.seconds(1))
        let start = rig.now
        rig.observe(knownObservation(conditions: [.probeOff]))
        rig.run(.seconds(1))
        let during = rig.samples(after: start + .milliseconds(20))
        #expect(during.count >= 58)
        #expect(during.allSatisfy { $0.quality == .probeOff && $0.spo2 == nil && $0.pulseRate == nil && $0.perfusionIndex == nil })
    }

    @Test("silence: .silent + no-data at 0.5 s, start re-sent, dropped (.disconnected) 1 s later, restarted after 1 s, back when the device answers")
    func silence() {
        let rig = rig()
        rig.run(.seconds(2))
        let start = rig.now
        rig.inject("silence", "4s")
        rig.run(.seconds(6))
        let last = rig.samples().last { $0.arrivedAt <= start }
        let changes = rig.connections(after: start)
        #expect(changes.map(\.1) == [.silent, .disconnected, .connected])
        if let last, changes.count == 3 {
            #expect(changes[0].0 == last.arrivedAt + .milliseconds(500))
            #expect(rig.noData(after: start) == [changes[0].0])
            #expect(changes[1].0 == changes[0].0 + .seconds(1))  // no answer to start real-time within 1 s
            #expect(changes[2].0 > start + .seconds(4))
        }
        #expect(rig.notices().contains(.noAnswer(command: "Contec command A1", after: .seconds(1))))
        #expect(rig.samples(after: rig.now - .milliseconds(500)).count >= 29)
    }

    @Test("answer deadline edge: no real-time data 1 s minus a tick after start is fine; at 1 s the connection drops (pure session)")
    func answerEdge() {
        var session = ContecSession()
        var fx = EndpointEffects<OximeterOutput>()
        session.linkUp(at: .origin, effects: &fx)
        #expect(fx.outgoing == [[0x7D, 0x81, 0xA1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]])
        #expect(session.nextDeadline == .origin + .seconds(1))
        var fx2 = EndpointEffects<OximeterOutput>()
        session.receive(Contec.RealTimeData(signalStrength: 5, pulseRate: .beatsPerMinute(70), spo2: .percent(97)).packet.encoded(),
                        at: .origin + .milliseconds(500), effects: &fx2)
        #expect(fx2.outputs.first == .connection(.connected, at: .origin + .milliseconds(500)))
        // Answered: the next deadline is the staleness rule.
        #expect(session.nextDeadline == .origin + .seconds(1))
        var silence = ContecSession()
        var fx3 = EndpointEffects<OximeterOutput>()
        silence.linkUp(at: .origin, effects: &fx3)
        silence.tick(at: .origin + .seconds(1) - .nanoseconds(1), effects: &fx3)
        #expect(silence.connectionsDropped == 0)
        silence.tick(at: .origin + .seconds(1), effects: &fx3)
        #expect(silence.connectionsDropped == 1)
        // It starts over after 1 s.
        var fx4 = EndpointEffects<OximeterOutput>()
        silence.tick(at: .origin + .seconds(2), effects: &fx4)
        #expect(fx4.outgoing == [Contec.ControlCommand.startRealTime.encoded()])
    }

    @Test("keep-alive edge: sent at exactly 5 s, not before (pure session)")
    func keepAliveEdge() {
        var session = ContecSession()
        var fx = EndpointEffects<OximeterOutput>()
        session.linkUp(at: .origin, effects: &fx)
        var t = MonotonicInstant.origin
        var sent: [(MonotonicInstant, [UInt8])] = []
        while t <= .origin + .milliseconds(10_010) {  // a packet every 10 ms keeps it answered and fresh
            var step = EndpointEffects<OximeterOutput>()
            session.receive(Contec.RealTimeData(signalStrength: 5, pulseRate: .beatsPerMinute(70), spo2: .percent(97)).packet.encoded(),
                            at: t, effects: &step)
            if let due = session.nextDeadline, due <= t { session.tick(at: t, effects: &step) }
            sent += step.outgoing.map { (t, $0) }
            t = t + .milliseconds(10)
        }
        #expect(sent.map(\.0) == [.origin + .seconds(5), .origin + .seconds(10)])
        #expect(sent.allSatisfy { $0.1 == [0x7D, 0x81, 0xAF, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80] })
    }

    @Test("corrupt packets are counted, never published; staleness reports the gap")
    func corrupt() {
        let rig = rig()
        rig.run(.seconds(2))
        let start = rig.now
        rig.inject("corrupt", "0.3s")
        rig.run(.seconds(1))
        #expect(rig.counters.framingErrors >= 17)
        #expect(rig.samples(after: start + .milliseconds(2)).filter { $0.arrivedAt < start + .milliseconds(300) }.isEmpty)
        rig.inject("corrupt", "2s")
        rig.run(.seconds(4))
        #expect(rig.connections(after: start).map(\.1).prefix(1) == [.silent])
        #expect(rig.connections(after: start).last?.1 == .connected)
    }

    @Test("garbage: counted, and the next packet is read")
    func garbage() {
        let rig = rig()
        rig.run(.seconds(1))
        let start = rig.now
        rig.inject("garbage")
        rig.run(.seconds(1))
        #expect(rig.samples(after: start).count >= 58)
        #expect(rig.samples(after: start).allSatisfy { $0.spo2 == .percent(95) })
    }

    @Test("unplug and replug: .disconnected, then start real-time again and .connected")
    func unplug() {
        let rig = rig()
        rig.run(.seconds(1))
        let start = rig.now
        rig.unplug()
        rig.run(.seconds(2))
        rig.replug()
        rig.run(.seconds(1))
        #expect(rig.connections(after: start).map(\.1) == [.disconnected, .connected])
        #expect(rig.samples(after: rig.now - .milliseconds(500)).count >= 29)
    }

    @Test("command feedback for an unsupported command is published as a notice")
    func feedback() {
        let rig = rig()
        rig.run(.milliseconds(100))
        _ = rig.network.perform(rig.driver, as: ContecSession.self) { _, _, effects in
            effects.send(Contec.ControlCommand(Contec.ControlCode(rawValue: 0xB5)).encoded())
        }
        rig.run(.milliseconds(100))
        #expect(rig.notices() == [.commandFeedback(command: "B5", reason: "unsupported")])
    }

    @Test("random and truncated bytes never crash or wedge the session; it reads the next valid packet")
    func robustness() {
        var random = TestRandom(state: 99)
        var session = ContecSession()
        var fx = EndpointEffects<OximeterOutput>()
        session.linkUp(at: .origin, effects: &fx)
        let valid = Contec.RealTimeData(signalStrength: 5, pulseRate: .beatsPerMinute(150), spo2: .percent(98),
                                        perfusionIndex: .percent(2.35)).packet.encoded()
        for round in 0..<300 {
            var garbage = random.bytes(random.below(64))
            if round % 3 == 0 { garbage += valid.prefix(random.below(valid.count)) }
            var effects = EndpointEffects<OximeterOutput>()
            session.receive(garbage, at: .origin + .milliseconds(round), effects: &effects)
            var after = EndpointEffects<OximeterOutput>()
            session.receive(valid, at: .origin + .milliseconds(round), effects: &after)
            let samples = after.outputs.compactMap { if case .sample(let s) = $0 { s } else { nil } }
            #expect(samples.last?.pulseRate == .beatsPerMinute(150), "round \(round)")
            #expect(samples.last?.perfusionIndex == .percent(2.35))
        }
    }
}
