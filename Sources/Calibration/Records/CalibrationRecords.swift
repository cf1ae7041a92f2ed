import Foundation
import InfusionCore

/// Which device a record is about, as identified by the device itself where possible.
///
/// Pure value; any thread.
public struct DeviceIdentity: Hashable, Sendable, Codable, CustomStringConvertible {
    /// What the device is.
    public enum Kind: String, Hashable, Sendable, Codable {
        /// An infusion or syringe pump.
        case pump
        /// A pulse oximeter.
        case oximeter
        /// A laboratory balance.
        case balance
        /// A patient simulator (SpO2 simulator).
        case simulator
    }

    /// What the device is.
    public var kind: Kind
    /// Manufacturer, if known.
    public var manufacturer: String?
    /// Model (as the device reports it, or as entered).
    public var model: String
    /// Serial number: the key records are looked up by.
    public var serialNumber: String
    /// Firmware or software version, if known.
    public var firmware: String?
    /// The protocol used to talk to it (`newera`, `mt-sics`, `nonin-df7`), if any.
    public var protocolName: String?
    /// The port it was on (`/dev/ttyUSB0`), if any.
    public var port: String?

    /// Creates an identity; the model and serial must not be blank.
    public init(kind: Kind, manufacturer: String? = nil, model: String, serialNumber: String, firmware: String? = nil,
                protocolName: String? = nil, port: String? = nil) throws(CalibrationInputError) {
        let model = model.trimmingCharacters(in: .whitespacesAndNewlines)
        let serial = serialNumber.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !serial.isEmpty else {
            throw CalibrationInputError("the \(kind.rawValue)'s serial number is empty",
                                        fix: "read it from the device (MT-SICS I4) or its label; records are looked up by serial")
        }
        guard !model.isEmpty else {
            throw CalibrationInputError("the \(kind.rawValue)'s model is empty", fix: "give the model as on the device's label")
        }
        self.kind = kind
        self.manufacturer = manufacturer
        self.model = model
        self.serialNumber = serial
        self.firmware = firmware
        self.protocolName = protocolName
        self.port = port
    }

    /// "New Era NE-1000, SN 12345, firmware V3.9, newera on /dev/ttyUSB0": for report tables.
    public var label: String {
        var parts = [[manufacturer, model].compactMap { $0 }.joined(separator: " "), "SN \(serialNumber)"]
        if let firmware { parts.append("firmware \(firmware)") }
        if let protocolName { parts.append(port.map { "\(protocolName) on \($0)" } ?? protocolName) }
        return parts.joined(separator: ", ")
    }

    /// "pump NE-1000 SN 12345".
    public var description: String {
        ([kind.rawValue, manufacturer, model].compactMap { $0 } + ["SN \(serialNumber)"]).joined(separator: " ")
    }

    private enum CodingKeys: String, CodingKey {
        case kind, manufacturer, model, serialNumber = "serial_number", firmware, protocolName = "protocol", port
    }
}

/// The test liquid of a gravimetric calibration.
///
/// Pure value; any thread.
public struct TestLiquid: Hashable, Sendable, Codable {
    /// What it is ("water", "0.9 % NaCl").
    public var name: String
    /// Its temperature during the test, °C, if measured.
    public var temperatureCelsius: Double?
    /// The density used.
    public var density: LiquidDensity
    /// Where the density came from (the water table's citation, or "entered by the operator").
    public var densitySource: String

    /// Creates a liquid description.
    public init(name: String, temperatureCelsius: Double?, density: LiquidDensity, densitySource: String) {
        self.name = name
        self.temperatureCelsius = temperatureCelsius
        self.density = density
        self.densitySource = densitySource
    }

    /// Water at `celsius`, with its density from `WaterDensity` (15...30 °C).
    public static func water(celsius: Double) throws(CalibrationInputError) -> TestLiquid {
        TestLiquid(name: "water", temperatureCelsius: celsius, density: try WaterDensity.density(celsius: celsius),
                   densitySource: WaterDensity.source)
    }

    private enum CodingKeys: String, CodingKey {
        case name, temperatureCelsius = "temperature_C", density = "density_g_mL", densitySource = "density_source"
    }
}

/// The record of one gravimetric pump calibration: who, what, when, with what liquid, every raw sample,
/// the results and the verdict. Storage-agnostic: `Codable` to JSON (`CalibrationJSON`), persisted by the
/// Records target.
///
/// Pure value; any thread.
public struct PumpCalibrationRecord: Hashable, Sendable, Codable {
    /// The JSON schema version of this record.
    public static let schemaVersion = CalibrationJSON.schemaVersion

    /// Schema version (1).
    public var schema: Int
    /// A unique id.
    public var id: UUID
    /// The pump calibrated.
    public var pump: DeviceIdentity
    /// The balance used, if identified.
    public var balance: DeviceIdentity?
    /// Who performed it.
    public var operatorName: String
    /// When it was performed (wall clock, supplied by the caller; for the record only, never for timing).
    public var performedAt: Date
    /// The test liquid.
    public var liquid: TestLiquid
    /// The run: plan, raw samples, flow, results, verdict, incomplete flag.
    public var run: PumpCalibrationRun
    /// Free-text notes.
    public var notes: String?

    /// Creates a record. Throws when the operator is blank or the liquid's density differs from the
    /// density the run used (the record must say what was computed).
    public init(id: UUID = UUID(), pump: DeviceIdentity, balance: DeviceIdentity?, operatorName: String, performedAt: Date,
                liquid: TestLiquid, run: PumpCalibrationRun, notes: String? = nil) throws(CalibrationInputError) {
        let name = operatorName.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty else {
            throw CalibrationInputError("the operator is empty", fix: "give the technician's name or id (--operator)")
        }
        guard liquid.density == run.plan.density else {
            throw CalibrationInputError("the liquid's density \(liquid.density) differs from the density the run used \(run.plan.density)",
                                        fix: "build the plan from the same liquid description")
        }
        self.schema = Self.schemaVersion
        self.id = id
        self.pump = pump
        self.balance = balance
        self.operatorName = name
        self.performedAt = performedAt
        self.liquid = liquid
        self.run = run
        self.notes = notes
    }

    /// The verdict.
    public var verdict: CalibrationVerdict { run.verdict }
    /// True when the run did not complete.
    public var isIncomplete: Bool { run.isIncomplete }

    private enum CodingKeys: String, CodingKey {
        case schema, id, pump, balance, operatorName = "operator", performedAt = "performed_at", liquid, run, notes
    }
}

/// The record of one oximeter verification. Storage-agnostic like `PumpCalibrationRecord`.
///
/// Pure value; any thread.
public struct OximeterVerificationRecord: Hashable, Sendable, Codable {
    /// The JSON schema version of this record.
    public static let schemaVersion = CalibrationJSON.schemaVersion

    /// Schema version (1).
    public var schema: Int
    /// A unique id.
    public var id: UUID
    /// The oximeter verified.
    public var oximeter: DeviceIdentity
    /// The SpO2 simulator used, if identified.
    public var simulator: DeviceIdentity?
    /// Who performed it.
    public var operatorName: String
    /// When (wall clock, supplied by the caller).
    public var performedAt: Date
    /// The run: plan, readings, results, verdict, incomplete flag.
    public var run: OximeterVerificationRun
    /// Free-text notes.
    public var notes: String?

    /// Creates a record; throws when the operator is blank.
    public init(id: UUID = UUID(), oximeter: DeviceIdentity, simulator: DeviceIdentity?, operatorName: String, performedAt: Date,
                run: OximeterVerificationRun, notes: String? = nil) throws(CalibrationInputError) {
        let name = operatorName.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty else {
            throw CalibrationInputError("the operator is empty", fix: "give the technician's name or id (--operator)")
        }
        self.schema = Self.schemaVersion
        self.id = id
        self.oximeter = oximeter
        self.simulator = simulator
        self.operatorName = name
        self.performedAt = performedAt
        self.run = run
        self.notes = notes
    }

    /// The verdict.
    public var verdict: CalibrationVerdict { run.verdict }
    /// True when the run did not complete.
    public var isIncomplete: Bool { run.isIncomplete }

    private enum CodingKeys: String, CodingKey {
        case schema, id, oximeter, simulator, operatorName = "operator", performedAt = "performed_at", run, notes
    }
}
