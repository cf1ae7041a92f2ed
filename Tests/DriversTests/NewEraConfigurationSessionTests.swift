import DeviceProtocols
import DeviceSimulators
import Drivers
import InfusionCore
import Testing

/// The session's configuration requests against the simulated pump in virtual time.
@Suite("New Era session: *ADR address and baud rate, SAF read-back")
struct NewEraConfigurationSessionTests {
    static let three = NewEra.Address(3) ?? .zero

    @Test("*ADR3 is sent as a system command, confirmed by the reply from address 3; later requests go to address 3")
    func address() throws {
        let bench = NewEraBench()
        #expect(bench.waitReady())
        #expect(bench.submit(.setAddress(Self.three, baud: nil)) == .confirmed(.address(Self.three)))
        #expect(bench.pump.address == Self.three && bench.session.configuration.address == Self.three)
        #expect(bench.allDeviceEvents.contains { if case .command("*ADR3", _) = $0 { true } else { false } })
        guard case .confirmed(.version)? = bench.submit(.identify) else {
            Issue.record("VER at the new address")
            return
        }
    }

    @Test("*ADR0B9600 changes the simulated pump's rate; with pacing, its replies are paced at 9600 bit/s from then on")
    func baud() throws {
        let bench = NewEraBench(pump: .init(bitsPerSecond: 19200))
        #expect(bench.waitReady())
        var start = bench.now
        #expect(bench.submit(.identify)?.answer != nil)
        let at19200 = bench.now - start
        #expect(bench.submit(.setAddress(.zero, baud: .b9600)) == .confirmed(.address(.zero)))
        #expect(bench.pump.baudRate == 9600)
        start = bench.now
        #expect(bench.submit(.identify)?.answer != nil)
        let at9600 = bench.now - start
        // "00S NE1000V3.928" framed: about 10 ms on the wire at 19200 bit/s, 20 ms at 9600.
        #expect(at9600 > at19200, "\(at19200) then \(at9600)")
    }

    @Test("SAF is read back as the time-out the pump stores (armed by the handshake)")
    func safeModeReadBack() throws {
        let bench = NewEraBench(session: .init(safeModeTimeoutSeconds: 7))
        #expect(bench.waitReady())
        #expect(bench.submit(.readSafeMode) == .confirmed(.safeMode(seconds: 7)))
        #expect(bench.pump.safeModeTimeoutSeconds == 7)
    }
}
