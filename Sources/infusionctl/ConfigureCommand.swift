import ArgumentParser
import Calibration
import DeviceIO
import DeviceProtocols
import InfusionCore
import Foundation
import TOMLKit

/// `infusionctl configure`: device settings and device profiles.
struct ConfigureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "configure",
        abstract: "Configure devices (New Era address, baud rate, safe mode; Nonin output format) and device profiles.",
        subcommands: [
            ProfileCommand.self, NewEraAddressCommand.self, NewEraBaudCommand.self, NewEraSafeModeCommand.self,
            NoninFormatCommand.self,
        ])
}

// MARK: - Device profiles

/// One configured device: how udev recognises it and what it is.
struct DeviceProfile: Codable, Equatable {
    var name: String
    var role: String
    var `protocol`: String
    var serial: String?
    var port: String?
    var kernel: String?
    var vendor_id: String?
    var model_id: String?
    var baud: Int?
    var address: Int?

    /// The udev rule lines for this device (see udev/70-infusion-devices.rules).
    var udevRule: String {
        var match: [String] = []
        if let vendor_id { match.append("ENV{ID_VENDOR_ID}==\"\(vendor_id)\"") }
        if let model_id { match.append("ENV{ID_MODEL_ID}==\"\(model_id)\"") }
        if let serial { match.append("ENV{ID_SERIAL_SHORT}==\"\(serial)\"") }
        if let port { match.append("ENV{ID_PATH}==\"\(port)\"") }
        if let kernel { match.append("KERNEL==\"\(kernel)\"") }
        var properties = ["ENV{INFUSION_ROLE}=\"\(role)\"", "ENV{INFUSION_PROTOCOL}=\"\(self.protocol)\""]
        if let baud { properties.append("ENV{INFUSION_BAUD}=\"\(baud)\"") }
        if let address { properties.append("ENV{INFUSION_ADDRESS}=\"\(address)\"") }
        return [
            "# \(name): \(self.protocol) \(role) (infusionctl configure profile)",
            match.joined(separator: ", ") + ", \\",
            "  SYMLINK+=\"infusion/\(name)\", \\",
            "  " + properties.joined(separator: ", ") + ", \\",
            "  GROUP=\"infusion\", MODE=\"0660\", ENV{ID_MM_DEVICE_IGNORE}=\"1\", TAG+=\"infusion\"",
        ].joined(separator: "\n")
    }
}

/// The profile file: `[[device]]` tables.
struct DeviceProfileFile: Codable, Equatable {
    var device: [DeviceProfile] = []
}

/// `infusionctl configure profile`: saves a device profile and prints its udev rule.
struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Save a device profile (serial number or USB port → role, protocol, settings) and print its udev rule.",
        discussion: """
            Adds (or replaces, by --name) a [[device]] table in the TOML profile file and prints the matching \
            udev rule lines for /etc/udev/rules.d/70-infusion-devices.rules (udev/README.md says how to install \
            them). Bind a device by its USB-serial cable's serial number (--serial, with --vendor and --product) \
            or, for cables without a unique serial, by the physical USB port (--port, an ID_PATH), or an on-board \
            port by its kernel name (--kernel ttyS0). Read them with: \
            udevadm info -q property -n /dev/ttyUSB0 | grep -E '^ID_(VENDOR_ID|MODEL_ID|SERIAL_SHORT|PATH)='

            Exit codes: 0 saved; 1 the file cannot be read or written; 64 usage error.
            """)

    @Option(help: ArgumentHelp("The stable name: /dev/infusion/NAME, such as pump0, oximeter0, balance0.", valueName: "NAME"))
    var name: String
    @Option(name: .customLong("protocol"), help: ArgumentHelp("newera, alaris, fresenius, nonin-df2, nonin-df7, nonin-df8, masimo, contec, mt-sics.", valueName: "NAME"))
    var protocolName: String
    @Option(help: ArgumentHelp("syringe-pump, oximeter or balance. Default: the protocol's role.", valueName: "ROLE"))
    var role: String?
    @Option(help: ArgumentHelp("The cable's USB serial number (ID_SERIAL_SHORT).", valueName: "SERIAL"))
    var serial: String?
    @Option(help: ArgumentHelp("The physical USB port (ID_PATH), for cables without a unique serial.", valueName: "ID_PATH"))
    var port: String?
    @Option(help: ArgumentHelp("An on-board serial port's kernel name (ttyS0).", valueName: "NAME"))
    var kernel: String?
    @Option(help: ArgumentHelp("The cable's USB vendor id, 4 hex digits (0403 for FTDI).", valueName: "HEX"))
    var vendor: String?
    @Option(help: ArgumentHelp("The cable's USB product id, 4 hex digits (6001 for an FT232R).", valueName: "HEX"))
    var product: String?
    @Option(help: ArgumentHelp("Baud rate, when not the protocol's default.", valueName: "N"))
    var baud: Int?
    @Option(help: ArgumentHelp("New Era pump address 0-99, Fresenius rack slot 0-5.", valueName: "N"))
    var address: Int?
    @Option(help: ArgumentHelp("The profile file.", valueName: "PATH"))
    var file: String = "infusion-devices.toml"

    func profile() throws -> DeviceProfile {
        guard let family = DeviceProtocolName(rawValue: protocolName) else {
            throw ValidationError("--protocol: unknown \"\(protocolName)\"; known: \(DeviceProtocolName.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let deviceRole: DeviceRole
        if let role {
            guard let parsed = DeviceRole(udevValue: role) else { throw ValidationError("--role: unknown \"\(role)\"; known: \(DeviceRole.udevValues.joined(separator: ", "))") }
            guard parsed == family.role else { throw ValidationError("--role \(role) does not fit --protocol \(family) (a \(family.role))") }
            deviceRole = parsed
        } else {
            deviceRole = family.role
        }
        let safeName = name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_".unicodeScalars.contains($0) }
        guard !name.isEmpty, safeName else { throw ValidationError("--name: letters, digits, - and _ only, such as pump0") }
        let bindings = [serial, port, kernel].compactMap { $0 }
        guard bindings.count == 1 else { throw ValidationError("give exactly one of --serial, --port or --kernel") }
        for text in [serial, port, kernel, vendor, product].compactMap({ $0 }) where text.contains("\"") || text.contains("\n") || text.isEmpty {
            throw ValidationError("\"\(text)\" cannot appear in a udev rule")
        }
        for (option, value) in [("--vendor", vendor), ("--product", product)] {
            if let value, value.count != 4 || UInt16(value, radix: 16) == nil { throw ValidationError("\(option): 4 hex digits, such as 0403") }
        }
        if serial != nil, vendor == nil || product == nil {
            throw ValidationError("--serial needs --vendor and --product (serial numbers are unique only per cable model)")
        }
        if let address {
            guard let range = family.addressRange else { throw ValidationError("--address: \(family) has no addresses") }
            guard range.contains(address) else { throw ValidationError("--address: \(family) addresses are \(range.lowerBound)-\(range.upperBound)") }
        }
        if let baud, ![1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200].contains(baud) {
            throw ValidationError("--baud: one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200")
        }
        return DeviceProfile(name: name, role: deviceRole.rawValue, protocol: family.rawValue, serial: serial, port: port, kernel: kernel,
                             vendor_id: vendor?.lowercased(), model_id: product?.lowercased(), baud: baud, address: address)
    }

    func run() throws {
        let profile = try profile()
        var contents = DeviceProfileFile()
        do {
            if FileManager.default.fileExists(atPath: file) {
                let text = try String(contentsOfFile: file, encoding: .utf8)
                contents = try TOMLDecoder().decode(DeviceProfileFile.self, from: text)
            }
            contents.device.removeAll { $0.name == profile.name }
            contents.device.append(profile)
            let text = try TOMLEncoder().encode(contents)
            try ("# InfusionControl device profiles (infusionctl configure profile)\n" + text + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        } catch {
            Output.error("cannot update the profile file \(file): \(error). Check the path and that it is a profile file written by infusionctl")
            throw ExitCode.failure
        }
        Output.line("Saved \(profile.name) (\(profile.protocol) \(profile.role)) in \(file).")
        Output.line("udev rule (add to /etc/udev/rules.d/70-infusion-devices.rules before its GOTO=\"infusion_end\", then `udevadm control --reload && udevadm trigger`):")
        Output.line()
        Output.line(profile.udevRule)
    }
}

// MARK: - Device settings (through the drivers, each confirmed by reading back)

/// Where the New Era pump is now: port, current baud rate and address.
struct NewEraLinkOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The pump's port.", valueName: "PATH")) var device: String
    @Option(help: ArgumentHelp("The pump's current baud rate: 300, 1200, 2400, 9600 or 19200. Default 19200.", valueName: "N"))
    var baud: Int = 19200
    @Option(help: ArgumentHelp("The pump's current address, 0-99. Default 0.", valueName: "N")) var address: Int = 0
    @Option(help: ArgumentHelp("How long to wait for each reply, such as \"0.4 s\" (raise it at 300 baud).", valueName: "DURATION"))
    var replyTimeout: String = "0.4 s"

    func link() throws -> (NewEraLink, NewEraConfigurator) {
        guard let rate = NewEra.BaudRate(rawValue: baud) else { throw ValidationError("--baud: New Era pumps run at 300, 1200, 2400, 9600 or 19200 baud") }
        guard let current = NewEra.Address(address) else { throw ValidationError("--address: New Era addresses are 0-99") }
        let timeout: Duration
        do { timeout = try Duration.parse(replyTimeout) } catch { throw ValidationError("--reply-timeout: \(error)") }
        guard timeout > .zero, timeout <= .seconds(10) else { throw ValidationError("--reply-timeout: more than 0 and at most 10 s") }
        return (NewEraLink(path: device, baudRate: rate, address: current), NewEraConfigurator(replyTimeout: timeout))
    }
}

/// Runs a device write; prints its error and exits 1 when it fails.
enum DeviceSettings {
    static func perform<T>(_ body: () async throws(DeviceConfigurationError) -> T) async throws -> T {
        do throws(DeviceConfigurationError) {
            return try await body()
        } catch {
            Output.error(error.description)
            throw ExitCode.failure
        }
    }
}

/// `configure newera-address`.
struct NewEraAddressCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "newera-address", abstract: "Set a New Era pump's network address (0-99), confirmed by reading back.",
        discussion: "Sends *ADR<n> (accepted whatever the pump's address), then reconnects at the new address and reads VER. "
            + "The pump is left in basic mode; the controller arms safe mode at every connection. Exit 0 confirmed; 1 not confirmed.")
    @OptionGroup var current: NewEraLinkOptions
    @Argument(help: "The new address, 0-99.") var newAddress: Int

    func run() async throws {
        guard let address = NewEra.Address(newAddress) else { throw ValidationError("the address is 0-99") }
        let (link, configurator) = try current.link()
        let identity = try await DeviceSettings.perform { () async throws(DeviceConfigurationError) in try await configurator.setAddress(address, at: link) }
        Output.line("The \(identity.model) (firmware \(identity.firmware)) on \(link.path) now answers at address \(address) (confirmed by VER).")
    }
}

/// `configure newera-baud`.
struct NewEraBaudCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "newera-baud", abstract: "Set a New Era pump's baud rate, confirmed by reconnecting at it.",
        discussion: "Sends *ADR<address>B<baud> (the pump answers at the new rate), then reconnects at the new rate and reads VER. "
            + "Remember the new rate in the device profile (configure profile --baud). Exit 0 confirmed; 1 not confirmed.")
    @OptionGroup var current: NewEraLinkOptions
    @Argument(help: "The new rate: 300, 1200, 2400, 9600 or 19200.") var newBaud: Int

    func run() async throws {
        guard let rate = NewEra.BaudRate(rawValue: newBaud) else { throw ValidationError("New Era pumps run at 300, 1200, 2400, 9600 or 19200 baud") }
        let (link, configurator) = try current.link()
        let identity = try await DeviceSettings.perform { () async throws(DeviceConfigurationError) in try await configurator.setBaudRate(rate, at: link) }
        Output.line("The \(identity.model) on \(link.path) now runs at \(rate) (confirmed by VER at the new rate).")
    }
}

/// `configure newera-safe-mode`.
struct NewEraSafeModeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "newera-safe-mode", abstract: "Set a New Era pump's stored safe-mode time-out (0 = off, 1-255 s), confirmed by reading back.",
        discussion: "Sends SAF<n> and reads it back with SAF. With n > 0 the pump expects a valid packet every n seconds from now on "
            + "and raises alarm T when none comes (after this command ends, too, until a controller connects). Exit 0 confirmed; 1 not confirmed.")
    @OptionGroup var current: NewEraLinkOptions
    @Argument(help: "Seconds, 0 (off) to 255.") var seconds: Int

    func run() async throws {
        guard let value = UInt8(exactly: seconds) else { throw ValidationError("the safe-mode time-out is 0 (off) to 255 s") }
        let (link, configurator) = try current.link()
        let stored = try await DeviceSettings.perform { () async throws(DeviceConfigurationError) in try await configurator.setSafeMode(value, at: link) }
        Output.line(stored == 0 ? "The pump on \(link.path) is in basic mode (safe mode off; read back with SAF)."
            : "The pump on \(link.path) has safe mode on with a \(stored) s time-out (read back with SAF).")
    }
}

/// `configure nonin-format`.
struct NoninFormatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nonin-format", abstract: "Set a Nonin oximeter's serial data format, confirmed by reading data in it.",
        discussion: "Sends the set-format command (02 70 02 02 ZZ 03) at connection and waits for ACK, then for a valid sample in the "
            + "new format (the protocol has no query). A 9560 accepts it only in the first 5 s after connection. Exit 0 confirmed; 1 not.")
    @Option(help: ArgumentHelp("The oximeter's port.", valueName: "PATH")) var device: String
    @Argument(help: "df2, df7 or df8 (df13 cannot be confirmed: the drivers do not read it).") var format: String
    @Option(help: ArgumentHelp("How long to wait for the answer and the first sample. Default 5 s.", valueName: "DURATION"))
    var within: String = "5 s"

    func run() async throws {
        let formats: [String: Nonin.DataFormat] = ["df2": .df2, "df7": .df7, "df8": .df8, "df13": .df13]
        guard let wanted = formats[format.lowercased()] else { throw ValidationError("the Nonin formats are df2, df7, df8 and df13") }
        let limit: Duration
        do { limit = try Duration.parse(within) } catch { throw ValidationError("--within: \(error)") }
        let sample = try await DeviceSettings.perform { () async throws(DeviceConfigurationError) in
            try await NoninConfigurator().setFormat(wanted, path: device, within: limit)
        }
        let spo2 = sample.spo2.map { "SpO2 \(NumberText.format($0.percent, fractionDigits: 0)) %" } ?? "no SpO2 (probe?)"
        Output.line("The Nonin on \(device) now sends DF\(wanted.rawValue) (ACK, then data read in it: \(spo2)).")
    }
}
