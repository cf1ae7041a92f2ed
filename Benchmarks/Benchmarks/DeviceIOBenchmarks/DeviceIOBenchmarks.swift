import Benchmark
import DeviceIO
import Dispatch
import InfusionCore
import Synchronization

// Byte-delivery latency through a link: the time from just before `send` on one end to the moment
// the other end's handler is called with the bytes (the driver's callback). One byte per iteration,
// so every iteration is one complete wake-up of the receiving link's reader thread. The figure is a
// custom metric in nanoseconds; wall clock per iteration also includes the benchmark thread waking
// up again after the handler ran.

/// Records when a handler saw bytes and wakes the benchmark thread.
final class Probe: Sendable {
    let arrivedAt = Atomic<Int64>(0)
    let arrived = DispatchSemaphore(value: 0)

    var handler: LinkHandler {
        { [self] event in
            guard case .received = event else { return }
            arrivedAt.store(SystemMonotonicClock().now().nanoseconds, ordering: .releasing)
            arrived.signal()
        }
    }

    /// Waits for the handler and returns the time from `start` to its call, in nanoseconds.
    func latency(since start: Int64) -> Int {
        arrived.wait()
        return Int(arrivedAt.load(ordering: .acquiring) - start)
    }
}

/// A simulator link on a pty master and a driver link on its slave, as in a driver-against-simulator test.
final class PtyPair: Sendable {
    let simulator: DescriptorLink
    let driver: DescriptorLink
    let atSimulator = Probe()
    let atDriver = Probe()

    init() throws {
        let clock = SystemMonotonicClock()
        let pty = try PseudoTerminal()
        simulator = DescriptorLink(pseudoTerminal: pty, clock: clock)
        driver = DescriptorLink(port: try SerialPort(path: pty.slavePath, settings: .newEra19200), clock: clock)
        try simulator.start(handler: atSimulator.handler)
        try driver.start(handler: atDriver.handler)
    }
}

/// An in-memory pair, for comparison (delivery is a function call).
final class MemoryPair: Sendable {
    let a: InMemoryLink
    let b: InMemoryLink
    let atB = Probe()

    init() throws {
        (a, b) = InMemoryLink.makePair(clock: SystemMonotonicClock())
        try b.start(handler: atB.handler)
        try a.start { _ in }
    }
}

/// A driver link whose pty master nobody reads through a link: only the send path runs, so the
/// allocation count per iteration is the send path's own (the supervisor's stop path must not allocate).
final class SendOnly: Sendable {
    let pty: PseudoTerminal
    let driver: DescriptorLink

    init() throws {
        pty = try PseudoTerminal()
        driver = DescriptorLink(port: try SerialPort(path: pty.slavePath, settings: .newEra19200), clock: SystemMonotonicClock())
        try driver.start { _ in }
    }

    /// Reads what the driver sent so the pty never fills (outside the measurement).
    func empty() {
        _ = try? pty.read(upTo: 4096, timeout: .milliseconds(100))
    }
}

let latency = BenchmarkMetric.custom("delivery latency (ns)", polarity: .prefersSmaller, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [latency, .wallClock, .mallocCountTotal],
        warmupIterations: 100,
        maxDuration: .seconds(5),
        maxIterations: 20_000
    )
    let stopFrame: [UInt8] = [0x02]  // one byte: one reader wake-up per iteration

    guard let pty = try? PtyPair(), let memory = try? MemoryPair(), let sendOnly = try? SendOnly() else {
        print("cannot create the links to benchmark")
        return
    }

    Benchmark("pty link: simulator send -> driver handler", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            let start = SystemMonotonicClock().now().nanoseconds
            try? pty.simulator.send(stopFrame)
            benchmark.measurement(latency, pty.atDriver.latency(since: start))
        }
    }

    Benchmark("pty link: driver send -> simulator handler", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            let start = SystemMonotonicClock().now().nanoseconds
            try? pty.driver.send(stopFrame)
            benchmark.measurement(latency, pty.atSimulator.latency(since: start))
        }
    }

    Benchmark("in-memory link: send -> handler", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            let start = SystemMonotonicClock().now().nanoseconds
            try? memory.a.send(stopFrame)
            benchmark.measurement(latency, memory.atB.latency(since: start))
        }
    }

    Benchmark(
        "driver link: send a pre-encoded frame (allocations)",
        configuration: .init(metrics: [.mallocCountTotal, .wallClock], warmupIterations: 100, maxDuration: .seconds(3), maxIterations: 20_000)
    ) { benchmark in
        let frame: [UInt8] = [0x02, 0x53, 0x54, 0x50, 0x03]
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { try? sendOnly.driver.send(frame) }
        benchmark.stopMeasurement()
        sendOnly.empty()
    }
}
