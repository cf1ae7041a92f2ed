import DeviceIO
import DeviceProtocols
import InfusionCore
import Testing

@testable import DeviceSimulators

/// Drives a simulated New Era pump directly with encoded packets, as a client library would.
private struct Host {
    var pump: NewEraSimulatedPump
    var now = MonotonicInstant.origin
    var events: [NewEraSimulatedPump.Event] = []
    var decoder = NewEra.ReplyDecoder()

    init(_ configuration: NewEraSimulatedPump.Configuration = .init(), linkUp: Bool = true) {
        pump = NewEraSimulatedPump(configuration: configuration)
        if linkUp {
            var effects = EndpointEffects<NewEraSimulatedPump.Event>()
            pump.linkUp(at: now, effects: &effects)
        }
    }

    /// Sends raw bytes; runs due ticks; returns the replies decoded (with their framing).
    mutating func send(_ bytes: [UInt8]) -> [NewEra.Received<NewEra.Reply>] {
        var effects = EndpointEffects<NewEraSimulatedPump.Event>()
        pump.receive(bytes, at: now, effects: &effects)
        return collect(effects)
    }

    mutating func safe(_ text: String) -> [NewEra.Received<NewEra.Reply>] {
        send((try? NewEra.Framing.safePacket(Array(text.utf8))) ?? [])
    }

    mutating func basic(_ text: String) -> [NewEra.Received<NewEra.Reply>] { send(Array((text + "\r").utf8)) }

    /// Advances time to `instant`, ticking at every deadline on the way.
    mutating func advance(by duration: Duration) -> [NewEra.Received<NewEra.Reply>] {
        let end = now + duration
        var replies: [NewEra.Received<NewEra.Reply>] = []
        while let deadline = pump.nextDeadline, deadline <= end {
            now = max(now, deadline)
            var effects = EndpointEffects<NewEraSimulatedPump.Event>()
            pump.tick(at: now, effects: &effects)
            replies += collect(effects)
        }
        now = end
        return replies
    }

    private mutating func collect(_ effects: EndpointEffects<NewEraSimulatedPump.Event>) -> [NewEra.Received<NewEra.Reply>] {
        events += effects.outputs
        var replies: [NewEra.Received<NewEra.Reply>] = []
        for frame in effects.outgoing {
            for event in decoder.decode(frame, at: now) { if case .success(let r) = event { replies.append(r) } }
        }
        return replies
    }
}

private func texts(_ replies: [NewEra.Received<NewEra.Reply>]) -> [String] { replies.map(\.message.text) }

@Suite("Simulated New Era pump")
struct NewEraSimulatedPumpTests {
    @Test("nesp-lib's opening: SAF in safe framing with alarm-ignore gets A?R, the resend gets 00S, both in safe framing")
    func nespLibOpening() {
        var host = Host()
        let first = host.safe("0SAF10")
        #expect(texts(first) == ["00A?R"])
        #expect(first.first?.framing == .safe)
        #expect(host.pump.mode == .basic, "the alarm reply replaces the command")
        let second = host.safe("0SAF10")
        #expect(texts(second) == ["00S"])
        #expect(second.first?.framing == .safe)
        #expect(host.pump.mode == .safe)
        // Leaving safe mode: SAF0 in safe framing is answered in basic framing (the manual's vector).
        let leave = host.send([0x02, 0x08, 0x53, 0x41, 0x46, 0x30, 0x55, 0x43, 0x03])
        #expect(texts(leave) == ["00S"])
        #expect(leave.first?.framing == .basic)
        #expect(host.pump.mode == .basic)
    }

    @Test("query replies have the shapes nesp-lib's patterns expect")
    func replyShapes() {
        var host = Host(.init(powerUpAlarm: false))
        #expect(texts(host.basic("0VER")) == ["00SNE1000V3.928"])
        #expect(texts(host.basic("0DIA")) == ["00S26.59"])
        #expect(texts(host.basic("0 rat 1.5 mm")) == ["00S"])
        #expect(texts(host.basic("0RAT")) == ["00S1.500MM"])
        #expect(texts(host.basic("0VOLML")) == ["00S"])
        #expect(texts(host.basic("0VOL5")) == ["00S"])
        #expect(texts(host.basic("0VOL")) == ["00S5.000ML"])
        #expect(texts(host.basic("0DIS")) == ["00SI0.000W0.000ML"])
        #expect(texts(host.basic("0DIR")) == ["00SINF"])
        #expect(texts(host.basic("0SAF")) == ["00S0"])
        #expect(texts(host.basic("")) == ["00S"], "Enter in a terminal: 00S")
        #expect(texts(host.basic("0XYZ")) == ["00S?"])
        #expect(texts(host.basic("0RATFAST")) == ["00S?OOR"])
    }

    @Test("rate limits follow the diameter: ?OOR outside them")
    func rateLimits() {
        var host = Host(.init(powerUpAlarm: false))
        #expect(texts(host.basic("0RAT1699MH")) == ["00S"])
        #expect(texts(host.basic("0RAT1800MH")) == ["00S?OOR"])
        #expect(texts(host.basic("0DIA4.699")) == ["00S"])
        #expect(texts(host.basic("0RAT0.8UH")) == ["00S"])
        #expect(texts(host.basic("0RAT0.5UH")) == ["00S?OOR"])
        #expect(texts(host.basic("0DIA90")) == ["00S?OOR"])
    }

    @Test("pumping: counters, the volume limit, pause then stop, direction and withdrawal")
    func pumping() {
        var host = Host(.init(powerUpAlarm: false))
        _ = host.basic("0RAT60MH")
        _ = host.basic("0VOL2")
        #expect(texts(host.basic("0RUN")) == ["00I"])
        _ = host.advance(by: .seconds(60))
        #expect(abs(host.pump.infusedMillilitres - 1) < 1e-9)
        #expect(texts(host.basic("0DIA20")) == ["00I?NA"])
        #expect(texts(host.basic("0STP")) == ["00P"])
        _ = host.advance(by: .seconds(60))
        #expect(abs(host.pump.infusedMillilitres - 1) < 1e-9, "paused: nothing moves")
        #expect(texts(host.basic("0RUN")) == ["00I"], "resumes the same phase")
        _ = host.advance(by: .seconds(120))
        #expect(abs(host.pump.infusedMillilitres - 2) < 1e-9, "stops at VOL 2 mL")
        #expect(host.pump.prompt == .stopped)
        #expect(host.events.contains(.stopped("volume reached")))
        #expect(texts(host.basic("0DIS")) == ["00SI2.000W0.000ML"])
        #expect(texts(host.basic("0STP")) == ["00S"])
        _ = host.basic("0DIRWDR")
        _ = host.basic("0VOL0")
        #expect(texts(host.basic("0RUN")) == ["00W"])
        _ = host.advance(by: .seconds(30))
        #expect(texts(host.basic("0DIS")) == ["00WI2.000W0.500ML"])
        _ = host.basic("0CLDINF")
        #expect(texts(host.basic("0DIS")) == ["00WI0.000W0.500ML"])
        #expect(abs(host.pump.totalVolumeDelivered.value(in: .millilitres) - 2) < 1e-9)
        #expect(abs(host.pump.contentsMillilitres - 58.5) < 1e-9)
    }

    @Test("safe-mode watchdog: stops at the time-out (not one tick before), alarm T, auto-alarm packet")
    func watchdog() {
        var host = Host(.init(safeModeTimeoutSeconds: 2, powerUpAlarm: false))
        #expect(!host.pump.isWatchdogRunning, "off until the first valid packet")
        _ = host.safe("0RAT60MH")
        _ = host.safe("0RUN")
        #expect(host.pump.isWatchdogRunning)
        #expect(host.advance(by: .seconds(2) - .nanoseconds(1)).isEmpty)
        #expect(host.pump.prompt == .infusing)
        let auto = host.advance(by: .nanoseconds(1))
        #expect(texts(auto) == ["00A?T"])
        #expect(auto.first?.framing == .safe)
        #expect(host.pump.prompt == .stopped)
        // The auto-alarm does not clear it; the next command gets A?T and acknowledges it.
        #expect(texts(host.safe("0")) == ["00A?T"])
        #expect(texts(host.safe("0")) == ["00S"])
    }

    @Test("0.5 s inter-byte time-out: a partial safe packet is discarded; 1 ns less is kept")
    func interByte() throws {
        var host = Host(.init(powerUpAlarm: false))
        let packet = try NewEra.Framing.safePacket(Array("0VER".utf8))
        #expect(host.send(Array(packet[..<4])).isEmpty)
        _ = host.advance(by: .milliseconds(500))
        #expect(host.send(Array(packet[4...])).isEmpty, "discarded after a 0.5 s gap")
        #expect(host.send(Array(packet[..<4])).isEmpty)
        _ = host.advance(by: .milliseconds(500) - .nanoseconds(1))
        #expect(texts(host.send(Array(packet[4...]))) == ["00SNE1000V3.928"])
    }

    @Test("address filtering, system commands, network bursts, basic framing ignored in safe mode, bad CRC gets ?COM")
    func addressing() throws {
        var host = Host(.init(address: try #require(NewEra.Address(3)), powerUpAlarm: false))
        #expect(host.basic("0VER").isEmpty)
        #expect(texts(host.basic("3VER")) == ["03SNE1000V3.928"])
        #expect(texts(host.basic("VER")) == ["03SNE1000V3.928"], "unaddressed: point to point")
        _ = host.basic("3RAT10MH")
        #expect(texts(host.basic("*RUN")) == ["03I"])
        #expect(texts(host.basic("*STP")) == ["03P"])
        _ = host.basic("*STP")
        #expect(texts(host.basic("0 RAT 6.00 MM * 3 RAT 3.00 MM *")) == ["03S"])
        #expect(host.pump.rate.text == "3.00MM")
        _ = host.basic("3SAF5")
        #expect(host.pump.mode == .safe)
        #expect(host.basic("3VER").isEmpty, "basic framing is ignored in safe mode")
        var corrupt = try NewEra.Framing.safePacket(Array("3VER".utf8))
        corrupt[3] ^= 0x01
        #expect(texts(host.send(corrupt)) == ["03S?COM"])
    }

    @Test("faults: stall while pumping and pending, empty, power-reset, silence, garbage, unknown")
    func faults() throws {
        var host = Host(.init(safeModeTimeoutSeconds: 0, powerUpAlarm: false))
        _ = host.basic("0RAT60MH")
        _ = host.basic("0RUN")
        _ = try host.pump.inject(FaultCommand(name: "stall"), at: host.now)
        #expect(host.pump.alarm == .stalled)
        #expect(host.pump.prompt == .stopped)
        #expect(texts(host.basic("0")) == ["00A?S"])
        _ = try host.pump.inject(FaultCommand(name: "occlusion"), at: host.now)
        #expect(texts(host.basic("0RUN")) == ["00I"])
        _ = host.advance(by: .milliseconds(100))
        #expect(host.pump.alarm == .stalled)
        _ = host.basic("0")
        _ = try host.pump.inject(FaultCommand(name: "empty", arguments: ["0.5mL"]), at: host.now)
        _ = host.basic("0RUN")
        _ = host.advance(by: .seconds(40))
        #expect(host.pump.contentsMillilitres == 0)
        #expect(host.events.contains(.stopped("end of travel")))
        #expect(host.pump.alarm == .stalled)
        _ = host.basic("0")
        _ = try host.pump.inject(FaultCommand(name: "refill"), at: host.now)
        #expect(host.pump.contentsMillilitres == 60)
        _ = try host.pump.inject(FaultCommand(name: "power-reset"), at: host.now)
        #expect(texts(host.basic("0VER")) == ["00A?R"])
        _ = try host.pump.inject(FaultCommand(name: "silence", arguments: ["2s"]), at: host.now)
        #expect(host.basic("0VER").isEmpty)
        _ = host.advance(by: .seconds(2))
        #expect(texts(host.basic("0VER")) == ["00SNE1000V3.928"])
        _ = try host.pump.inject(FaultCommand(name: "garbage", arguments: ["32"]), at: host.now)
        var effects = EndpointEffects<NewEraSimulatedPump.Event>()
        host.pump.tick(at: host.now, effects: &effects)
        #expect(effects.outgoing.flatMap { $0 }.count == 32)
        #expect(throws: FaultError.self) { try host.pump.inject(FaultCommand(name: "explode"), at: host.now) }
        #expect(throws: FaultError.self) { try host.pump.inject(FaultCommand(name: "silence", arguments: ["soon"]), at: host.now) }
    }

    @Test("program-error and phase-out-of-range: stop with alarm E / O now if pumping, else 100 ms after the next RUN")
    func programAlarms() throws {
        for (fault, alarm, reason) in [("program-error", NewEra.Alarm.programError, "program error"),
                                       ("phase-out-of-range", .phaseOutOfRange, "phase out of range")] {
            var host = Host(.init(safeModeTimeoutSeconds: 0, powerUpAlarm: false))
            _ = host.basic("0RAT60MH")
            #expect(texts(host.basic("0RUN")) == ["00I"])
            let message = try host.pump.inject(FaultCommand(name: fault), at: host.now)
            #expect(message.contains("stopped, alarm \(alarm.rawValue)"), "\(message)")
            #expect(host.pump.prompt == .stopped)
            #expect(host.pump.alarm == alarm)
            // The alarm reply replaces the next command's answer and acknowledges it.
            #expect(texts(host.basic("0")) == ["00A?\(alarm.rawValue)"])
            #expect(texts(host.basic("0")) == ["00S"])
            // Not pumping: armed for the next RUN, which starts, then stops 100 ms later.
            let armed = try host.pump.inject(FaultCommand(name: fault), at: host.now)
            #expect(armed.contains("next RUN"), "\(armed)")
            #expect(host.pump.alarm == nil)
            #expect(texts(host.basic("0RUN")) == ["00I"])
            _ = host.advance(by: .milliseconds(100) - .nanoseconds(1))
            #expect(host.pump.prompt == .infusing)
            _ = host.advance(by: .nanoseconds(1))
            #expect(host.pump.prompt == .stopped)
            #expect(host.events.contains(.stopped(reason)))
            #expect(host.events.contains(.alarm(alarm)))
            #expect(texts(host.basic("0")) == ["00A?\(alarm.rawValue)"])
            // In safe mode the pump also sends the alarm unsolicited (auto-alarm packet).
            var safe = Host(.init(safeModeTimeoutSeconds: 5, powerUpAlarm: false))
            _ = safe.safe("0RAT60MH")
            _ = safe.safe("0RUN")
            _ = try safe.pump.inject(FaultCommand(name: fault), at: safe.now)
            let auto = safe.advance(by: .zero)
            #expect(texts(auto) == ["00A?\(alarm.rawValue)"])
            #expect(auto.first?.framing == .safe)
        }
    }

    @Test("corrupt N: the next N safe packets get ?COM and are not obeyed, nor feed the watchdog; basic packets are unaffected")
    func corruptPackets() throws {
        var host = Host(.init(safeModeTimeoutSeconds: 2, powerUpAlarm: false))
        _ = host.safe("0RAT60MH")
        _ = try host.pump.inject(FaultCommand(name: "corrupt", arguments: ["2"]), at: host.now)
        #expect(texts(host.safe("0RUN")) == ["00S?COM"])
        #expect(host.pump.prompt == .stopped, "a corrupt RUN is not obeyed")
        _ = host.advance(by: .seconds(1))
        #expect(texts(host.safe("0RUN")) == ["00S?COM"])
        // Neither corrupt packet fed the watchdog: it fires 2 s after the last valid packet (RAT at 0 s).
        #expect(texts(host.advance(by: .seconds(1))) == ["00A?T"])
        #expect(texts(host.safe("0")) == ["00A?T"])
        #expect(texts(host.safe("0RUN")) == ["00I"], "the fault is used up")
        var basic = Host(.init(safeModeTimeoutSeconds: 0, powerUpAlarm: false))
        _ = try basic.pump.inject(FaultCommand(name: "corrupt"), at: basic.now)
        #expect(texts(basic.basic("0VER")) == ["00SNE1000V3.928"], "basic packets carry no CRC")
        #expect(texts(basic.safe("0VER")) == ["00S?COM"])
        #expect(throws: FaultError.self) { try basic.pump.inject(FaultCommand(name: "corrupt", arguments: ["0"]), at: basic.now) }
        #expect(throws: FaultError.self) { try basic.pump.inject(FaultCommand(name: "corrupt", arguments: ["many"]), at: basic.now) }
    }

    @Test("safe-mode power reset sends the auto-alarm packet")
    func powerResetAutoAlarm() throws {
        var host = Host(.init(safeModeTimeoutSeconds: 5, powerUpAlarm: false))
        _ = try host.pump.inject(FaultCommand(name: "power-reset"), at: host.now)
        #expect(texts(host.advance(by: .zero)) == ["00A?R"])
        #expect(!host.pump.isWatchdogRunning, "timer off until the first valid packet")
    }

    @Test("pacing at 19200 baud: bytes leave at 10 bits per byte")
    func pacing() {
        var host = Host(.init(bitsPerSecond: 19200, powerUpAlarm: false))
        var effects = EndpointEffects<NewEraSimulatedPump.Event>()
        host.pump.receive(Array("0VER\r".utf8), at: host.now, effects: &effects)
        #expect(effects.outgoing.isEmpty, "nothing is on the wire before the first byte's time")
        let byte = Duration.nanoseconds(10_000_000_000 / 19200)
        #expect(host.pump.nextDeadline == host.now + byte)
        // "\u{2}00SNE1000V3.928\u{3}" is 17 bytes: the last leaves after 17 byte times.
        var received: [UInt8] = []
        var time = host.now
        while let deadline = host.pump.nextDeadline {
            time = deadline
            var fx = EndpointEffects<NewEraSimulatedPump.Event>()
            host.pump.tick(at: time, effects: &fx)
            received += fx.outgoing.flatMap { $0 }
        }
        #expect(received.count == 17)
        #expect(time == host.now + byte * 17)
    }

    @Test("random bytes from the host never crash or wedge the simulated pump")
    func randomInput() {
        var generator = SystemRandomNumberGenerator()
        var host = Host(.init(powerUpAlarm: false))
        for _ in 0..<500 {
            let bytes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = host.send(bytes)
            _ = host.advance(by: .milliseconds(Int.random(in: 0...100, using: &generator)))
        }
        _ = host.advance(by: .seconds(1))  // any partial safe packet is discarded after 0.5 s
        _ = host.send([0x0D])  // end any partial basic command
        _ = host.safe("SAF0")  // obeyed in either mode (unaddressed, in case a random ADR got through)
        #expect(host.pump.mode == .basic)
        #expect(texts(host.basic("VER")).last?.hasSuffix("NE1000V3.928") == true)
    }
}
