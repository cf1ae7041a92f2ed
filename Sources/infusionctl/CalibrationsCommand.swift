import ArgumentParser
import Foundation
import Records

/// `infusionctl calibrations`: lists stored calibration and verification records.
struct CalibrationsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrations",
        abstract: "List stored pump calibrations and oximeter verifications.",
        discussion: """
            Reads the record database (never created by this command). With --json prints an array of objects: \
            id, kind, device_model, device_serial, device_protocol, operator, performed_at (ISO 8601), outcome \
            (pass, fail, incomplete), incomplete, summary, record (the full record).

            Exit codes: 0 success (also when there are none); 1 the database cannot be read; 64 usage error.
            """)

    @OptionGroup var database: DatabaseOption

    @Option(help: ArgumentHelp("Only the records of the device with this serial number.", valueName: "SERIAL"))
    var device: String?

    @Flag(help: "Print a JSON array instead of a table.")
    var json = false

    func run() throws {
        let path = database.path
        let records: [StoredCalibration]
        do {
            let store = try RecordStore.open(path: path, createIfMissing: false)
            records = try store.calibrations(deviceSerial: device)
        } catch RecordStoreError.notFound {
            if json { Output.line("[]") } else { Output.line("No calibrations recorded: \(path) does not exist yet.") }
            return
        } catch {
            Output.error("\(error)")
            throw ExitCode.failure
        }
        if json {
            Output.line(Self.json(records))
            return
        }
        if records.isEmpty {
            Output.line("No calibrations recorded in \(path)\(device.map { " for device \($0)" } ?? "").")
            return
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        var rows = [["DATE", "KIND", "DEVICE", "SERIAL", "OPERATOR", "RESULT", "SUMMARY", "ID"]]
        for record in records {
            rows.append([
                formatter.string(from: record.performedAt), record.kind.rawValue, terminalSafe(record.deviceModel),
                terminalSafe(record.deviceSerial), terminalSafe(record.operatorID), record.outcome.rawValue.uppercased(),
                terminalSafe(record.summary), record.id.uuidString.lowercased(),
            ])
        }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            Output.line(row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  "))
        }
        Output.line()
        Output.line("\(records.count) record\(records.count == 1 ? "" : "s") in \(path). Times are \(TimeZone.current.identifier).")
    }

    /// The records as a JSON array, each record's JSON embedded as an object.
    static func json(_ records: [StoredCalibration]) -> String {
        let formatter = ISO8601DateFormatter()
        let objects: [[String: Any]] = records.map { record in
            [
                "id": record.id.uuidString.lowercased(), "kind": record.kind.rawValue, "device_model": record.deviceModel,
                "device_serial": record.deviceSerial, "device_protocol": record.deviceProtocol ?? NSNull(),
                "operator": record.operatorID, "performed_at": formatter.string(from: record.performedAt),
                "outcome": record.outcome.rawValue, "incomplete": record.isIncomplete, "summary": record.summary,
                "record": (try? JSONSerialization.jsonObject(with: Data(record.recordJSON.utf8))) ?? NSNull(),
            ]
        }
        guard let data = try? JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return "[]"
        }
        return String(decoding: data, as: UTF8.self)
    }
}
