import DeviceIO
import DeviceProtocols
@testable import DeviceSimulators
import InfusionCore
import Testing

@Suite("Alaris simulator")
struct AlarisSimulatorTests {
    /// Feeds `text` framed as a host would and returns the pump's reply frames as text.
    static func exchange(_ sim: inout AlarisSimulator, _ bytes: [UInt8], at now: MonotonicInstant) -> [String] {
        var effects = EndpointEffects<String>()
        sim.receive(bytes, at: now, effects: &effects)
        return effects.outgoing.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test("answers the exact bytes infupy and OpenICE send (frames from §A4)")
    func openClientBytes() {
        var sim = AlarisSimulator()
        let t = MonotonicInstant.origin
        let serial = Self.exchange(&sim, Array("!INST_SERIALNO|457D\r".utf8), at: t)
        #expect(serial == [String(decoding: AlarisFrame.encode(try! AlarisMessage(text: "INST_SERIALNO^8002-51740")), as: UTF8.self)])
        // infupy derives the code as the CRC of the reply's fields: 3CC1; the §A4 frame takes the lease.
        let lease = Self.exchange(&sim, Array("!REMOTE_CTRL^ENABLED^3CC1|B1F1\r".utf8), at: t)
        #expect(lease.first?.hasPrefix("!REMOTE_CTRL^ENABLED^****^PERMIT") == true)
        #expect(sim.remoteControl)
        #expect(Self.exchange(&sim, Array("!INF_START|38F3\r".utf8), at: t).first?.hasPrefix("!INF_START^REFUSED^NO_RATE|") == true)
        #expect(Self.exchange(&sim, Array("!INF_STOP|CD57\r".utf8), at: t) == ["!INF_STOP|CD57\r"])
        #expect(Self.exchange(&sim, Array("!INF|4961\r".utf8), at: t).first?.hasPrefix("!INF^0^NONE^STOPPED^0.00^ml/h^^0.000^ml^") == true)
        // A bad CRC is ignored (no NAK in this protocol); ESC aborts a partial frame.
        #expect(Self.exchange(&sim, Array("!INF|4962\r".utf8), at: t).isEmpty)
        #expect(Self.exchange(&sim, Array("!INF_ST\u{1B}!INF|4961\r".utf8), at: t).count == 1)
    }

    @Test("a wrong remote code is refused; control commands need the lease")
    func wrongCode() {
        var sim = AlarisSimulator()
        let t = MonotonicInstant.origin
        let frame = AlarisCommand.enableRemoteControl(AlarisRemoteCode(value: 0x1234)).frame
        #expect(Self.exchange(&sim, frame, at: t).first?.hasPrefix("!REMOTE_CTRL^DISABLED|") == true)
        let rate = AlarisCommand.setRate(try! AlarisRate(roundingDown: .millilitresPerHour(2))).frame
        #expect(Self.exchange(&sim, rate, at: t).first?.hasPrefix("!REMOTE_CTRL^DISABLED|") == true)
        #expect(sim.rate == .zero)
    }

    static func infusing(_ behaviour: RemoteLapseBehaviour) -> AlarisSimulator {
        var sim = AlarisSimulator(configuration: .init(lapseBehaviour: behaviour))
        let t = MonotonicInstant.origin
        for command in AlarisCommand.remoteLease(serialNumber: "8002-51740")
            + [.setRate(try! AlarisRate(roundingDown: .millilitresPerHour(36))), .start] {
            _ = exchange(&sim, command.frame, at: t)
        }
        return sim
    }

    static func run(_ sim: inout AlarisSimulator, until end: MonotonicInstant) {
        var effects = EndpointEffects<String>()
        while let deadline = sim.nextDeadline, deadline <= end { sim.tick(at: deadline, effects: &effects) }
    }

    @Test("when the lease lapses the pump leaves remote control and keeps infusing (default)")
    func lapseKeepsInfusing() {
        var sim = Self.infusing(.keepInfusing)
        #expect(sim.isInfusing)
        Self.run(&sim, until: .origin + .milliseconds(2_999))
        #expect(sim.remoteControl)
        Self.run(&sim, until: .origin + .seconds(10))
        #expect(!sim.remoteControl)
        #expect(sim.isInfusing)
        // 36 mL/h for 10 s = 0.1 mL.
        #expect(abs(sim.totalVolumeDelivered.millilitres - 0.1) < 1e-9)
    }

    @Test("with on-lapse stop, the pump stops when the lease lapses")
    func lapseStops() throws {
        var sim = Self.infusing(.keepInfusing)
        _ = try sim.inject(FaultCommand(name: "on-lapse", arguments: ["stop"]), at: .origin)
        Self.run(&sim, until: .origin + .seconds(3))
        #expect(!sim.remoteControl)
        #expect(!sim.isInfusing)
        #expect(abs(sim.totalVolumeDelivered.millilitres - 0.03) < 1e-9)
    }

    @Test("faults: empty, power-reset, unknown fault names are refused with help")
    func faults() throws {
        var sim = Self.infusing(.keepInfusing)
        _ = try sim.inject(FaultCommand(name: "empty"), at: .origin + .seconds(1))
        #expect(!sim.isInfusing)
        #expect(sim.alarm == "EMPTY")
        _ = try sim.inject(FaultCommand(name: "power-reset"), at: .origin + .seconds(2))
        #expect(sim.alarm == "NONE")
        #expect(!sim.remoteControl)
        #expect(sim.rate == .zero)
        #expect(throws: FaultError.self) { try sim.inject(FaultCommand(name: "explode"), at: .origin) }
        #expect(throws: FaultError.self) { try sim.inject(FaultCommand(name: "silence", arguments: ["soon"]), at: .origin) }
    }
}
