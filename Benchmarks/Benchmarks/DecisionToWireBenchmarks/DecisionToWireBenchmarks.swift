// Decision-to-wire latency (issue 6, DESIGN.md "Performance budgets": p99 < 1 ms), over real ptys:
// from the moment the last byte of a stop-worthy oximeter frame arrived (the published sample's
// `arrivedAt`, stamped by the Nonin driver on its link thread) to the moment the New Era stop frame has
// been written to the pump's link (stamped right after the write, on the supervisor's thread, by a
// `PumpStopPath` wrapped around the session's `DriverStopPath`). A second metric times the stop-path
// call alone (`DriverStopPath.sendStop()`: the driver's current link, the link's send lock and the
// write), so an outlier can be attributed to the decision (wake-up, step) or to the write.
//
// Each channel is the whole product chain: a simulated Nonin DF2 and a simulated New Era pump, each on
// its own pty; the real drivers on the slaves; `ChannelWiring`; one `SupervisorRunner` for all channels
// (10 ms period, wakes at once on input, SCHED_FIFO 20; the drivers' link readers at SCHED_FIFO 19, as
// `infusionctl run` sets them). The rig is built ONCE per benchmark (setup hook) and each
// iteration runs many stop/restart cycles on it: vitals normal → operator acknowledge and start → the
// pump confirms infusing → the simulated patient's SpO2 is set to 80 % (below the profile's
// immediate-stop threshold, 85 %) → the first sample below 85 % reaches the supervisor → stop frame
// written (one sample per channel) → the pump's status confirms the stop.
//
// To reach ≥ 10 000 samples (p99.9 needs them) in reasonable time, the simulated oximeters run on a
// `ScaledClock`: a DF2 updates SpO2 three times a (simulated) second, so at real speed one cycle alone
// would take about a second. ×4 (300 frames/s per oximeter, four times a real Nonin) is the reference
// for 1 and for 16 channels; faster streams mean MORE bytes, wake-ups and decoding per real second
// than real oximeters cause, so the figures are conservative. A third benchmark runs one channel at
// ×40 (3 000 frames/s through ONE driver, forty oximeters' worth of bytes): a stress case, not the
// budget's case, kept because it shows what an overloaded driver costs (its link thread spends the
// time decoding a stream no device sends). Nothing on the measured path depends on the simulator's
// clock (the drivers, the supervisor and the stamps use the monotonic clock). The wiring polls the
// pump's status every 10 ms (instead of 1 s) so a stop is confirmed quickly; these polls also contend
// with the stop frame for the pump's link, as a keep-alive would.
#if canImport(Glibc)
import Glibc
#endif
import Benchmark
import DeviceIO
import DeviceProtocols
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

/// Wraps the session's stop path: stamps the time just before and right after the first stop frame
/// written since the last `reset()` (supervisor's thread; later repeats are not stamped).
final class TimestampingStopPath: PumpStopPath {
    let inner: DriverStopPath
    let clock = SystemMonotonicClock()
    let calledAt = Atomic<Int64>(0)
    let writtenAt = Atomic<Int64>(0)

    init(_ inner: DriverStopPath) { self.inner = inner }

    func sendStop() -> StopWriteResult {
        let before = clock.now().nanoseconds
        let result = inner.sendStop()
        let after = clock.now().nanoseconds
        if writtenAt.load(ordering: .acquiring) == 0 {  // one writer: the supervisor's thread
            calledAt.store(before, ordering: .releasing)
            writtenAt.store(after, ordering: .releasing)
        }
        return result
    }

    func engageSecondaryStop() { inner.engageSecondaryStop() }

    func reset() {
        writtenAt.store(0, ordering: .releasing)
        calledAt.store(0, ordering: .releasing)
    }
}

/// Watches the bytes the simulated oximeter writes to its pty master (`HostedDeviceSetup.onSent`) and
/// stamps when the write carrying the last byte of the first DF2 packet below the threshold was called:
/// the moment the stop-worthy frame went "on the wire" (into the kernel's tty layer), before the pty's
/// flip-buffer work and the driver's read. Called on the simulator's writing thread, one chunk at a time.
final class WireTap: @unchecked Sendable {
    // `decoder` is touched only by the simulator's writing thread (writes are serialised by its host).
    private var decoder = Nonin.StreamDecoder(format: .df2)
    /// When the stop-worthy packet's last byte was written (CLOCK_MONOTONIC ns; 0: not yet since `arm()`).
    let stopWorthyWrittenAt = Atomic<Int64>(0)
    private let armed = Atomic<Bool>(false)

    /// Benchmark thread: the next packet below 85 % is the one to stamp.
    func arm() {
        stopWorthyWrittenAt.store(0, ordering: .releasing)
        armed.store(true, ordering: .releasing)
    }

    func observe(_ bytes: UnsafeRawBufferPointer, at time: MonotonicInstant) {
        for byte in bytes {
            guard let decoded = decoder.push(byte), let spo2 = decoded.packet?.values.spo2 else { continue }
            if spo2.percent < 85, armed.exchange(false, ordering: .acquiringAndReleasing) {
                stopWorthyWrittenAt.store(time.nanoseconds, ordering: .releasing)
            }
        }
    }
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
    /// When that sample reached the wiring's handler, just before its publication to the supervisor (0: none yet).
    let stopWorthyHandledAt = Atomic<Int64>(0)
    /// SpO2 of the latest sample, in tenths of a percent (-1: none).
    let latestSpO2 = Atomic<Int>(-1)
    /// The kernel thread id of the thread that ran the handler (the oximeter link's reader), for traces.
    let handlerThread = Atomic<Int32>(0)
    let wireTap = WireTap()
    var channel: RunnerChannel?
    var observations = 0.0
    var lastStartSubmitted: Int64 = 0

    init?(index: Int, oximeterSpeed: Double) {
        let clock = SystemMonotonicClock()
        simulatedPump = PTYHostedDevice(device: NewEraSimulatedPump(), role: .pump, setup: HostedDeviceSetup(name: "pump\(index)", clock: clock))
        let tap = wireTap
        simulatedOximeter = PTYHostedDevice(device: SimulatedNoninDF2(), role: .oximeter,
                                            setup: HostedDeviceSetup(name: "oximeter\(index)", clock: ScaledClock(speed: oximeterSpeed),
                                                                     onSent: { bytes, time in tap.observe(bytes, at: time) }))
        simulatedPump.start()
        simulatedOximeter.start()
        let deadline = clock.now() + .seconds(2)
        while (simulatedPump.devicePath == nil || simulatedOximeter.devicePath == nil) && clock.now() < deadline { usleep(1000) }
        guard let pumpPath = simulatedPump.devicePath, let oximeterPath = simulatedOximeter.devicePath else { return nil }
        pump = NewEraPump(path: pumpPath)
        oximeter = makePulseOximeter(protocol: .noninDF2, path: oximeterPath)
        guard let wiring = try? ChannelWiring(pump: pump, oximeter: oximeter, statusInterval: .milliseconds(10)) else { return nil }
        self.wiring = wiring
        stopPath = TimestampingStopPath(wiring.stopPath)
    }

    func connect(_ channel: RunnerChannel) {
        self.channel = channel
        wiring.connect(to: channel)
        // Replaces the wiring's handler with one that also notes the stop-worthy sample's arrival.
        let vitals = channel.vitals
        let clock = SystemMonotonicClock()
        oximeter.setSampleHandler { [self] sample in
            let handledAt = clock.now().nanoseconds  // before publishing: the supervisor may preempt this thread
            vitals.publish(sample)
            if handlerThread.load(ordering: .relaxed) == 0 { handlerThread.store(currentThreadID(), ordering: .relaxed) }
            let spo2 = sample.spo2.map { Int(($0.percent * 10).rounded()) } ?? -1
            latestSpO2.store(spo2, ordering: .releasing)
            if spo2 >= 0 && spo2 < 850,
               stopWorthyArrivedAt.compareExchange(expected: 0, desired: sample.arrivedAt.nanoseconds, ordering: .acquiringAndReleasing).exchanged {
                stopWorthyHandledAt.store(handledAt, ordering: .releasing)
            }
        }
    }

    func setSpO2(_ percent: Double) {
        observations += 1
        simulatedOximeter.observe(PatientObservation(
            time: .seconds(observations), vitals: TrueVitals(spo2: .percent(percent), pulseRate: .beatsPerMinute(72), perfusionIndex: .percent(3))))
    }

    /// Acknowledges a supervisor stop and presses start (at most every 5 ms) until the channel infuses.
    func driveToInfusing(now: Int64) -> Bool {
        guard let channel else { return false }
        switch channel.mode {
        case .infusing:
            return true
        case .stoppedBySupervisor:
            _ = channel.submit(.acknowledge)
        case .idle, .acknowledged:
            if now - lastStartSubmitted > 5_000_000 {
                lastStartSubmitted = now
                _ = channel.submit(.start)
            }
        default:
            break
        }
        return false
    }

    func close() {
        wiring.close()
        pump.close()
        oximeter.close()
        simulatedPump.stop()
        simulatedOximeter.stop()
    }
}

/// Polls `condition` (real time) every 100 µs until it holds or `timeout` passes.
func waitFor(_ timeout: Duration, _ condition: () -> Bool) -> Bool {
    let clock = SystemMonotonicClock()
    let deadline = clock.now() + timeout
    while clock.now() < deadline {
        if condition() { return true }
        usleep(100)
    }
    return condition()
}

/// One cycle's figures for one channel, in nanoseconds.
struct CycleFigures {
    /// Last byte of the stop-worthy frame in → stop frame written.
    var decisionToWire: Int
    /// The stop path's call alone (current link, send lock, write).
    var stopCall: Int
    /// Where the rest went: the driver (arrival → the sample at the wiring's handler: host lock, decoding,
    /// output delivery) and the supervisor (handler → stop path called: publication, wake-up, tick).
    var driver: Int
    var supervisor: Int
    /// Before the metric's start: the simulator's write call with the frame's last byte → the driver's read
    /// (the write itself and the kernel's pty path: flip-buffer work, the reader's wake-up); -1 when not stamped.
    var pty: Int
}

/// A runner over `count` channels, built once and cycled many times.
final class Rig: @unchecked Sendable {
    let benches: [Bench]
    let runner: SupervisorRunner
    let decisions: DecisionRing
    var failures = 0
    /// Every measured value, for exact percentiles at the end (the text report stops at p99).
    var decisionToWire: [Int] = []
    var stopCalls: [Int] = []
    var driverParts: [Int] = []
    var supervisorParts: [Int] = []
    var ptyParts: [Int] = []
    var wireToWire: [Int] = []

    /// The simulated oximeters' clock speed (for the report).
    let oximeterSpeed: Double

    init?(channels count: Int, oximeterSpeed: Double, program: ValidatedProgram) {
        self.oximeterSpeed = oximeterSpeed
        // As `infusionctl run` on real devices: the runner under SCHED_FIFO 20 (its default) and the drivers'
        // link reader threads just below it. The simulators (pty masters) stay in the normal scheduler.
        let cpu = realTimeCPU()
        LinkThreadScheduling.useRealTime(priority: 19, cpu: cpu)
        var benches: [Bench] = []
        for index in 0..<count {
            guard let bench = Bench(index: index, oximeterSpeed: oximeterSpeed) else { return nil }
            benches.append(bench)
        }
        let limits = SupervisorLimits(program: program)
        let setups = benches.enumerated().map { index, bench in
            ChannelSetup(configuration: ChannelConfiguration(channel: UInt16(index), limits: limits, pumpHasWatchdog: true),
                         stopPath: bench.stopPath, commands: bench.wiring.commands)
        }
        decisions = DecisionRing(capacity: 1 << 16)
        guard let runner = try? SupervisorRunner(configuration: .init(cpu: cpu), channels: setups, decisions: decisions) else {
            return nil
        }
        self.benches = benches
        self.runner = runner
        for (bench, channel) in zip(benches, runner.channels) { bench.connect(channel) }
        do { try runner.start() } catch { return nil }
        for bench in benches { bench.setSpO2(97) }
    }

    /// One stop per channel; the figures of the channels whose stop was caused by the stop-worthy
    /// sample (nil: a step timed out).
    func cycle() -> [CycleFigures]? {
        _ = decisions.drain { _ in }  // the durable record's consumer, in the product
        // Normal vitals, fresh; then the operator's acknowledgement and start, and the pump's confirmation.
        for bench in benches { bench.setSpO2(97) }
        guard waitFor(.seconds(5), { benches.allSatisfy { $0.latestSpO2.load(ordering: .acquiring) >= 920 } }) else { return nil }
        let clock = SystemMonotonicClock()
        guard waitFor(.seconds(5), {
            let now = clock.now().nanoseconds
            var all = true
            for bench in benches where !bench.driveToInfusing(now: now) { all = false }
            return all
        }) else { return nil }
        // Desaturation on every channel at once; the supervisor stops each pump.
        for bench in benches {
            bench.stopWorthyArrivedAt.store(0, ordering: .releasing)
            bench.stopWorthyHandledAt.store(0, ordering: .releasing)
            bench.stopPath.reset()
            bench.wireTap.arm()
        }
        for bench in benches { bench.setSpO2(80) }
        guard waitFor(.seconds(5), {
            benches.allSatisfy { $0.stopPath.writtenAt.load(ordering: .acquiring) != 0 && $0.stopWorthyArrivedAt.load(ordering: .acquiring) != 0 }
        }) else { return nil }
        // The simulator's thread stamps the wire-in time after its write returns, which may be after the stop.
        _ = waitFor(.seconds(1)) { benches.allSatisfy { $0.wireTap.stopWorthyWrittenAt.load(ordering: .acquiring) != 0 } }
        // A stop not caused by the stop-worthy sample (written before it arrived) is not a decision-to-wire figure.
        return benches.compactMap { bench in
            let arrived = bench.stopWorthyArrivedAt.load(ordering: .acquiring)
            let handled = bench.stopWorthyHandledAt.load(ordering: .acquiring)
            let called = bench.stopPath.calledAt.load(ordering: .acquiring)
            let written = bench.stopPath.writtenAt.load(ordering: .acquiring)
            guard arrived > 0, written >= arrived, called <= written else { return nil }
            let split = handled >= arrived && handled <= called
            let onWire = bench.wireTap.stopWorthyWrittenAt.load(ordering: .acquiring)
            let figure = CycleFigures(decisionToWire: Int(written - arrived), stopCall: Int(written - called),
                                      driver: split ? Int(handled - arrived) : -1, supervisor: split ? Int(called - handled) : -1,
                                      pty: onWire > 0 && onWire <= arrived ? Int(arrived - onWire) : -1)
            OutlierTrace.check(figure, stamps: (onWire, arrived, handled, called, written), thread: bench.handlerThread.load(ordering: .relaxed))
            return figure
        }
    }

    func close() {
        runner.stop()
        for bench in benches { bench.close() }
        let statistics = runner.counters.snapshot()
        let n = "\(benches.count) channel(s), oximeters x\(Int(oximeterSpeed)),"
        var report = "\(n) \(failures) failed cycle(s); runner worst wake-up lateness "
        report += "\(statistics.worstWakeLateness), worst tick \(statistics.worstTickDuration), overruns \(statistics.overruns), "
        report += "stop frames \(statistics.stopFramesWritten)\n"
        report += "\(n) decision to wire: \(Self.percentiles(decisionToWire))\n"
        report += "\(n) stop path call: \(Self.percentiles(stopCalls))\n"
        report += "\(n) driver part (arrival to handler): \(Self.percentiles(driverParts))\n"
        report += "\(n) supervisor part (handler to stop call): \(Self.percentiles(supervisorParts))\n"
        report += "\(n) before the metric, pty part (simulator write to driver read): \(Self.percentiles(ptyParts))\n"
        report += "\(n) simulator write to stop written (pty part + decision to wire): \(Self.percentiles(wireToWire))\n"
        let placement = runner.realTimeStatus.pinnedCPU.map { "runner and device-link threads pinned to CPU \($0)" } ?? "no CPU pinning"
        report += "\(n) \(placement); link threads raised \(LinkThreadScheduling.realTimeThreadsStarted), pinned \(LinkThreadScheduling.realTimeThreadsPinned)\n"
        FileHandle.standardError.write(Data(report.utf8))
        writeRawFigures()
    }

    /// With `DECISION_TO_WIRE_RAW=PATH`: every sample (ns) as CSV lines "metric,value" appended to PATH, to pool
    /// runs or plot them.
    func writeRawFigures() {
        guard let path = ProcessInfo.processInfo.environment["DECISION_TO_WIRE_RAW"] else { return }
        var text = ""
        for (metric, values) in [("decision_to_wire", decisionToWire), ("stop_call", stopCalls), ("driver", driverParts),
                                 ("supervisor", supervisorParts), ("pty", ptyParts), ("write_to_stop", wireToWire)] {
            for value in values { text += "\(metric),\(value)\n" }
        }
        guard let handle = FileHandle(forWritingAtPath: path) ?? (FileManager.default.createFile(atPath: path, contents: nil) ? FileHandle(forWritingAtPath: path) : nil) else {
            FileHandle.standardError.write(Data("cannot write \(path)\n".utf8))
            return
        }
        handle.seekToEndOfFile()
        handle.write(Data(text.utf8))
        handle.closeFile()
    }

    /// p50, p90, p99, p99.9 and max of `values` (ns), in µs, with the count (nearest-rank percentiles).
    static func percentiles(_ values: [Int]) -> String {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return "no samples" }
        func rank(_ p: Double) -> String {
            let index = min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))
            return String(format: "%.1f", Double(sorted[index]) / 1000)
        }
        return "p50 \(rank(50)) µs, p90 \(rank(90)) µs, p99 \(rank(99)) µs, p99.9 \(rank(99.9)) µs, "
            + "max \(String(format: "%.1f", Double(sorted[sorted.count - 1]) / 1000)) µs, samples \(sorted.count)"
    }
}

/// Diagnosis of outliers with ftrace (off unless `DECISION_TO_WIRE_TRACE_OVER_US` is set): a figure (from the
/// simulator's write when stamped, else from the arrival) over that many microseconds, while tracing is on, writes its stamps (CLOCK_MONOTONIC ns; set the tracer's `trace_clock`
/// to `mono` to compare) to `trace_marker` and turns tracing off, so the ring buffer ends just after the outlier.
/// The caller enables the events beforehand (e.g. `sched:sched_switch`, `sched:sched_wakeup`, `irq_vectors:*`),
/// and may save the buffer and turn tracing on again to catch the next outlier.
enum OutlierTrace {
    static let thresholdNanoseconds: Int? = ProcessInfo.processInfo.environment["DECISION_TO_WIRE_TRACE_OVER_US"]
        .flatMap { Int($0) }.map { $0 * 1000 }
    static let tracing = "/sys/kernel/tracing/"

    /// Called on the benchmark's thread after each cycle.
    static func check(_ figure: CycleFigures, stamps: (onWire: Int64, arrived: Int64, handled: Int64, called: Int64, written: Int64), thread: Int32) {
        let total = figure.decisionToWire + max(figure.pty, 0)  // from the simulator's write when it was stamped
        guard let threshold = thresholdNanoseconds, total > threshold, isTracing() else { return }
        let marker = "D2W outlier \(figure.decisionToWire / 1000) us (from the write \(total / 1000) us): on wire \(stamps.onWire) "
            + "arrived \(stamps.arrived) handled \(stamps.handled) "
            + "called \(stamps.called) written \(stamps.written) link-thread \(thread)\n"
        for (file, text) in [("trace_marker", marker), ("tracing_on", "0")] {
            let fd = open(tracing + file, O_WRONLY)
            guard fd >= 0 else { continue }
            _ = text.withCString { write(fd, $0, strlen($0)) }
            close(fd)
        }
        FileHandle.standardError.write(Data(marker.utf8))
    }

    static func isTracing() -> Bool {
        let fd = open(tracing + "tracing_on", O_RDONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var byte: UInt8 = 0
        return read(fd, &byte, 1) == 1 && byte == UInt8(ascii: "1")
    }
}

/// The calling thread's kernel id (what ftrace shows as the pid), without Glibc's unexported `gettid`.
/// Read from `/proc/thread-self` ("PID/task/TID"); 0 if unavailable.
func currentThreadID() -> Int32 {
    var buffer = [CChar](repeating: 0, count: 64)
    let count = readlink("/proc/thread-self", &buffer, buffer.count - 1)
    guard count > 0 else { return 0 }
    let text = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return text.split(separator: "/").last.flatMap { Int32($0) } ?? 0
}

/// The CPU for the runner and the drivers' link threads: none by default, as `infusionctl run` chooses it;
/// `DECISION_TO_WIRE_CPU` = `auto` (`RealTimePlacement.automatic()`, as `--realtime-cpu auto`) or a CPU number
/// to compare.
func realTimeCPU() -> Int32? {
    switch ProcessInfo.processInfo.environment["DECISION_TO_WIRE_CPU"] {
    case nil, "none": nil
    case "auto": RealTimePlacement.automatic().cpu
    case let text?: Int32(text)
    }
}

/// Iterations per benchmark: the case's own count, or `DECISION_TO_WIRE_ITERATIONS` for a short diagnostic run.
func iterationCount(default count: Int) -> Int {
    ProcessInfo.processInfo.environment["DECISION_TO_WIRE_ITERATIONS"].flatMap { Int($0) } ?? count
}

/// The rig of the benchmark that is running (built by its setup hook, closed by its teardown).
let currentRig = Mutex<Rig?>(nil)

let latency = BenchmarkMetric.custom("decision to wire (ns)", polarity: .prefersSmaller, useScalingFactor: false)
let stopCall = BenchmarkMetric.custom("stop path call (ns)", polarity: .prefersSmaller, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    guard let program = loadProgram() else { return }
    // (channels, oximeter clock speed, cycles per iteration, iterations): ≥ 10 000 samples each.
    for (count, speed, cycles, iterations) in [(1, 4.0, 100, 105), (16, 4.0, 10, 66), (1, 40.0, 100, 105)] {
        Benchmark("decision to wire, \(count) channel\(count == 1 ? "" : "s"), oximeters x\(Int(speed)), New Era + Nonin DF2 over ptys",
                  configuration: .init(metrics: [latency, stopCall], warmupIterations: 0, maxDuration: .seconds(2400), maxIterations: iterationCount(default: iterations)),
                  closure: { benchmark in
                      guard let rig = currentRig.withLock({ $0 }) else { return }
                      for _ in benchmark.scaledIterations {
                          for _ in 0..<cycles {
                              guard let figures = rig.cycle() else {
                                  rig.failures += 1
                                  continue
                              }
                              for figure in figures {
                                  benchmark.measurement(latency, figure.decisionToWire)
                                  benchmark.measurement(stopCall, figure.stopCall)
                                  rig.decisionToWire.append(figure.decisionToWire)
                                  rig.stopCalls.append(figure.stopCall)
                                  if figure.driver >= 0 { rig.driverParts.append(figure.driver) }
                                  if figure.supervisor >= 0 { rig.supervisorParts.append(figure.supervisor) }
                                  if figure.pty >= 0 {
                                      rig.ptyParts.append(figure.pty)
                                      rig.wireToWire.append(figure.pty + figure.decisionToWire)
                                  }
                              }
                          }
                      }
                  },
                  setup: {
                      guard let rig = Rig(channels: count, oximeterSpeed: speed, program: program) else {
                          FileHandle.standardError.write(Data("cannot set up \(count) channel(s) over ptys\n".utf8))
                          return
                      }
                      // One unmeasured cycle: connections, safe mode armed, the first start.
                      if rig.cycle() == nil { rig.failures += 1 }
                      currentRig.withLock { $0 = rig }
                  },
                  teardown: {
                      currentRig.withLock { rig in
                          rig?.close()
                          rig = nil
                      }
                  })
    }
}
