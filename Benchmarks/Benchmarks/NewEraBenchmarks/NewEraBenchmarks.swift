import Benchmark
import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import InfusionCore

// Status round trips of the New Era driver (`NewEraPump`, safe mode) against the simulated New Era
// pump hosted on the master side of a real pseudo-terminal, the driver on its slave side — as in the
// driver-against-simulator tests. "Paced": the simulated pump emits its replies at 19200 baud
// (10 bits per byte, as on the real line); the driver's commands are not paced (a pty ignores the
// baud rate). "Unpaced": the simulated pump writes each reply at once, so the figure is the software
// and pty overhead alone.
//   status snapshot = status query + DIS + RAT (three exchanges, what `status()` does)
//   identify        = VER (one exchange)

/// A simulated pump on a pty and a driver on its slave.
final class Rig: Sendable {
    let pump: NewEraPump
    let simulator: EndpointHost<NewEraSimulatedPump>

    init(bitsPerSecond: Int?) throws {
        let clock = SystemMonotonicClock()
        let pty = try PseudoTerminal()
        simulator = EndpointHost(
            endpoint: NewEraSimulatedPump(configuration: .init(bitsPerSecond: bitsPerSecond)), name: "sim", clock: clock,
            linkUpOnOpen: false,
            open: { () throws(DeviceIOError) -> any ByteLink in DescriptorLink(pseudoTerminal: pty, clock: clock) },
            onOutput: { _ in })
        simulator.start()
        pump = NewEraPump(path: pty.slavePath, configuration: .init(safeModeTimeoutSeconds: 5), clock: clock)
    }
}

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock],
        warmupIterations: 5,
        maxDuration: .seconds(5),
        maxIterations: 2_000
    )
    guard let paced = try? Rig(bitsPerSecond: 19200), let unpaced = try? Rig(bitsPerSecond: nil) else {
        print("cannot create the pseudo-terminals to benchmark")
        return
    }

    Benchmark("status snapshot over a pty, 19200-baud pacing", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(await paced.pump.status().value)
        }
    }

    Benchmark("status snapshot over a pty, no pacing", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(await unpaced.pump.status().value)
        }
    }

    Benchmark("identify (one exchange) over a pty, 19200-baud pacing", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(await paced.pump.identify().value)
        }
    }

    Benchmark("identify (one exchange) over a pty, no pacing", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(await unpaced.pump.identify().value)
        }
    }
}
