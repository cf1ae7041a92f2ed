// Safety-supervisor benchmarks (DESIGN.md "Performance budgets"):
//  - step cost per channel, p50/p99, with ZERO heap allocations per tick asserted by the static threshold
//    in ../../Thresholds (`swift package benchmark thresholds check`); budget p99 < 20 µs per channel;
//  - the same for 16 channels stepped in one tick;
//  - the real-time runner's period jitter (timer wake-up lateness) at 10 ms, with allocations counted
//    over the whole measured window (runner thread and a 75 Hz publisher thread).
#if canImport(Glibc)
import Glibc
#endif
import Benchmark
import Foundation
import InfusionCore
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

/// One channel with a scripted bedside around it: a pump that obeys the commands and counts volume,
/// an oximeter sample every tick, and a 40-second cycle through every path of the supervisor (start,
/// steady infusion, desaturation, stop after the 15 s hold, confirmation, alarms, audio pause,
/// acknowledgement, fresh start, a refused start). Nothing in `step()` allocates.
struct Bedside {
    static let cycle = 4000
    var channel: SupervisorChannel
    var inputs = ChannelInputs(oximeter: .connected, pumpLink: .connected, pumpWatchdogArmed: true)
    var output = StepOutput()
    var now: MonotonicInstant
    var tick: Int
    let period: Duration = .milliseconds(10)
    var pumpState: PumpRunState = .stopped
    var pumpRate: VolumeRate = .zero
    var volume: Volume = .zero

    init(program: ValidatedProgram, channel number: UInt16, phase: Int) {
        now = MonotonicInstant(nanoseconds: 1_000_000_000_000)
        channel = SupervisorChannel(configuration: ChannelConfiguration(channel: number, program: program, pumpHasWatchdog: true), now: now)
        tick = phase
    }

    mutating func step() {
        let phase = tick % Self.cycle
        now = now + period
        if pumpState == .infusing { volume = volume + Volume(canonicalValue: pumpRate.millilitresPerHour * period.hours) }
        let spo2: Double = (2000..<3600).contains(phase) ? 87 : 95 + Double(tick % 4)
        inputs.vitals = VitalSample(arrivedAt: now, spo2: .percent(spo2), pulseRate: .beatsPerMinute(70 + Double(tick % 7)))
        inputs.pump = PumpStatus(receivedAt: now, state: pumpState, rate: pumpState == .infusing ? pumpRate : .zero, volumeInfused: volume)
        switch phase {
        case 2, 3900: inputs.action = .start
        case 3560: inputs.action = .audioPause
        case 3800: inputs.action = .acknowledge
        default: inputs.action = nil
        }
        channel.step(inputs: inputs, now: now, into: &output)
        for command in output.commands {
            switch command {
            case .stop, .secondaryStop: pumpState = .stopped
            case let .start(rate, _):
                pumpState = .infusing
                pumpRate = rate
            case let .setRate(rate): pumpRate = rate
            }
        }
        tick += 1
    }
}

/// A flag shared between the benchmark's thread and the driver thread.
final class Flag: Sendable {
    private let value = Atomic<Bool>(true)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func clear() { value.store(false, ordering: .releasing) }
}

/// Mutable state captured by a benchmark closure (used from the benchmark's thread only).
final class Box<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// A pump stop path that writes the frame to /dev/null (the runner benchmark measures timing, not a link).
func devNullStopPath() -> FileDescriptorStopPath {
    FileDescriptorStopPath(fileDescriptor: open("/dev/null", O_WRONLY), stopFrame: Array("0STP\r".utf8))
}

let wakeLateness = BenchmarkMetric.custom("wake lateness (ns)", polarity: .prefersSmaller, useScalingFactor: false)
let overruns = BenchmarkMetric.custom("overruns", polarity: .prefersSmaller, useScalingFactor: false)
let fifo = BenchmarkMetric.custom("SCHED_FIFO (1 = yes)", polarity: .prefersLarger, useScalingFactor: false)
let locked = BenchmarkMetric.custom("mlockall (1 = yes)", polarity: .prefersLarger, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    guard let program = loadProgram() else { return }
    let zeroAllocations: [BenchmarkMetric: BenchmarkThresholds] = [.mallocCountTotal: .init(absolute: [.p90: 0])]

    // One tick of one channel per iteration: the step cost distribution.
    let one = Box(Bedside(program: program, channel: 0, phase: 0))
    for _ in 0..<Bedside.cycle { one.value.step() } // warm the buffers through one full cycle
    Benchmark("Supervisor step 1 channel",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .nanoseconds, warmupIterations: 100,
                                   scalingFactor: .one, maxDuration: .seconds(5), maxIterations: 200_000, thresholds: zeroAllocations)) { benchmark in
        for _ in benchmark.scaledIterations { one.value.step() }
    }

    // A whole 40-second scripted cycle (4000 ticks: every path above) per iteration. The p90 static
    // threshold on allocations is checked per iteration, so here it covers every tick of 90 % of the
    // cycles: a path that allocates even once per cycle fails the check.
    let cycle = Box(Bedside(program: program, channel: 0, phase: 0))
    for _ in 0..<Bedside.cycle { cycle.value.step() }
    Benchmark("Supervisor 1 channel full cycle",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .microseconds, warmupIterations: 2,
                                   scalingFactor: .one, maxDuration: .seconds(5), maxIterations: 500, thresholds: zeroAllocations)) { benchmark in
        for _ in benchmark.scaledIterations {
            for _ in 0..<Bedside.cycle { cycle.value.step() }
        }
    }

    // One tick of 16 channels per iteration (each at a different point of its cycle).
    let sixteen = Box((0..<16).map { Bedside(program: program, channel: UInt16($0), phase: $0 * 250) })
    for _ in 0..<Bedside.cycle { for i in 0..<16 { sixteen.value[i].step() } }
    Benchmark("Supervisor step 16 channels",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .microseconds, warmupIterations: 100,
                                   scalingFactor: .one, maxDuration: .seconds(5), maxIterations: 50_000, thresholds: zeroAllocations)) { benchmark in
        for _ in benchmark.scaledIterations {
            sixteen.value.withUnsafeMutableBufferPointer { channels in
                for i in channels.indices { channels[i].step() }
            }
        }
    }

    // The real-time runner at its production period, one channel infusing, with a driver thread
    // publishing oximetry at 75 Hz and pump status at about 10 Hz. Each timer wake-up's lateness is one
    // sample; allocations are counted over the whole 5-second window, every thread included.
    Benchmark("Runner jitter 10 ms",
              configuration: .init(metrics: [.mallocCountTotal, wakeLateness, overruns, fifo, locked], warmupIterations: 0,
                                   scalingFactor: .one, maxDuration: .seconds(60), maxIterations: 1,
                                   thresholds: zeroAllocations)) { benchmark in
        let mailbox = PumpCommandMailbox(capacity: 64)
        let setup = ChannelSetup(configuration: ChannelConfiguration(channel: 0, program: program, pumpHasWatchdog: true),
                                 stopPath: devNullStopPath(), commands: mailbox)
        let ring = DecisionRing(capacity: 1 << 14)
        let runner = try SupervisorRunner(configuration: .init(period: .milliseconds(10), realTimePriority: 20, lockMemory: true,
                                                               latenessRecordCapacity: 4096),
                                          channels: [setup], decisions: ring)
        let channel = runner.channels[0]
        let clock = SystemMonotonicClock()
        channel.vitals.publishConnection(.connected)
        channel.pump.publishConnection(.connected)
        channel.pump.publishWatchdogArmed(true)
        channel.vitals.publish(VitalSample(arrivedAt: clock.now(), spo2: .percent(97), pulseRate: .beatsPerMinute(72)))
        channel.pump.publish(PumpStatus(receivedAt: clock.now(), state: .stopped, rate: .zero, volumeInfused: .zero))
        try runner.start()
        channel.submit(.start)
        let running = Flag()
        let driver = Thread {
            var n = 0
            while running.isSet {
                channel.vitals.publish(VitalSample(arrivedAt: clock.now(), spo2: .percent(96 + Double(n % 3)), pulseRate: .beatsPerMinute(72)))
                if n % 7 == 0 {
                    channel.pump.publish(PumpStatus(receivedAt: clock.now(), state: .infusing, rate: .millilitresPerHour(28),
                                                    volumeInfused: .millilitres(Double(n) * 28 / 3600 / 75)))
                }
                n += 1
                usleep(13_333)
            }
        }
        driver.start()
        usleep(300_000)
        runner.latenessRecord?.drain { _ in } // discard the start-up
        ring.drain { _ in }

        benchmark.startMeasurement()
        usleep(5_000_000)
        benchmark.stopMeasurement()

        running.clear()
        runner.stop()
        runner.latenessRecord?.drain { benchmark.measurement(wakeLateness, Int($0)) }
        let stats = runner.counters.snapshot()
        benchmark.measurement(overruns, Int(stats.overruns))
        benchmark.measurement(fifo, runner.realTimeStatus.fifoScheduling ? 1 : 0)
        benchmark.measurement(locked, runner.realTimeStatus.memoryLocked ? 1 : 0)
    }
}
