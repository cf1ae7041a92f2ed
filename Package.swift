// swift-tools-version: 6.1
//
// InfusionControl: an open infusion-pump controller for IV ketamine infusions.
// Layout and dependency direction are described in ../shared/DESIGN.md and README.md:
//   infusionctl -> (Session, Calibration) -> (Supervisor, Drivers, Records) -> (DeviceProtocols, DeviceIO) -> InfusionCore
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),  // complete strict concurrency checking
]

let package = Package(
    name: "InfusionControl",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "infusionctl", targets: ["infusionctl"]),
        .library(name: "InfusionCore", targets: ["InfusionCore"]),
        .library(name: "DeviceProtocols", targets: ["DeviceProtocols"]),
        .library(name: "Supervisor", targets: ["Supervisor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
    ],
    targets: [
        // System-library shims. Debian: apt-get install libudev-dev libusb-1.0-0-dev pkg-config
        .systemLibrary(
            name: "CUdev",
            pkgConfig: "libudev",
            providers: [.apt(["libudev-dev"])]
        ),
        .systemLibrary(
            name: "CLibUSB",
            pkgConfig: "libusb-1.0",
            providers: [.apt(["libusb-1.0-0-dev"])]
        ),

        // Pure domain: units, drug library, program validation, clock seam.
        .target(
            name: "InfusionCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: strict
        ),

        // Pure wire-protocol codecs, one folder per device family; shared by drivers and simulators.
        .target(
            name: "DeviceProtocols",
            dependencies: ["InfusionCore"],
            swiftSettings: strict
        ),

        // eventfd/timerfd wrappers for the supervisor's real-time runner (not exported by Swift's Glibc).
        .target(name: "CRealTime"),

        // The safety supervisor: pure rule engine and alarm manager, and its real-time runner.
        .target(
            name: "Supervisor",
            dependencies: [
                "InfusionCore",
                "CRealTime",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // The command-line tool: parses, calls, prints. Nothing depends on it.
        .executableTarget(
            name: "infusionctl",
            dependencies: [
                "InfusionCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Resources/default-library.toml")],
            swiftSettings: strict
        ),

        .testTarget(
            name: "InfusionCoreTests",
            dependencies: [
                "InfusionCore",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DeviceProtocolsTests",
            dependencies: ["DeviceProtocols"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SupervisorTests",
            dependencies: [
                "Supervisor",
                "InfusionCore",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SystemLibrariesTests",
            dependencies: ["CUdev", "CLibUSB"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "infusionctlTests",
            dependencies: ["infusionctl"],
            swiftSettings: strict
        ),
    ]
)
