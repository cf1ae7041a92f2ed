import DeviceIO
import DeviceProtocols
import DeviceSimulators
import InfusionCore
import Testing

/// Sends one command line to the simulated balance and returns the reply lines it sent.
func ask(_ balance: inout SimulatedBalance, _ line: String, at now: MonotonicInstant) -> [String] {
    var effects = EndpointEffects<SimulatedBalanceEvent>()
    balance.receive(Array((line + "\r\n").utf8), at: now, effects: &effects)
    return effects.outgoing.map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .newlines) }
}

func weight(_ lines: [String]) -> MTSICSWeight? {
    guard lines.count == 1, case let .weight(weight)? = try? MTSICSResponse(line: lines[0]) else { return nil }
    return weight
}

/// A pump-like delivering device for the coupling tests.
struct FixedDelivery: DeliveringDevice {
    var totalVolumeDelivered: Volume
}

@Suite("Simulated MT-SICS balance")
struct SimulatedBalanceTests {
    let t0 = MonotonicInstant.origin + .seconds(100)

    @Test("The weight is the delivered volume times the density, with bounded seeded noise, at 0.1 mg resolution")
    func weightFollowsDelivery() throws {
        var balance = SimulatedBalance()
        var readings: [Double] = []
        for step in 1...200 {
            let now = t0 + .seconds(step)
            balance.update(deliveredVolume: .millilitres(Double(step) * 0.01), at: now)  // 36 mL/h: no step disturbs
            let reading = try #require(weight(ask(&balance, "SI", at: now)))
            #expect(reading.isStable && reading.fractionDigits == 4)
            let expected = Double(step) * 0.01 * 0.998204
            #expect(abs(reading.value - expected) <= 0.00025)
            readings.append(reading.value - expected)
        }
        #expect(Set(readings.map { ($0 * 1e4).rounded() }).count > 1, "the noise is not constant")
        var again = SimulatedBalance()
        again.update(deliveredVolume: .millilitres(0.01), at: t0 + .seconds(1))
        let first = try #require(weight(ask(&again, "SI", at: t0 + .seconds(1))))
        #expect(abs(first.value - (readings[0] + 0.01 * 0.998204)) < 1e-9, "same seed, same noise")
    }

    @Test("A step makes the reading dynamic for the settling time; S waits for it")
    func settling() throws {
        var balance = SimulatedBalance()
        balance.update(deliveredVolume: .millilitres(5), at: t0)
        #expect(weight(ask(&balance, "SI", at: t0 + .milliseconds(1999)))?.isStable == false)
        #expect(ask(&balance, "S", at: t0 + .milliseconds(500)).isEmpty)  // waits
        #expect(balance.nextDeadline == t0 + .seconds(2))
        var effects = EndpointEffects<SimulatedBalanceEvent>()
        balance.tick(at: t0 + .seconds(2), effects: &effects)
        let reply = try #require(effects.outgoing.first.map { String(decoding: $0, as: UTF8.self) })
        #expect(reply.hasPrefix("S S ") && reply.hasSuffix(" g\r\n"))
        #expect(weight(ask(&balance, "SI", at: t0 + .seconds(2)))?.isStable == true)
    }

    @Test("Evaporation removes mass at its rate, never more than the liquid")
    func evaporation() throws {
        var balance = SimulatedBalance(configuration: .init(noiseGrams: 0, evaporationGramsPerHour: 0.36))
        balance.update(deliveredVolume: .millilitres(1), at: t0)
        balance.update(deliveredVolume: .millilitres(1), at: t0 + .seconds(600))
        #expect(abs(balance.netGrams - (0.998204 - 0.06)) < 1e-9)
        balance.update(deliveredVolume: .millilitres(1), at: t0 + .seconds(36_000))
        #expect(balance.netGrams == 0)
    }

    @Test("Zero, capacity and the zero range")
    func limits() throws {
        var balance = SimulatedBalance()
        balance.update(deliveredVolume: .millilitres(3), at: t0)
        let later = t0 + .seconds(5)
        #expect(ask(&balance, "Z", at: later) == ["Z A"])
        #expect(abs(try #require(weight(ask(&balance, "SI", at: later))).value) <= 0.0002)
        balance.update(deliveredVolume: .millilitres(230), at: later)
        #expect(ask(&balance, "SI", at: later) == ["S +"])
        #expect(ask(&balance, "ZI", at: later) == ["ZI +"])
        _ = try balance.inject(FaultCommand(name: "load", arguments: ["-300"]), at: later)
        #expect(ask(&balance, "SI", at: later) == ["S -"])
        #expect(ask(&balance, "Z", at: later) == ["Z -"])
    }

    @Test("Protocol errors: ES for unknown commands, ET for bytes outside printable ASCII, I1–I5 and @ answered")
    func protocolReplies() {
        var balance = SimulatedBalance()
        #expect(ask(&balance, "XYZ", at: t0) == ["ES"])
        #expect(ask(&balance, "S\u{7F}", at: t0) == ["ET"])
        #expect(ask(&balance, "I4", at: t0) == ["I4 A \"B123456789\""])
        #expect(ask(&balance, "I2", at: t0) == ["I2 A \"XS204\" \"220.0000 g\""])
        #expect(ask(&balance, "@", at: t0) == ["I4 A \"B123456789\""])
        #expect(ask(&balance, " I3 ", at: t0) == ["I3 A \"4.10\""])
    }

    @Test("Faults: unstable with a duration, silence, logical error; bad arguments are refused with help")
    func faults() throws {
        var balance = SimulatedBalance()
        _ = try balance.inject(FaultCommand(name: "unstable", arguments: ["3s"]), at: t0)
        #expect(weight(ask(&balance, "SI", at: t0 + .milliseconds(2999)))?.isStable == false)
        #expect(weight(ask(&balance, "SI", at: t0 + .seconds(3)))?.isStable == true)
        _ = try balance.inject(FaultCommand(name: "silence", arguments: ["2s"]), at: t0)
        #expect(ask(&balance, "I4", at: t0 + .seconds(1)).isEmpty)
        #expect(ask(&balance, "I4", at: t0 + .seconds(2)).count == 1)
        _ = try balance.inject(FaultCommand(name: "logical-error"), at: t0)
        #expect(ask(&balance, "I4", at: t0 + .seconds(3)) == ["EL"])
        #expect(throws: FaultError.self) { try balance.inject(FaultCommand(name: "load", arguments: ["heavy"]), at: t0) }
        #expect(throws: FaultError.self) { try balance.inject(FaultCommand(name: "explode"), at: t0) }
        #expect(SimulatedBalance.kind == "mt-sics")
    }

    @Test("ScaledDelivery: the balance weighs 94 % of what a 6 %-short pump believes it delivered")
    func scaledDelivery() {
        let pump = ScaledDelivery(FixedDelivery(totalVolumeDelivered: .millilitres(50)), factor: 0.94)
        #expect(abs(pump.totalVolumeDelivered.millilitres - 47) < 1e-9)
        #expect(pump.device.totalVolumeDelivered == .millilitres(50))
        var balance = SimulatedBalance(configuration: .init(noiseGrams: 0))
        balance.weigh(pump, at: t0)
        #expect(abs(balance.netGrams - 47 * 0.998204) < 1e-9)
    }

    @Test("Registered for infusion-sim as --balance mt-sics[:SERIAL], coupled to the world as a weighing device")
    func registry() throws {
        let entry = try #require(DeviceRegistry.entry(kind: "mt-sics", role: .balance))
        #expect(entry.faultHelp == SimulatedBalance.faultHelp)
        #expect(try SimulatedBalance.build(parameter: "SIM42").configuration.serialNumber == "SIM42")
        #expect(throws: FaultError.self) { try SimulatedBalance.build(parameter: "bad\"serial") }
        var weighing: any WeighingDevice = SimulatedBalance(configuration: .init(noiseGrams: 0))
        weighing.update(deliveredVolume: .millilitres(2), at: t0)
        #expect(abs(((weighing as? SimulatedBalance)?.netGrams ?? 0) - 2 * 0.998204) < 1e-9)
    }
}
