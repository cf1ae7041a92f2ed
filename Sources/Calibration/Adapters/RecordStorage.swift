import Foundation
import InfusionCore
import Records

extension StoredCalibration {
    /// The storable form of a pump calibration record: indexed columns and the record's JSON
    /// (`CalibrationJSON`).
    public init(_ record: PumpCalibrationRecord) throws(CalibrationInputError) {
        let json = String(decoding: try CalibrationJSON.encode(record), as: UTF8.self)
        let plan = record.run.plan
        var summary = "\(plan.setRate) \(plan.method.mode.rawValue)"
        if let error = record.run.result?.analysis.overallError {
            summary += ": overall error \(NumberText.format(error.percent, fractionDigits: 2)) %"
        } else if let interruption = record.run.interruption {
            summary += ": \(interruption.reason)"
        }
        self.init(id: record.id, kind: .pump, deviceModel: record.pump.model, deviceSerial: record.pump.serialNumber,
                  deviceProtocol: record.pump.protocolName, operatorID: record.operatorName, performedAt: record.performedAt,
                  outcome: StoredCalibrationOutcome(record.verdict.outcome), isIncomplete: record.isIncomplete,
                  summary: summary, recordJSON: json)
    }

    /// The storable form of an oximeter verification record.
    public init(_ record: OximeterVerificationRecord) throws(CalibrationInputError) {
        let json = String(decoding: try CalibrationJSON.encode(record), as: UTF8.self)
        var summary = "\(record.run.plan.setPoints.count) set points"
        if let interruption = record.run.interruption { summary += ": \(interruption.reason)" }
        self.init(id: record.id, kind: .oximeter, deviceModel: record.oximeter.model, deviceSerial: record.oximeter.serialNumber,
                  deviceProtocol: record.oximeter.protocolName, operatorID: record.operatorName, performedAt: record.performedAt,
                  outcome: StoredCalibrationOutcome(record.verdict.outcome), isIncomplete: record.isIncomplete,
                  summary: summary, recordJSON: json)
    }

    /// The pump calibration record this row holds; throws when it is not a pump record or not readable.
    public func pumpCalibrationRecord() throws(CalibrationInputError) -> PumpCalibrationRecord {
        guard kind == .pump else {
            throw CalibrationInputError("record \(id) is an \(kind.rawValue) record", fix: "read it as an oximeter verification record")
        }
        return try CalibrationJSON.decode(PumpCalibrationRecord.self, from: Data(recordJSON.utf8))
    }

    /// The oximeter verification record this row holds; throws when it is not one or not readable.
    public func oximeterVerificationRecord() throws(CalibrationInputError) -> OximeterVerificationRecord {
        guard kind == .oximeter else {
            throw CalibrationInputError("record \(id) is a \(kind.rawValue) record", fix: "read it as a pump calibration record")
        }
        return try CalibrationJSON.decode(OximeterVerificationRecord.self, from: Data(recordJSON.utf8))
    }
}

extension StoredCalibrationOutcome {
    /// The stored form of a verdict's outcome.
    public init(_ outcome: CalibrationOutcome) {
        switch outcome {
        case .pass: self = .pass
        case .fail: self = .fail
        case .incomplete: self = .incomplete
        }
    }
}

extension RecordStore {
    /// Stores a pump calibration record (committed before it returns). Any thread; blocks on the commit.
    public func save(_ record: PumpCalibrationRecord) throws(CalibrationStorageError) {
        let stored: StoredCalibration
        do { stored = try StoredCalibration(record) } catch { throw .encoding(error) }
        do { try saveCalibration(stored) } catch { throw .store(error) }
    }

    /// Stores an oximeter verification record (committed before it returns). Any thread; blocks on the commit.
    public func save(_ record: OximeterVerificationRecord) throws(CalibrationStorageError) {
        let stored: StoredCalibration
        do { stored = try StoredCalibration(record) } catch { throw .encoding(error) }
        do { try saveCalibration(stored) } catch { throw .store(error) }
    }
}

/// Why a calibration record could not be stored.
public enum CalibrationStorageError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The record could not be encoded.
    case encoding(CalibrationInputError)
    /// The record database refused or failed the write (nothing was written).
    case store(RecordStoreError)

    /// What happened and what to do next.
    public var description: String {
        switch self {
        case let .encoding(error): "the calibration record could not be encoded: \(error)"
        case let .store(error): "the calibration record was not stored: \(error)"
        }
    }
}
