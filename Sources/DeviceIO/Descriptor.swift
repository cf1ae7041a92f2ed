import CDeviceIOSupport
import Glibc
import InfusionCore
import Synchronization

/// Deadlines for real file descriptors are instants on the kernel's monotonic clock
/// (`SystemMonotonicClock`): `poll` sleeps in real time, so a virtual clock cannot drive it.
/// Virtual-time tests use `InMemoryLink` instead, which takes its time from the injected clock.
enum KernelClock {
    /// Now, on `CLOCK_MONOTONIC`. No allocation.
    static func now() -> MonotonicInstant { SystemMonotonicClock().now() }
}

/// An open file descriptor shared by several threads, with a close that cannot race with a use.
///
/// Ownership: this object owns `fd` from `init` until `close()` (or `deinit`) closes it exactly once.
/// Every use runs inside `withDescriptor`, under a read lock; `close()` first marks the descriptor
/// closed and makes the wake pipe readable (so every thread waiting in `poll` here returns at once
/// with `.closed`), then takes the write lock, so the number is never closed while a call is using
/// it and never reused under a running call.
///
/// Thread rules: every method may be called from any thread. `read` and `write` do not allocate
/// (the real-time supervisor thread writes its stop frame through `write`).
final class ManagedDescriptor: @unchecked Sendable {
    /// The descriptor; valid only inside `withDescriptor`.
    let fd: Int32
    /// The device path, for error messages.
    let path: String
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    private let closedFlag = Atomic<Bool>(false)
    private let beforeClose: (@Sendable (Int32) -> Void)?

    /// Takes ownership of `fd` (also on failure: it is closed then). `beforeClose` runs once with
    /// the descriptor just before it is closed (e.g. to drop the exclusive-use flag).
    init(fd: Int32, path: String, beforeClose: (@Sendable (Int32) -> Void)? = nil) throws(DeviceIOError) {
        var pipeEnds: (Int32, Int32) = (-1, -1)
        let result = withUnsafeMutablePointer(to: &pipeEnds) {
            $0.withMemoryRebound(to: Int32.self, capacity: 2) { infusion_pipe2($0, O_CLOEXEC | O_NONBLOCK) }
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            throw .system(path: path, operation: "pipe2 (wake-up pipe)", errno: code)
        }
        self.fd = fd
        self.path = path
        self.beforeClose = beforeClose
        self.wakeRead = pipeEnds.0
        self.wakeWrite = pipeEnds.1
        lock = .allocate(capacity: 1)
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        close()
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    /// True once `close()` has been called.
    var isClosed: Bool { closedFlag.load(ordering: .acquiring) }

    /// Runs `body` with the descriptor and the wake pipe's read end, guaranteeing both stay open
    /// until `body` returns. Throws `.closed` when the descriptor is already closed.
    func withDescriptor<R>(_ body: (_ fd: Int32, _ wake: Int32) throws(DeviceIOError) -> R) throws(DeviceIOError) -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        guard !closedFlag.load(ordering: .acquiring) else { throw .closed(path: path) }
        return try body(fd, wakeRead)
    }

    /// Closes the descriptor once; later calls do nothing. Wakes every thread blocked in a wait on
    /// this descriptor (they throw `.closed`), then waits for the calls in progress to leave.
    /// Returns true for the call that closed it.
    @discardableResult
    func close() -> Bool {
        guard !closedFlag.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        var one: UInt8 = 1
        _ = Glibc.write(wakeWrite, &one, 1)
        pthread_rwlock_wrlock(lock)
        beforeClose?(fd)
        Glibc.close(fd)
        Glibc.close(wakeRead)
        Glibc.close(wakeWrite)
        pthread_rwlock_unlock(lock)
        return true
    }

    /// Waits until `fd` reports one of `events` (or a hang-up or error, which `poll` always reports),
    /// until `deadline` (nil: no deadline). Returns the descriptor's `revents`, or nil when the
    /// deadline passed first. Throws `.closed` when `close()` was called meanwhile. EINTR is retried
    /// with the remaining time. Call only inside `withDescriptor`. No allocation.
    static func wait(fd: Int32, wake: Int32, events: Int32, deadline: MonotonicInstant?, path: String)
        throws(DeviceIOError) -> Int16?
    {
        while true {
            var timeout: Int32 = -1
            if let deadline {
                let remaining = deadline.nanoseconds &- KernelClock.now().nanoseconds
                if remaining <= 0 { return nil }
                // Round up so poll never returns before the deadline.
                timeout = Int32(clamping: (remaining + 999_999) / 1_000_000)
            }
            var fds = (
                pollfd(fd: fd, events: Int16(truncatingIfNeeded: events), revents: 0),
                pollfd(fd: wake, events: Int16(POLLIN), revents: 0)
            )
            let ready = withUnsafeMutablePointer(to: &fds) {
                $0.withMemoryRebound(to: pollfd.self, capacity: 2) { poll($0, 2, timeout) }
            }
            if ready < 0 {
                let code = errno
                if code == EINTR { continue }
                throw .system(path: path, operation: "poll", errno: code)
            }
            if fds.1.revents != 0 { throw .closed(path: path) }
            if ready == 0 { continue }  // the loop re-checks the deadline
            if fds.0.revents & Int16(POLLNVAL) != 0 {
                throw .system(path: path, operation: "poll", errno: EBADF)
            }
            return fds.0.revents
        }
    }

    /// Reads at least one byte into `buffer`, waiting with `poll` until `deadline` (nil: forever).
    /// Returns the number of bytes read (at most `buffer.count`). Throws `.readTimedOut` when nothing
    /// arrived in time, `.disconnected` on hang-up (`POLLHUP`, `EIO`, a read of 0), `.closed` when
    /// closed meanwhile. EINTR is retried. No allocation.
    /// `timeout` is only what a `.readTimedOut` error reports (default: the time from the call to
    /// the deadline).
    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: MonotonicInstant?, timeout: Duration? = nil)
        throws(DeviceIOError) -> Int
    {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let reported = timeout ?? deadline.map { $0 - KernelClock.now() } ?? .zero
        return try withDescriptor { fd, wake throws(DeviceIOError) -> Int in
            var sawHangUp = false
            while true {
                let count = Glibc.read(fd, base, buffer.count)
                if count > 0 { return count }
                if count == 0 { throw .disconnected(path: path) }
                let code = errno
                switch code {
                case EINTR:
                    continue
                case EAGAIN:
                    // A hang-up that still reads as "no data" must not turn into a busy loop.
                    if sawHangUp { throw .disconnected(path: path) }
                    guard let revents = try Self.wait(fd: fd, wake: wake, events: POLLIN, deadline: deadline, path: path)
                    else {
                        throw .readTimedOut(path: path, after: reported)
                    }
                    if revents & Int16(POLLHUP | POLLERR) != 0 { sawHangUp = true }
                case EIO, ENXIO, ENODEV, EPIPE:
                    throw .disconnected(path: path)
                default:
                    throw .system(path: path, operation: "read", errno: code)
                }
            }
        }
    }

    /// Writes all of `bytes`, waiting with `poll` for room until `deadline` (nil: forever). Partial
    /// writes continue where they stopped. Throws `.writeTimedOut` (with the count that went out),
    /// `.disconnected` on hang-up, `.closed` when closed meanwhile. EINTR is retried. No allocation.
    func write(_ bytes: UnsafeRawBufferPointer, deadline: MonotonicInstant?) throws(DeviceIOError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try withDescriptor { fd, wake throws(DeviceIOError) in
            var offset = 0
            while offset < bytes.count {
                let count = Glibc.write(fd, base + offset, bytes.count - offset)
                if count > 0 {
                    offset += count
                    continue
                }
                let code = count == 0 ? EAGAIN : errno
                switch code {
                case EINTR:
                    continue
                case EAGAIN:
                    guard let revents = try Self.wait(fd: fd, wake: wake, events: POLLOUT, deadline: deadline, path: path)
                    else {
                        throw .writeTimedOut(path: path, written: offset, total: bytes.count)
                    }
                    // Still no room and the other side is gone (e.g. a pty master whose slave closed
                    // with a full queue): waiting cannot help, and retrying would spin.
                    if revents & Int16(POLLHUP | POLLERR) != 0 { throw .disconnected(path: path) }
                case EIO, EPIPE, ENXIO, ENODEV:
                    throw .disconnected(path: path)
                default:
                    throw .system(path: path, operation: "write", errno: code)
                }
            }
        }
    }
}

/// `pipe2(fds, O_CLOEXEC | O_NONBLOCK)`: 0, or -1 with errno.
func infusionPipe(_ fds: UnsafeMutablePointer<Int32>) -> Int32 { infusion_pipe2(fds, O_CLOEXEC | O_NONBLOCK) }

/// Calls `body` with the bytes of `array` in place (no copy, no allocation), keeping the typed error.
func withRawBytes<R>(of array: [UInt8], _ body: (UnsafeRawBufferPointer) throws(DeviceIOError) -> R)
    throws(DeviceIOError) -> R
{
    let result = array.withUnsafeBytes { raw in Result { () throws(DeviceIOError) -> R in try body(raw) } }
    return try result.get()
}

/// Calls `body` with the mutable bytes of `array` in place, keeping the typed error.
func withMutableRawBytes<R>(of array: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(DeviceIOError) -> R)
    throws(DeviceIOError) -> R
{
    let result = array.withUnsafeMutableBytes { raw in Result { () throws(DeviceIOError) -> R in try body(raw) } }
    return try result.get()
}

/// A joinable POSIX thread running one closure, for the per-link reader and the monitor loops.
///
/// `join()` is idempotent and may be called from any thread; called on the thread itself it
/// detaches instead (the thread then ends on its own after its closure returns).
final class JoinableThread: Sendable {
    private let handle: pthread_t
    private let finished = Mutex<Bool>(false)

    private final class Body {
        let name: String
        let run: @Sendable () -> Void
        init(name: String, run: @escaping @Sendable () -> Void) {
            self.name = name
            self.run = run
        }
    }

    /// Starts a thread named `name` (at most 15 characters are kept) running `body`.
    init(name: String, body: @escaping @Sendable () -> Void) throws(DeviceIOError) {
        let box = Unmanaged.passRetained(Body(name: name, run: body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let body = Unmanaged<Body>.fromOpaque(raw).takeRetainedValue()
            _ = infusion_set_current_thread_name(body.name)
            body.run()
            return nil
        }, box)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(box).release()
            throw .system(path: name, operation: "pthread_create", errno: result)
        }
        handle = thread
    }

    /// True when called on this thread.
    var isCurrent: Bool { pthread_equal(pthread_self(), handle) != 0 }

    /// Waits for the thread to end (or detaches it when called on the thread itself). Idempotent.
    func join() {
        finished.withLock { done in
            guard !done else { return }
            done = true
            if pthread_equal(pthread_self(), handle) != 0 {
                pthread_detach(handle)
            } else {
                pthread_join(handle, nil)
            }
        }
    }

    deinit { join() }
}
