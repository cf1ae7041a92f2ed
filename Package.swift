// swift-tools-version: 6.1
//
// InfusionControl: an open infusion-pump controller for IV ketamine infusions.
// Dependencies point down only (../shared/DESIGN.md):
//   infusionctl -> (Session, Calibration) -> (Supervisor, Drivers, Records) -> (DeviceProtocols, DeviceIO) -> InfusionCore
// The simulators depend on DeviceProtocols, DeviceIO and InfusionCore, never on Drivers.
//
// Layout of this file: one block per subsystem (target, its test target, its product), so that
// parallel work adds blocks instead of editing shared lists.
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),  // complete strict concurrency checking
]

let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let propertyBased: Target.Dependency = .product(name: "PropertyBased", package: "swift-property-based")
let toml: Target.Dependency = .product(name: "TOMLKit", package: "TOMLKit")

var products: [Product] = []
var targets: [Target] = []

// MARK: System-library shims. Debian: apt-get install libudev-dev libusb-1.0-0-dev libssl-dev pkg-config
targets += [
    .systemLibrary(name: "CUdev", pkgConfig: "libudev", providers: [.apt(["libudev-dev"])]),
    .systemLibrary(name: "CLibUSB", pkgConfig: "libusb-1.0", providers: [.apt(["libusb-1.0-0-dev"])]),
    // OpenSSL libcrypto for SHA-256 (the drug library checksum); the system copy, so that a first build
    // does not compile a bundled BoringSSL.
    .systemLibrary(name: "CLibCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
    .testTarget(name: "SystemLibrariesTests", dependencies: ["CUdev", "CLibUSB"], swiftSettings: strict),
]

// MARK: InfusionCore: pure domain (units, drug library, program validation, device values, clock seam).
products += [.library(name: "InfusionCore", targets: ["InfusionCore"])]
targets += [
    .target(
        name: "InfusionCore",
        dependencies: ["CLibCrypto", toml],
        swiftSettings: strict),
    .testTarget(name: "InfusionCoreTests", dependencies: ["InfusionCore", propertyBased], swiftSettings: strict),
]

// MARK: DeviceProtocols: pure wire-protocol codecs, one folder per device family.
products += [.library(name: "DeviceProtocols", targets: ["DeviceProtocols"])]
targets += [
    .target(name: "DeviceProtocols", dependencies: ["InfusionCore"], swiftSettings: strict),
    .testTarget(name: "DeviceProtocolsTests", dependencies: ["DeviceProtocols", propertyBased], swiftSettings: strict),
]

// MARK: DeviceIO: the syscall layer (serial ports, ptys, links, udev discovery, libusb). Knows bytes, not devices.
// CDeviceIOSupport wraps the few glibc calls Swift's Glibc module does not import (posix_openpt, pipe2…).
products += [.library(name: "DeviceIO", targets: ["DeviceIO"])]
targets += [
    .target(name: "CDeviceIOSupport"),
    .target(
        name: "DeviceIO",
        dependencies: [
            "InfusionCore", "CUdev", "CLibUSB", "CDeviceIOSupport", "CRealTime", logging,
            .product(name: "HeapModule", package: "swift-collections"),
        ],
        swiftSettings: strict),
    .testTarget(name: "DeviceIOTests", dependencies: ["DeviceIO"], swiftSettings: strict),
]

// MARK: Drivers: one driver per device family = codec + link + session rules, behind the pump and
// oximeter interfaces.
products += [.library(name: "Drivers", targets: ["Drivers"])]
targets += [
    .target(name: "Drivers", dependencies: ["InfusionCore", "DeviceProtocols", "DeviceIO", logging], swiftSettings: strict),
    .testTarget(name: "DriversTests", dependencies: ["Drivers", "DeviceSimulators", "DeviceIO", propertyBased], swiftSettings: strict),
]

// MARK: DeviceSimulators: simulated devices and the virtual patient (Simulator/README.md).
products += [.library(name: "DeviceSimulators", targets: ["DeviceSimulators"])]
targets += [
    .target(
        name: "DeviceSimulators",
        dependencies: ["InfusionCore", "DeviceProtocols", "DeviceIO", toml, logging],
        path: "Simulator/Sources/DeviceSimulators",
        swiftSettings: strict),
    .testTarget(name: "DeviceSimulatorsTests", dependencies: ["DeviceSimulators", "DeviceIO"], swiftSettings: strict),
]

// MARK: infusion-sim: hosts simulated devices on pseudo-terminals for manual or scripted use.
products += [.executable(name: "infusion-sim", targets: ["infusion-sim"])]
targets += [
    .executableTarget(
        name: "infusion-sim",
        dependencies: [
            "DeviceSimulators", "InfusionCore", logging,
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ],
        path: "Simulator/Sources/infusion-sim",
        swiftSettings: strict),
]

// MARK: Supervisor: the safety supervisor (pure rule engine, alarm manager) and its real-time runner.
// CRealTime wraps eventfd, timerfd and CPU affinity, which Swift's Glibc module does not export (DeviceIO uses its affinity calls too).
products += [.library(name: "Supervisor", targets: ["Supervisor"])]
targets += [
    .target(name: "CRealTime"),
    .target(name: "Supervisor", dependencies: ["InfusionCore", "CRealTime", logging], swiftSettings: strict),
    .testTarget(name: "SupervisorTests", dependencies: ["Supervisor", "InfusionCore", propertyBased], swiftSettings: strict),
]

// MARK: Session: wires one supervisor channel to its pump and oximeter drivers (stop path, command drain).
products += [.library(name: "Session", targets: ["Session"])]
targets += [
    .target(
        name: "Session",
        dependencies: ["InfusionCore", "Drivers", "Supervisor", "Records", "DeviceIO", logging],
        swiftSettings: strict),
    .testTarget(
        name: "SessionTests",
        dependencies: ["Session", "Supervisor", "Drivers", "DeviceSimulators", "DeviceIO", "InfusionCore", "Records"],
        swiftSettings: strict),
]

// MARK: SessionSimulation: the whole system in virtual time (simulated devices and patient, the real drivers'
// session endpoints and the real supervisor rule engine on one virtual clock) for scenario tests and the
// 4-hour benchmark. Not linked by infusionctl's production path; it may depend on the simulators.
products += [.library(name: "SessionSimulation", targets: ["SessionSimulation"])]
targets += [
    .target(
        name: "SessionSimulation",
        dependencies: ["InfusionCore", "DeviceProtocols", "DeviceIO", "Drivers", "Supervisor", "Records", "DeviceSimulators", logging],
        swiftSettings: strict),
    .testTarget(
        name: "SessionSimulationTests",
        dependencies: ["SessionSimulation", "Supervisor", "Records", "DeviceSimulators", "InfusionCore"],
        swiftSettings: strict),
]

// MARK: Records: the durable session record (SQLite through GRDB, WAL, synchronous=FULL) and reports.
// Debian: apt-get install libsqlite3-dev
products += [.library(name: "Records", targets: ["Records"])]
targets += [
    .target(
        name: "Records",
        dependencies: ["InfusionCore", .product(name: "GRDB", package: "GRDB.swift"), logging],
        swiftSettings: strict),
    // Test helper, not a product: appends events and prints each acknowledged sequence number, so
    // RecordsTests can SIGKILL it at random moments (the crash test).
    .executableTarget(
        name: "records-crash-writer",
        dependencies: ["Records", "InfusionCore"],
        path: "Tests/RecordsCrashWriter",
        swiftSettings: strict),
    .testTarget(
        name: "RecordsTests",
        dependencies: [
            "Records", "InfusionCore", "records-crash-writer", "infusionctl", "CommandLineTestSupport",
            .product(name: "GRDB", package: "GRDB.swift"),
        ],
        swiftSettings: strict),
]

// MARK: Calibration: technician workflows (trumpet curves, oximeter A_rms), records and reports.
products += [.library(name: "Calibration", targets: ["Calibration"])]
targets += [
    .target(name: "Calibration", dependencies: ["InfusionCore", "DeviceProtocols", logging, toml, "Drivers", "Records"], swiftSettings: strict),
    .testTarget(
        name: "CalibrationTests",
        dependencies: ["Calibration", "InfusionCore", "DeviceProtocols", "Drivers", "DeviceSimulators", "DeviceIO", "Records"],
        swiftSettings: strict),
]

// MARK: infusionctl: the command-line tool; parses, calls, prints. Nothing depends on it.
products += [.executable(name: "infusionctl", targets: ["infusionctl"])]
targets += [
    .executableTarget(
        name: "infusionctl",
        dependencies: [
            "InfusionCore", "DeviceProtocols", "DeviceIO", "Drivers", "Records", "Calibration", toml, logging,
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            "Session", "Supervisor",
            "DeviceSimulators",  // `infusionctl demo` hosts the simulated devices
        ],
        resources: [.copy("Resources/default-library.toml"), .copy("Resources/demo")],
        swiftSettings: strict),
    .testTarget(
        name: "infusionctlTests",
        dependencies: ["infusionctl", "CommandLineTestSupport",
                       "DeviceSimulators", "DeviceIO", "InfusionCore", "Records"],  // `run` against simulators on ptys
        swiftSettings: strict),
]

// MARK: CommandLineTestSupport: finds and runs the executables SwiftPM built, for the test targets that drive
// them (infusionctlTests, RecordsTests). Test code only: no product, nothing in Sources/ depends on it.
targets += [
    .target(name: "CommandLineTestSupport", path: "Tests/CommandLineTestSupport", swiftSettings: strict),
]

let package = Package(
    name: "InfusionControl",
    platforms: [.macOS(.v15)],
    products: products,
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
    ],
    targets: targets
)
