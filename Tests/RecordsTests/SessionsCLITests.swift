import CommandLineTestSupport
import Foundation
import InfusionCore
import Testing
@testable import Records

/// Runs the built `infusionctl` binary on a record database.
enum RecordsCLI {
    /// Runs `infusionctl` with `environment` on top of this process's, but never the developer's own
    /// `INFUSIONCONTROL_DB`, and with times in UTC.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> BuiltTool.Run {
        var overrides: [String: String?] = ["INFUSIONCONTROL_DB": nil, "TZ": "UTC"]
        for (key, value) in environment { overrides[key] = value }
        return try BuiltTool("infusionctl").run(arguments, environment: overrides)
    }

    /// A database holding the demo session (completed) and a running one with a hostile patient id.
    static func database() throws -> (path: String, demo: SessionID, running: SessionID) {
        let path = try RecordFixtures.temporaryDatabase()
        let store = try RecordStore.open(path: path)
        let demo = try RecordFixtures.recordDemoSession(in: store)
        let running = try store.startSession(RecordFixtures.start(try RecordFixtures.program(), patient: "P-\u{1B}[31mRED"))
        try store.close()
        return (path, demo, running)
    }
}

@Suite("infusionctl sessions and report", .temporaryFolder)
struct SessionsCLITests {
    @Test("no database: says so plainly, exit 0; --json prints []; nothing is created")
    func noDatabase() throws {
        let path = try RecordFixtures.temporaryDatabase()
        let text = try RecordsCLI.run(["sessions", "--db", path])
        #expect(text.status == 0)
        #expect(text.stdout == "No sessions recorded: \(path) does not exist yet.\n")
        let json = try RecordsCLI.run(["sessions", "--json"], environment: ["INFUSIONCONTROL_DB": path])
        #expect(json.status == 0)
        #expect(json.stdout == "[]\n")
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("an empty database: no sessions, plainly")
    func emptyDatabase() throws {
        let path = try RecordFixtures.temporaryDatabase()
        try RecordStore.open(path: path).close()
        #expect(try RecordsCLI.run(["sessions", "--db", path]).stdout.hasPrefix("No sessions recorded in \(path)."))
        #expect(try RecordsCLI.run(["sessions", "--db", path, "--json"]).stdout == "[]\n")
    }

    @Test("sessions lists every session as a table (terminal escapes neutralised) and as JSON")
    func list() throws {
        let (path, demo, running) = try RecordsCLI.database()
        let run = try RecordsCLI.run(["sessions"], environment: ["INFUSIONCONTROL_DB": path])
        #expect(run.status == 0)
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("ID  STATE") == true)
        #expect(lines.contains { $0.hasPrefix("\(demo) ") && $0.contains("completed") && $0.contains("52:04") && $0.contains("P-0042") && $0.contains("Ketamine 0.35 mg/kg/h, 28 mL/h") })
        #expect(lines.contains { $0.hasPrefix("\(running) ") && $0.contains("running") && $0.contains("P-?[31mRED") })
        #expect(!run.stdout.contains("\u{1B}"))
        #expect(run.stdout.contains("2 sessions in \(path)"))

        let json = try RecordsCLI.run(["sessions", "--db", path, "--json"])
        let array = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(array.count == 2)
        #expect(array[0]["id"] as? Int == Int(demo.rawValue))
        #expect(array[0]["state"] as? String == "completed")
        #expect(array[0]["alarmCount"] as? Int == 3)
        #expect(array[0]["sampleCount"] as? Int == 3123)
        #expect(array[1]["patientId"] as? String == "P-\u{1B}[31mRED")
        #expect(array[1]["endedAt"] == nil)
    }

    @Test("report writes HTML, CSV and JSON, to a file or standard output")
    func report() throws {
        let (path, demo, _) = try RecordsCLI.database()
        let out = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("report.html").path
        let html = try RecordsCLI.run(["report", "\(demo)", "--db", path, "--out", out])
        #expect(html.status == 0)
        #expect(html.stdout == "Session \(demo) report (html) written to \(out)\n")
        let page = try String(contentsOfFile: out, encoding: .utf8)
        #expect(page.hasPrefix("<!DOCTYPE html>") && page.contains("<svg") && page.contains("Report generated"))

        let csv = try RecordsCLI.run(["report", "\(demo)", "--db", path, "--format", "csv", "--table", "samples"])
        #expect(csv.status == 0)
        #expect(parseCSV(csv.stdout)?.count == 3124)
        let events = try RecordsCLI.run(["report", "\(demo)", "--db", path, "--format", "csv"])
        #expect(parseCSV(events.stdout)?.first?.first == "sequence")
        let pump = try RecordsCLI.run(["report", "\(demo)", "--db", path, "--format", "csv", "--table", "pump"])
        #expect(parseCSV(pump.stdout)?.count == 3124)

        let json = try RecordsCLI.run(["report", "\(demo)", "--db", path, "--format", "json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect((object["samples"] as? [Any])?.count == 3123)
    }

    @Test("report: unknown session exit 1, bad id exit 64, damaged database exit 1 with what to do")
    func reportErrors() throws {
        let (path, _, _) = try RecordsCLI.database()
        let unknown = try RecordsCLI.run(["report", "99", "--db", path])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("no session 99"))
        let bad = try RecordsCLI.run(["report", "twelve", "--db", path])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("not a session id"))
        let missing = try RecordsCLI.run(["report", "1", "--db", path + ".missing"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("no record database at"))

        let garbage = try RecordFixtures.temporaryDatabase()
        try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: garbage))
        for arguments in [["sessions", "--db", garbage], ["report", "1", "--db", garbage]] {
            let run = try RecordsCLI.run(arguments)
            #expect(run.status == 1)
            #expect(run.stderr.contains("is not an InfusionControl record database"))
        }
    }
}
