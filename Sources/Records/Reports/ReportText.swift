import Foundation
import InfusionCore

/// Text helpers shared by the report renderers. Pure; any thread.
enum ReportText {
    /// Escapes text for HTML element content and attribute values (`& < > " '`).
    static func html(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters other than tab and newline have no business in a report.
                if scalar.value < 0x20 && scalar != "\t" && scalar != "\n" { out += "\u{FFFD}" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    /// A number for people: at most `digits` decimals, trailing zeros removed.
    static func number(_ value: Double, digits: Int = 1) -> String {
        guard value.isFinite else { return "–" }
        return NumberText.format(value, fractionDigits: digits)
    }

    /// A number for machines (CSV): shortest round-trip form, never in exponent notation, "" for nil.
    static func plain(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        let text = "\(value)"
        if !text.contains("e") { return text }
        var fixed = String(format: "%.12f", value)
        while fixed.hasSuffix("0") { fixed.removeLast() }
        if fixed.hasSuffix(".") { fixed.removeLast() }
        return fixed
    }

    /// "12:05" (minutes:seconds) or "1:02:05" for an offset from the session's start; negative offsets get "−".
    static func clock(_ offset: Duration) -> String {
        let total = Int64((Double(offset.nanoseconds) / 1e9).rounded(.down))
        let sign = total < 0 ? "−" : ""
        let magnitude = abs(total)
        let hours = magnitude / 3600, minutes = (magnitude % 3600) / 60, seconds = magnitude % 60
        let mm = minutes < 10 ? "0\(minutes)" : "\(minutes)"
        let ss = seconds < 10 ? "0\(seconds)" : "\(seconds)"
        return hours > 0 ? "\(sign)\(hours):\(mm):\(ss)" : "\(sign)\(minutes):\(ss)"
    }

    /// Seconds of a duration as a double.
    static func seconds(_ duration: Duration) -> Double { Double(duration.nanoseconds) / 1e9 }

    /// A formatter of wall-clock times for people in `timeZone`: "2026-11-20 10:15:30 +01:00". Make one per
    /// render (formatters are not shared between threads).
    static func wallClockFormatter(timeZone: TimeZone) -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = timeZone
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss xxx"
        return formatter
    }

    /// Wall-clock time for people in `timeZone`: "2026-11-20 10:15:30 +01:00".
    static func wallClock(_ date: Date, timeZone: TimeZone) -> String {
        wallClockFormatter(timeZone: timeZone).string(from: date)
    }

    /// Wall-clock time for machines: ISO 8601 in UTC with milliseconds, "2026-11-20T09:15:30.123Z".
    /// Computed directly (proleptic Gregorian calendar), so exporting a million samples stays fast.
    static func iso8601(_ date: Date) -> String {
        let totalMs = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var days = totalMs >= 0 ? totalMs / 86_400_000 : (totalMs - 86_399_999) / 86_400_000
        let msOfDay = totalMs - days * 86_400_000
        // Civil-from-days (Howard Hinnant's algorithm).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        let hours = msOfDay / 3_600_000, minutes = (msOfDay / 60_000) % 60, seconds = (msOfDay / 1000) % 60, ms = msOfDay % 1000
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hours, 2)):\(pad(minutes, 2)):\(pad(seconds, 2)).\(pad(ms, 3))Z"
    }
}
