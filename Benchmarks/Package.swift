// swift-tools-version: 6.1
//
// Benchmarks for the performance budgets of ../../shared/DESIGN.md ("Performance budgets"), kept out of
// the root package so that `make test` never builds the benchmark tooling. Results are recorded in
// ../README.md ("Benchmarks"). Run: `make bench`, or
//   cd Benchmarks && swift package --allow-writing-to-package-directory benchmark [--target NAME]
//   swift package benchmark thresholds check        # assert the static thresholds (zero allocations)
//
// One block per suite, so that parallel work adds blocks instead of editing shared lists.
import PackageDescription

let benchmark: Target.Dependency = .product(name: "Benchmark", package: "benchmark")
func product(_ name: String) -> Target.Dependency { .product(name: name, package: "InfusionControl") }

func suite(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(
        name: name,
        dependencies: [benchmark] + dependencies,
        path: "Benchmarks/\(name)",
        swiftSettings: [.swiftLanguageMode(.v6)],
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")])
}

var targets: [Target] = []

// Byte-delivery latency through links (DeviceIO).
targets += [suite("DeviceIOBenchmarks", [product("DeviceIO"), product("InfusionCore")])]

// Safety supervisor: step cost (1 and 16 channels, zero allocations asserted by the static threshold in
// Thresholds/) and the real-time runner's period jitter at 10 ms.
targets += [suite("SupervisorBenchmarks", [product("Supervisor"), product("InfusionCore")])]

// New Era driver: status round trips against the simulated pump over a pty, with and without 19200-baud pacing.
targets += [suite("NewEraBenchmarks", [product("Drivers"), product("DeviceSimulators"), product("DeviceProtocols"),
                                       product("DeviceIO"), product("InfusionCore")])]
// Oximeter parse throughput per format (frames/s on one core): codec stream decoders and driver sessions.
targets += [suite("OximeterParseBenchmarks", [product("DeviceProtocols"), product("Drivers"), product("DeviceIO"), product("InfusionCore")])]
// Session: decision-to-wire latency over ptys (stop-worthy oximeter frame in -> stop frame written), 1 and 16 channels.
targets += [suite("DecisionToWireBenchmarks", [product("Session"), product("Supervisor"), product("Drivers"), product("DeviceSimulators"), product("DeviceProtocols"),
                                               product("DeviceIO"), product("InfusionCore")])]
// Virtual time: a whole 4-hour session (simulated pump, 75 Hz oximeter and patient, real driver endpoints and
// supervisor) on one virtual clock; budget < 5 s of wall time, asserted in the benchmark.
targets += [suite("VirtualSessionBenchmarks", [product("SessionSimulation"), product("Supervisor"), product("DeviceSimulators"),
                                               product("InfusionCore")])]

let package = Package(
    name: "InfusionControlBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named explicitly: a path dependency's identity would otherwise be the checkout's directory name.
        .package(name: "InfusionControl", path: ".."),
        // The malloc interposer trait gives the allocation metrics; naming it turns off the package's
        // other default trait (a runtime interposer that is not needed here).
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.29.0", traits: ["MallocInterposer"]),
    ],
    targets: targets
)
