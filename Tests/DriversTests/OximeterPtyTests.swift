import DeviceIO
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Testing

/// A simulated oximeter hosted on a pty master (as `infusion-sim` does), with a driver on the slave.
final class PtySimulator<Device: SimulatedDevice & PatientMonitoringDevice>: Sendable {
    let host: EndpointHost<Device>
    let pty: PseudoTerminal

    init(_ device: Device, observation: PatientObservation, clock: any MonotonicClock) throws {
        let pty = try PseudoTerminal()
        self.pty = pty
        var model = device
        model.observe(observation, at: clock.now())
        host = EndpointHost(endpoint: model, name: "sim \(Device.kind)", clock: clock, linkUpOnOpen: false,
                            open: { () throws(DeviceIOError) -> any ByteLink in DescriptorLink(pseudoTerminal: pty, clock: clock) },
                            onOutput: { _ in })
        host.start()
    }

    func inject(_ name: String, _ arguments: String...) -> String {
        host.perform { device, now, _ -> String in
            do { return try device.inject(FaultCommand(name: name, arguments: arguments), at: now) } catch { return "\(error)" }
        }
    }

    func observe(_ observation: PatientObservation) {
        host.perform { device, now, _ in device.observe(observation, at: now) }
    }
}

@Suite("Oximeter drivers against their simulators over real ptys", .serialized)
struct OximeterPtyTests {
    /// Runs the simulator of `format` on a pty and its driver on the slave; checks live values, then a
    /// probe-off fault, then closes. About 1–2.5 s per format (DF8 and Masimo send once a second).
    func check<Device: SimulatedDevice & PatientMonitoringDevice>(_ format: OximeterProtocol, _ device: Device) throws {
        let clock = SystemMonotonicClock()
        let sim = try PtySimulator(device, observation: knownObservation(spo2: 94, pulse: 78, pi: 2.5), clock: clock)
        defer { sim.host.stop() }
        let oximeter = makePulseOximeter(protocol: format, path: sim.pty.slavePath, clock: clock)
        defer { oximeter.close() }
        let samples = Collector<VitalSample>()
        oximeter.setSampleHandler { samples.append($0) }
        #expect(waitUntil { samples.all.count >= 2 }, "\(format): no samples")
        #expect(oximeter.connection == .connected)
        for sample in samples.all {
            #expect(sample.spo2 == .percent(94), "\(format)")
            #expect(sample.pulseRate == .beatsPerMinute(78), "\(format)")
            #expect(sample.quality == [], "\(format)")
            #expect(sample.perfusionIndex == (format == .masimo || format == .contec ? .percent(2.5) : nil), "\(format)")
        }
        #expect(oximeter.latestSample != nil)
        #expect(sim.inject("probe-off") == "probe-off until clear")
        let before = samples.all.count
        #expect(waitUntil { samples.all.dropFirst(before).contains { $0.quality.contains(.probeOff) && $0.spo2 == nil } },
                "\(format): probe-off not seen")
        let counters = oximeter.counters
        #expect(counters.samplesPublished >= samples.all.count)
        #expect(counters.checksumErrors == 0 && counters.framingErrors == 0)
    }

    @Test("Nonin DF2 over a pty") func df2() throws { try check(.noninDF2, SimulatedNoninDF2()) }
    @Test("Nonin DF7 over a pty") func df7() throws { try check(.noninDF7, SimulatedNoninDF7()) }
    @Test("Nonin DF8 over a pty") func df8() throws { try check(.noninDF8, SimulatedNoninDF8()) }
    @Test("Masimo over a pty") func masimo() throws { try check(.masimo, SimulatedMasimo()) }
    @Test("Contec over a pty") func contec() throws { try check(.contec, SimulatedContec()) }

    @Test("silence over a pty: the driver reports .silent and the samples stream resumes after")
    func silence() throws {
        let clock = SystemMonotonicClock()
        let sim = try PtySimulator(SimulatedNoninDF2(), observation: knownObservation(), clock: clock)
        defer { sim.host.stop() }
        let oximeter = NoninOximeter(path: sim.pty.slavePath, configuration: .init(format: .df2, staleAfter: .milliseconds(400)), clock: clock)
        defer { oximeter.close() }
        let samples = Collector<VitalSample>()
        oximeter.setSampleHandler { samples.append($0) }
        #expect(waitUntil { samples.all.count >= 1 })
        _ = sim.inject("silence", "1s")
        #expect(waitUntil(2) { oximeter.connection == .silent })
        #expect(oximeter.latestSample == nil, "a stale sample is never offered as the latest")
        #expect(waitUntil(3) { oximeter.connection == .connected && oximeter.latestSample?.isValid == true })
    }

    @Test("unplug and replug over ptys: disconnected, then reconnected on the same link path", arguments: [OximeterProtocol.noninDF2, .contec])
    func unplug(_ format: OximeterProtocol) throws {
        let clock = SystemMonotonicClock()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("oximeter-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let linkPath = directory.appendingPathComponent("oximeter0").path

        func plugIn() throws -> EndpointHost<SimulatedNoninDF2>? {
            let sim = try PtySimulator(SimulatedNoninDF2(), observation: knownObservation(), clock: clock)
            try? FileManager.default.removeItem(atPath: linkPath)
            try FileManager.default.createSymbolicLink(atPath: linkPath, withDestinationPath: sim.pty.slavePath)
            return sim.host
        }
        func plugInContec() throws -> EndpointHost<SimulatedContec>? {
            let sim = try PtySimulator(SimulatedContec(), observation: knownObservation(), clock: clock)
            try? FileManager.default.removeItem(atPath: linkPath)
            try FileManager.default.createSymbolicLink(atPath: linkPath, withDestinationPath: sim.pty.slavePath)
            return sim.host
        }
        var nonin = format == .contec ? nil : try plugIn()
        var contec = format == .contec ? try plugInContec() : nil
        let oximeter: any PulseOximeter = format == .contec
            ? ContecOximeter(path: linkPath, clock: clock, reconnectInterval: .milliseconds(50))
            : NoninOximeter(path: linkPath, configuration: .init(format: .df2), clock: clock, reconnectInterval: .milliseconds(50))
        defer { oximeter.close() }
        let samples = Collector<VitalSample>()
        oximeter.setSampleHandler { samples.append($0) }
        #expect(waitUntil { oximeter.connection == .connected })
        // Unplug as udev would: the link goes first, so that the reconnecting driver cannot open the dead
        // pty's /dev/pts number once another test's pseudo-terminal gets it.
        try? FileManager.default.removeItem(atPath: linkPath)
        nonin?.stop()
        contec?.stop()
        let unplugged = Date()
        #expect(waitUntil { oximeter.connection == .disconnected })
        #expect(Date().timeIntervalSince(unplugged) < 1.0, "unplug must be noticed within 1 s")
        if format == .contec { contec = try plugInContec() } else { nonin = try plugIn() }
        let count = samples.all.count
        #expect(waitUntil { oximeter.connection == .connected && samples.all.count > count })
        #expect(samples.all.last?.isValid == true)
        nonin?.stop()
        contec?.stop()
    }
}
