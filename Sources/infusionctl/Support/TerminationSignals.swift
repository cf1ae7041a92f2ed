#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// SIGINT (Ctrl-C) and SIGTERM for every `infusionctl` command that must end cleanly when asked to:
/// `run`, `demo`, `calibrate`, `verify`, `devices --watch` and `oximeter`. The one signal mechanism of
/// this executable.
///
/// `install()` installs the handlers synchronously with `sigaction` (`SA_RESTART`): from its return on,
/// neither signal kills the process nor is lost. Call it before the command does or announces anything
/// a signal should interrupt (before a session starts, before a "ready" line). A dispatch signal source
/// is NOT enough on Linux: it needs the signal set to `SIG_IGN`, and libdispatch installs its own handler
/// later, on its manager thread, so a signal arriving in between is silently dropped.
///
/// Delivery: under Swift concurrency on Linux the main thread has left (`dispatch_main`) and every
/// dispatch and pool thread blocks SIGINT and SIGTERM, as does any thread they create; a process with no
/// thread accepting them would leave the signal pending for ever. So the pipe's reader thread unblocks
/// both for itself before `install()` returns: there is always one thread the kernel can deliver to.
///
/// The handler is async-signal-safe: it only stores the first signal's number in a lock-free atomic and
/// writes the number as one byte to a non-blocking, close-on-exec pipe. A thread of its own reads the
/// pipe and calls the listeners registered with `onSignal` (and so resumes `wait()`). The command polls
/// `received`, awaits `wait()`, or registers a listener, whichever suits its loop.
///
/// The pipe and its reader thread stay for the life of the process (so a second Ctrl-C during clean-up
/// is absorbed while the handlers are installed); `restoreDefaults()` puts back `SIG_DFL` for commands
/// that want a late signal to kill them again. Every member may be called from any thread.
enum TerminationSignals {
    /// The signals handled: SIGINT and SIGTERM.
    static let handled: [Int32] = [SIGINT, SIGTERM]

    /// The pipe's write end, used by the handler (-1 until installed).
    private static let writeEnd = Atomic<Int32>(-1)
    /// The first signal received since installation (0: none). Lock-free, so the handler may store it.
    private static let first = Atomic<Int32>(0)
    /// The pipe's read end (-1 until the pipe exists), the listeners and what the reader has delivered.
    private static let state = Mutex(State())

    private struct State {
        var readEnd: Int32 = -1
        var listeners: [Int: @Sendable (Int32) -> Void] = [:]
        var nextID = 0
        /// The last signal the reader thread has handed to the listeners (0: none yet).
        var delivered: Int32 = 0
    }

    /// Why the handlers could not be installed, and what to do.
    struct Unavailable: Error, CustomStringConvertible {
        let errno: Int32
        var description: String {
            "cannot catch Ctrl-C and SIGTERM: pipe failed (\(String(cString: strerror(errno)))): close other programs' files, or raise the open-file limit"
        }
    }

    /// Installs the handlers for SIGINT and SIGTERM (again after `restoreDefaults()`); creates the pipe
    /// and starts its reader thread the first time. Throws, with nothing installed, when the pipe cannot
    /// be created.
    static func install() throws(Unavailable) {
        try state.withLock { (state: inout State) throws(Unavailable) in
            var newReader: Int32?
            if state.readEnd < 0 {
                var ends: [Int32] = [-1, -1]
                // (Glibc does not export pipe2 to Swift. Close-on-exec is set before anything is spawned:
                // every command installs before it starts a child.)
                guard pipe(&ends) == 0 else { throw Unavailable(errno: errno) }
                _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
                _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
                _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)  // the handler never blocks
                // Touch the atomics before a handler can run: a static's first use may not be in a handler.
                _ = first.load(ordering: .relaxed)
                writeEnd.store(ends[1], ordering: .releasing)
                state.readEnd = ends[0]
                newReader = ends[0]
            }
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                let saved = errno
                _ = TerminationSignals.first.compareExchange(expected: 0, desired: number, ordering: .relaxed)
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(TerminationSignals.writeEnd.load(ordering: .acquiring), &byte, 1)
                errno = saved
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            for number in handled { sigaction(number, &action, nil) }
            // Only now, with the handlers in place, may a signal pending since before be delivered.
            if let newReader { startReader(newReader) }
        }
    }

    /// Puts back the default action (terminate) for SIGINT and SIGTERM. What was received stays received.
    static func restoreDefaults() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = SIG_DFL
        sigemptyset(&action.sa_mask)
        for number in handled { sigaction(number, &action, nil) }
    }

    /// The first signal received since `install()` (SIGINT or SIGTERM), or nil. For polling loops.
    static var received: Int32? {
        let value = first.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }

    /// A person-readable name: "SIGINT (Ctrl-C)" or "SIGTERM".
    static func name(of number: Int32) -> String {
        switch number {
        case SIGINT: "SIGINT (Ctrl-C)"
        case SIGTERM: "SIGTERM"
        default: "signal \(number)"
        }
    }

    /// A listener registered with `onSignal`; `cancel()` removes it (idempotent).
    struct Registration: Sendable {
        fileprivate let id: Int
        /// Stops calling the listener. A call already under way completes.
        func cancel() { _ = TerminationSignals.state.withLock { $0.listeners.removeValue(forKey: id) } }
    }

    /// Calls `listener` with the signal's number on the signals' reader thread for every SIGINT or SIGTERM
    /// that arrives from now on, and at once (on the calling thread) when one was already delivered
    /// before this call, so a signal that came before the registration is never missed. `install()` must
    /// have been called. The listener must not block for long (it holds up later signals).
    @discardableResult
    static func onSignal(_ listener: @escaping @Sendable (Int32) -> Void) -> Registration {
        let (id, already) = state.withLock { state -> (Int, Int32) in
            let id = state.nextID
            state.nextID += 1
            state.listeners[id] = listener
            return (id, state.delivered)
        }
        if already != 0 { listener(already) }
        return Registration(id: id)
    }

    /// Returns the first signal received since `install()` (which it calls first, in case the caller did
    /// not), at once if one already arrived. When the handlers cannot be installed it says so on standard
    /// error and returns nil at once.
    static func wait() async -> Int32? {
        do throws(Unavailable) {
            try install()
        } catch {
            Output.error("\(error)")
            return nil
        }
        let resumed = Atomic<Bool>(false)
        let registration = Mutex<Registration?>(nil)
        let number = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            let made = onSignal { _ in
                guard !resumed.exchange(true, ordering: .acquiringAndReleasing) else { return }
                continuation.resume(returning: TerminationSignals.received ?? SIGTERM)
            }
            registration.withLock { $0 = made }
        }
        registration.withLock { $0?.cancel() }
        return number
    }

    /// Reads the pipe until the process ends, handing each signal to the listeners. Returns once the
    /// thread runs with SIGINT and SIGTERM unblocked.
    private static func startReader(_ fd: Int32) {
        let unblocked = DispatchSemaphore(value: 0)
        let thread = Thread {
            var set = sigset_t()
            sigemptyset(&set)
            for number in handled { sigaddset(&set, number) }
            _ = pthread_sigmask(SIG_UNBLOCK, &set, nil)
            unblocked.signal()
            var byte: UInt8 = 0
            while true {
                let count = read(fd, &byte, 1)
                if count < 0 && errno == EINTR { continue }
                guard count == 1 else { return }  // cannot happen: the write end is never closed
                let number = Int32(byte)
                let listeners = state.withLock { state -> [@Sendable (Int32) -> Void] in
                    state.delivered = number
                    return Array(state.listeners.values)
                }
                for listener in listeners { listener(number) }
            }
        }
        thread.name = "infusionctl signals"
        thread.start()
        unblocked.wait()
    }
}
