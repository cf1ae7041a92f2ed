import Foundation
import GRDB
import Testing
@testable import Records

enum CalibrationFixtures {
    static func record(serial: String = "NE1-0042", outcome: StoredCalibrationOutcome = .pass, incomplete: Bool = false,
                       kind: CalibrationRecordKind = .pump, at seconds: TimeInterval = 1_800_000_000) -> StoredCalibration {
        StoredCalibration(id: UUID(), kind: kind, deviceModel: "NE-1000", deviceSerial: serial, deviceProtocol: "newera",
                          operatorID: "tech-7", performedAt: Date(timeIntervalSince1970: seconds), outcome: outcome,
                          isIncomplete: incomplete, summary: "25 mL/h standard: overall error 0.12 %",
                          recordJSON: #"{"schema":1,"run":{"samples":[{"index":0,"grams":0.0}]}}"#)
    }
}

@Suite("Calibration records in the record database")
struct CalibrationStoreTests {
    @Test("Round trip: every column and the JSON come back; filters by device serial and kind")
    func roundTrip() throws {
        let store = try RecordStore.open(path: try RecordFixtures.temporaryDatabase())
        let first = CalibrationFixtures.record(at: 1_800_000_000.123)
        let second = CalibrationFixtures.record(serial: "NE1-0043", outcome: .incomplete, incomplete: true, at: 1_800_000_100)
        let third = CalibrationFixtures.record(serial: "NE1-0042", outcome: .fail, kind: .oximeter, at: 1_800_000_200)
        try store.saveCalibration(third)
        try store.saveCalibration(first)
        try store.saveCalibration(second)
        #expect(try store.calibrations() == [first, second, third])  // by time
        #expect(try store.calibrations(deviceSerial: "NE1-0042") == [first, third])
        #expect(try store.calibrations(deviceSerial: "NE1-0042", kind: .pump) == [first])
        #expect(try store.calibration(id: second.id) == second)
        #expect(try store.calibration(id: UUID()) == nil)
        try store.close()
    }

    @Test("Refused without writing: blank serial or operator, invalid JSON, incomplete marked pass, a duplicate id")
    func refusals() throws {
        let store = try RecordStore.open(path: try RecordFixtures.temporaryDatabase())
        var blank = CalibrationFixtures.record(serial: "  ")
        #expect(throws: RecordStoreError.self) { try store.saveCalibration(blank) }
        blank = CalibrationFixtures.record()
        blank.operatorID = ""
        #expect(throws: RecordStoreError.self) { try store.saveCalibration(blank) }
        var bad = CalibrationFixtures.record()
        bad.recordJSON = "{not json"
        #expect(throws: RecordStoreError.self) { try store.saveCalibration(bad) }
        #expect(throws: RecordStoreError.self) { try store.saveCalibration(CalibrationFixtures.record(outcome: .pass, incomplete: true)) }
        let once = CalibrationFixtures.record()
        try store.saveCalibration(once)
        #expect(throws: RecordStoreError.self) { try store.saveCalibration(once) }
        #expect(try store.calibrations() == [once])
        try store.close()
    }

    @Test("A database written before calibrations existed gains the table on open, keeping its sessions")
    func migration() throws {
        let path = try RecordFixtures.temporaryDatabase()
        do {
            let queue = try DatabaseQueue(path: path)
            try Schema.migrator.migrate(queue, upTo: "v1")
            try queue.close()
        }
        let store = try RecordStore.open(path: path)
        #expect(try store.calibrations().isEmpty)
        try store.saveCalibration(CalibrationFixtures.record())
        #expect(try store.calibrations().count == 1)
        try store.close()
    }
}

@Suite("infusionctl calibrations")
struct CalibrationsCLITests {
    @Test("Lists stored calibrations as a table and as JSON, filtered by serial; no database is not an error")
    func listing() throws {
        let path = try RecordFixtures.temporaryDatabase()
        let missing = try RecordsCLI.run(["calibrations", "--db", path])
        #expect(missing.status == 0 && missing.stdout.contains("No calibrations recorded"))
        let store = try RecordStore.open(path: path)
        try store.saveCalibration(CalibrationFixtures.record())
        try store.saveCalibration(CalibrationFixtures.record(serial: "NE1-0099", outcome: .fail, at: 1_800_000_500))
        try store.close()
        let table = try RecordsCLI.run(["calibrations", "--db", path])
        #expect(table.status == 0)
        #expect(table.stdout.contains("NE1-0042") && table.stdout.contains("NE1-0099") && table.stdout.contains("FAIL"))
        let json = try RecordsCLI.run(["calibrations", "--db", path, "--device", "NE1-0099", "--json"])
        #expect(json.status == 0)
        let array = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(array.count == 1 && array.first?["device_serial"] as? String == "NE1-0099" && array.first?["outcome"] as? String == "fail")
        #expect((array.first?["record"] as? [String: Any])?["schema"] as? Int == 1)
    }
}
