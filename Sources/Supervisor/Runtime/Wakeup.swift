#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CRealTime

/// Wakes the supervisor's thread at once when new input is published: an eventfd (Linux) that the
/// runner polls next to its period timer. `signal()` is one `write(2)` of 8 bytes: no allocation, no
/// lock, async-signal-safe, callable from any thread.
///
/// Owns its file descriptor and closes it in `deinit`.
public final class Wakeup: Sendable {
    /// The eventfd (owned). Poll it for `POLLIN`.
    public let fileDescriptor: Int32

    /// A new eventfd. Throws when the system has none (not Linux) or is out of descriptors.
    public init() throws(RunnerError) {
        let fd = crt_eventfd()
        guard fd >= 0 else { throw .system(call: "eventfd", errno: errno) }
        fileDescriptor = fd
    }

    deinit { close(fileDescriptor) }

    /// Any thread. Makes the next (or current) poll return at once.
    public func signal() { _ = crt_eventfd_signal(fileDescriptor) }

    /// The supervisor's thread. Clears pending signals; returns how many there were.
    @discardableResult
    func drain() -> UInt64 { crt_eventfd_drain(fileDescriptor) }
}

/// Why the runner (or one of its parts) could not be set up.
public enum RunnerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A system call failed.
    case system(call: String, errno: Int32)
    /// `start()` was called twice, or after `stop()`.
    case alreadyStarted
    /// The configuration is unusable.
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case let .system(call, code):
            "\(call) failed: \(String(cString: strerror(code))) (errno \(code)): the supervisor runner needs Linux (eventfd, timerfd) and free file descriptors; check `ulimit -n`"
        case .alreadyStarted:
            "the supervisor runner was already started: make a new runner for a new session"
        case let .invalidConfiguration(why):
            "invalid supervisor runner configuration: \(why)"
        }
    }
}
