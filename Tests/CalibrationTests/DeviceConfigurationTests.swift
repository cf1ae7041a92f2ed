import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Testing
@testable import Calibration

/// A simulated device hosted on a real pseudo-terminal, as `infusion-sim` hosts it.
final class PTYSimulator<Device: SimulatedDevice>: Sendable {
    let hosted: PTYHostedDevice<Device>

    init(_ device: Device, role: SimulatedRole) {
        hosted = PTYHostedDevice(device: device, role: role, setup: HostedDeviceSetup(name: "\(role.rawValue)0", clock: SystemMonotonicClock()))
        hosted.start()
    }

    /// The pty's path, once the host has opened it (waits up to 5 s).
    var path: String {
        let deadline = ContinuousClock.now + .seconds(5)
        while hosted.devicePath == nil, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.005) }
        return hosted.devicePath ?? "/dev/null"
    }
    func state<R>(_ body: (Device) -> R) -> R { hosted.inspect(body) }
    deinit { hosted.stop() }
}

@Suite("Device configuration through the drivers, over real ptys against the simulators, each confirmed by reading back")
struct DeviceConfigurationTests {
    static let address3 = NewEra.Address(3) ?? .zero

    @Test("New Era address: *ADR3 is obeyed, and the pump answers VER at address 3 (and no longer at 0)")
    func newEraAddress() async throws {
        let sim = PTYSimulator(NewEraSimulatedPump(), role: .pump)
        let configurator = NewEraConfigurator(replyTimeout: .milliseconds(200))
        let identity = try await configurator.setAddress(Self.address3, at: NewEraLink(path: sim.path))
        #expect(identity.model == "NE1000")
        #expect(sim.state(\.address) == Self.address3)
        // The old address no longer answers: a clear error, nothing changed.
        await #expect(throws: DeviceConfigurationError.self) {
            _ = try await configurator.setSafeMode(0, at: NewEraLink(path: sim.path, address: .zero))
        }
    }

    @Test("New Era baud rate: *ADR0B9600 sets the simulated pump to 9600 baud, confirmed by VER over a new connection")
    func newEraBaud() async throws {
        let sim = PTYSimulator(NewEraSimulatedPump(configuration: .init(bitsPerSecond: 19200)), role: .pump)
        let identity = try await NewEraConfigurator(replyTimeout: .milliseconds(300)).setBaudRate(.b9600, at: NewEraLink(path: sim.path))
        #expect(identity.model == "NE1000")
        #expect(sim.state(\.baudRate) == 9600)
        #expect(sim.state(\.address) == .zero)
    }

    @Test("New Era safe mode: SAF10 stored and read back with SAF; SAF0 back to basic mode")
    func newEraSafeMode() async throws {
        let sim = PTYSimulator(NewEraSimulatedPump(), role: .pump)
        let configurator = NewEraConfigurator(replyTimeout: .milliseconds(200))
        #expect(try await configurator.setSafeMode(10, at: NewEraLink(path: sim.path)) == 10)
        #expect(sim.state(\.safeModeTimeoutSeconds) == 10 && sim.state(\.mode) == .safe)
        #expect(try await configurator.setSafeMode(0, at: NewEraLink(path: sim.path)) == 0)
        #expect(sim.state(\.safeModeTimeoutSeconds) == 0 && sim.state(\.mode) == .basic)
    }

    @Test("New Era: a wrong address gives a clear error naming what to check")
    func newEraWrongAddress() async throws {
        let sim = PTYSimulator(NewEraSimulatedPump(), role: .pump)
        let error = await #expect(throws: DeviceConfigurationError.self) {
            _ = try await NewEraConfigurator(replyTimeout: .milliseconds(100)).setAddress(Self.address3, at: NewEraLink(path: sim.path, address: .init(7) ?? .zero))
        }
        #expect(error?.description.contains("no New Era pump answers at address 7") == true)
        #expect(error?.description.contains("--address") == true)
        #expect(sim.state(\.address) == .zero)
    }

    @Test("Nonin format: DF2 → DF8 is ACKed and confirmed by a DF8 record read back")
    func noninFormat() async throws {
        let sim = PTYSimulator(SimulatedNonin<NoninDF2Kind>(), role: .oximeter)
        // Up to 10 s for what must eventually happen (the project's pty-test rule); it takes tens of ms when the machine is idle.
        let sample = try await NoninConfigurator().setFormat(.df8, path: sim.path, within: .seconds(10))
        #expect(sample.spo2 != nil)
        #expect(sim.state(\.format) == .df8)
    }

    @Test("Nonin format: DF13 refused up front, and no device gives a clear error; nothing changes")
    func noninFormatRefusals() async throws {
        let sim = PTYSimulator(SimulatedNonin<NoninDF2Kind>(), role: .oximeter)
        let df13 = await #expect(throws: DeviceConfigurationError.self) {
            _ = try await NoninConfigurator().setFormat(.df13, path: sim.path)
        }
        #expect(df13?.description.contains("DF13") == true)
        #expect(sim.state(\.format) == .df2)
        let missing = await #expect(throws: DeviceConfigurationError.self) {
            _ = try await NoninConfigurator().setFormat(.df8, path: "/dev/pts/does-not-exist", within: .milliseconds(500))
        }
        #expect(missing?.description.contains("check the cable") == true)
    }
}
