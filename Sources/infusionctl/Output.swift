#if canImport(Glibc)
import Glibc
#endif

/// The only place InfusionControl writes to standard output and standard error.
enum Output {
    /// Writes a line to standard output.
    static func line(_ text: String = "") {
        print(text)
    }

    /// Writes a line to standard error, prefixed with "error: ".
    static func error(_ text: String) {
        var stream = StandardError()
        print("error: \(text)", to: &stream)
    }

    struct StandardError: TextOutputStream {
        mutating func write(_ string: String) {
            var bytes = Array(string.utf8)
            _ = bytes.withUnsafeMutableBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
        }
    }
}
