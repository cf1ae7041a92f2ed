import Dispatch
import Foundation
import Glibc
import InfusionCore
import Synchronization
import Testing

@testable import DeviceIO

/// How many times the tests' SIGUSR1 handler has run. The handler only counts (a lock-free atomic:
/// async-signal-safe).
private let handledInterrupts = Atomic<Int>(0)

/// Set when a signal was sent but its handler was not seen to run: it may still be pending, so the
/// default action (terminate the test process) must not be restored.
private let interruptMayBePending = Atomic<Bool>(false)

/// Runs `body` with a no-op SIGUSR1 handler installed WITHOUT `SA_RESTART`, so that a SIGUSR1 sent to
/// a thread blocked in `poll`, `read` or `write` makes that call fail with `EINTR` (as a profiler's,
/// a debugger's or a library's signal would in production). Restores the previous handler afterwards,
/// unless a signal might still be pending (then the no-op handler stays, and the test fails).
private func withInterruptHandler(_ body: () throws -> Void) throws {
    _ = handledInterrupts.load(ordering: .relaxed)  // initialise the globals before the handler can run
    interruptMayBePending.store(false, ordering: .relaxed)
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in _ = handledInterrupts.wrappingAdd(1, ordering: .relaxed) }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0  // no SA_RESTART: interrupted calls fail with EINTR
    var previous = sigaction()
    try #require(sigaction(SIGUSR1, &action, &previous) == 0, "sigaction: errno \(errno)")
    defer {
        if interruptMayBePending.load(ordering: .acquiring) {
            Issue.record("a SIGUSR1 was not handled within 1 s; the no-op handler stays installed")
        } else {
            sigaction(SIGUSR1, &previous, nil)
        }
    }
    try body()
}

/// Sends SIGUSR1 to `thread` and waits until the handler has run (at most 1 s), so that signals are
/// never merged while pending and none is left pending afterwards. Returns false when the handler
/// did not run in time.
@discardableResult
private func interrupt(_ thread: pthread_t) -> Bool {
    let before = handledInterrupts.load(ordering: .acquiring)
    guard pthread_kill(thread, SIGUSR1) == 0 else { return false }
    let deadline = SystemMonotonicClock().now() + .seconds(1)
    while handledInterrupts.load(ordering: .acquiring) == before {
        if SystemMonotonicClock().now() > deadline {
            interruptMayBePending.store(true, ordering: .releasing)
            return false
        }
        pause(.microseconds(100))
    }
    return true
}

/// Unblocks SIGUSR1 on the calling thread. The test runner's threads block most signals, and a new
/// thread inherits the mask of the thread that creates it.
private func unblockInterrupts() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGUSR1)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}

/// Runs `body` on its own thread, with SIGUSR1 unblocked, which stays alive until `finish()` (after
/// `body` returns it waits), so the test can signal it at any time before that without racing with its
/// exit. Threads that `body` creates (a link's reader) inherit the unblocked mask.
private final class SignalTarget<T: Sendable>: Sendable {
    private let handle = Mutex<pthread_t?>(nil)
    private let result = Mutex<T?>(nil)
    private let started = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private let release = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> T) {
        let thread = Thread { [self] in
            unblockInterrupts()
            handle.withLock { $0 = pthread_self() }
            started.signal()
            let value = body()
            result.withLock { $0 = value }
            done.signal()
            release.wait()
        }
        thread.start()
        started.wait()
    }

    /// The thread, valid until `finish()`.
    var thread: pthread_t { handle.withLock { $0 } ?? pthread_self() }

    /// True once `body` has returned.
    var isFinished: Bool { result.withLock { $0 != nil } }

    /// What `body` returned, or nil when it has not returned within `timeout`.
    func value(timeout: Duration) -> T? {
        guard done.wait(timeout: .now() + .nanoseconds(Int(timeout.nanoseconds))) == .success else { return nil }
        done.signal()
        return result.withLock { $0 }
    }

    /// Lets the thread end (once `body` has returned). Signal it no more after this.
    func finish() { release.signal() }
}

/// Starts `link` from a thread with SIGUSR1 unblocked, so that its reader thread (which inherits the
/// mask) can be interrupted. The handler records `thread` (the reader's) and passes events to `recorder`.
private func startInterruptible(_ link: DescriptorLink, recorder: EventRecorder, thread: ThreadSlot) -> Outcome<Bool>? {
    let record = recorder.handler
    let starter = SignalTarget {
        Outcome { () throws(DeviceIOError) -> Bool in
            try link.start { event in
                thread.capture()
                record(event)
            }
            return true
        }
    }
    defer { starter.finish() }
    return starter.value(timeout: .seconds(5))
}

/// The reader thread of a link, captured by its handler (which runs on it).
private final class ThreadSlot: Sendable {
    private let slot = Mutex<pthread_t?>(nil)
    func capture() { slot.withLock { $0 = $0 ?? pthread_self() } }
    var thread: pthread_t? { slot.withLock { $0 } }
}

/// EINTR: a signal landing on a thread blocked in DeviceIO must neither fail the call nor stretch its
/// deadline. Serialised: the tests share the process-wide SIGUSR1 handler.
@Suite("Interrupted system calls (EINTR) are retried", .serialized)
struct InterruptedCallTests {
    @Test("the harness itself: the no-op handler without SA_RESTART makes a blocked poll fail with EINTR")
    func harnessInterruptsPoll() throws {
        try withInterruptHandler {
            var ends: (Int32, Int32) = (-1, -1)
            let made = withUnsafeMutablePointer(to: &ends) { $0.withMemoryRebound(to: Int32.self, capacity: 2) { pipe($0) } }
            try #require(made == 0)
            defer {
                close(ends.0)
                close(ends.1)
            }
            let readEnd = ends.0
            let poller = SignalTarget { () -> (Int32, Int32) in
                var p = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
                let result = poll(&p, 1, 5000)
                return (result, errno)
            }
            defer { poller.finish() }
            pause(.milliseconds(50))  // let it block in poll
            #expect(interrupt(poller.thread))
            let outcome = poller.value(timeout: .seconds(2))
            #expect(outcome?.0 == -1)
            #expect(outcome?.1 == EINTR)
        }
    }

    @Test("a read waiting for bytes is interrupted five times and still returns them")
    func readSurvivesInterrupts() throws {
        try withInterruptHandler {
            let pty = try PseudoTerminal()
            defer { pty.close() }
            let port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
            defer { port.close() }
            let reader = SignalTarget { Outcome { () throws(DeviceIOError) in try port.read(exactly: 3, timeout: .seconds(5)) } }
            defer { reader.finish() }
            pause(.milliseconds(30))  // let the reader block in poll
            var handled = 0
            for _ in 0..<5 {
                if interrupt(reader.thread) { handled += 1 }
                pause(.milliseconds(10))
            }
            #expect(handled == 5)
            #expect(!reader.isFinished, "the read returned on a signal: \(String(describing: reader.value(timeout: .zero)))")
            try pty.write([0x41, 0x42, 0x43], timeout: .seconds(1))
            #expect(reader.value(timeout: .seconds(2)) == .success([0x41, 0x42, 0x43]))
        }
    }

    @Test("a read interrupted every 10 ms keeps its deadline: it times out then, not earlier and not much later")
    func readDeadlineSurvivesInterrupts() throws {
        try withInterruptHandler {
            let pty = try PseudoTerminal()
            defer { pty.close() }
            let port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
            defer { port.close() }
            let timeout = Duration.milliseconds(300)
            let started = SystemMonotonicClock().now()
            let reader = SignalTarget {
                measure { Outcome { () throws(DeviceIOError) in try port.read(upTo: 16, timeout: timeout) } }
            }
            defer { reader.finish() }
            // Interrupt for the first 200 ms only: a retry that restarted the full 300 ms wait after the
            // last signal would end near 500 ms; one that keeps the deadline ends at 300 ms.
            var handled = 0
            while !reader.isFinished && SystemMonotonicClock().now() - started < .milliseconds(200) {
                if interrupt(reader.thread) { handled += 1 }
                pause(.milliseconds(10))
            }
            #expect(handled >= 5, "only \(handled) signals landed during the read")
            let result = try #require(reader.value(timeout: .seconds(2)))
            #expect(result.0 == .failure(.readTimedOut(path: pty.slavePath, after: timeout)))
            #expect(result.1 >= timeout)
            #expect(result.1 < timeout + .milliseconds(150), "timed out after \(result.1) with a \(timeout) deadline")
        }
    }

    @Test("a write waiting for room is interrupted five times and still delivers every byte")
    func writeSurvivesInterrupts() throws {
        try withInterruptHandler {
            let pty = try PseudoTerminal()
            defer { pty.close() }
            let port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
            defer { port.close() }
            let data = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
            let writer = SignalTarget { Outcome { () throws(DeviceIOError) -> Bool in
                try port.write(data, timeout: .seconds(10))
                return true
            } }
            defer { writer.finish() }
            pause(.milliseconds(50))
            try #require(!writer.isFinished, "1 MiB should not fit in the pty's queue: the write must block")
            var handled = 0
            for _ in 0..<5 {
                if interrupt(writer.thread) { handled += 1 }
                pause(.milliseconds(10))
            }
            #expect(handled == 5)
            #expect(!writer.isFinished, "the write returned on a signal: \(String(describing: writer.value(timeout: .zero)))")
            var received: [UInt8] = []
            received.reserveCapacity(data.count)
            let deadline = SystemMonotonicClock().now() + .seconds(10)
            while received.count < data.count && SystemMonotonicClock().now() < deadline {
                received += try pty.read(upTo: 65536, timeout: .seconds(2))
            }
            #expect(received.count == data.count)
            #expect(received == data)
            #expect(writer.value(timeout: .seconds(2)) == .success(true))
        }
    }

    @Test("a link's reader thread, interrupted five times while waiting, still delivers the next bytes")
    func linkReaderSurvivesInterrupts() throws {
        try withInterruptHandler {
            let pty = try PseudoTerminal()
            defer { pty.close() }
            let link = DescriptorLink(port: try SerialPort(path: pty.slavePath, settings: .newEra19200), clock: SystemMonotonicClock())
            defer { link.close() }
            let recorder = EventRecorder()
            let reader = ThreadSlot()
            #expect(startInterruptible(link, recorder: recorder, thread: reader) == .success(true))
            try pty.write([1], timeout: .seconds(1))
            try #require(recorder.waitForBytes(1))
            let thread = try #require(reader.thread)
            pause(.milliseconds(20))  // back in poll
            var handled = 0
            for _ in 0..<5 {
                if interrupt(thread) { handled += 1 }
                pause(.milliseconds(10))
            }
            #expect(handled == 5)
            try pty.write([2, 3, 4], timeout: .seconds(1))
            #expect(recorder.waitForBytes(4, timeout: .seconds(2)))
            #expect(recorder.receivedBytes == [1, 2, 3, 4])
            #expect(!recorder.snapshot.contains { $0.isTerminal }, "\(recorder.snapshot)")
        }
    }

    @Test("a pty link waiting for its driver to come back, interrupted five times, still sees it return")
    func linkPeerWaitSurvivesInterrupts() throws {
        try withInterruptHandler {
            let pty = try PseudoTerminal()
            let link = DescriptorLink(pseudoTerminal: pty, clock: SystemMonotonicClock())
            defer { link.close() }
            let recorder = EventRecorder()
            let reader = ThreadSlot()
            #expect(startInterruptible(link, recorder: recorder, thread: reader) == .success(true))
            var port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
            try #require(recorder.wait { $0.contains { $0.isPeerConnected } })
            port.close()
            try #require(recorder.wait { $0.contains { $0.isPeerDisconnected } })
            let thread = try #require(reader.thread)
            pause(.milliseconds(20))  // waiting for the driver
            var handled = 0
            for _ in 0..<5 {
                if interrupt(thread) { handled += 1 }
                pause(.milliseconds(10))
            }
            #expect(handled == 5)
            #expect(!recorder.snapshot.contains { $0.isTerminal }, "\(recorder.snapshot)")
            port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
            defer { port.close() }
            #expect(recorder.wait(timeout: .seconds(2)) { $0.filter { $0.isPeerConnected }.count == 2 })
            try port.write([9, 8, 7], timeout: .seconds(1))
            #expect(recorder.waitForBytes(3, timeout: .seconds(2)))
            #expect(recorder.receivedBytes == [9, 8, 7])
            #expect(!recorder.snapshot.contains { $0.isTerminal }, "\(recorder.snapshot)")
        }
    }
}
