import DeviceIO
import Foundation
import Testing
@testable import DeviceSimulators
import InfusionCore

/// A minimal simulated pump for host tests: answers "?" with its delivered volume, delivers 1 mL per
/// second of clock time while "running", and accepts a "jam" fault.
struct EchoPump: SimulatedDevice, DeliveringDevice {
    typealias Output = String
    static let kind = "echo"
    static let faultHelp = ["jam    stop delivering"]
    var delivering = true
    var startedAt: MonotonicInstant?
    var delivered = Volume.zero
    var lastTick: MonotonicInstant?
    var nextDeadline: MonotonicInstant? { lastTick.map { $0 + .milliseconds(10) } ?? .origin }
    var totalVolumeDelivered: Volume { delivered }

    mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<String>) { effects.emit("up") }
    mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<String>) { effects.emit("down") }
    mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        if bytes.contains(UInt8(ascii: "?")) { effects.send(Array("V\(delivered.millilitres)\n".utf8)) }
    }
    mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        if let last = lastTick, delivering { delivered = delivered + .millilitres((now - last).seconds) }
        lastTick = now
    }
    mutating func inject(_ fault: FaultCommand, at now: MonotonicInstant) throws(FaultError) -> String {
        guard fault.name == "jam" else { throw FaultError("unknown fault \"\(fault.name)\": echo accepts jam") }
        delivering = false
        return "jammed"
    }
}

/// A minimal simulated oximeter that remembers the last observation it was given.
struct RecordingOximeter: SimulatedDevice, PatientMonitoringDevice {
    typealias Output = String
    static let kind = "recorder"
    static let faultHelp: [String] = []
    var last: PatientObservation?
    var nextDeadline: MonotonicInstant? { nil }
    mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {}
    mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {}
    mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        if let last { effects.send(Array("SPO2=\(Int(last.spo2.percent))\n".utf8)) }
    }
    mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {}
    mutating func inject(_ fault: FaultCommand, at now: MonotonicInstant) throws(FaultError) -> String { throw FaultError("none") }
    mutating func observe(_ observation: PatientObservation, at now: MonotonicInstant) { last = observation }
}

func defaultPatient() throws -> VirtualPatient {
    try VirtualPatient(profile: PatientProfile(weight: .kilograms(80), baselineSpO2: .percent(97), baselinePulseRate: .beatsPerMinute(70)))
}

@Suite("Simulator host")
struct SimulatorHostTests {
    @Test("the world model turns delivered volume into plasma concentration")
    func worldModel() throws {
        var world = WorldModel(patient: try defaultPatient(), concentration: .milligramsPerMillilitre(1))
        _ = world.advance(to: .origin, totalDelivered: .zero)
        // 28 mL/h of 1 mg/mL for 10 minutes, in 1 s steps.
        var observation = world.patient.observation
        for second in 1...600 {
            observation = world.advance(to: .origin + .seconds(second), totalDelivered: .millilitres(28.0 * Double(second) / 3600))
        }
        #expect(observation.plasmaConcentration.isPositive)
        var idle = WorldModel(patient: try defaultPatient(), concentration: .milligramsPerMillilitre(1))
        _ = idle.advance(to: .origin, totalDelivered: .zero)
        #expect(idle.advance(to: .origin + .seconds(600), totalDelivered: .zero).plasmaConcentration == .zero)
        // A counter that goes backwards (a cleared pump) never gives negative drug.
        let before = world.patient.observation.plasmaConcentration
        _ = world.advance(to: .origin + .seconds(601), totalDelivered: .zero)
        #expect(world.patient.observation.plasmaConcentration <= before)
    }

    @Test("a hosted device serves on a pty, removes its --link symlink while unplugged (as udev does) and puts it back on the new pty at the replug, and takes faults")
    func hostedDevice() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sim-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let paths = PathLog()
        let setup = HostedDeviceSetup(name: "pump0", clock: SystemMonotonicClock(), linkDirectory: directory) { paths.add($0) }
        let device = PTYHostedDevice(device: EchoPump(), role: .pump, setup: setup)
        device.start()
        defer { device.stop() }
        let link = directory + "/pump0"
        #expect(waitUntil { paths.all.count == 1 && FileManager.default.fileExists(atPath: link) })
        let first = try #require(paths.all.first)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == first)
        #expect(device.devicePath == first)

        var port = try SerialPort(path: link, settings: .newEra19200)
        try port.write(Array("?".utf8), timeout: .seconds(1))
        let reply = String(decoding: try port.read(upTo: 64, timeout: .seconds(1)), as: UTF8.self)
        #expect(reply.hasPrefix("V"))

        device.unplug(for: nil)
        #expect(throws: DeviceIOError.self) { _ = try port.read(upTo: 64, timeout: .seconds(1)) }
        port.close()
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == nil, "no link while unplugged")
        #expect(throws: DeviceIOError.notFound(path: link)) { _ = try SerialPort(path: link, settings: .newEra19200) }
        device.replug()
        #expect(waitUntil { paths.all.count == 2 })
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == paths.all.last)
        port = try SerialPort(path: link, settings: .newEra19200)
        defer { port.close() }
        try port.write(Array("?".utf8), timeout: .seconds(1))
        #expect(String(decoding: try port.read(upTo: 64, timeout: .seconds(1)), as: UTF8.self).hasPrefix("V"))

        #expect(throws: FaultError.self) { try device.inject(FaultCommand(name: "explode")).get() }
        #expect(try device.inject(FaultCommand(name: "jam")).get() == "jammed")
        let jammedAt = try #require(device.totalVolumeDelivered())
        Thread.sleep(forTimeInterval: 0.05)
        #expect(device.totalVolumeDelivered() == jammedAt)
    }

    @Test("devices started together share one world: pump delivery reaches the patient the oximeter measures")
    func sharedWorld() throws {
        let clock = ScaledClock(speed: 600)  // 10 simulated minutes per real second
        let world = SimulatedWorld(model: WorldModel(patient: try defaultPatient(), concentration: .milligramsPerMillilitre(1)), clock: clock)
        let pump = PTYHostedDevice(device: EchoPump(), role: .pump, setup: HostedDeviceSetup(name: "pump0", clock: clock))
        let oximeter = PTYHostedDevice(device: RecordingOximeter(), role: .oximeter, setup: HostedDeviceSetup(name: "oximeter0", clock: clock))
        world.add(pump)
        world.add(oximeter)
        world.start()
        defer { world.stop() }
        #expect(waitUntil { (pump.totalVolumeDelivered() ?? .zero) > .millilitres(30) })
        world.couple()
        #expect(world.latestObservation.plasmaConcentration.isPositive)
        #expect(world.device(named: "oximeter0") != nil)
    }
}

final class PathLog: @unchecked Sendable {
    private let lock = NSLock()
    private var paths: [String] = []
    func add(_ path: String) { lock.lock(); paths.append(path); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return paths }
}

func waitUntil(timeout: TimeInterval = 10, _ condition: () throws -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if (try? condition()) == true { return true }
        Thread.sleep(forTimeInterval: 0.005)
    }
    return (try? condition()) == true
}
