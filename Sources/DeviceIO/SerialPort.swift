import Glibc
import InfusionCore
import Logging

/// An open serial port (a USB-serial adapter, an on-board UART, or the slave side of a
/// pseudo-terminal), configured in raw mode and held exclusively.
///
/// Opening: `open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)`, then `TIOCEXCL` (other
/// unprivileged opens fail with `EBUSY`) and a non-blocking `flock(LOCK_EX)` (which also keeps out
/// root and every other cooperating program, since `TIOCEXCL` does not bind root), then the
/// `SerialSettings` in raw mode, read back and verified, then pending input is discarded (stale bytes
/// from before this open are not replies to anything this program sent).
///
/// I/O: reads wait with `poll` until a deadline and never spin; writes complete or fail; `EINTR` is
/// retried; a hang-up is `.disconnected`, never a hang. Deadlines are instants on the kernel's
/// monotonic clock (`SystemMonotonicClock`); the `timeout:` forms measure from the call.
///
/// Ownership and threads: the port owns its file descriptor until `close()` or deinit. `read` and
/// `write` may be called from any thread, one reader and any number of writers at a time (writers
/// serialise in the kernel per `write` call, so use one writer per frame stream). `close()` may be
/// called from any thread at any time: blocked calls return `.closed` at once. For event-driven
/// reception hand the port to a `DescriptorLink` and stop using it directly.
public final class SerialPort: Sendable, CustomStringConvertible {
    /// The device path this port was opened with.
    public let path: String
    /// The settings in force.
    public let settings: SerialSettings
    let descriptor: ManagedDescriptor
    private static let logger = Logger(label: "infusion.deviceio.serial")

    /// Opens `path` exclusively with `settings` (see the type's description for the exact sequence).
    ///
    /// Errors: `.notFound` (no such node, or the device is gone), `.permissionDenied` (see
    /// udev/README.md), `.busy` (someone else holds it), `.notATerminal`, `.settingsRejected`, or
    /// `.system` for anything else. Any thread; blocks only for the open and `tcsetattr`.
    public init(path: String, settings: SerialSettings) throws(DeviceIOError) {
        let fd = Glibc.open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw Self.openError(errno: errno, path: path) }
        // From here on `fd` must be closed on every failure path.
        func fail(_ error: DeviceIOError) -> DeviceIOError {
            Glibc.close(fd)
            return error
        }
        guard isatty(fd) == 1 else { throw fail(.notATerminal(path: path)) }
        if ioctl(fd, UInt(TIOCEXCL)) != 0 {
            let code = errno
            throw fail(code == EBUSY ? .busy(path: path) : .system(path: path, operation: "ioctl(TIOCEXCL)", errno: code))
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            throw fail(code == EWOULDBLOCK ? .busy(path: path) : .system(path: path, operation: "flock", errno: code))
        }
        var t = termios()
        guard tcgetattr(fd, &t) == 0 else { throw fail(.system(path: path, operation: "tcgetattr", errno: errno)) }
        let pristine = t
        settings.apply(to: &t)
        if tcsetattr(fd, TCSANOW, &t) != 0 {
            let code = errno
            // A pty slave can refuse 7-bit or parity settings outright (EINVAL) once the kernel has forced
            // CS8 on it: there is no wire, so fall back to 8N1 there (the simulator enforces framing itself).
            guard code == EINVAL, Self.isPseudoTerminalSlave(fd) else {
                throw fail(.system(path: path, operation: "tcsetattr", errno: code))
            }
            var eightBit = settings
            eightBit.dataBits = .eight
            eightBit.parity = .none
            t = pristine
            eightBit.apply(to: &t)
            guard tcsetattr(fd, TCSANOW, &t) == 0 else {
                throw fail(.system(path: path, operation: "tcsetattr", errno: errno))
            }
        }
        var readBack = termios()
        guard tcgetattr(fd, &readBack) == 0 else { throw fail(.system(path: path, operation: "tcgetattr", errno: errno)) }
        if let detail = settings.mismatch(in: readBack) {
            // A pty keeps only 8 data bits without parity (the kernel's pty_set_termios forces CS8):
            // there is no wire, so the simulator enforces framing itself. A real port must comply.
            if Self.isPseudoTerminalSlave(fd) {
                Self.logger.debug(
                    "pseudo-terminal ignores part of the settings", metadata: ["path": "\(path)", "detail": "\(detail)"])
            } else {
                throw fail(.settingsRejected(path: path, detail: detail))
            }
        }
        _ = tcflush(fd, TCIFLUSH)
        self.path = path
        self.settings = settings
        // Clear TIOCEXCL before closing: on a pty slave whose master stays open (a simulator holding
        // the slave too) the flag would outlive this open and refuse the driver's next one.
        descriptor = try ManagedDescriptor(fd: fd, path: path) { fd in _ = ioctl(fd, UInt(TIOCNXCL)) }
        Self.logger.debug("opened serial port", metadata: ["path": "\(path)", "settings": "\(settings)"])
    }

    /// True when `fd` is the slave side of a pseudo-terminal (Unix98 pty slaves use character
    /// majors 136 to 143).
    static func isPseudoTerminalSlave(_ fd: Int32) -> Bool {
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFCHR else { return false }
        let device = UInt64(info.st_rdev)
        let major = ((device >> 8) & 0xFFF) | ((device >> 32) & ~UInt64(0xFFF))
        return (136...143).contains(major)
    }

    /// Maps an `open(2)` errno to the error a person can act on. Pure.
    static func openError(errno code: Int32, path: String) -> DeviceIOError {
        switch code {
        case ENOENT, ENXIO, ENODEV: .notFound(path: path)
        case EACCES, EPERM: .permissionDenied(path: path)
        case EBUSY: .busy(path: path)
        default: .system(path: path, operation: "open", errno: code)
        }
    }

    /// A short human-readable form, for logs and listings.
    public var description: String { "\(path) (\(settings))" }

    /// True once closed (by `close()` or by the link that took the port over).
    public var isClosed: Bool { descriptor.isClosed }

    /// Reads at least one byte into `buffer`, waiting until `deadline` on the kernel's monotonic
    /// clock. Returns the count read (1...buffer.count). Throws `.readTimedOut`, `.disconnected`,
    /// `.closed`. Never allocates.
    public func read(into buffer: UnsafeMutableRawBufferPointer, deadline: MonotonicInstant) throws(DeviceIOError) -> Int {
        try descriptor.read(into: buffer, deadline: deadline)
    }

    /// Reads what has arrived, at least one byte and at most `maxCount`, waiting up to `timeout`.
    /// Throws `.readTimedOut`, `.disconnected`, `.closed`. Allocates the returned array.
    public func read(upTo maxCount: Int, timeout: Duration) throws(DeviceIOError) -> [UInt8] {
        let deadline = KernelClock.now() + timeout
        var result = [UInt8](repeating: 0, count: max(1, maxCount))
        let count = try withMutableRawBytes(of: &result) { buffer throws(DeviceIOError) -> Int in
            try descriptor.read(into: buffer, deadline: deadline, timeout: timeout)
        }
        result.removeSubrange(count...)
        return result
    }

    /// Reads exactly `count` bytes, waiting until `timeout` from now for all of them.
    /// Throws `.readTimedOut` if they do not all arrive in time (the bytes read so far are lost).
    public func read(exactly count: Int, timeout: Duration) throws(DeviceIOError) -> [UInt8] {
        let deadline = KernelClock.now() + timeout
        var result = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            filled += try withMutableRawBytes(of: &result) { buffer throws(DeviceIOError) -> Int in
                try descriptor.read(
                    into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]), deadline: deadline, timeout: timeout)
            }
        }
        return result
    }

    /// Writes all of `bytes` before `deadline` (kernel monotonic clock) or throws `.writeTimedOut`
    /// (with how many went out), `.disconnected`, `.closed`. Never allocates: the supervisor's
    /// real-time thread may call it with a pre-encoded frame.
    public func write(_ bytes: UnsafeRawBufferPointer, deadline: MonotonicInstant) throws(DeviceIOError) {
        try descriptor.write(bytes, deadline: deadline)
    }

    /// Writes all of `bytes` within `timeout` from now. See `write(_:deadline:)`.
    public func write(_ bytes: [UInt8], timeout: Duration) throws(DeviceIOError) {
        let deadline = KernelClock.now() + timeout
        try withRawBytes(of: bytes) { raw throws(DeviceIOError) in try descriptor.write(raw, deadline: deadline) }
    }

    /// Discards bytes received but not yet read. Any thread.
    public func discardInput() throws(DeviceIOError) {
        try descriptor.withDescriptor { fd, _ throws(DeviceIOError) in
            guard tcflush(fd, TCIFLUSH) == 0 else { throw .system(path: path, operation: "tcflush", errno: errno) }
        }
    }

    /// Closes the port (releasing the exclusive lock). Idempotent; any thread; calls blocked in
    /// `read`/`write` return `.closed` at once. A USB-serial driver may wait for queued output to
    /// drain (up to its `closing_wait`) before the close completes.
    public func close() {
        if descriptor.close() { Self.logger.debug("closed serial port", metadata: ["path": "\(path)"]) }
    }
}
