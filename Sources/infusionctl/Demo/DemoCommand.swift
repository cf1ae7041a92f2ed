import ArgumentParser
import DeviceSimulators
import Foundation
import InfusionCore
import Records

/// `infusionctl demo`: plays a whole ketamine session on simulated hardware. The simulated pump,
/// oximeter and virtual patient run in this process on pseudo-terminals; the real controller
/// (`infusionctl run`) runs as a child process over them, at the same speed.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Play a simulated ketamine session: simulated devices, the real controller, a report.",
        discussion: """
            The simulated New Era pump, the simulated oximeter and the virtual patient run in this process \
            on pseudo-terminals. The real controller, `infusionctl run --json-events`, runs as a child \
            process over them with the real drivers, supervisor and record store, N times faster than real \
            time. The demo shows its live status, plays the scenario's operator commands and device faults, \
            and ends with a summary and an HTML report of the session (the same as `infusionctl report`).

            Scenarios: `infusionctl demo --list`; the files are documented in Simulator/README.md \
            ("Demo scenarios"). Output goes to --out (default ./demo-output/<scenario>/): the record \
            database, the report, and the controller's events and log of each run.

            Exit codes: 0 the scenario reached its expected outcome; 1 it did not, or the demo could not \
            run; 64 usage error (including a scenario file that does not load).
            """)

    @Option(help: ArgumentHelp("A shipped scenario's name (see --list) or a demo scenario file.", valueName: "NAME|FILE"))
    var scenario: String = DemoCatalog.defaultName

    @Option(help: ArgumentHelp("Times real time (default: the scenario's speed). Simulated devices and controller run alike.", valueName: "N"))
    var speed: Double?

    @Flag(help: "List the shipped scenarios, then exit.")
    var list = false

    @Option(help: ArgumentHelp("Where to write the database, report and logs. Default: ./demo-output/<scenario>/", valueName: "DIR"))
    var out: String?

    mutating func validate() throws {
        if let speed, !(speed.isFinite && speed >= 1 && speed <= 1000) {
            throw ValidationError("--speed must be a number from 1 to 1000 (times real time)")
        }
    }

    func run() throws {
        if list {
            try printList()
            return
        }
        let loaded: DemoScenario
        do {
            loaded = try DemoCatalog.load(scenario)
        } catch let error as DemoCatalog.NotFound {
            Output.error(error.description)
            throw ExitCode.validationFailure
        } catch {
            Output.error("\(error)")
            throw ExitCode.validationFailure
        }
        let directory = out ?? "demo-output/\(loaded.name)"
        let player = DemoPlayer(scenario: loaded, speed: speed ?? loaded.speed, outputDirectory: directory)
        let succeeded: Bool
        do {
            succeeded = try player.play()
        } catch {
            Output.error("\(error)")
            throw ExitCode.failure
        }
        if !succeeded { throw ExitCode.failure }
    }

    private func printList() throws {
        Output.line("Shipped demo scenarios (infusionctl demo --scenario NAME):")
        for name in DemoCatalog.shippedNames {
            do {
                let scenario = try DemoCatalog.load(name)
                let mark = name == DemoCatalog.defaultName ? " (default)" : ""
                Output.line("  \(name.padding(toLength: 18, withPad: " ", startingAt: 0)) \(scenario.description)\(mark)")
            } catch {
                Output.error("\(error)")
                throw ExitCode.failure
            }
        }
    }
}

/// The shipped demo scenarios (resources of `infusionctl`, `Sources/infusionctl/Resources/demo/`).
enum DemoCatalog {
    /// The scenario `make demo` plays.
    static let defaultName = "uneventful"
    /// In `--list` order.
    static let shippedNames = ["uneventful", "desaturation", "probe-off", "occlusion", "controller-killed"]

    /// A scenario name that is neither shipped nor a file.
    struct NotFound: Error, CustomStringConvertible {
        var description: String
    }

    /// The folder holding the shipped scenario files, or nil when the installation lacks it.
    static var directory: String? {
        Bundle.module.url(forResource: "demo", withExtension: nil)?.path
    }

    /// Loads a shipped scenario by name, or a file by path.
    static func load(_ nameOrPath: String) throws -> DemoScenario {
        if shippedNames.contains(nameOrPath) {
            guard let directory else {
                throw NotFound(description: "the shipped demo scenarios are missing from this installation: rebuild infusionctl, or pass --scenario FILE")
            }
            return try DemoScenario.load(contentsOfFile: (directory as NSString).appendingPathComponent("\(nameOrPath).toml"))
        }
        guard FileManager.default.fileExists(atPath: nameOrPath) else {
            throw NotFound(description: "no demo scenario \"\(nameOrPath)\": give one of \(shippedNames.joined(separator: ", ")) (see --list) or the path of a demo scenario file")
        }
        return try DemoScenario.load(contentsOfFile: nameOrPath)
    }
}
