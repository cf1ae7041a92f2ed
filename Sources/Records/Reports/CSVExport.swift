import Foundation
import InfusionCore

/// CSV exports of a session (RFC 4180: comma-separated, CRLF line ends, a header row, fields quoted with
/// doubled quotes when they hold a comma, quote, CR or LF). Pure; any thread.
///
/// Columns carry their unit in their name. `session_time_s` is seconds since the session's start on its
/// monotonic clock; `wall_clock` is ISO 8601 UTC with milliseconds. Free-text fields (messages, reasons,
/// ids, details) that begin with `=`, `+`, `-`, `@`, tab or CR get a leading apostrophe, so a spreadsheet
/// shows them as text instead of running them as formulas.
public enum CSVExport {
    /// The tables that can be exported.
    public enum Table: String, Sendable, CaseIterable {
        /// Vital-sign samples.
        case samples
        /// Events.
        case events
        /// Pump statuses.
        case pump
    }

    /// The chosen table.
    public static func render(_ loaded: LoadedSession, table: Table) -> String {
        switch table {
        case .samples: samples(loaded)
        case .events: events(loaded)
        case .pump: pumpStatuses(loaded)
        }
    }

    /// One row per vital-sign sample.
    public static func samples(_ loaded: LoadedSession) -> String {
        let session = loaded.session
        var out = row(["session_time_s", "wall_clock", "measured_monotonic_ns", "arrived_monotonic_ns", "spo2_percent",
                       "pulse_bpm", "perfusion_index_percent", "quality_flags", "valid"])
        out.reserveCapacity(loaded.samples.count * 90)
        for sample in loaded.samples {
            out += row([
                ReportText.plain(ReportText.seconds(sample.measuredAt - session.startedMonotonic)),
                ReportText.iso8601(session.wallClock(of: sample.measuredAt)),
                String(sample.measuredAt.nanoseconds), String(sample.arrivedAt.nanoseconds),
                ReportText.plain(sample.spo2?.percent), ReportText.plain(sample.pulseRate?.beatsPerMinute),
                ReportText.plain(sample.perfusionIndex?.percent), sample.quality.names.joined(separator: ";"),
                sample.isValid ? "true" : "false",
            ])
        }
        return out
    }

    /// One row per event, device traffic included.
    public static func events(_ loaded: LoadedSession) -> String {
        let session = loaded.session
        var out = row(["sequence", "session_time_s", "wall_clock", "monotonic_ns", "kind", "channel", "rule_id", "priority",
                       "operator_id", "reason", "message", "details_json"])
        for event in loaded.events {
            out += row([
                String(event.sequence), ReportText.plain(ReportText.seconds(event.offset(in: session))),
                ReportText.iso8601(event.wallClock), event.monotonic.map { String($0.nanoseconds) } ?? "",
                event.kind.rawValue, text(event.channel), text(event.ruleID), event.priority?.description ?? "",
                text(event.operatorID), text(event.reason), text(event.message), text(event.details?.jsonText),
            ])
        }
        return out
    }

    /// One row per pump status.
    public static func pumpStatuses(_ loaded: LoadedSession) -> String {
        let session = loaded.session
        var out = row(["session_time_s", "wall_clock", "received_monotonic_ns", "state", "rate_ml_per_h", "volume_infused_ml", "alarms"])
        for status in loaded.pumpStatuses {
            out += row([
                ReportText.plain(ReportText.seconds(status.receivedAt - session.startedMonotonic)),
                ReportText.iso8601(session.wallClock(of: status.receivedAt)), String(status.receivedAt.nanoseconds),
                status.state.description, ReportText.plain(status.rate?.millilitresPerHour),
                ReportText.plain(status.volumeInfused?.millilitres), status.alarms.names.joined(separator: ";"),
            ])
        }
        return out
    }

    /// A free-text field, neutralised against spreadsheet formulas.
    static func text(_ value: String?) -> String {
        guard let value, let first = value.unicodeScalars.first else { return "" }
        return ["=", "+", "-", "@", "\t", "\r"].contains(first) ? "'" + value : value
    }

    /// One record: fields quoted as RFC 4180 requires, CRLF at the end.
    static func row(_ fields: [String]) -> String {
        fields.map(field).joined(separator: ",") + "\r\n"
    }

    static func field(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
