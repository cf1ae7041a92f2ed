import ArgumentParser
import DeviceIO
import DeviceProtocols
import Foundation
import TOMLKit

/// `infusionctl configure`: device settings and device profiles.
struct ConfigureCommand: ParsableCommand {
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

// MARK: - Device settings (need the family's driver)

/// The device-settings commands talk to the device through its driver; until the New Era and Nonin
/// drivers are merged they validate their arguments and say so.
enum DeviceSettings {
    static func unavailable(_ what: String, driver: String) -> ExitCode {
        Output.error("\(what) needs the \(driver) driver, which is not available in this build yet: set it on the device's own panel for now")
        return ExitCode.failure
    }
}

/// `configure newera-address`.
struct NewEraAddressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "newera-address", abstract: "Set a New Era pump's network address (0-99).")
    @Option(help: ArgumentHelp("The pump's port.", valueName: "PATH")) var device: String
    @Argument(help: "The new address, 0-99.") var address: Int

    func run() throws {
        guard (0...99).contains(address) else { throw ValidationError("the address is 0-99") }
        throw DeviceSettings.unavailable("setting the New Era address (ADR\(address))", driver: "New Era")
    }
}

/// `configure newera-baud`.
struct NewEraBaudCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "newera-baud", abstract: "Set a New Era pump's baud rate.")
    @Option(help: ArgumentHelp("The pump's port.", valueName: "PATH")) var device: String
    @Argument(help: "300, 1200, 2400, 9600 or 19200.") var baud: Int

    func run() throws {
        guard [300, 1200, 2400, 9600, 19200].contains(baud) else { throw ValidationError("New Era pumps run at 300, 1200, 2400, 9600 or 19200 baud") }
        throw DeviceSettings.unavailable("setting the New Era baud rate", driver: "New Era")
    }
}

/// `configure newera-safe-mode`.
struct NewEraSafeModeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "newera-safe-mode", abstract: "Set a New Era pump's safe-mode time-out (0 = off, 1-255 s).")
    @Option(help: ArgumentHelp("The pump's port.", valueName: "PATH")) var device: String
    @Argument(help: "Seconds, 0 (off) to 255.") var seconds: Int

    func run() throws {
        guard (0...255).contains(seconds) else { throw ValidationError("the safe-mode time-out is 0 (off) to 255 s") }
        throw DeviceSettings.unavailable("setting the New Era safe mode (SAF\(seconds))", driver: "New Era")
    }
}

/// `configure nonin-format`.
struct NoninFormatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "nonin-format", abstract: "Set a Nonin oximeter's serial data format.")
    @Option(help: ArgumentHelp("The oximeter's port.", valueName: "PATH")) var device: String
    @Argument(help: "df2, df7, df8 or df13.") var format: String

    func run() throws {
        guard ["df2", "df7", "df8", "df13"].contains(format.lowercased()) else { throw ValidationError("the Nonin formats are df2, df7, df8 and df13") }
        throw DeviceSettings.unavailable("setting the Nonin data format", driver: "Nonin")
    }
}
