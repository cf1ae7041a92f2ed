import Foundation
import InfusionCore

/// The report's chart: an inline SVG with four stacked panels on one time axis (SpO2, pulse rate, pump
/// rate, cumulative dose), the profile's alarm thresholds, shaded spans without valid oximetry, and numbered
/// markers for alarms, supervisor decisions, operator actions and session state changes. Pure; any thread.
///
/// Long sessions are drawn at the chart's resolution: each pixel column shows the lowest and highest value
/// in it, so a brief desaturation is never averaged away.
public enum SessionChart {
    /// A numbered chart marker for one event.
    public struct Marker: Hashable, Sendable {
        /// The number drawn on the chart and shown in the event table.
        public var number: Int
        /// The event's sequence number.
        public var sequence: Int64
        /// Offset from the session's start.
        public var offset: Duration
        /// What it marks.
        public var kind: EventKind
        /// Alarm priority, for alarms.
        public var priority: AlarmPriority?
        /// The event's message.
        public var message: String
    }

    /// The events the chart marks: alarms raised, supervisor decisions, operator actions, soft-limit
    /// confirmations and state changes after the start, numbered 1, 2, 3… in time order.
    public static func markers(_ loaded: LoadedSession) -> [Marker] {
        var markers: [Marker] = []
        for event in loaded.events {
            switch event.kind {
            case .alarmRaised, .supervisorDecision, .operatorAction, .softLimitConfirmation: break
            case .sessionStateChange where event.sequence > 1: break
            default: continue
            }
            markers.append(Marker(number: 0, sequence: event.sequence, offset: event.offset(in: loaded.session),
                                  kind: event.kind, priority: event.priority, message: event.message))
        }
        markers.sort { ($0.offset, $0.sequence) < ($1.offset, $1.sequence) }
        for index in markers.indices { markers[index].number = index + 1 }
        return markers
    }

    // Layout (SVG user units; the SVG scales to the page width).
    static let width = 960.0
    static let left = 64.0
    static let right = 72.0
    static var plotWidth: Double { width - left - right }
    static let stripTop = 50.0
    static let stripHeight = 44.0
    static let panelHeight = 104.0
    static let panelGap = 24.0
    static var firstPanelTop: Double { stripTop + stripHeight + 22 }

    enum Colour {
        static let spo2 = "#0b64a8"
        static let pulse = "#c2185b"
        static let rate = "#2e7d32"
        static let dose = "#8d5a2b"
        static let high = "#d32f2f"
        static let medium = "#f29100"
        static let low = "#0097a7"
        static let operatorAction = "#3949ab"
        static let decision = "#7b1fa2"
        static let state = "#455a64"
        static let grid = "#e3e6ea"
        static let axis = "#5f6b76"
        static let invalid = "#9aa3ad"
    }

    /// The SVG document (an `<svg>` element, no external references), all text escaped.
    public static func svg(_ loaded: LoadedSession, series: SessionSeries, markers: [Marker], timeZone: TimeZone) -> String {
        let program = loaded.session.program
        let limits = program.monitoringLimits
        let endSeconds = max(ReportText.seconds(series.end), 1)
        func x(_ offset: Duration) -> Double { left + plotWidth * min(max(ReportText.seconds(offset) / endSeconds, 0), 1) }

        // Y ranges.
        var spo2Low = 85.0
        if let low = series.spo2Range?.lowerBound { spo2Low = min(spo2Low, ((low - 2) / 5).rounded(.down) * 5) }
        if let pause = limits?.spo2PauseBelow { spo2Low = min(spo2Low, ((pause - 3) / 5).rounded(.down) * 5) }
        spo2Low = max(0, spo2Low)
        var pulseValues = [series.pulseRange?.lowerBound, series.pulseRange?.upperBound].compactMap { $0 }
        if let limits { pulseValues += [limits.pulsePauseAbove, limits.pulsePauseBelow, limits.pulseWarningAbove] }
        let pulseLow = max(0, (((pulseValues.min() ?? 50) - 5) / 10).rounded(.down) * 10)
        let pulseHigh = (((pulseValues.max() ?? 120) + 5) / 10).rounded(.up) * 10
        let programmedRates = [program.pumpRate.actual.millilitresPerHour, program.loading?.pumpRate.actual.millilitresPerHour ?? 0]
        let rateHigh = niceCeiling(max((series.pumpRate.map(\.value).max() ?? 0), programmedRates.max() ?? 0, 0.1) * 1.15)
        let weight = program.weight.kilograms
        let projectedMg = program.projectedCumulativeDose.milligramsPerKilogram * weight
        let hardLimitMg = program.cumulativeHardLimit.milligramsPerKilogram * weight
        let doseHigh = niceCeiling(max(series.totalDose ?? 0, projectedMg, 0.1) * 1.15)

        struct Panel {
            var title: String
            var low: Double
            var high: Double
            var top: Double
        }
        var panels: [Panel] = []
        var top = firstPanelTop
        let doseTitle = hardLimitMg > doseHigh
            ? "Cumulative dose (mg) — hard session limit \(ReportText.number(hardLimitMg)) mg is above this scale"
            : "Cumulative dose (mg)"
        for (title, low, high) in [("SpO2 (%)", spo2Low, 100.0), ("Pulse rate (bpm)", pulseLow, pulseHigh),
                                   ("Pump rate (mL/h), as reported by the pump", 0.0, rateHigh), (doseTitle, 0.0, doseHigh)] {
            panels.append(Panel(title: title, low: low, high: max(high, low + 1), top: top))
            top += panelHeight + panelGap
        }
        let plotBottom = panels[3].top + panelHeight
        let height = plotBottom + 48
        func y(_ value: Double, _ panel: Panel) -> Double {
            let fraction = (value - panel.low) / (panel.high - panel.low)
            return panel.top + panelHeight * (1 - min(max(fraction, -0.02), 1.02))
        }

        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(f(width)) \(f(height))" width="100%" role="img" \
            aria-label="Chart of SpO2, pulse rate, pump rate and cumulative dose against time" \
            font-family="system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif" font-size="11">
            <rect x="0" y="0" width="\(f(width))" height="\(f(height))" fill="#ffffff"/>

            """
        svg += legend()

        // Time axis ticks.
        let stepSeconds = timeStep(endSeconds)
        var ticks: [Double] = []
        var tick = 0.0
        while tick <= endSeconds + 0.001 { ticks.append(tick); tick += stepSeconds }

        for (index, panel) in panels.enumerated() {
            svg += "<text x=\"\(f(left))\" y=\"\(f(panel.top - 7))\" font-weight=\"600\" fill=\"#1f2933\">\(ReportText.html(panel.title))</text>\n"
            svg += "<rect x=\"\(f(left))\" y=\"\(f(panel.top))\" width=\"\(f(plotWidth))\" height=\"\(f(panelHeight))\" fill=\"#fbfcfd\" stroke=\"\(Colour.grid)\"/>\n"
            for value in valueTicks(panel.low, panel.high) {
                let yy = y(value, panel)
                svg += "<line x1=\"\(f(left))\" x2=\"\(f(left + plotWidth))\" y1=\"\(f(yy))\" y2=\"\(f(yy))\" stroke=\"\(Colour.grid)\"/>"
                svg += "<text x=\"\(f(left - 6))\" y=\"\(f(yy + 4))\" text-anchor=\"end\" fill=\"\(Colour.axis)\">\(ReportText.number(value, digits: 2))</text>\n"
            }
            for t in ticks {
                let xx = left + plotWidth * t / endSeconds
                svg += "<line x1=\"\(f(xx))\" x2=\"\(f(xx))\" y1=\"\(f(panel.top))\" y2=\"\(f(panel.top + panelHeight))\" stroke=\"\(Colour.grid)\"/>"
            }
            svg += "\n"
            if index < 2 {
                for span in series.invalidOximetry {
                    let x0 = x(span.start), x1 = max(x(span.end), x0 + 1.5)
                    svg += "<rect x=\"\(f(x0))\" y=\"\(f(panel.top))\" width=\"\(f(x1 - x0))\" height=\"\(f(panelHeight))\" fill=\"\(Colour.invalid)\" fill-opacity=\"0.28\"><title>no valid oximetry \(ReportText.clock(span.start))–\(ReportText.clock(span.end))</title></rect>\n"
                }
            }
        }

        // Thresholds: dashed lines across the panel, labelled in the right margin (labels nudged apart when
        // two thresholds are close, and merged when they are equal).
        var thresholds: [(panel: Int, value: Double, label: String, colour: String, dash: String)] = []
        if let limits {
            thresholds += [
                (0, limits.spo2PauseBelow, "pause <\(ReportText.number(limits.spo2PauseBelow))", Colour.high, "5 3"),
                (0, limits.spo2WarningAtOrBelow, "warn ≤\(ReportText.number(limits.spo2WarningAtOrBelow))", Colour.medium, "5 3"),
                (1, limits.pulsePauseAbove, "pause >\(ReportText.number(limits.pulsePauseAbove))", Colour.high, "5 3"),
                (1, limits.pulseWarningAbove, "warn >\(ReportText.number(limits.pulseWarningAbove))", Colour.medium, "5 3"),
                (1, limits.pulsePauseBelow, "pause <\(ReportText.number(limits.pulsePauseBelow))", Colour.high, "5 3"),
            ]
        }
        thresholds.append((2, program.pumpRate.actual.millilitresPerHour, "programmed", Colour.axis, "2 3"))
        thresholds.append((3, projectedMg, "projected", Colour.axis, "2 3"))
        if hardLimitMg <= doseHigh { thresholds.append((3, hardLimitMg, "hard limit", Colour.high, "5 3")) }
        for (index, panel) in panels.enumerated() {
            let mine = thresholds.filter { $0.panel == index }.map { (y: y($0.value, panel), $0.value, $0.label, $0.colour, $0.dash) }
                .sorted { $0.y < $1.y }
            var lastLabelY = -Double.infinity
            var drawnValues: [Double: Int] = [:]
            for (lineY, value, label, colour, dash) in mine {
                let dashAttribute = drawnValues[value] == nil ? dash : "2 8"  // the same value twice: interleave the dashes
                svg += "<line x1=\"\(f(left))\" x2=\"\(f(left + plotWidth))\" y1=\"\(f(lineY))\" y2=\"\(f(lineY))\" stroke=\"\(colour)\" stroke-width=\"1.2\" stroke-dasharray=\"\(dashAttribute)\"/>"
                drawnValues[value, default: 0] += 1
                let labelY = max(lineY + 4, lastLabelY + 11)
                lastLabelY = labelY
                svg += "<text x=\"\(f(left + plotWidth + 4))\" y=\"\(f(labelY))\" fill=\"\(colour)\" font-size=\"10\">\(ReportText.html(label))</text>\n"
            }
        }

        // Data.
        let gap = max(5.0, endSeconds / plotWidth * 3)
        svg += linePath(series.spo2, colour: Colour.spo2, name: "SpO2", gap: gap, x: x) { y($0, panels[0]) }
        svg += linePath(series.pulse, colour: Colour.pulse, name: "pulse rate", gap: gap, x: x) { y($0, panels[1]) }
        svg += stepPath(series.pumpRate, colour: Colour.rate, x: x) { y($0, panels[2]) }
        svg += linePath(series.cumulativeDose, colour: Colour.dose, name: "cumulative dose", gap: .infinity, x: x) { y($0, panels[3]) }
        for (index, empty) in [series.spo2.isEmpty, series.pulse.isEmpty, series.pumpRate.isEmpty, series.cumulativeDose.isEmpty].enumerated() where empty {
            let panel = panels[index]
            svg += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(panel.top + panelHeight / 2 + 4))\" text-anchor=\"middle\" fill=\"\(Colour.axis)\" font-style=\"italic\">no data recorded</text>\n"
        }

        // Time axis.
        for t in ticks {
            let xx = left + plotWidth * t / endSeconds
            svg += "<line x1=\"\(f(xx))\" x2=\"\(f(xx))\" y1=\"\(f(plotBottom))\" y2=\"\(f(plotBottom + 4))\" stroke=\"\(Colour.axis)\"/>"
            svg += "<text x=\"\(f(xx))\" y=\"\(f(plotBottom + 16))\" text-anchor=\"middle\" fill=\"\(Colour.axis)\">\(ReportText.number(t / 60, digits: 2))</text>\n"
        }
        let start = ReportText.wallClock(loaded.session.startedAt, timeZone: timeZone)
        svg += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(plotBottom + 36))\" text-anchor=\"middle\" fill=\"#1f2933\">Time since the session started (min); started \(ReportText.html(start))</text>\n"

        // Markers: vertical lines through every panel, numbered symbols in the strip above.
        svg += markerStrip(markers, plotBottom: plotBottom, x: x)
        svg += "</svg>\n"
        return svg
    }

    // MARK: Pieces

    static func legend() -> String {
        var out = "<g>"
        var cursor = left
        func item(_ symbol: String, _ text: String, row: Int, width: Double) {
            let yy = 14.0 + Double(row) * 18
            out += "<g transform=\"translate(\(f(cursor)),\(f(yy)))\">\(symbol)<text x=\"22\" y=\"4\" fill=\"#1f2933\">\(ReportText.html(text))</text></g>"
            cursor += width
        }
        func line(_ colour: String, dash: String? = nil) -> String {
            "<line x1=\"0\" x2=\"16\" y1=\"0\" y2=\"0\" stroke=\"\(colour)\" stroke-width=\"2\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>"
        }
        item(line(Colour.spo2), "SpO2", row: 0, width: 70)
        item(line(Colour.pulse), "pulse rate", row: 0, width: 96)
        item(line(Colour.rate), "pump rate", row: 0, width: 92)
        item(line(Colour.dose), "cumulative dose", row: 0, width: 126)
        item("<rect x=\"0\" y=\"-6\" width=\"16\" height=\"12\" fill=\"\(Colour.invalid)\" fill-opacity=\"0.4\"/>", "no valid oximetry", row: 0, width: 132)
        item(line(Colour.high, dash: "5 3"), "pause threshold / hard limit", row: 0, width: 190)
        item(line(Colour.medium, dash: "5 3"), "warning threshold", row: 0, width: 0)
        cursor = left
        item(symbol(.alarmRaised, priority: .high, x: 8, y: 0), "high-priority alarm", row: 1, width: 142)
        item(symbol(.alarmRaised, priority: .medium, x: 8, y: 0), "medium alarm", row: 1, width: 108)
        item(symbol(.alarmRaised, priority: .low, x: 8, y: 0), "low alarm", row: 1, width: 86)
        item(symbol(.supervisorDecision, priority: nil, x: 8, y: 0), "supervisor decision", row: 1, width: 146)
        item(symbol(.operatorAction, priority: nil, x: 8, y: 0), "operator action", row: 1, width: 120)
        item(symbol(.sessionStateChange, priority: nil, x: 8, y: 0), "session state", row: 1, width: 110)
        item(line(Colour.axis, dash: "2 3"), "programmed / projected", row: 1, width: 0)
        return out + "</g>\n"
    }

    static func colour(_ kind: EventKind, priority: AlarmPriority?) -> String {
        switch kind {
        case .alarmRaised, .alarmChanged, .alarmCleared:
            switch priority ?? .high { case .high: Colour.high; case .medium: Colour.medium; case .low: Colour.low }
        case .supervisorDecision: Colour.decision
        case .operatorAction, .softLimitConfirmation: Colour.operatorAction
        default: Colour.state
        }
    }

    /// Alarm: triangle; supervisor decision: diamond; operator action: circle; state change: square.
    static func symbol(_ kind: EventKind, priority: AlarmPriority?, x: Double, y: Double) -> String {
        let c = colour(kind, priority: priority)
        switch kind {
        case .alarmRaised, .alarmChanged, .alarmCleared:
            return "<path d=\"M\(f(x)) \(f(y - 6))L\(f(x + 6)) \(f(y + 5))L\(f(x - 6)) \(f(y + 5))Z\" fill=\"\(c)\"/>"
        case .supervisorDecision:
            return "<path d=\"M\(f(x)) \(f(y - 6))L\(f(x + 6)) \(f(y))L\(f(x)) \(f(y + 6))L\(f(x - 6)) \(f(y))Z\" fill=\"\(c)\"/>"
        case .operatorAction, .softLimitConfirmation:
            return "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"5.5\" fill=\"\(c)\"/>"
        default:
            return "<rect x=\"\(f(x - 5))\" y=\"\(f(y - 5))\" width=\"10\" height=\"10\" fill=\"\(c)\"/>"
        }
    }

    /// Markers in three rows above the panels. A marker sits at its time when there is room; when markers
    /// crowd, it moves right to the first free place in the row that moves it least, with a thin leader line
    /// down to its time, so no two numbers overlap.
    static func markerStrip(_ markers: [Marker], plotBottom: Double, x: (Duration) -> Double) -> String {
        guard !markers.isEmpty else { return "" }
        var out = "<text x=\"\(f(left - 6))\" y=\"\(f(stripTop + stripHeight / 2 + 4))\" text-anchor=\"end\" fill=\"\(Colour.axis)\">events</text>\n"
        let rows = [stripTop + 7, stripTop + 20, stripTop + 33]
        var rowEnds = rows.map { _ in -Double.infinity }
        let stripBottom = stripTop + stripHeight
        for marker in markers {
            let xx = x(marker.offset)
            let c = colour(marker.kind, priority: marker.priority)
            let dash = marker.kind == .operatorAction || marker.kind == .softLimitConfirmation ? " stroke-dasharray=\"4 3\"" : ""
            out += "<line x1=\"\(f(xx))\" x2=\"\(f(xx))\" y1=\"\(f(stripBottom))\" y2=\"\(f(plotBottom))\" stroke=\"\(c)\" stroke-opacity=\"0.6\" stroke-width=\"1.2\"\(dash)/>\n"
            let labelWidth = 16 + 6.5 * Double(String(marker.number).count)
            let candidates = rowEnds.map { max(xx, $0 + 8) }
            var row = 0
            for index in candidates.indices where candidates[index] < candidates[row] - 0.01 { row = index }
            let placed = candidates[row]
            rowEnds[row] = placed + labelWidth
            let what = marker.priority.map { "\($0) priority " } ?? ""
            out += "<g><title>\(marker.number). \(ReportText.clock(marker.offset)) \(ReportText.html(what + marker.kind.label)): \(ReportText.html(marker.message))</title>"
            if placed - xx > 0.5 {
                out += "<path d=\"M\(f(placed)) \(f(rows[row] + 6))L\(f(xx)) \(f(stripBottom))\" stroke=\"\(c)\" stroke-opacity=\"0.7\" fill=\"none\"/>"
            }
            out += symbol(marker.kind, priority: marker.priority, x: placed, y: rows[row])
            out += "<text x=\"\(f(placed + 8))\" y=\"\(f(rows[row] + 4))\" fill=\"\(c)\" font-weight=\"600\">\(marker.number)</text></g>\n"
        }
        return out
    }

    /// A line through points, one pixel column at a time (first, lowest, highest, last value of the column),
    /// broken where no point came for `gap` seconds.
    static func linePath(_ points: [SessionSeries.Point], colour: String, name: String, gap: Double,
                       x: (Duration) -> Double, y: (Double) -> Double) -> String {
        guard !points.isEmpty else { return "" }
        var d = ""
        d.reserveCapacity(Int(plotWidth) * 40)
        var column = Int.min
        var first = 0.0, low = 0.0, high = 0.0, last = 0.0, columnX = 0.0
        var previous: Duration?
        var startNew = true
        var pointCount = 0
        func flush() {
            guard column != Int.min else { return }
            d += startNew ? "M\(f(columnX)) \(f(y(first)))" : "L\(f(columnX)) \(f(y(first)))"
            if high > low { d += "L\(f(columnX)) \(f(y(low)))L\(f(columnX)) \(f(y(high)))" }
            d += "L\(f(columnX)) \(f(y(last)))"
            startNew = false
            pointCount += 1
        }
        for point in points {
            let xx = x(point.offset)
            let thisColumn = Int(xx.rounded(.down))
            let broken = previous.map { ReportText.seconds(point.offset - $0) > gap } ?? false
            if thisColumn != column || broken {
                flush()
                if broken {
                    if pointCount == 1 { d += "l0.01 0" }  // a lone point still shows (round caps)
                    startNew = true
                    pointCount = 0
                }
                column = thisColumn
                columnX = xx
                first = point.value; low = point.value; high = point.value
            }
            low = min(low, point.value)
            high = max(high, point.value)
            last = point.value
            previous = point.offset
        }
        flush()
        if pointCount == 1 { d += "l0.01 0" }
        return "<path d=\"\(d)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.6\" stroke-linejoin=\"round\" stroke-linecap=\"round\"><title>\(ReportText.html(name))</title></path>\n"
    }

    /// A step line: each value holds until the next point.
    static func stepPath(_ points: [SessionSeries.Point], colour: String, x: (Duration) -> Double, y: (Double) -> Double) -> String {
        guard let head = points.first else { return "" }
        var d = "M\(f(x(head.offset))) \(f(y(head.value)))"
        for point in points.dropFirst() {
            d += "H\(f(x(point.offset)))V\(f(y(point.value)))"
        }
        return "<path d=\"\(d)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.8\"><title>pump rate</title></path>\n"
    }

    // MARK: Scales

    /// The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k) at or above `value`.
    static func niceCeiling(_ value: Double) -> Double {
        guard value > 0, value.isFinite else { return 1 }
        let magnitude = pow(10, (log10(value)).rounded(.down))
        for factor in [1.0, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10] where factor * magnitude >= value - 1e-12 { return factor * magnitude }
        return 10 * magnitude
    }

    /// About four round tick values from `low` to `high`.
    static func valueTicks(_ low: Double, _ high: Double) -> [Double] {
        let span = high - low
        guard span > 0, span.isFinite else { return [low] }
        let raw = span / 4
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var ticks: [Double] = []
        var value = (low / step).rounded(.up) * step
        while value <= high + step * 1e-9 {
            ticks.append(abs(value) < step * 1e-9 ? 0 : value)
            value += step
        }
        return ticks
    }

    /// A time-axis step in seconds giving at most about twelve ticks.
    static func timeStep(_ endSeconds: Double) -> Double {
        for minutes in [0.25, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 240, 480] where endSeconds / (minutes * 60) <= 12 {
            return minutes * 60
        }
        return (endSeconds / 12 / 3600).rounded(.up) * 3600
    }

    /// Coordinates with at most one decimal.
    static func f(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let tenths = (value * 10).rounded()
        if tenths.truncatingRemainder(dividingBy: 10) == 0 { return String(Int64(tenths / 10)) }
        let sign = tenths < 0 ? "-" : ""
        let magnitude = Int64(abs(tenths))
        return "\(sign)\(magnitude / 10).\(magnitude % 10)"
    }
}
