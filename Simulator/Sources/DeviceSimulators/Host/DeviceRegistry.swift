import DeviceIO
import InfusionCore

/// What a simulated device is to the operator.
public enum SimulatedRole: String, Sendable, CaseIterable {
    /// An infusion or syringe pump (`--pump`).
    case pump
    /// A pulse oximeter (`--oximeter`).
    case oximeter
    /// A laboratory balance (`--balance`).
    case balance
}

/// One device kind the simulator host can start: its command-line name, role, help and how to build it.
public struct DeviceKindEntry: Sendable {
    /// "newera", "nonin-df2".
    public let kind: String
    /// Pump, oximeter or balance.
    public let role: SimulatedRole
    /// One line for `--help`.
    public let summary: String
    /// What the optional `:PARAMETER` after the kind means ("ADDRESS 0-99"), or nil if it takes none.
    public let parameterHelp: String?
    /// The device's fault commands, for `--help`.
    public let faultHelp: [String]
    /// Builds the device (with its optional parameter) hosted behind a fresh pseudo-terminal.
    public let makeHosted: @Sendable (_ parameter: String?, _ setup: HostedDeviceSetup) throws(FaultError) -> any HostedSimulation

    /// An entry for device type `D`; `build` turns the optional parameter into a device (throw a
    /// `FaultError` naming what is accepted when the parameter is wrong).
    public static func device<D: SimulatedDevice>(
        _ type: D.Type, role: SimulatedRole, summary: String, parameterHelp: String? = nil,
        build: @escaping @Sendable (_ parameter: String?) throws(FaultError) -> D
    ) -> DeviceKindEntry {
        DeviceKindEntry(
            kind: D.kind, role: role, summary: summary, parameterHelp: parameterHelp, faultHelp: D.faultHelp,
            makeHosted: { (parameter, setup) throws(FaultError) in
                PTYHostedDevice(device: try build(parameter), role: role, setup: setup)
            })
    }
}

/// The device kinds the simulator host knows. Each device family adds its entry here.
public enum DeviceRegistry {
    /// Every registered kind, in help order.
    public static let entries: [DeviceKindEntry] = [
        .device(NewEraSimulatedPump.self, role: .pump,
                summary: "New Era NE-1000 syringe pump: RS-232 basic/safe mode, 19200 8N1, replies paced at 19200 baud",
                parameterHelp: "ADDRESS 0-99 (default 0)") { (parameter: String?) throws(FaultError) -> NewEraSimulatedPump in
            try NewEraSimulatedPump.fromParameter(parameter)
        },
        .device(SimulatedBalance.self, role: .balance, summary: "Mettler Toledo MT-SICS balance (XS204-like, 220 g, 0.1 mg) weighing the pumps' delivery",
                parameterHelp: "SERIAL: the I4 serial number (default B123456789)", build: SimulatedBalance.build),
        .device(AlarisSimulator.self, role: .pump,
                summary: "Alaris Asena syringe pump, !MSG|CRC framing, 38400 8N1, remote-control lease") { (parameter) throws(FaultError) in
            guard parameter == nil else { throw FaultError("alaris takes no parameter") }
            return AlarisSimulator()
        },
        .device(FreseniusSimulator.self, role: .pump,
                summary: "Fresenius Kabi Base A rack with Agilia syringe modules, 19200 7E1, ENQ/DC4 keep-alive",
                parameterHelp: "MODULES 1-5 (modules in slots 1..MODULES; default 1)") { (parameter) throws(FaultError) in
            guard let parameter else { return FreseniusSimulator() }
            guard let count = Int(parameter), (1...5).contains(count) else {
                throw FaultError("fresenius:MODULES takes a number of modules from 1 to 5, not \"\(parameter)\"")
            }
            return FreseniusSimulator(configuration: .init(modules: count))
        },
        .device(SimulatedNoninDF2.self, role: .oximeter, summary: "Nonin DF2: 75 frames/s, 25-frame packets (9600 8N1)") { _ in SimulatedNoninDF2() },
        .device(SimulatedNoninDF7.self, role: .oximeter, summary: "Nonin DF7: as DF2 with a 16-bit pleth (9600 8N1)") { _ in SimulatedNoninDF7() },
        .device(SimulatedNoninDF8.self, role: .oximeter, summary: "Nonin DF8: 4 bytes once a second (9600 8N1)") { _ in SimulatedNoninDF8() },
        .device(SimulatedMasimo.self, role: .oximeter, summary: "Masimo Radical-7 ASCII 1: one line a second (9600 8N1)") { _ in SimulatedMasimo() },
        .device(SimulatedContec.self, role: .oximeter, summary: "Contec CMS50D+ V7.0: 60 packets/s after start, keep-alive (115200 8N1)") { _ in SimulatedContec() },
    ]

    /// The entry for `kind` in `role`, or nil.
    public static func entry(kind: String, role: SimulatedRole) -> DeviceKindEntry? {
        entries.first { $0.kind == kind.lowercased() && $0.role == role }
    }

    /// The kinds of a role, for messages ("newera, alaris, fresenius").
    public static func kinds(of role: SimulatedRole) -> String {
        let kinds = entries.filter { $0.role == role }.map(\.kind)
        return kinds.isEmpty ? "none yet" : kinds.joined(separator: ", ")
    }
}
