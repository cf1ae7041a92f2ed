import Foundation
import InfusionCore

/// How a report is rendered. A plain value; any thread.
public struct ReportOptions: Sendable {
    /// The time zone wall-clock times are shown in.
    public var timeZone: TimeZone
    /// When the report was made, shown in its footer; nil leaves it out (the renderers never read a clock).
    public var generatedAt: Date?
    /// Include device commands and replies in the HTML event table (they are many; the CSV and JSON exports
    /// always have them).
    public var includeDeviceTraffic: Bool

    /// Options; the defaults show UTC, no generation time, and no device traffic in the HTML table.
    public init(timeZone: TimeZone = TimeZone(identifier: "UTC") ?? .current, generatedAt: Date? = nil, includeDeviceTraffic: Bool = false) {
        self.timeZone = timeZone
        self.generatedAt = generatedAt
        self.includeDeviceTraffic = includeDeviceTraffic
    }
}

/// The HTML session report: one self-contained page (inline CSS and SVG, no scripts, no external assets)
/// with the session's summary and program, the chart, the soft-limit overrides and operator actions, the
/// alarms, and the event table. Every piece of recorded text is HTML-escaped. Pure; any thread.
public enum HTMLReport {
    /// Renders the report of a loaded session.
    public static func render(_ loaded: LoadedSession, options: ReportOptions = ReportOptions()) -> String {
        let session = loaded.session
        let program = session.program
        let series = SessionSeries(loaded)
        let markers = SessionChart.markers(loaded)
        let markerBySequence = Dictionary(markers.map { ($0.sequence, $0.number) }, uniquingKeysWith: { first, _ in first })
        let e = ReportText.html
        let tz = options.timeZone
        let wallFormatter = ReportText.wallClockFormatter(timeZone: tz)
        func wall(_ date: Date) -> String { wallFormatter.string(from: date) }
        // In tables: the time of day when the event is on the day the session started, the full time otherwise.
        let dayFormatter = ReportText.wallClockFormatter(timeZone: tz)
        dayFormatter.dateFormat = "yyyy-MM-dd"
        let timeFormatter = ReportText.wallClockFormatter(timeZone: tz)
        timeFormatter.dateFormat = "HH:mm:ss"
        let startDay = dayFormatter.string(from: session.startedAt)
        func shortWall(_ date: Date) -> String {
            dayFormatter.string(from: date) == startDay ? timeFormatter.string(from: date) : wall(date)
        }
        let zoneName = tz.identifier == "GMT" || tz.identifier == "UTC" ? "UTC" : tz.identifier

        var html = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Session \(session.id) — \(e(program.drug)) — patient \(e(session.patientID))</title>
            <style>\(style)</style>
            </head>
            <body>

            """
        // Header.
        html += "<header><h1>Infusion session \(session.id) <span class=\"state state-\(session.state.rawValue)\">\(session.state.rawValue)</span></h1>\n"
        html += "<p class=\"sub\">\(e(program.drug)) \(e(program.concentration.formatted(fractionDigits: 3))) · \(e(program.profileName)) · patient <b>\(e(session.patientID))</b> · operator <b>\(e(session.operatorID))</b></p></header>\n"
        if session.state == .interrupted {
            html += "<p class=\"banner\">This session was <b>interrupted</b>: the controller stopped without ending it (crash, kill or power loss). The record ends at its last committed entry; check the pump's own volume counter and record what it shows.</p>\n"
        } else if session.state == .running {
            html += "<p class=\"banner\">This session is still <b>running</b> (or was not yet recovered after a crash): the report shows what had been recorded when it was made.</p>\n"
        }

        // Summary.
        let elapsed = session.endedAt.map { $0.timeIntervalSince(session.startedAt) } ?? ReportText.seconds(series.lastRecord)
        let weight = program.weight.kilograms
        var summary: [(String, String)] = [
            ("Started", wall(session.startedAt)),
            ("Ended", session.endedAt.map(wall) ?? "—"),
            (session.endedAt == nil ? "Recorded so far" : "Elapsed", ReportText.clock(.milliseconds(Int64(elapsed * 1000)))),
            ("Programmed", program.loading.map { "\(program.totalDuration.humanReadable) (\($0.duration.humanReadable) loading + \(program.duration.humanReadable))" } ?? program.duration.humanReadable),
        ]
        if let volume = series.totalVolume, let dose = series.totalDose {
            summary.append(("Infused (pump counter)", "\(ReportText.number(volume, digits: 2)) mL"))
            summary.append(("Dose delivered", "\(ReportText.number(dose, digits: 2)) mg (\(ReportText.number(dose / max(weight, 0.001), digits: 3)) mg/kg)"))
        } else {
            summary.append(("Infused (pump counter)", "not reported"))
        }
        summary.append(("Projected dose", "\(ReportText.number(program.projectedCumulativeDose.milligramsPerKilogram * weight, digits: 2)) mg (\(ReportText.number(program.projectedCumulativeDose.milligramsPerKilogram, digits: 3)) mg/kg)"))
        if let range = series.spo2Range { summary.append(("SpO2 lowest / highest", "\(ReportText.number(range.lowerBound)) / \(ReportText.number(range.upperBound)) %")) }
        if let range = series.pulseRange { summary.append(("Pulse lowest / highest", "\(ReportText.number(range.lowerBound)) / \(ReportText.number(range.upperBound)) bpm")) }
        let alarms = loaded.events.filter { $0.kind == .alarmRaised }
        let byPriority = AlarmPriority.allCases.reversed().map { p in "\(alarms.filter { $0.priority == p }.count) \(p)" }.joined(separator: ", ")
        summary.append(("Alarms raised", alarms.isEmpty ? "none" : "\(alarms.count) (\(byPriority))"))
        summary.append(("Operator actions", "\(loaded.events.filter { $0.kind == .operatorAction }.count)"))
        html += "<section><h2>Summary</h2>\n" + definitionGrid(summary) + "</section>\n"

        // Program.
        var programRows: [(String, String)] = [
            ("Drug library", "\(program.libraryName) \(program.libraryVersion)"),
            ("Library SHA-256", program.librarySHA256),
            ("Care-area profile", "\(program.profileName) (\(program.profileID))"),
            ("Drug, concentration", "\(program.drug), \(program.concentration.formatted(fractionDigits: 3))"),
            ("Patient weight", program.weight.formatted(fractionDigits: 1)),
            ("Dose rate", "\(program.doseRate.formatted(fractionDigits: 4)) (delivers \(program.deliveredDoseRate.formatted(fractionDigits: 4)))"),
            ("Pump rate", program.pumpRate.wasRounded
                ? "\(program.pumpRate.actual.formatted(fractionDigits: 3)) (requested \(program.pumpRate.requested.formatted(fractionDigits: 4)), rounded down)"
                : program.pumpRate.actual.formatted(fractionDigits: 3)),
            ("Maintenance", "\(program.duration.humanReadable), VTBI \(program.vtbi.formatted(fractionDigits: 2))"),
        ]
        if let loading = program.loading {
            programRows.append(("Loading dose", "\(loading.dose.formatted(fractionDigits: 3)) over \(loading.duration.humanReadable) at \(loading.pumpRate.actual.formatted(fractionDigits: 3)) (\(loading.volume.formatted(fractionDigits: 2)))"))
        } else {
            programRows.append(("Loading dose", "none"))
        }
        programRows.append(("Cumulative hard limit", "\(program.cumulativeHardLimit.formatted(fractionDigits: 3)) (\(ReportText.number(program.cumulativeHardLimit.milligramsPerKilogram * weight, digits: 1)) mg)"))
        if let limits = program.monitoringLimits {
            programRows.append(("Monitoring thresholds", "SpO2 pause < \(ReportText.number(limits.spo2PauseBelow)) %, warning ≤ \(ReportText.number(limits.spo2WarningAtOrBelow)) %; pulse pause < \(ReportText.number(limits.pulsePauseBelow)) or > \(ReportText.number(limits.pulsePauseAbove)) bpm, warning > \(ReportText.number(limits.pulseWarningAbove)) bpm"))
        }
        for device in session.devices { programRows.append(("Device", device.summary)) }
        if session.devices.isEmpty { programRows.append(("Devices", "not recorded")) }
        html += "<section><h2>Program</h2>\n" + definitionGrid(programRows) + "</section>\n"

        // Chart.
        html += "<section><h2>Chart</h2>\n<figure>\n"
        html += SessionChart.svg(loaded, series: series, markers: markers, timeZone: tz)
        html += "<figcaption>Numbered markers match the “Chart” column of the tables below. Each pixel column shows the lowest and highest value in it. Grey: no valid oximetry (probe off, invalid signal, or no sample for more than 5 s). Dose is the pump’s volume counter × \(e(program.concentration.formatted(fractionDigits: 3))).</figcaption>\n</figure></section>\n"

        // Overrides and operator actions.
        html += "<section><h2>Overrides and operator actions</h2>\n"
        if let confirmation = program.confirmation {
            html += "<h3>Soft-limit override at programming</h3>\n<table><thead><tr><th>Rule</th><th>Finding</th><th>Limit</th></tr></thead><tbody>\n"
            for finding in program.overriddenFindings {
                html += "<tr><td>\(e(finding.rule))</td><td>\(e(finding.message))</td><td>\(e(finding.limit ?? "—"))</td></tr>\n"
            }
            html += "</tbody></table>\n<p>Confirmed by <b>\(e(confirmation.confirmedBy ?? "not recorded"))</b>, reason: “\(e(confirmation.reason))”.</p>\n"
        } else {
            html += "<p>No soft limit was overridden: the program was within every drug-library limit.</p>\n"
        }
        let actions = loaded.events.filter { $0.kind == .operatorAction || $0.kind == .softLimitConfirmation }
        if actions.isEmpty {
            html += "<p>No operator actions were recorded.</p>\n"
        } else {
            html += "<h3>Operator actions</h3>\n<table><thead><tr><th>Chart</th><th>#</th><th>Time</th><th>Wall clock</th><th>Operator</th><th>Action</th><th>Reason</th></tr></thead><tbody>\n"
            for event in actions {
                html += "<tr><td>\(markerCell(markerBySequence[event.sequence]))</td><td>\(event.sequence)</td><td>\(ReportText.clock(event.offset(in: session)))</td><td class=\"nowrap\">\(e(shortWall(event.wallClock)))</td><td class=\"nowrap\">\(e(event.operatorID ?? "—"))</td><td>\(e(event.message))</td><td>\(e(event.reason ?? "—"))</td></tr>\n"
            }
            html += "</tbody></table>\n"
        }
        html += "</section>\n"

        // Alarms.
        let alarmEvents = loaded.events.filter { [.alarmRaised, .alarmChanged, .alarmCleared].contains($0.kind) }
        html += "<section><h2>Alarms</h2>\n"
        if alarmEvents.isEmpty {
            html += "<p>No alarms.</p>\n"
        } else {
            html += "<table><thead><tr><th>Chart</th><th>#</th><th>Time</th><th>Event</th><th>Priority</th><th>Rule</th><th>Message</th></tr></thead><tbody>\n"
            for event in alarmEvents {
                let priority = event.priority.map { "<span class=\"prio prio-\($0)\">\($0)</span>" } ?? "—"
                html += "<tr><td>\(markerCell(markerBySequence[event.sequence]))</td><td>\(event.sequence)</td><td>\(ReportText.clock(event.offset(in: session)))</td><td>\(e(event.kind.label))</td><td>\(priority)</td><td class=\"nowrap\">\(e(event.ruleID ?? "—"))</td><td>\(e(event.message))</td></tr>\n"
            }
            html += "</tbody></table>\n"
        }
        html += "</section>\n"

        // Events.
        let shown = options.includeDeviceTraffic ? loaded.events : loaded.events.filter { !$0.kind.isDeviceTraffic }
        let hidden = loaded.events.count - shown.count
        html += "<section><h2>Events</h2>\n"
        if hidden > 0 {
            html += "<p class=\"note\">\(hidden) device command and reply events are not listed here; the CSV and JSON exports (<code>infusionctl report \(session.id) --format csv --table events</code>) have every event.</p>\n"
        }
        if shown.isEmpty {
            html += "<p>No events.</p>\n"
        } else {
            html += "<table class=\"events\"><thead><tr><th>Chart</th><th>#</th><th>Time</th><th>Wall clock</th><th>Kind</th><th>Priority</th><th>Rule</th><th>Ch.</th><th>Message and details</th><th>Who</th><th>Reason</th></tr></thead><tbody>\n"
            for event in shown {
                let priority = event.priority.map { "<span class=\"prio prio-\($0)\">\($0)</span>" } ?? ""
                var details = event.details?.jsonText ?? ""
                if details.count > 240 { details = String(details.prefix(240)) + "…" }
                let detailsHTML = details.isEmpty ? "" : "<div class=\"details\"><code>\(e(details))</code></div>"
                html += "<tr class=\"k-\(event.kind.rawValue)\"><td>\(markerCell(markerBySequence[event.sequence]))</td><td>\(event.sequence)</td><td>\(ReportText.clock(event.offset(in: session)))</td><td class=\"nowrap\">\(e(shortWall(event.wallClock)))</td><td>\(e(event.kind.label))</td><td>\(priority)</td><td class=\"nowrap\">\(e(event.ruleID ?? ""))</td><td>\(e(event.channel ?? ""))</td><td class=\"message\">\(e(event.message))\(detailsHTML)</td><td class=\"nowrap\">\(e(event.operatorID ?? ""))</td><td>\(e(event.reason ?? ""))</td></tr>\n"
            }
            html += "</tbody></table>\n"
        }
        html += "</section>\n"

        // Footer.
        var footer = "InfusionControl session record \(session.id): \(loaded.events.count) events, \(loaded.samples.count) vital-sign samples, \(loaded.pumpStatuses.count) pump statuses. Times are \(e(zoneName)); “Time” is minutes:seconds since the start; “Wall clock” shows the time of day on the day the session started."
        if let generated = options.generatedAt { footer += " Report generated \(e(wall(generated)))." }
        html += "<footer>\(footer) Not for clinical use: every clinical threshold shipped with InfusionControl is a proposed default.</footer>\n</body>\n</html>\n"
        return html
    }

    static func markerCell(_ number: Int?) -> String {
        number.map { "<span class=\"marker\">\($0)</span>" } ?? ""
    }

    static func definitionGrid(_ rows: [(String, String)]) -> String {
        var out = "<dl class=\"grid\">\n"
        for (term, value) in rows {
            out += "<div><dt>\(ReportText.html(term))</dt><dd>\(ReportText.html(value))</dd></div>\n"
        }
        return out + "</dl>\n"
    }

    static let style = """
        :root{color-scheme:light;--ink:#1f2933;--muted:#5f6b76;--line:#e3e6ea}
        *{box-sizing:border-box}
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--ink);margin:0 auto;max-width:1100px;padding:20px 24px 40px;background:#fff}
        h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 10px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:14px;margin:16px 0 6px}
        .sub{color:var(--muted);margin:0}
        .state{font-size:13px;font-weight:600;padding:2px 9px;border-radius:10px;vertical-align:middle;color:#fff;background:#607d8b;text-transform:uppercase;letter-spacing:.04em}
        .state-completed{background:#2e7d32}.state-stopped{background:#ef6c00}.state-interrupted{background:#c62828}.state-running{background:#1565c0}
        .banner{background:#fff4e5;border-left:4px solid #ef6c00;padding:8px 12px;margin:14px 0}
        dl.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:6px 24px;margin:0}
        dl.grid div{display:flex;gap:10px;border-bottom:1px dotted var(--line);padding:3px 0}
        dt{color:var(--muted);min-width:150px}dd{margin:0;font-weight:500;word-break:break-word}
        figure{margin:0}figcaption{color:var(--muted);font-size:12px;margin-top:4px}
        svg{display:block;max-width:100%;height:auto;border:1px solid var(--line);border-radius:4px}
        table{border-collapse:collapse;width:100%;font-size:12.5px}
        th,td{text-align:left;padding:4px 6px;border-bottom:1px solid var(--line);vertical-align:top}
        th{background:#f3f5f7;font-weight:600}
        tbody tr:nth-child(even){background:#fafbfc}
        td .details code{font-size:11px;color:var(--muted);overflow-wrap:anywhere}
        td.message{min-width:280px}
        .nowrap{white-space:nowrap}
        .marker{display:inline-block;min-width:20px;text-align:center;border-radius:9px;background:#eceff1;font-weight:600;font-size:11px}
        .prio{font-weight:600;padding:0 6px;border-radius:8px;color:#fff}.prio-high{background:#d32f2f}.prio-medium{background:#f29100}.prio-low{background:#0097a7}
        tr.k-alarm-raised td:nth-child(5){color:#b71c1c;font-weight:600}
        tr.k-operator-action td:nth-child(5),tr.k-soft-limit-confirmation td:nth-child(5){color:#3949ab;font-weight:600}
        tr.k-supervisor-decision td:nth-child(5){color:#7b1fa2;font-weight:600}
        .note{color:var(--muted)}
        footer{margin-top:30px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:8px}
        @media print{body{max-width:none;padding:0}h2{break-after:avoid}tr{break-inside:avoid}}
        """
}
