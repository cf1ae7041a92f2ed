// swift-tools-version: 6.1
//
// Benchmarks for the performance budgets of DESIGN.md, kept out of the root package so that
// `make test` never builds them. Run: `make bench`, or
//   cd Benchmarks && swift package --allow-writing-to-package-directory benchmark
import PackageDescription

let package = Package(
    name: "InfusionControlBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "InfusionControl", path: ".."),
        // The malloc interposer trait gives the allocation metrics; naming it turns off the
        // package's other default trait (a runtime interposer that is not needed here).
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.29.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        // Byte-delivery latency through links (DeviceIO).
        .executableTarget(
            name: "DeviceIOBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "DeviceIO", package: "InfusionControl"),
                .product(name: "InfusionCore", package: "InfusionControl"),
            ],
            path: "Benchmarks/DeviceIOBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // New Era driver: status round trips against the simulated pump over a pty.
        .executableTarget(
            name: "NewEraBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Drivers", package: "InfusionControl"),
                .product(name: "DeviceSimulators", package: "InfusionControl"),
                .product(name: "DeviceProtocols", package: "InfusionControl"),
                .product(name: "DeviceIO", package: "InfusionControl"),
                .product(name: "InfusionCore", package: "InfusionControl"),
            ],
            path: "Benchmarks/NewEraBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
