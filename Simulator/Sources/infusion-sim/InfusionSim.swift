import ArgumentParser
import DeviceSimulators
import Foundation
import InfusionCore
import Logging

/// `infusion-sim`: starts simulated devices on pseudo-terminals, for manual or scripted use with the real
/// drivers (`infusionctl pump …`, `infusionctl oximeter watch …`, `infusionctl run …`).
@main
struct InfusionSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infusion-sim",
        abstract: "Run simulated pumps, oximeters and balances on pseudo-terminals.",
        discussion: """
            Prints one line per device, "pump0 newera /dev/pts/N", then serves until interrupted (Ctrl-C).
            Devices started together share one simulated world: what the pumps deliver reaches the virtual
            patient, whom the oximeters measure and whose infusion the balances weigh.

            Faults are typed on standard input, one per line:
              <device> unplug [DURATION]     hang up the pty, remove its --link (back after DURATION or on replug)
              <device> replug                plug back in (a new pty; the --link symlink follows it)
              <device> <fault> [ARGS]        a device fault, e.g. "pump0 stall", "oximeter0 probe-off 30s"
              status                         list devices and the patient's vital signs
              help                           list every device's faults
              quit                           stop everything
            """
    )

    @Option(name: .customLong("pump"), help: ArgumentHelp("A simulated pump: KIND[:PARAMETER] (see --list). Repeatable.", valueName: "KIND"))
    var pumps: [String] = []

    @Option(name: .customLong("oximeter"), help: ArgumentHelp("A simulated oximeter: KIND (see --list). Repeatable.", valueName: "KIND"))
    var oximeters: [String] = []

    @Option(name: .customLong("balance"), help: ArgumentHelp("A simulated balance: KIND (see --list). Repeatable.", valueName: "KIND"))
    var balances: [String] = []

    @Option(help: ArgumentHelp("Make DIR/<device> a symlink to each device's pty (stable across replugs).", valueName: "DIR"))
    var link: String?

    @Option(help: ArgumentHelp("A scenario file (patient and scripted events; Simulator/Scenarios/).", valueName: "FILE"))
    var scenario: String?

    @Option(help: ArgumentHelp("Drug concentration in the simulated syringes.", valueName: "Q"))
    var concentration: String = "1 mg/mL"

    @Option(help: ArgumentHelp("Run the simulated world this many times faster than real time.", valueName: "N"))
    var speed: Double = 1

    @Flag(help: "List the device kinds and their faults, then exit.")
    var list = false

    mutating func validate() throws {
        if !list, pumps.isEmpty, oximeters.isEmpty, balances.isEmpty {
            throw ValidationError("no devices: add at least one --pump, --oximeter or --balance (see --list)")
        }
        guard speed.isFinite, speed > 0 else { throw ValidationError("--speed must be a positive number") }
    }

    func run() throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["INFUSIONCONTROL_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
            return handler
        }
        if list {
            printKinds()
            return
        }
        let concentrationValue: Concentration
        do { concentrationValue = try Concentration.parse(concentration) } catch { throw ValidationError("--concentration: \(error)") }
        let patient: VirtualPatient
        if let scenario {
            do {
                patient = try VirtualPatient(scenario: Scenario.load(contentsOfFile: scenario))
            } catch {
                throw ValidationError("--scenario \(scenario): \(error)")
            }
        } else {
            // A default patient when no scenario is given: 70 kg, SpO2 97 %, pulse 72 bpm.
            patient = try VirtualPatient(profile: PatientProfile(weight: .kilograms(70), baselineSpO2: .percent(97), baselinePulseRate: .beatsPerMinute(72)))
        }
        if let link {
            try FileManager.default.createDirectory(atPath: link, withIntermediateDirectories: true)
        }
        let clock: any MonotonicClock = speed == 1 ? SystemMonotonicClock() : ScaledClock(speed: speed)
        let world = SimulatedWorld(model: WorldModel(patient: patient, concentration: concentrationValue), clock: clock)
        let printer = LinePrinter()
        for (role, specs) in [(SimulatedRole.pump, pumps), (.oximeter, oximeters), (.balance, balances)] {
            for (index, spec) in specs.enumerated() {
                let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
                guard let entry = DeviceRegistry.entry(kind: parts[0], role: role) else {
                    throw ValidationError("unknown \(role.rawValue) kind \"\(parts[0])\": choose one of \(DeviceRegistry.kinds(of: role))")
                }
                let name = "\(role.rawValue)\(index)"
                let kind = entry.kind
                let linkDirectory = link
                let setup = HostedDeviceSetup(name: name, clock: clock, linkDirectory: link) { path in
                    let shown = linkDirectory.map { "\(path) (link \(($0 as NSString).appendingPathComponent(name)))" } ?? path
                    printer.line("\(name) \(kind) \(shown)")
                }
                do {
                    world.add(try entry.makeHosted(parts.count > 1 ? parts[1] : nil, setup))
                } catch {
                    throw ValidationError("--\(role.rawValue) \(spec): \(error)")
                }
            }
        }
        world.start()
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let stop = DispatchSemaphore(value: 0)
        let signals = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            return source
        }
        let commands = Thread {
            while let line = readLine() {
                if CommandLoop.handle(line, world: world, printer: printer) == .quit { stop.signal(); return }
            }
        }
        commands.start()
        stop.wait()
        signals.forEach { $0.cancel() }
        world.stop()
    }

    func printKinds() {
        for role in SimulatedRole.allCases {
            print("--\(role.rawValue):")
            for entry in DeviceRegistry.entries where entry.role == role {
                let parameter = entry.parameterHelp.map { "[:\($0)]" } ?? ""
                print("  \(entry.kind)\(parameter)  \(entry.summary)")
                for fault in entry.faultHelp { print("      \(fault)") }
            }
        }
    }
}

/// Serialises output lines from the device threads and the command loop.
final class LinePrinter: @unchecked Sendable {
    private let lock = NSLock()
    func line(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}

/// The standard-input command language.
enum CommandLoop {
    enum Outcome { case `continue`, quit }

    static func handle(_ line: String, world: SimulatedWorld, printer: LinePrinter) -> Outcome {
        let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
        guard let first = words.first else { return .continue }
        switch first {
        case "quit", "exit":
            return .quit
        case "status":
            let o = world.latestObservation
            for device in world.devices {
                printer.line("\(device.name) \(device.kind) \(device.devicePath ?? "(unplugged)")")
            }
            printer.line("patient: SpO2 \(o.spo2), pulse \(o.pulseRate), plasma \(NumberText.format(o.plasmaConcentration.milligramsPerMillilitre * 1_000_000, fractionDigits: 1)) ng/mL")
            return .continue
        case "help":
            printer.line("<device> unplug [DURATION] | <device> replug | <device> <fault> [ARGS] | status | quit")
            for device in world.devices {
                let faults = DeviceRegistry.entry(kind: device.kind, role: device.role)?.faultHelp ?? []
                printer.line("\(device.name) (\(device.kind)): " + (faults.isEmpty ? "no device faults" : ""))
                for fault in faults { printer.line("    \(fault)") }
            }
            return .continue
        default:
            break
        }
        guard let device = world.device(named: first) else {
            printer.line("error: no device \"\(first)\": devices are \(world.devices.map(\.name).joined(separator: ", "))")
            return .continue
        }
        guard words.count >= 2 else {
            printer.line("error: what should \(first) do? (type help)")
            return .continue
        }
        let fault = FaultCommand(name: words[1].lowercased(), arguments: Array(words.dropFirst(2)))
        switch fault.name {
        case "unplug":
            if !fault.arguments.isEmpty, fault.duration == nil {
                printer.line("error: \"\(fault.arguments[0])\" is not a duration (try 10s)")
                return .continue
            }
            device.unplug(for: fault.duration)
            printer.line("\(device.name) unplugged" + (fault.duration.map { " for \($0.humanReadable)" } ?? ""))
        case "replug":
            device.replug()
            printer.line("\(device.name) replugged")
        default:
            switch device.inject(fault) {
            case let .success(message): printer.line("\(device.name): \(message)")
            case let .failure(error): printer.line("error: \(device.name): \(error)")
            }
        }
        return .continue
    }
}
