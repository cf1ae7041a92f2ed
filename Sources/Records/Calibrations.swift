import Foundation
import GRDB

/// What a calibration record is about.
public enum CalibrationRecordKind: String, Hashable, Sendable, Codable, CaseIterable {
    /// A gravimetric pump calibration.
    case pump
    /// An oximeter verification.
    case oximeter
}

/// The verdict of a stored calibration, as plain text values (the Calibration target's outcome).
public enum StoredCalibrationOutcome: String, Hashable, Sendable, Codable, CaseIterable {
    /// Every criterion met.
    case pass
    /// A criterion not met.
    case fail
    /// Interrupted or aborted; never a pass.
    case incomplete
}

/// One calibration or verification record as stored: the indexed columns as plain values and the full
/// record as JSON written by the Calibration target (Records does not know its types; it checks only that
/// the JSON is valid).
///
/// Pure value; any thread.
public struct StoredCalibration: Hashable, Sendable, Codable {
    /// The record's unique id (the record's own UUID).
    public var id: UUID
    /// Pump or oximeter.
    public var kind: CalibrationRecordKind
    /// The device's model.
    public var deviceModel: String
    /// The device's serial number: records are looked up by it.
    public var deviceSerial: String
    /// The protocol the device was reached by (`newera`), if any.
    public var deviceProtocol: String?
    /// Who performed it.
    public var operatorID: String
    /// When (wall clock; stored to the millisecond).
    public var performedAt: Date
    /// Pass, fail or incomplete.
    public var outcome: StoredCalibrationOutcome
    /// True when the run did not reach its end.
    public var isIncomplete: Bool
    /// One line for listings ("25 mL/h standard: overall error −6.01 %").
    public var summary: String
    /// The full record as JSON.
    public var recordJSON: String

    /// A record to store; see each property.
    public init(id: UUID, kind: CalibrationRecordKind, deviceModel: String, deviceSerial: String, deviceProtocol: String?,
                operatorID: String, performedAt: Date, outcome: StoredCalibrationOutcome, isIncomplete: Bool,
                summary: String, recordJSON: String) {
        self.id = id
        self.kind = kind
        self.deviceModel = deviceModel
        self.deviceSerial = deviceSerial
        self.deviceProtocol = deviceProtocol
        self.operatorID = operatorID
        self.performedAt = performedAt
        self.outcome = outcome
        self.isIncomplete = isIncomplete
        self.summary = summary
        self.recordJSON = recordJSON
    }

    private enum CodingKeys: String, CodingKey {
        case id, kind, deviceModel = "device_model", deviceSerial = "device_serial", deviceProtocol = "device_protocol"
        case operatorID = "operator", performedAt = "performed_at", outcome, isIncomplete = "incomplete", summary
        case recordJSON = "record"
    }
}

extension RecordStore {
    /// Stores a calibration record in its own transaction; returns once it is committed (fsync'ed).
    /// Throws `invalidInput` (nothing written) for a blank serial, model or operator, JSON that is not
    /// valid, an incomplete record whose outcome is not `incomplete`, or an id already stored.
    /// Any thread; blocks until the commit.
    public func saveCalibration(_ record: StoredCalibration) throws(RecordStoreError) {
        if record.deviceSerial.allSatisfy(\.isWhitespace) { throw .invalidInput("a calibration record needs the device's serial number") }
        if record.deviceModel.allSatisfy(\.isWhitespace) { throw .invalidInput("a calibration record needs the device's model") }
        if record.operatorID.allSatisfy(\.isWhitespace) { throw .invalidInput("a calibration record needs the operator's id") }
        if record.isIncomplete && record.outcome != .incomplete {
            throw .invalidInput("an incomplete calibration cannot have the outcome \(record.outcome.rawValue)")
        }
        guard (try? JSONSerialization.jsonObject(with: Data(record.recordJSON.utf8))) != nil else {
            throw .invalidInput("the calibration record's JSON is not valid")
        }
        let id = record.id.uuidString.lowercased()
        try write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM calibrations WHERE id = ?", arguments: [id]) == true {
                throw RecordStoreError.invalidInput("a calibration record with id \(id) is already stored")
            }
            try db.execute(sql: """
                INSERT INTO calibrations (id, kind, device_model, device_serial, device_protocol, operator_id,
                    performed_wall_ms, outcome, incomplete, summary, record)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [
                    id, record.kind.rawValue, record.deviceModel, record.deviceSerial, record.deviceProtocol, record.operatorID,
                    Stored.milliseconds(record.performedAt), record.outcome.rawValue, record.isIncomplete ? 1 : 0,
                    record.summary, record.recordJSON,
                ])
        }
    }

    /// Stored calibration records, oldest first; only those for the device with serial `deviceSerial` and of
    /// `kind` when given. Any thread; runs concurrently with writes.
    public func calibrations(deviceSerial: String? = nil, kind: CalibrationRecordKind? = nil) throws(RecordStoreError) -> [StoredCalibration] {
        let path = self.path
        var conditions: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        if let deviceSerial { conditions.append("device_serial = ?"); arguments.append(deviceSerial) }
        if let kind { conditions.append("kind = ?"); arguments.append(kind.rawValue) }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT * FROM calibrations \(filter) ORDER BY performed_wall_ms, rowid"
        return try read { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map { try Self.calibration($0, path: path) }
        }
    }

    /// The calibration record with this id, or nil. Any thread.
    public func calibration(id: UUID) throws(RecordStoreError) -> StoredCalibration? {
        let path = self.path
        return try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM calibrations WHERE id = ?", arguments: [id.uuidString.lowercased()]).map {
                try Self.calibration($0, path: path)
            }
        }
    }

    private static func calibration(_ row: Row, path: String) throws -> StoredCalibration {
        let idText: String = row["id"]
        let kindText: String = row["kind"]
        let outcomeText: String = row["outcome"]
        guard let id = UUID(uuidString: idText), let kind = CalibrationRecordKind(rawValue: kindText),
              let outcome = StoredCalibrationOutcome(rawValue: outcomeText) else {
            throw RecordStoreError.unreadableRecord(path: path, what: "calibration \(idText) (kind \(kindText), outcome \(outcomeText))")
        }
        let incomplete: Int = row["incomplete"]
        return StoredCalibration(
            id: id, kind: kind, deviceModel: row["device_model"], deviceSerial: row["device_serial"],
            deviceProtocol: row["device_protocol"], operatorID: row["operator_id"],
            performedAt: Stored.date(milliseconds: row["performed_wall_ms"]), outcome: outcome,
            isIncomplete: incomplete != 0, summary: row["summary"], recordJSON: row["record"])
    }
}
