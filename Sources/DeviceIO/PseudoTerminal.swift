import CDeviceIOSupport
import Glibc
import InfusionCore
import Logging

/// A pseudo-terminal pair for the simulators: the simulator holds the master side, and a driver opens
/// `slavePath` with `SerialPort` exactly as it would open a real adapter.
///
/// Creation: `infusion_posix_openpt(O_RDWR | O_NOCTTY)`, `grantpt`, `unlockpt`, `ptsname_r`; raw mode is set
/// on the slave's line discipline through the master (no echo, no line editing, no CR/LF
/// translation; the master side is raw by the kernel's default), and the slave is opened once to
/// check it works. A pty ignores baud rate and parity: a simulator enforces the device's timing itself.
///
/// Peer presence (Linux semantics): while no process has the slave open, the master reports
/// `POLLHUP` and its reads fail with `EIO` ("peer gone"); when a driver opens the slave again the
/// hang-up clears and the same pair works again. A fresh pair starts in the "no peer" state.
/// Detecting a re-open:
/// - a `DescriptorLink` over the master does it for you: it reports `.peerDisconnected` and
///   `.peerConnected` events (it waits for the slave's `IN_OPEN` through inotify, no polling);
/// - or read `isSlaveOpen` (a zero-timeout `poll` for `POLLHUP`);
/// - or create the pair with `holdSlaveOpen: true`: this object then keeps one slave descriptor
///   open itself, so the master never sees a hang-up at all (and cannot see the driver leave).
/// Bytes written to the master while no driver has the slave open wait in the slave's input queue;
/// `SerialPort` discards them when it opens, as stale input from before the open.
///
/// Ownership and threads: this object owns the master descriptor (and the held slave descriptor)
/// until `close()` or deinit; closing hangs up the slave side (the driver's reads see `.disconnected`).
/// All methods may be called from any thread; `close()` wakes blocked calls (they throw `.closed`).
public final class PseudoTerminal: Sendable, CustomStringConvertible {
    /// The slave device path, e.g. `/dev/pts/3`: give it to the driver.
    public let slavePath: String
    let master: ManagedDescriptor
    private let heldSlave: ManagedDescriptor?
    private static let logger = Logger(label: "infusion.deviceio.pty")

    /// Creates a pair in raw mode. With `holdSlaveOpen`, keeps one slave descriptor open for the
    /// pair's lifetime (see the type's description). Any thread.
    public init(holdSlaveOpen: Bool = false) throws(DeviceIOError) {
        let fd = infusion_posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw .system(path: "/dev/ptmx", operation: "posix_openpt", errno: errno) }
        func fail(_ operation: String, _ code: Int32) -> DeviceIOError {
            Glibc.close(fd)
            return .system(path: "/dev/ptmx", operation: operation, errno: code)
        }
        guard infusion_grantpt(fd) == 0 else { throw fail("grantpt", errno) }
        guard infusion_unlockpt(fd) == 0 else { throw fail("unlockpt", errno) }
        var name = [CChar](repeating: 0, count: 128)
        let nameResult = infusion_ptsname_r(fd, &name, name.count)
        guard nameResult == 0 else { throw fail("ptsname_r", nameResult) }
        let path = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // On Linux, termios requests on the master apply to the slave's line discipline.
        var t = termios()
        guard tcgetattr(fd, &t) == 0 else { throw fail("tcgetattr", errno) }
        Self.makeRaw(&t)
        guard tcsetattr(fd, TCSANOW, &t) == 0 else { throw fail("tcsetattr", errno) }

        let slave = Glibc.open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard slave >= 0 else { throw fail("open \(path)", errno) }
        var slaveTermios = termios()
        if tcgetattr(slave, &slaveTermios) == 0 {
            Self.makeRaw(&slaveTermios)
            _ = tcsetattr(slave, TCSANOW, &slaveTermios)
        }
        let held: ManagedDescriptor?
        if holdSlaveOpen {
            do throws(DeviceIOError) {
                held = try ManagedDescriptor(fd: slave, path: path)
            } catch {
                Glibc.close(fd)
                throw error
            }
        } else {
            Glibc.close(slave)  // the master now reports "no peer" until a driver opens the slave
            held = nil
        }
        slavePath = path
        heldSlave = held
        do throws(DeviceIOError) {
            master = try ManagedDescriptor(fd: fd, path: "pty master of \(path)")
        } catch {
            held?.close()
            throw error
        }
        Self.logger.debug("created pseudo-terminal", metadata: ["slave": "\(path)"])
    }

    private static func makeRaw(_ t: inout termios) {
        cfmakeraw(&t)
        t.c_cflag |= tcflag_t(CLOCAL | CREAD)
        withUnsafeMutableBytes(of: &t.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
    }

    /// A short human-readable form, for logs and listings.
    public var description: String { "pseudo-terminal \(slavePath)" }

    /// True while at least one process (a driver, or this object with `holdSlaveOpen`) has the slave
    /// open: the master shows no `POLLHUP`. False once closed. Any thread; does not block.
    public var isSlaveOpen: Bool {
        (try? master.withDescriptor { fd, _ throws(DeviceIOError) -> Bool in
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 0) >= 0 else { return false }
            return p.revents & Int16(POLLHUP) == 0
        }) ?? false
    }

    /// True once `close()` was called (here or by a link that took the master over).
    public var isClosed: Bool { master.isClosed }

    /// Reads at least one byte the driver wrote, waiting until `deadline` (kernel monotonic clock).
    /// Throws `.readTimedOut`, `.disconnected` when no process has the slave open ("peer gone"),
    /// `.closed`. Never allocates.
    public func read(into buffer: UnsafeMutableRawBufferPointer, deadline: MonotonicInstant) throws(DeviceIOError) -> Int {
        try master.read(into: buffer, deadline: deadline)
    }

    /// Reads at least one and at most `maxCount` bytes, waiting up to `timeout`. See `read(into:deadline:)`.
    public func read(upTo maxCount: Int, timeout: Duration) throws(DeviceIOError) -> [UInt8] {
        let deadline = KernelClock.now() + timeout
        var result = [UInt8](repeating: 0, count: max(1, maxCount))
        let count = try withMutableRawBytes(of: &result) { buffer throws(DeviceIOError) -> Int in
            try master.read(into: buffer, deadline: deadline, timeout: timeout)
        }
        result.removeSubrange(count...)
        return result
    }

    /// Writes all of `bytes` to the driver before `deadline`, or throws `.writeTimedOut`, `.closed`.
    /// While no driver has the slave open the bytes queue in the slave's input (up to about 4 KiB).
    /// Never allocates.
    public func write(_ bytes: UnsafeRawBufferPointer, deadline: MonotonicInstant) throws(DeviceIOError) {
        try master.write(bytes, deadline: deadline)
    }

    /// Writes all of `bytes` within `timeout`. See `write(_:deadline:)`.
    public func write(_ bytes: [UInt8], timeout: Duration) throws(DeviceIOError) {
        let deadline = KernelClock.now() + timeout
        try withRawBytes(of: bytes) { raw throws(DeviceIOError) in try master.write(raw, deadline: deadline) }
    }

    /// Closes the master (and the held slave descriptor): the driver's side hangs up (its poll
    /// reports `POLLHUP`, its reads return 0 and it gets `.disconnected`). Idempotent; any thread.
    public func close() {
        heldSlave?.close()
        if master.close() { Self.logger.debug("closed pseudo-terminal", metadata: ["slave": "\(slavePath)"]) }
    }
}
