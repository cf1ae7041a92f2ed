// swift-tools-version: 6.1
//
// InfusionControl benchmarks (ordo-one/benchmark), kept out of the main package so that building and
// testing the product never builds the benchmark tooling. The budgets are in ../../shared/DESIGN.md
// ("Performance budgets"); results are recorded in ../README.md ("Benchmarks").
//
//   cd Benchmarks && swift package benchmark                       # run everything
//   swift package benchmark thresholds check                       # assert the static thresholds
import Foundation
import PackageDescription

// A path dependency's identity is the last component of its path (the checkout's directory name),
// which differs between clones; work it out so `.product(package:)` names the root package anywhere.
let root = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "InfusionControlBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.29.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        // Safety supervisor: step cost (1 and 16 channels, zero allocations asserted by the static
        // threshold in Thresholds/) and the real-time runner's period jitter at 10 ms.
        .executableTarget(
            name: "SupervisorBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Supervisor", package: root),
                .product(name: "InfusionCore", package: root),
            ],
            path: "Benchmarks/SupervisorBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
