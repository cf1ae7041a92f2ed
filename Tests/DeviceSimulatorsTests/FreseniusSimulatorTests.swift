import DeviceIO
import DeviceProtocols
@testable import DeviceSimulators
import InfusionCore
import Testing

@Suite("Fresenius rack simulator")
struct FreseniusSimulatorTests {
    static func frame(_ text: String) -> [UInt8] {
        let address = text.first.flatMap { $0.asciiValue }.flatMap { FreseniusAddress(character: $0) } ?? .standalone
        let message = address == .standalone ? text : String(text.dropFirst())
        return (try? FreseniusFrame(address: address, message: message).bytes) ?? []
    }

    static func exchange(_ sim: inout FreseniusSimulator, _ text: String, at now: MonotonicInstant = .origin) -> [[UInt8]] {
        var effects = EndpointEffects<String>()
        sim.receive(frame(text), at: now, effects: &effects)
        return effects.outgoing
    }

    @Test("answers the exact frames infupy sends: ACK then <origin><status>[;data]")
    func infupyFrames() {
        var sim = FreseniusSimulator(configuration: .init(modules: 3))
        // §A5's example frame for DC to module 1 is 02 31 44 43 34 37 03; before the base session: I;0D.
        #expect(Self.frame("1DC") == [0x02, 0x31, 0x44, 0x43, 0x34, 0x37, 0x03])
        #expect(Self.exchange(&sim, "1DC") == [[0x06], Self.frame("1I;0D")])
        #expect(Self.exchange(&sim, "0DC") == [[0x06], Self.frame("0C")])
        #expect(Self.exchange(&sim, "0LE;b") == [[0x06], Self.frame("0C;b7")])
        #expect(Self.exchange(&sim, "1DC") == [[0x06], Self.frame("1C")])
        #expect(Self.exchange(&sim, "1LE;d") == [[0x06], Self.frame("1C;d0")])
        #expect(Self.exchange(&sim, "1PR;64") == [[0x06], Self.frame("1I;02")])  // local mode
        #expect(Self.exchange(&sim, "1MO;2") == [[0x06], Self.frame("1C")])
        #expect(Self.exchange(&sim, "1PR;64") == [[0x06], Self.frame("1C")])
        #expect(Self.exchange(&sim, "1LE;dr") == [[0x06], Self.frame("1C;d64;r0")])
        #expect(Self.exchange(&sim, "2LE;d") == [[0x06], Self.frame("2I;1E")])
        #expect(Self.exchange(&sim, "4DC") == [[0x06], Self.frame("4I;0E")])
        #expect(Self.exchange(&sim, "1XX") == [[0x06], Self.frame("1I;01")])
        var corrupt = Self.frame("1LE;d")
        corrupt[corrupt.count - 2] ^= 0x01
        var effects = EndpointEffects<String>()
        sim.receive(corrupt, at: .origin, effects: &effects)
        #expect(effects.outgoing == [[0x15, 0x32]])
        // A host NAK makes it re-send its last reply (the answer to 1XX).
        effects = EndpointEffects()
        sim.receive([0x15, 0x32], at: .origin, effects: &effects)
        #expect(effects.outgoing == [Self.frame("1I;01")])
    }

    @Test("sends ENQ every 0.5 s; without DC4 for 1.5 s sessions lapse and modules keep infusing (default) or stop")
    func keepAliveLapse() throws {
        for behaviour in RemoteLapseBehaviour.allCases {
            var sim = FreseniusSimulator(configuration: .init(modules: 1, lapseBehaviour: behaviour))
            var effects = EndpointEffects<String>()
            sim.linkUp(at: .origin, effects: &effects)
            for text in ["0DC", "1DC", "1MO;2", "1PR;168"] { _ = Self.exchange(&sim, text) }
            _ = try sim.inject(FaultCommand(name: "keypad-start", arguments: ["1"]), at: .origin)
            var now = MonotonicInstant.origin
            while let deadline = sim.nextDeadline, deadline <= .origin + .milliseconds(1_499) {
                now = deadline
                sim.tick(at: now, effects: &effects)
            }
            #expect(sim.module(1)?.session == true)
            #expect(sim.keepAlivesSent == 2)
            sim.tick(at: .origin + .milliseconds(1_500), effects: &effects)
            #expect(sim.module(1)?.session == false)
            #expect(sim.module(1)?.mode == .local)
            #expect(sim.module(1)?.isInfusing == (behaviour == .keepInfusing))
        }
    }

    @Test("DC4 answers keep the sessions; an alarm is sent spontaneously until acknowledged")
    func spontaneous() throws {
        var sim = FreseniusSimulator(configuration: .init(modules: 1))
        var effects = EndpointEffects<String>()
        sim.linkUp(at: .origin, effects: &effects)
        for text in ["0DC", "1DC", "1MO;2"] { _ = Self.exchange(&sim, text) }
        for step in 1...6 {
            let now = MonotonicInstant.origin + .milliseconds(500 * step)
            sim.tick(at: now, effects: &effects)
            sim.receive([0x14], at: now, effects: &effects)
        }
        #expect(sim.module(1)?.session == true)
        _ = try sim.inject(FaultCommand(name: "stall", arguments: ["1"]), at: .origin + .seconds(3))
        effects = EndpointEffects()
        sim.tick(at: .origin + .seconds(3), effects: &effects)
        #expect(effects.outgoing.contains(Self.frame("1E;a1")))
        _ = Self.exchange(&sim, "1E", at: .origin + .seconds(3))
        effects = EndpointEffects()
        sim.tick(at: .origin + .seconds(5), effects: &effects)
        #expect(!effects.outgoing.contains(Self.frame("1E;a1")))
    }

    @Test("remove-module / insert-module and fault argument checks")
    func rackFaults() throws {
        var sim = FreseniusSimulator(configuration: .init(modules: 2))
        _ = Self.exchange(&sim, "0DC")
        _ = try sim.inject(FaultCommand(name: "remove-module", arguments: ["2"]), at: .origin)
        #expect(Self.exchange(&sim, "0LE;b") == [[0x06], Self.frame("0C;b1")])
        #expect(Self.exchange(&sim, "2DC") == [[0x06], Self.frame("2I;0E")])
        _ = try sim.inject(FaultCommand(name: "insert-module", arguments: ["2"]), at: .origin)
        #expect(Self.exchange(&sim, "0LE;b") == [[0x06], Self.frame("0C;b3")])
        #expect(throws: FaultError.self) { try sim.inject(FaultCommand(name: "remove-module"), at: .origin) }
        #expect(throws: FaultError.self) { try sim.inject(FaultCommand(name: "remove-module", arguments: ["4"]), at: .origin) }
    }
}

@Suite("Clinical pumps in the simulator host registry")
struct ClinicalRegistryTests {
    @Test("alaris and fresenius[:MODULES] are registered pumps; a bad module count is refused")
    func registered() throws {
        let alaris = try #require(DeviceRegistry.entry(kind: "alaris", role: .pump))
        let fresenius = try #require(DeviceRegistry.entry(kind: "fresenius", role: .pump))
        #expect(alaris.faultHelp == AlarisSimulator.faultHelp)
        #expect(fresenius.parameterHelp != nil)
        #expect(DeviceRegistry.kinds(of: .pump).contains("fresenius"))
    }
}
