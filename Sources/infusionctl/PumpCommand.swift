import ArgumentParser
import DeviceIO
import DeviceProtocols
import Drivers
import Foundation
import InfusionCore

/// `infusionctl pump identify|status|start|stop --device PATH --protocol newera …`: the technician's
/// direct line to one pump, through the same driver a session uses.
struct PumpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pump",
        abstract: "Talk to one pump directly: identify it, read its status, start or stop it.",
        discussion: """
            Every command confirms what the pump reports back; a command the pump did not acknowledge is
            reported as uncertain (exit 1), never as done. New Era pumps are put in safe mode by default
            (--safe-mode 5): they stop themselves 5 s after this program goes quiet, so a pump started with
            `pump start` stops soon after the command exits unless --safe-mode 0 is given.
            """,
        subcommands: [PumpIdentifyCommand.self, PumpStatusCommand.self, PumpStartCommand.self, PumpStopCommand.self]
    )
}

/// The pump protocols `--protocol` accepts (every family `makePump` knows).
enum PumpProtocolName: String, ExpressibleByArgument, CaseIterable, Sendable {
    case newera, alaris, fresenius
}

/// Where the pump is and how to talk to it (shared by every `pump` subcommand).
struct PumpConnection: ParsableArguments {
    @Option(help: "The pump's serial device (/dev/infusion/pump0, /dev/ttyUSB0, a pty).")
    var device: String

    @Option(name: .customLong("protocol"), help: "The pump's protocol: \(PumpProtocolName.allCases.map(\.rawValue).joined(separator: ", ")).")
    var protocolName: PumpProtocolName

    @Option(help: "The pump's network address (New Era: 0-99; Fresenius: the rack module, 1-5).")
    var address: Int?

    @Option(help: "Baud rate (New Era: 300, 1200, 2400, 9600 or 19200; factory 19200).")
    var baud: Int?

    @Option(name: .customLong("safe-mode"), help: "New Era safe-mode watchdog time-out in whole seconds (1-255), 0 for basic mode.")
    var safeMode: Int = 5

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func validate() throws {
        switch protocolName {
        case .newera:
            guard NewEra.Address(address ?? 0) != nil else { throw ValidationError("--address must be 0 to 99 for a New Era pump") }
            guard (0...255).contains(safeMode) else { throw ValidationError("--safe-mode must be 0 (basic mode) to 255 seconds") }
        case .fresenius:
            guard (1...5).contains(address ?? 1) else { throw ValidationError("--address is the rack module for a Fresenius pump: 1 to 5") }
        case .alaris:
            guard address == nil else { throw ValidationError("--address does not apply to an Alaris pump") }
        }
        if let baud {
            do throws(DeviceIOError) { _ = try BaudRate(bitsPerSecond: baud) } catch { throw ValidationError(error.description) }
        }
    }

    /// Opens the port once to report busy/permission/not-found problems clearly, then starts the driver.
    func open() throws -> any InfusionPump {
        var options = PumpFactoryOptions(name: "pump \(device)")
        switch protocolName {
        case .newera:
            let rate = (try? BaudRate(bitsPerSecond: baud ?? 19200)) ?? .b19200
            try preflight(SerialSettings(baudRate: rate))
            options.baudRate = rate
            options.newEra = NewEraSession.Configuration(
                address: NewEra.Address(address ?? 0) ?? .zero, safeModeTimeoutSeconds: UInt8(clamping: safeMode))
        case .alaris:
            try preflight(.alaris38400)
        case .fresenius:
            try preflight(.fresenius19200)
            options.module = address ?? 1
        }
        do throws(PumpFactoryError) {
            return try makePump(protocol: protocolName.rawValue, device: device, options: options)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// Opens the driver and waits (up to 2 s) until it reports its link connected, so the first command
    /// is not lost to a driver still opening the port. A pump that never connects is left to the
    /// command, which then reports its own uncertain outcome.
    func openConnected() async throws -> any InfusionPump {
        let pump = try open()
        let events = pump.events
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in events {
                    if case .connection(.connected, _) = event { return }
                }
            }
            group.addTask { try? await Task.sleep(for: .seconds(2)) }
            await group.next()
            group.cancelAll()
        }
        return pump
    }

    private func preflight(_ settings: SerialSettings) throws {
        do throws(DeviceIOError) {
            let port = try SerialPort(path: device, settings: settings)
            port.close()
        } catch {
            Output.error(error.description)
            throw ExitCode.failure
        }
    }

    /// What to add to an "uncertain" message.
    var noReplyHint: String {
        "no confirmed answer from the pump on \(device) (\(protocolName.rawValue)\(address.map { ", address \($0)" } ?? ""), \(baud.map { "\($0) baud" } ?? "default baud")): "
            + "check the cable, that the pump is on, and its baud rate and address"
    }

    /// The value of a confirmed outcome; prints the refusal or uncertainty and exits 1 otherwise.
    func require<T>(_ outcome: PumpCommandOutcome<T>, doing what: String) throws -> T {
        switch outcome {
        case .confirmed(let value):
            return value
        case .refused(let refusal):
            Output.error("\(what): the pump refused (\(refusal.code)): \(refusal.description)")
        case .uncertain(let reason):
            Output.error("\(what): uncertain, may or may not have taken effect: \(reason)\n  \(noReplyHint)")
        }
        throw ExitCode.failure
    }
}

/// A status as printed (`--json`).
private struct PumpStatusRecord: Codable {
    var state: String
    var rateMillilitresPerHour: Double?
    var volumeInfusedMillilitres: Double?
    var alarms: [String]
    var alarmPriority: String?

    init(_ status: PumpStatus) {
        state = status.state.description
        rateMillilitresPerHour = status.rate?.value(in: .millilitresPerHour)
        volumeInfusedMillilitres = status.volumeInfused?.value(in: .millilitres)
        alarms = status.alarms.names
        alarmPriority = status.alarms.highestPriority?.description
    }

    var text: String {
        var lines = ["state: \(state)"]
        if let rateMillilitresPerHour { lines.append("rate: \(NumberTextCLI.format(rateMillilitresPerHour)) mL/h") }
        if let volumeInfusedMillilitres { lines.append("volume infused: \(NumberTextCLI.format(volumeInfusedMillilitres)) mL") }
        lines.append("alarms: " + (alarms.isEmpty ? "none" : alarms.joined(separator: ", ") + " (\(alarmPriority ?? "") priority)"))
        return lines.joined(separator: "\n")
    }
}

/// Number printing for pump values: up to 4 decimals, trailing zeros removed.
enum NumberTextCLI {
    static func format(_ value: Double) -> String {
        var text = String(format: "%.4f", value)
        while text.contains("."), text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}

struct PumpIdentifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "identify", abstract: "Print the pump's model and firmware.")
    @OptionGroup var connection: PumpConnection

    func run() async throws {
        let pump = try await connection.openConnected()
        defer { pump.close() }
        let identity = try connection.require(await pump.identify(), doing: "identify")
        if connection.json {
            Output.line(Output.json(identity))
        } else {
            Output.line("\(identity.family) \(identity.model), firmware \(identity.firmware)"
                + (identity.serialNumber.map { ", serial \($0)" } ?? ""))
        }
    }
}

struct PumpStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Print the pump's state, rate, volume infused and alarms.")
    @OptionGroup var connection: PumpConnection

    func run() async throws {
        let pump = try await connection.openConnected()
        defer { pump.close() }
        let status = try connection.require(await pump.status(), doing: "status")
        let record = PumpStatusRecord(status)
        Output.line(connection.json ? Output.json(record) : record.text)
    }
}

struct PumpStartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Optionally set the syringe, rate and volume, then start infusing.")
    @OptionGroup var connection: PumpConnection

    @Option(help: "Rate with its unit: \"1.5 mL/h\", \"25 µL/min\". Rounded toward less; the rate actually set is printed.")
    var rate: String?

    @Option(help: "Syringe inside diameter in mm.")
    var diameter: Double?

    @Option(help: "A syringe from the catalogue (\"BD Plastipak 60 mL\"); see the error for the list.")
    var syringe: String?

    @Option(help: "Volume to infuse, with its unit (\"5 mL\"); the pump stops there.")
    var volume: String?

    func validate() throws {
        if diameter != nil && syringe != nil { throw ValidationError("give --diameter or --syringe, not both") }
        if let rate { do { _ = try VolumeRate.parse(rate) } catch { throw ValidationError("--rate: \(error)") } }
        if let volume { do { _ = try Volume.parse(volume) } catch { throw ValidationError("--volume: \(error)") } }
        if let syringe {
            do throws(UnknownSyringeError) { _ = try SyringeCatalogue.syringe(named: syringe) } catch { throw ValidationError(error.description) }
        }
    }

    func run() async throws {
        let pump = try await connection.openConnected()
        defer { pump.close() }
        var millimetres = diameter
        if let syringe, let spec = try? SyringeCatalogue.syringe(named: syringe) {
            millimetres = spec.insideDiameterMillimetres
            Output.note("\(spec.name): \(spec.insideDiameterMillimetres) mm, source: \(spec.source)")
        }
        if let millimetres {
            let set = try connection.require(await pump.configureSyringe(insideDiameterMillimetres: millimetres), doing: "set the syringe")
            Output.line("syringe diameter: \(NumberTextCLI.format(set)) mm")
        }
        if let rate, let parsed = try? VolumeRate.parse(rate) {
            let set = try connection.require(await pump.setRate(parsed), doing: "set the rate")
            Output.line("rate: \(set.actual.formatted(in: .millilitresPerHour, fractionDigits: 4))"
                + (set.wasRounded ? " (asked \(set.requested.formatted(in: .millilitresPerHour, fractionDigits: 6)), rounded toward less)" : ""))
        }
        if let volume, let parsed = try? Volume.parse(volume) {
            let set = try connection.require(await pump.setVolumeToInfuse(parsed), doing: "set the volume")
            Output.line("volume to infuse: \(set.actual.formatted(in: .millilitres, fractionDigits: 4))")
        }
        let status = try connection.require(await pump.start(), doing: "start")
        Output.line("started: \(status.state)")
        if connection.protocolName == .newera && connection.safeMode > 0 {
            Output.note("safe mode is on: the pump stops itself about \(connection.safeMode) s after this command exits "
                + "(alarm T); use --safe-mode 0 to leave it running in basic mode")
        }
    }
}

struct PumpStopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop the pump (confirmed by the state it reports).")
    @OptionGroup var connection: PumpConnection

    func run() async throws {
        let pump = try await connection.openConnected()
        defer { pump.close() }
        let status = try connection.require(await pump.stop(), doing: "stop")
        Output.line("stopped: \(status.state)")
    }
}
