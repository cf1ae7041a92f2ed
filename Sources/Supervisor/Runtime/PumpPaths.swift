#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InfusionCore
import Synchronization

/// The result of writing a stop frame.
public enum StopWriteResult: Hashable, Sendable {
    /// Every byte of the frame was written.
    case written
    /// Only part of the frame was written (the link's buffer was full); the driver must finish or
    /// resend it. The supervisor repeats the stop if it is not confirmed in time anyway.
    case partial(written: Int)
    /// The write failed with this errno (link closed, unplugged).
    case failed(errno: Int32)
}

/// The urgent way to a pump: a stop frame encoded IN ADVANCE and written to the pump's link by the
/// supervisor's own thread, so a stop never waits for a driver's queue or thread.
///
/// A driver implements it over its DeviceIO link: encode the family's stop frame (New Era safe-mode
/// `STP`, Alaris stop, Fresenius stop) once when the link opens, keep the bytes and the (non-blocking)
/// file descriptor, and in `sendStop()` do one `write(2)` of those bytes. Confirmation does not come
/// from here: it comes from the pump's reported state in its `PumpStatusCell`.
///
/// Threads: `sendStop()` and `engageSecondaryStop()` are called on the supervisor's real-time thread;
/// they must not allocate, lock, log or block beyond one non-blocking write. Writes from the driver's
/// own thread to the same link must be arranged not to interleave with a stop frame (for example the
/// driver writes whole frames only, and the link is in O_NONBLOCK mode with a frame smaller than
/// PIPE_BUF/the tty buffer).
public protocol PumpStopPath: AnyObject, Sendable {
    /// Writes the pre-encoded stop frame now. No allocation, no lock, no blocking.
    func sendStop() -> StopWriteResult
    /// The secondary stop (R-MON-09 escalation): for example drop a hardware enable line, or stop the
    /// keep-alives so the pump's own communication watchdog stops it. Same threading rules.
    func engageSecondaryStop()
}

/// The non-urgent way to a pump: starts and rate changes, handed to the driver's own thread.
///
/// Threads: `submit` is called on the supervisor's real-time thread and must return at once without
/// allocating or locking (push into an `SPSCRing` such as `PumpCommandMailbox` and signal the driver).
public protocol PumpCommandSink: AnyObject, Sendable {
    /// Hands `command` (never `.stop`: that goes through `PumpStopPath`) to the driver.
    func submit(_ command: PumpCommand, at: MonotonicInstant)
}

/// A ready-made `PumpCommandSink`: a bounded lock-free queue the driver's thread drains
/// (`next()`), plus an optional eventfd the driver can poll to learn that a command is waiting.
public final class PumpCommandMailbox: PumpCommandSink {
    private let ring: SPSCRing<TimedPumpCommand>
    /// Signalled after each submission (poll it for POLLIN), when one was given.
    public let wakeup: Wakeup?

    /// A mailbox for up to `capacity` commands (more are dropped and counted).
    public init(capacity: Int = 64, wakeup: Wakeup? = nil) {
        ring = SPSCRing(minimumCapacity: capacity)
        self.wakeup = wakeup
    }

    /// Supervisor thread. Queues `command`.
    public func submit(_ command: PumpCommand, at: MonotonicInstant) {
        ring.push(TimedPumpCommand(command: command, at: at))
        wakeup?.signal()
    }

    /// Driver thread (the single consumer). The oldest queued command, or nil.
    public func next() -> TimedPumpCommand? { ring.pop() }

    /// Commands dropped because the driver did not keep up.
    public var dropped: Int { ring.dropped }
}

/// A pump command with the time the supervisor decided it.
public struct TimedPumpCommand: Hashable, Sendable {
    /// The command.
    public let command: PumpCommand
    /// When the supervisor decided it.
    public let at: MonotonicInstant

    /// `command`, decided at `at`.
    public init(command: PumpCommand, at: MonotonicInstant) {
        self.command = command
        self.at = at
    }
}

/// A `PumpStopPath` that writes a pre-encoded frame to a file descriptor with one `write(2)`. Useful as
/// it is for a link the caller owns (a pty, a pipe in tests); drivers may wrap their DeviceIO link the
/// same way. The frame is copied once into storage allocated by `init`.
///
/// Does NOT own `fileDescriptor`: the caller keeps it open while the runner runs and closes it after.
public final class FileDescriptorStopPath: PumpStopPath, @unchecked Sendable {
    // @unchecked: `frame` is written only in init and freed in deinit; `sendStop` only reads it.
    private let frame: UnsafeMutableRawBufferPointer
    private let secondaryFrame: UnsafeMutableRawBufferPointer?
    /// The descriptor written to (not owned).
    public let fileDescriptor: Int32
    private let sent = Atomic<Int>(0)
    private let secondary = Atomic<Int>(0)

    /// Writes `stopFrame` on `sendStop()`, and `secondaryFrame` (if any) on `engageSecondaryStop()`.
    public init(fileDescriptor: Int32, stopFrame: [UInt8], secondaryFrame: [UInt8]? = nil) {
        self.fileDescriptor = fileDescriptor
        frame = .allocate(byteCount: max(stopFrame.count, 1), alignment: 1)
        frame.copyBytes(from: stopFrame)
        if let secondaryFrame {
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(secondaryFrame.count, 1), alignment: 1)
            b.copyBytes(from: secondaryFrame)
            self.secondaryFrame = b
        } else {
            self.secondaryFrame = nil
        }
        frameLength = stopFrame.count
        secondaryLength = secondaryFrame?.count ?? 0
    }

    private let frameLength: Int
    private let secondaryLength: Int

    deinit {
        frame.deallocate()
        secondaryFrame?.deallocate()
    }

    /// Writes the stop frame with one `write(2)` (retried on EINTR only). Supervisor thread; no allocation.
    public func sendStop() -> StopWriteResult {
        sent.wrappingAdd(1, ordering: .relaxed)
        return Self.write(fileDescriptor, frame.baseAddress, frameLength)
    }

    /// Writes the secondary frame, when one was given; counts the call either way.
    public func engageSecondaryStop() {
        secondary.wrappingAdd(1, ordering: .relaxed)
        if let secondaryFrame { _ = Self.write(fileDescriptor, secondaryFrame.baseAddress, secondaryLength) }
    }

    /// How many times `sendStop()` was called.
    public var stopsSent: Int { sent.load(ordering: .relaxed) }
    /// How many times `engageSecondaryStop()` was called.
    public var secondaryStops: Int { secondary.load(ordering: .relaxed) }

    private static func write(_ fd: Int32, _ bytes: UnsafeMutableRawPointer?, _ count: Int) -> StopWriteResult {
        guard let bytes else { return .failed(errno: EINVAL) }
        var n: Int
        repeat { n = systemWrite(fd, bytes, count) } while n < 0 && errno == EINTR
        if n == count { return .written }
        if n < 0 { return .failed(errno: errno) }
        return .partial(written: n)
    }
}

private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, bytes, count)
    #else
    Darwin.write(fd, bytes, count)
    #endif
}
