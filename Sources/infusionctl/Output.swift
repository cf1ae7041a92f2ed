import Foundation

/// The only place InfusionControl writes to standard output and standard error. Writes are unbuffered
/// and whole, so lines from several threads (device watch, live status) never interleave mid-line.
enum Output {
    /// Writes a line to standard output.
    static func line(_ text: String = "") {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Writes text to standard output exactly as it is (no newline added), for reports and CSV.
    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Writes an error to standard error, prefixed with "error: ".
    static func error(_ text: String) {
        FileHandle.standardError.write(Data(("error: " + text + "\n").utf8))
    }

    /// Writes a note (not an error) to standard error.
    static func note(_ text: String) {
        FileHandle.standardError.write(Data(("note: " + text + "\n").utf8))
    }

    /// One-line JSON with sorted keys and unescaped slashes ("null" if the value cannot be encoded).
    static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }
}
