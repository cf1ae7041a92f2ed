import Foundation
import InfusionCore

/// What the demo shows while it plays: event lines ("[05:12] alarm spo2-low (high) …") and a live status
/// block. On a terminal the block is redrawn in place under the event lines; otherwise (a pipe, a log
/// file, `make demo` in CI) each event is one line and the status is printed as a line every few minutes
/// of session time. Used from the demo's main loop only (one thread).
final class DemoDisplay {
    /// The live figures the status block shows.
    struct Status {
        var mode = "starting"
        var elapsed: Double = 0
        var total: Double = 0
        var spo2: Double?
        var pulse: Double?
        var rate: Double?
        var deliveredML: Double = 0
        var deliveredMG: Double = 0
        var alarms: [String] = []
        var controller = "starting"
        var pump = ""
    }

    private let interactive: Bool
    private var drawnLines = 0
    private var lastPlainStatus: Double = -.infinity
    /// Session seconds between status lines when not on a terminal.
    private let plainInterval: Double

    /// A display on standard output; `interactive` when it is a terminal.
    init(interactive: Bool, plainInterval: Double = 300) {
        self.interactive = interactive
        self.plainInterval = plainInterval
    }

    /// "12:05" (or "1:02:05") from seconds.
    static func clock(_ seconds: Double) -> String {
        let s = max(0, Int(seconds.rounded(.down)))
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%02d:%02d", s / 60, s % 60)
    }

    /// Prints one event line, stamped with the session time.
    func event(_ text: String, at seconds: Double?) {
        let stamp = seconds.map { "[\(Self.clock($0))]" } ?? "[--:--]"
        clearBlock()
        Output.line("\(stamp) \(terminalSafe(text))")
    }

    /// Prints a line without a time stamp.
    func note(_ text: String) {
        clearBlock()
        Output.line(terminalSafe(text))
    }

    /// Shows `status`: redraws the block on a terminal; otherwise prints a status line when due (or when
    /// `force`).
    func show(_ status: Status, force: Bool = false) {
        if interactive {
            clearBlock()
            let lines = block(status)
            Output.write(lines.joined(separator: "\n") + "\n")
            drawnLines = lines.count
        } else if force || status.elapsed - lastPlainStatus >= plainInterval {
            lastPlainStatus = status.elapsed
            Output.line("[\(Self.clock(status.elapsed))] " + summaryLine(status))
        }
    }

    /// Removes the status block (before the summary).
    func finish() { clearBlock() }

    private func clearBlock() {
        guard interactive, drawnLines > 0 else { return }
        Output.write("\u{1B}[\(drawnLines)A\r\u{1B}[J")
        drawnLines = 0
    }

    private func bar(_ fraction: Double, width: Int = 30) -> String {
        let filled = Int((min(max(fraction, 0), 1) * Double(width)).rounded())
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]"
    }

    private static func number(_ value: Double?, digits: Int = 0, unit: String) -> String {
        guard let value else { return "--" }
        return NumberText.format(value, fractionDigits: digits) + unit
    }

    private func summaryLine(_ s: Status) -> String {
        "\(s.mode): \(Self.clock(s.elapsed)) of \(Self.clock(s.total)), SpO2 \(Self.number(s.spo2, unit: " %")), "
            + "pulse \(Self.number(s.pulse, unit: " bpm")), rate \(Self.number(s.rate, digits: 2, unit: " mL/h")), "
            + "delivered \(NumberText.format(s.deliveredML, fractionDigits: 2)) mL (\(NumberText.format(s.deliveredMG, fractionDigits: 2)) mg)"
            + (s.alarms.isEmpty ? "" : ", alarms: \(s.alarms.joined(separator: ", "))")
    }

    private func block(_ s: Status) -> [String] {
        let fraction = s.total > 0 ? s.elapsed / s.total : 0
        return [
            "  \(bar(fraction)) \(Self.clock(s.elapsed)) elapsed, \(Self.clock(max(0, s.total - s.elapsed))) remaining   mode: \(s.mode)",
            "  SpO2 \(Self.number(s.spo2, unit: " %"))   pulse \(Self.number(s.pulse, unit: " bpm"))   rate \(Self.number(s.rate, digits: 2, unit: " mL/h"))"
                + "   delivered \(NumberText.format(s.deliveredML, fractionDigits: 2)) mL = \(NumberText.format(s.deliveredMG, fractionDigits: 2)) mg",
            "  alarms: \(s.alarms.isEmpty ? "none" : s.alarms.joined(separator: ", "))",
            "  controller: \(s.controller)   pump (simulated): \(s.pump)",
        ].map(terminalSafe)
    }
}
