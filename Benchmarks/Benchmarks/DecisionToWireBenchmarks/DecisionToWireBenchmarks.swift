// Decision-to-wire latency (issue 6, DESIGN.md "Performance budgets": p99 < 1 ms), over real ptys:
// from the moment the last byte of a stop-worthy oximeter frame arrived (the published sample's
// `arrivedAt`, stamped by the Nonin driver on its link thread) to the moment the New Era stop frame has
// been written to the pump's link (stamped right after the write, on the supervisor's thread, by a
// `PumpStopPath` wrapped around the session's `DriverStopPath`).
//
// Each channel is the whole product chain: a simulated Nonin DF2 and a simulated New Era pump, each on
// its own pty; the real drivers on the slaves; `ChannelWiring`; one `SupervisorRunner` for all channels
// (10 ms period, wakes at once on input). One iteration per channel: vitals normal → operator start →
// the pump confirms infusing → the simulated patient's SpO2 is set to 80 % (below the profile's
// immediate-stop threshold, 85 %) → the first sample below 85 % reaches the supervisor → stop frame
// written → acknowledge. Real time throughout (no scaled clock), so the byte rates and the load are the
// real ones; an iteration takes about a second (the DF2 reports SpO2 three times a second, the pump
// needs a few 19200-baud exchanges to start), which bounds the sample count.
#if canImport(Glibc)
import Glibc
#endif
import Benchmark
import DeviceIO
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Session
import Supervisor
import Synchronization

/// The shipped drug library's ketamine program: 80 kg, 0.35 mg/kg/h of 1 mg/mL for 4 h (28 mL/h).
func loadProgram() -> ValidatedProgram? {
    let url = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/infusionctl/Resources/default-library.toml")
    do {
        let library = try DrugLibrary.load(text: try String(contentsOf: url, encoding: .utf8), source: url.path)
        let request = ProgramRequest(
            profile: "ketamine-chronic-pain", drug: "Ketamine", concentration: .milligramsPerMillilitre(1), weight: .kilograms(80),
            dose: .weightBased(.milligramsPerKilogramPerHour(0.35), .milligramsPerKilogramPerHour), duration: .seconds(4 * 3600))
        guard let program = ProgramValidator.validate(request, library: library).acceptedProgram else {
            FileHandle.standardError.write(Data("the benchmark program was not accepted by \(url.path)\n".utf8))
            return nil
        }
        return program
    } catch {
        FileHandle.standardError.write(Data("cannot load the drug library at \(url.path): \(error)\n".utf8))
        return nil
    }
}

/// Wraps the session's stop path: stamps the time right after the stop frame was written.
final class TimestampingStopPath: PumpStopPath {
    let inner: DriverStopPath
    let writtenAt = Atomic<Int64>(0)

    init(_ inner: DriverStopPath) { self.inner = inner }

    func sendStop() -> StopWriteResult {
        let result = inner.sendStop()
        _ = writtenAt.compareExchange(expected: 0, desired: SystemMonotonicClock().now().nanoseconds, ordering: .acquiringAndReleasing)
        return result
    }

    func engageSecondaryStop() { inner.engageSecondaryStop() }
}

/// One channel and its simulated bedside.
final class Bench: @unchecked Sendable {
    let simulatedPump: PTYHostedDevice<NewEraSimulatedPump>
    let simulatedOximeter: PTYHostedDevice<SimulatedNoninDF2>
    let pump: NewEraPump
    let oximeter: any PulseOximeter
    let wiring: ChannelWiring
    let stopPath: TimestampingStopPath
    /// `arrivedAt` of the first sample below the threshold since `arm()` (0: none yet).
    let stopWorthyArrivedAt = Atomic<Int64>(0)
    /// SpO2 of the latest sample, in tenths of a percent (-1: none).
    let latestSpO2 = Atomic<Int>(-1)
    var channel: RunnerChannel?
    var cycles = 0.0

    init?(index: Int) {
        let clock = SystemMonotonicClock()
        simulatedPump = PTYHostedDevice(device: NewEraSimulatedPump(), role: .pump, setup: HostedDeviceSetup(name: "pump\(index)", clock: clock))
        simulatedOximeter = PTYHostedDevice(device: SimulatedNoninDF2(), role: .oximeter, setup: HostedDeviceSetup(name: "oximeter\(index)", clock: clock))
        simulatedPump.start()
        simulatedOximeter.start()
        let deadline = clock.now() + .seconds(2)
        while (simulatedPump.devicePath == nil || simulatedOximeter.devicePath == nil) && clock.now() < deadline { usleep(1000) }
        guard let pumpPath = simulatedPump.devicePath, let oximeterPath = simulatedOximeter.devicePath else { return nil }
        pump = NewEraPump(path: pumpPath)
        oximeter = makePulseOximeter(protocol: .noninDF2, path: oximeterPath)
        guard let wiring = try? ChannelWiring(pump: pump, oximeter: oximeter) else { return nil }
        self.wiring = wiring
        stopPath = TimestampingStopPath(wiring.stopPath)
    }

    func connect(_ channel: RunnerChannel) {
        self.channel = channel
        wiring.connect(to: channel)
        // Replaces the wiring's handler with one that also notes the stop-worthy sample's arrival.
        let vitals = channel.vitals
        oximeter.setSampleHandler { [self] sample in
            vitals.publish(sample)
            let spo2 = sample.spo2.map { Int(($0.percent * 10).rounded()) } ?? -1
            latestSpO2.store(spo2, ordering: .releasing)
            if spo2 >= 0 && spo2 < 850 {
                _ = stopWorthyArrivedAt.compareExchange(expected: 0, desired: sample.arrivedAt.nanoseconds, ordering: .acquiringAndReleasing)
            }
        }
    }

    func setSpO2(_ percent: Double) {
        cycles += 1
        simulatedOximeter.observe(PatientObservation(
            time: .seconds(cycles), vitals: TrueVitals(spo2: .percent(percent), pulseRate: .beatsPerMinute(72), perfusionIndex: .percent(3))))
    }

    func close() {
        wiring.close()
        pump.close()
        oximeter.close()
        simulatedPump.stop()
        simulatedOximeter.stop()
    }
}

/// Polls `condition` (real time) every 200 µs until it holds or `timeout` passes.
func waitFor(_ timeout: Duration, _ condition: () -> Bool) -> Bool {
    let clock = SystemMonotonicClock()
    let deadline = clock.now() + timeout
    while clock.now() < deadline {
        if condition() { return true }
        usleep(200)
    }
    return condition()
}

/// A runner over `count` channels, brought to a state where every channel can start.
final class Rig: @unchecked Sendable {
    let benches: [Bench]
    let runner: SupervisorRunner

    init?(channels count: Int, program: ValidatedProgram) {
        var benches: [Bench] = []
        for index in 0..<count {
            guard let bench = Bench(index: index) else { return nil }
            benches.append(bench)
        }
        let limits = SupervisorLimits(program: program)
        let setups = benches.enumerated().map { index, bench in
            ChannelSetup(configuration: ChannelConfiguration(channel: UInt16(index), limits: limits, pumpHasWatchdog: true),
                         stopPath: bench.stopPath, commands: bench.wiring.commands)
        }
        guard let runner = try? SupervisorRunner(configuration: .init(), channels: setups, decisions: DecisionRing(capacity: 1 << 16)) else {
            return nil
        }
        self.benches = benches
        self.runner = runner
        for (bench, channel) in zip(benches, runner.channels) { bench.connect(channel) }
        do { try runner.start() } catch { return nil }
        for bench in benches { bench.setSpO2(97) }
    }

    /// One stop per channel; returns the decision-to-wire latencies in nanoseconds (nil: a step failed).
    func cycle() -> [Int]? {
        // Normal vitals, fresh; then the operator's start, and the pump's confirmation.
        for bench in benches { bench.setSpO2(97) }
        guard waitFor(.seconds(5), { benches.allSatisfy { $0.latestSpO2.load(ordering: .acquiring) >= 920 } }) else { return nil }
        for bench in benches {
            guard let channel = bench.channel else { return nil }
            if channel.mode == .stoppedBySupervisor { _ = channel.submit(.acknowledge) }
        }
        guard waitFor(.seconds(5), {
            benches.allSatisfy { bench in
                guard let channel = bench.channel else { return false }
                switch channel.mode {
                case .infusing: return true
                case .idle, .acknowledged: _ = channel.submit(.start); usleep(20_000); return false
                case .stoppedBySupervisor: _ = channel.submit(.acknowledge); return false
                default: return false
                }
            }
        }) else { return nil }
        // Desaturation on every channel at once; the supervisor stops each pump.
        for bench in benches {
            bench.stopWorthyArrivedAt.store(0, ordering: .releasing)
            bench.stopPath.writtenAt.store(0, ordering: .releasing)
        }
        for bench in benches { bench.setSpO2(80) }
        guard waitFor(.seconds(5), { benches.allSatisfy { $0.stopPath.writtenAt.load(ordering: .acquiring) != 0 } }) else { return nil }
        // A stop not caused by the stop-worthy sample (none seen yet) is not a decision-to-wire figure.
        return benches.compactMap { bench in
            let arrived = bench.stopWorthyArrivedAt.load(ordering: .acquiring)
            let written = bench.stopPath.writtenAt.load(ordering: .acquiring)
            return arrived > 0 && written >= arrived ? Int(written - arrived) : nil
        }
    }

    func close() {
        runner.stop()
        for bench in benches { bench.close() }
    }
}

let latency = BenchmarkMetric.custom("decision to wire (ns)", polarity: .prefersSmaller, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    guard let program = loadProgram() else { return }
    for count in [1, 16] {
        Benchmark("decision to wire, \(count) channel\(count == 1 ? "" : "s"), New Era + Nonin DF2 over ptys",
                  configuration: .init(metrics: [latency], warmupIterations: 1, maxDuration: .seconds(60), maxIterations: 10_000)) { benchmark in
            guard let rig = Rig(channels: count, program: program) else {
                FileHandle.standardError.write(Data("cannot set up \(count) channel(s) over ptys\n".utf8))
                return
            }
            defer { rig.close() }
            var failures = 0
            for _ in benchmark.scaledIterations {
                guard let latencies = rig.cycle() else {
                    failures += 1
                    continue
                }
                for value in latencies { benchmark.measurement(latency, value) }
            }
            if failures > 0 { FileHandle.standardError.write(Data("\(failures) cycle(s) failed with \(count) channel(s)\n".utf8)) }
        }
    }
}
