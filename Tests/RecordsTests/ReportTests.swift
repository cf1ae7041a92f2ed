import Foundation
import InfusionCore
import Testing
@testable import Records

/// A strict RFC 4180 parser for checking the exports: returns records of fields, or nil when malformed.
func parseCSV(_ text: String) -> [[String]]? {
    var records: [[String]] = [], fields: [String] = [], field = ""
    var scalars = Array(text.unicodeScalars)[...]
    var quoted = false, fieldStarted = false
    while let c = scalars.popFirst() {
        if quoted {
            if c == "\"" {
                if scalars.first == "\"" { scalars.removeFirst(); field.unicodeScalars.append("\"") } else { quoted = false }
            } else {
                field.unicodeScalars.append(c)
            }
        } else if c == "\"" {
            guard !fieldStarted else { return nil }
            quoted = true
            fieldStarted = true
        } else if c == "," {
            fields.append(field); field = ""; fieldStarted = false
        } else if c == "\r" {
            guard scalars.popFirst() == "\n" else { return nil }
            fields.append(field); records.append(fields); fields = []; field = ""; fieldStarted = false
        } else if c == "\n" {
            return nil  // bare LF outside quotes: not RFC 4180
        } else {
            field.unicodeScalars.append(c); fieldStarted = true
        }
    }
    guard !quoted, field.isEmpty, fields.isEmpty else { return nil }  // the last record ends with CRLF
    return records
}

@Suite("Reports: HTML, chart, CSV and JSON", .temporaryFolder)
struct ReportTests {
    static func demo() throws -> LoadedSession {
        let store = try RecordStore.open(path: try RecordFixtures.temporaryDatabase())
        return try store.load(try RecordFixtures.recordDemoSession(in: store))
    }

    /// A small session whose every text field is hostile.
    static func hostile() throws -> LoadedSession {
        let store = try RecordStore.open(path: try RecordFixtures.temporaryDatabase())
        let id = try store.startSession(RecordFixtures.start(try RecordFixtures.overriddenProgram(confirmedBy: "dr <lee>"),
                                                             patient: "<script>alert('x')</script>", operatorID: "o'brien & co"))
        try store.append(NewEvent.operatorAction("pause, then \"stop\"\r\nnow", operatorID: "=HYPERLINK(\"http://x\")", reason: "a,b \"c\"\n<i>d</i>",
                                                 monotonic: RecordFixtures.at(5), wallClock: RecordFixtures.wall(5), details: ["html": "</code><b>x</b>"]), to: id)
        try store.append(samples: [VitalSample(arrivedAt: RecordFixtures.at(1), spo2: .percent(97), pulseRate: .beatsPerMinute(70))], to: id)
        return try store.load(id)
    }

    @Test("the HTML report is one self-contained page: inline CSS and SVG, no scripts, no external references")
    func selfContained() throws {
        let html = HTMLReport.render(try Self.demo())
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        let withoutNamespace = html.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "")
        for forbidden in ["<script", "http://", "https://", " src=", " href=", "<link", "url(", "@import"] {
            #expect(!withoutNamespace.contains(forbidden), "report contains \(forbidden)")
        }
    }

    @Test("the HTML report shows the program, the chart panels with units, markers, overrides, alarms and events")
    func content() throws {
        let loaded = try Self.demo()
        let html = HTMLReport.render(loaded, options: ReportOptions(timeZone: TimeZone(identifier: "Europe/Paris") ?? .current))
        for text in ["Infusion session \(loaded.session.id)", "completed", "InfusionControl default drug library", loaded.session.program.librarySHA256,
                     "28 mL/h", "96 mL/h", "0.35 mg/kg/h", "P-0042", "rn-okafor", "New Era NE-1000",
                     "SpO2 (%)", "Pulse rate (bpm)", "Pump rate (mL/h)", "Cumulative dose (mg)", "Time since the session started (min)",
                     "high-priority alarm", "operator action", "supervisor decision", "no valid oximetry",
                     "patient roused, SpO2 96 % on room air", "R-MON-01", "R-MON-06", "+01:00"] {
            #expect(html.contains(text), "missing: \(text)")
        }
        // 3 alarms raised, 3 decisions, 3 operator actions, 1 state change (completed): 10 numbered markers.
        let markers = SessionChart.markers(loaded)
        #expect(markers.map(\.number) == Array(1...10))
        #expect(markers.filter { $0.kind == .alarmRaised }.map(\.priority) == [.medium, .high, .medium])
        // Device traffic is left out of the HTML table, and the page says so.
        #expect(html.contains("device command and reply events are not listed here"))
        #expect(!html.contains("RAT 96.00 MH"))
        #expect(HTMLReport.render(loaded, options: ReportOptions(includeDeviceTraffic: true)).contains("RAT 96.00 MH"))
    }

    @Test("an interrupted session without data: a banner, empty panels that say so, an axis not stretched to the recovery")
    func interrupted() throws {
        let store = try RecordStore.open(path: try RecordFixtures.temporaryDatabase())
        let id = try store.startSession(RecordFixtures.start(try RecordFixtures.program()))
        try store.append(NewEvent(kind: .note, monotonic: RecordFixtures.at(90), wallClock: RecordFixtures.wall(90), message: "last words"), to: id)
        try store.markInterrupted(id, detectedAt: RecordFixtures.wall(7200))
        let loaded = try store.load(id)
        let html = HTMLReport.render(loaded)
        #expect(html.contains("state-interrupted"))
        #expect(html.contains("This session was <b>interrupted</b>"))
        #expect(html.components(separatedBy: "no data recorded").count - 1 == 4)
        #expect(SessionSeries(loaded).end == .seconds(90), "the recovery two hours later does not stretch the time axis")
        #expect(SessionChart.markers(loaded).count == 1)
    }

    @Test("every recorded text is escaped in the HTML")
    func escaping() throws {
        let html = HTMLReport.render(try Self.hostile())
        #expect(!html.contains("<script>alert"))
        #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"))
        #expect(html.contains("o&#39;brien &amp; co"))
        #expect(html.contains("dr &lt;lee&gt;"))
        #expect(html.contains("&lt;i&gt;d&lt;/i&gt;"))
        #expect(!html.contains("<b>x</b>"))
        #expect(!html.contains("<B>"))
        #expect(html.contains("&lt;B&gt;"))
    }

    @Test("the series: dose from the pump counter (surviving a counter reset), rate 0 when paused, invalid spans")
    func series() throws {
        let loaded = try Self.demo()
        let series = SessionSeries(loaded)
        // 16 mL loading + 28 mL/h for 2400 s of maintenance (the pause is not infused).
        let expected = 16.0 + 28.0 * 2400 / 3600
        #expect(abs((series.totalVolume ?? 0) - expected) < 0.05)
        #expect(abs((series.totalDose ?? 0) - expected * 1) < 0.05)  // 1 mg/mL
        #expect(series.pumpRate.contains { $0.value == 0 && abs($0.offset.seconds - 1339.2) < 0.01 })
        #expect(series.pumpRate.contains { $0.value == 96 })
        #expect(series.invalidOximetry.count == 1)
        #expect(abs((series.invalidOximetry.first?.start.seconds ?? 0) - 2100) < 0.01)
        #expect(abs((series.invalidOximetry.first?.end.seconds ?? 0) - 2162) < 0.01)
        #expect((series.spo2Range?.lowerBound ?? 100) < 87)

        var reset = loaded
        reset.pumpStatuses = [5.0, 6.0, 0.5, 1.5].enumerated().map { index, volume in
            PumpStatus(receivedAt: RecordFixtures.at(Double(index)), state: .infusing, rate: .millilitresPerHour(28), volumeInfused: .millilitres(volume))
        }
        // From the first status (5 mL): +1, then the counter was cleared at 0.5 → 6 - 5 + 1.5 = 2.5 mL in all.
        #expect(SessionSeries(reset).cumulativeVolume.map(\.value) == [0, 1, 1.5, 2.5])
    }

    @Test("long sessions are drawn per pixel column (min and max kept), so the SVG stays small")
    func decimation() throws {
        var loaded = try Self.demo()
        let start = loaded.session.startedMonotonic
        // An hour of 75 Hz oximetry (270 000 samples), with one 2-second dip to 70 %.
        loaded.samples = (0..<(3600 * 75)).map { i in
            let t = start + .nanoseconds(Int64(i) * 13_333_333)
            let dip = i >= 200_000 && i < 200_150
            return VitalSample(arrivedAt: t, spo2: .percent(dip ? 70 : 97), pulseRate: .beatsPerMinute(72))
        }
        let series = SessionSeries(loaded)
        let svg = SessionChart.svg(loaded, series: series, markers: SessionChart.markers(loaded), timeZone: .current)
        #expect(svg.utf8.count < 400_000, "svg is \(svg.utf8.count) bytes")
        #expect(series.spo2Range?.lowerBound == 70, "the dip is kept")
    }

    @Test("CSV: RFC 4180 quoting and CRLF; formulas neutralised; one row per sample and per event")
    func csv() throws {
        let loaded = try Self.hostile()
        let events = try #require(parseCSV(CSVExport.events(loaded)))
        #expect(events.first == ["sequence", "session_time_s", "wall_clock", "monotonic_ns", "kind", "channel", "rule_id", "priority",
                                 "operator_id", "reason", "message", "details_json"])
        #expect(events.count == loaded.events.count + 1)
        let action = try #require(events.first { $0[4] == "operator-action" })
        #expect(action[10] == "pause, then \"stop\"\r\nnow")
        #expect(action[9] == "a,b \"c\"\n<i>d</i>")
        #expect(action[8] == "'=HYPERLINK(\"http://x\")")
        #expect(action[1] == "5")
        #expect(action[2] == "2026-11-18T11:06:45.000Z")
        #expect(action[11] == "{\"html\":\"</code><b>x</b>\"}")

        let demo = try Self.demo()
        let samples = try #require(parseCSV(CSVExport.samples(demo)))
        #expect(samples.count == demo.samples.count + 1)
        #expect(samples[0] == ["session_time_s", "wall_clock", "measured_monotonic_ns", "arrived_monotonic_ns", "spo2_percent",
                               "pulse_bpm", "perfusion_index_percent", "quality_flags", "valid"])
        let probeOff = try #require(samples.first { $0[7] == "probe off" })
        #expect(probeOff[4] == "" && probeOff[8] == "false")
        #expect(samples[1][0] == "1" && samples[1][8] == "true")
        let pump = try #require(parseCSV(CSVExport.pumpStatuses(demo)))
        #expect(pump.count == demo.pumpStatuses.count + 1)
        #expect(pump[1][0] == "1.2" && pump[1][3] == "infusing" && pump[1][4] == "96")
    }

    @Test("JSON export: valid JSON with the session, program, events, samples and pump statuses")
    func json() throws {
        let loaded = try Self.hostile()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(JSONExport.render(loaded).utf8)) as? [String: Any])
        #expect(object["format"] as? String == "infusioncontrol-session")
        let session = try #require(object["session"] as? [String: Any])
        #expect(session["patientId"] as? String == "<script>alert('x')</script>")
        #expect(session["state"] as? String == "running")
        let program = try #require(object["program"] as? [String: Any])
        #expect(program["pumpRate_mL_per_h"] as? Double == 48)
        #expect((program["softLimitConfirmation"] as? [String: Any])?["confirmedBy"] as? String == "dr <lee>")
        #expect(((program["library"] as? [String: Any])?["sha256"] as? String)?.count == 64)
        let events = try #require(object["events"] as? [[String: Any]])
        #expect(events.count == loaded.events.count)
        #expect(events.last?["reason"] as? String == "a,b \"c\"\n<i>d</i>")
        #expect((events.last?["details"] as? [String: Any])?["html"] as? String == "</code><b>x</b>")
        let samples = try #require(object["samples"] as? [[String: Any]])
        #expect(samples.count == 1 && samples[0]["spo2_percent"] as? Double == 97)
    }

    @Test("time and number formatting")
    func formatting() {
        #expect(ReportText.iso8601(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(ReportText.iso8601(Date(timeIntervalSince1970: 951_782_400.5)) == "2000-02-29T00:00:00.500Z")
        #expect(ReportText.iso8601(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59.000Z")
        #expect(ReportText.clock(.seconds(65)) == "1:05")
        #expect(ReportText.clock(.seconds(3725)) == "1:02:05")
        #expect(ReportText.plain(28) == "28")
        #expect(ReportText.plain(0.00001) == "0.00001")
        #expect(ReportText.plain(nil) == "")
        #expect(ReportText.html("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;")
        #expect(SessionChart.niceCeiling(37) == 40)
        #expect(SessionChart.niceCeiling(110.4) == 120)
        #expect(SessionChart.valueTicks(85, 100) == [85, 90, 95, 100])
    }

    @Test("writes the example report when RECORDS_REPORT_EXAMPLE names a file")
    func example() throws {
        let loaded = try Self.demo()
        let html = HTMLReport.render(loaded, options: ReportOptions(timeZone: TimeZone(identifier: "UTC") ?? .current))
        #expect(html.count > 10_000)
        if let path = ProcessInfo.processInfo.environment["RECORDS_REPORT_EXAMPLE"], !path.isEmpty {
            try html.write(toFile: path, atomically: true, encoding: .utf8)
        }
    }
}
