import Foundation
import InfusionCore
import Supervisor

/// Text for the operator's terminal: the live status block (redrawn in place on a TTY), a one-line
/// status for logs and pipes, and one line per event worth showing. Pure: status in, strings out; it
/// never writes (the command line tool does). Any thread.
public struct StatusRenderer: Sendable {
    /// Drug and dose, shown in the title ("Ketamine 0.35 mg/kg/h").
    public var title: String
    /// The width to fit, in columns (at least 40).
    public var width: Int

    /// A renderer titled `title` for `width` columns.
    public init(title: String, width: Int = 80) {
        self.title = title
        self.width = max(40, width)
    }

    /// The keys footer of the terminal display.
    public static let keys = "p pause · r resume · s stop · a acknowledge · m audio pause · q quit"

    /// The status block: title and mode; progress bar with elapsed and remaining; SpO2, pulse rate,
    /// pump rate and delivered dose; the alarms; then `footer` (the keys, or a question). Every line is
    /// cut to `width`.
    public func block(_ status: SessionStatus, session: String, footer: String = StatusRenderer.keys) -> [String] {
        let percent = Int((status.progress * 100).rounded(.down))
        let barWidth = max(10, min(40, width - 46))
        var lines = [
            "\(title) · session \(session) · \(Self.modeText(status.mode).uppercased())",
            "\(Self.progressBar(status.progress, width: barWidth)) \(Self.pad(String(percent), 3))%  elapsed \(Self.clock(status.elapsed))  remaining \(Self.clock(status.remaining))",
            vitalsAndPump(status),
        ]
        if status.alarms.isEmpty {
            lines.append("Alarms: none" + (status.audioPaused ? "  (audio paused)" : ""))
        } else {
            let list = status.alarms.map { alarm in
                "\(Self.prefix(alarm.priority)) \(alarm.title) [\(alarm.state)\(alarm.acknowledged ? ", acknowledged" : "")]"
            }
            lines.append("Alarms: " + list.joined(separator: "; ") + (status.audioPaused ? "  (audio paused)" : ""))
        }
        lines.append(footer)
        return lines.map(fit)
    }

    /// One line for a pipe or a log: "[ 45%] infusing 18:00/22:00 left · SpO2 97 % · pulse 76 bpm · …".
    public func line(_ status: SessionStatus) -> String {
        let percent = Int((status.progress * 100).rounded(.down))
        var text = "[\(Self.pad(String(percent), 3))%] \(Self.modeText(status.mode)) · elapsed \(Self.clock(status.elapsed)) · remaining \(Self.clock(status.remaining)) · \(vitalsAndPump(status))"
        if !status.alarms.isEmpty {
            text += " · alarms: " + status.alarms.map { "\(Self.prefix($0.priority)) \($0.title) [\($0.state)]" }.joined(separator: "; ")
        }
        if status.audioPaused { text += " (audio paused)" }
        return text
    }

    /// The line to show for an event, or nil for events the status block already shows (`status`).
    public func eventLine(_ event: SessionEvent) -> String? {
        let t = Self.clock(event.time)
        switch event.body {
        case .sessionStarted(let info):
            return "\(t) session \(info.session) started: \(info.drug) \(info.dose) at \(info.rate) for \(info.duration.humanReadable), patient \(info.patient), operator \(info.operatorID)"
        case .status:
            return nil
        case .alarm(let notice):
            guard notice.phase != .update else { return nil }
            return "\(t) ALARM \(notice.message)" + (notice.phase == .start || notice.phase == .escalate ? "\n        → \(notice.action)" : "")
        case .decision(let notice):
            guard notice.modeBefore != notice.modeAfter || notice.command != nil else { return nil }
            return "\(t) supervisor: \(notice.message)"
        case .operatorAction(let notice):
            let reason = notice.reason.map { " (\($0))" } ?? ""
            return "\(t) \(notice.operatorID): \(notice.action)\(reason) \(notice.accepted ? "accepted" : "REFUSED"): \(notice.message)"
        case .recovered(let report):
            return "\(t) RECOVERED session \(report.session): \(report.message)"
        case .warning(let notice):
            return "\(t) \(notice.message)\n        → \(notice.action)"
        case .sessionEnded(let notice):
            return "\(t) session \(notice.session) ended: \(notice.outcome.rawValue) (exit \(notice.outcome.exitCode)); delivered \(notice.delivered.formatted(fractionDigits: 2)) = \(notice.deliveredMass.formatted(fractionDigits: 2)). \(notice.message)"
        }
    }

    /// The escape sequence that moves the cursor to the start of a block of `previousLines` lines drawn
    /// before (nothing when there was none) and clears from there to the end of the screen.
    public static func rewind(previousLines: Int) -> String {
        guard previousLines > 0 else { return "" }
        return "\u{1B}[\(previousLines)A\r\u{1B}[J"
    }

    /// "[##########----------]" for `progress` 0…1 inside `width` columns (brackets included).
    public static func progressBar(_ progress: Double, width: Int) -> String {
        let inner = max(1, width - 2)
        let clamped = progress.isFinite ? min(1, max(0, progress)) : 0
        let filled = Int((clamped * Double(inner)).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: inner - filled) + "]"
    }

    /// "mm:ss" below an hour, "h:mm:ss" from an hour; negative durations count as zero.
    public static func clock(_ duration: Duration) -> String {
        let total = max(0, Int(duration.seconds.rounded(.down)))
        let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60)
        return h > 0 ? String(format: "%d:%02d:%02d", h, m, s) : String(format: "%02d:%02d", m, s)
    }

    /// The mode in words ("paused by operator").
    public static func modeText(_ mode: ChannelMode) -> String { SessionNames.mode(mode).replacingOccurrences(of: "-", with: " ") }

    private func vitalsAndPump(_ status: SessionStatus) -> String {
        let spo2 = status.spo2.map { "\(Int($0.percent.rounded())) %" } ?? "--"
        let pulse = status.pulseRate.map { "\(Int($0.beatsPerMinute.rounded())) bpm" } ?? "--"
        let invalid = status.spo2 != nil && !status.vitalsValid ? " (signal invalid)" : ""
        let rate = status.pumpRate.map { $0.formatted(fractionDigits: 2) } ?? "--"
        let state = status.pumpState.map { " (\($0))" } ?? ""
        return "SpO2 \(spo2) · pulse \(pulse)\(invalid) · pump \(rate)\(state) · delivered \(status.delivered.formatted(fractionDigits: 2)) = \(status.deliveredMass.formatted(fractionDigits: 2))"
    }

    private func fit(_ line: String) -> String { line.count <= width ? line : String(line.prefix(width - 1)) + "…" }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    private static func prefix(_ priority: AlarmPriority) -> String {
        switch priority { case .high: "***"; case .medium: "**"; case .low: "*" }
    }
}
