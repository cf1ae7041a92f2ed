import Glibc
import InfusionCore
import Logging
import Synchronization

/// A `ByteLink` over a file descriptor: a `SerialPort` (the driver's side, a real adapter or a pty
/// slave) or a `PseudoTerminal` master (the simulator's side).
///
/// Reception: one reader thread per link, blocked in `poll` on the descriptor and a wake-up pipe
/// (over a serial port it runs under `LinkThreadScheduling`'s real-time priority when one is set).
/// When bytes arrive it reads them (up to 4096 at a time), takes the arrival time from the injected
/// clock, and calls the handler on that thread at once. No polling, no timer.
///
/// Hang-up: on a serial port a hang-up (`POLLHUP`, `EIO`, a read of 0) ends the link with
/// `.disconnected`. On a pty master the slave closing is "peer gone": the link reports
/// `.peerDisconnected`, discards what is sent meanwhile, waits (on inotify's `IN_OPEN` for the
/// slave path; a 250 ms re-check covers a missed event, and a 10 ms probe replaces inotify where it
/// is unavailable) and reports `.peerConnected` when a driver opens the slave again.
///
/// Ownership: the link takes over the port or pty and its descriptor: closing the link closes them,
/// and from then on use only the link. Dropping the last reference to the link closes it.
///
/// Thread rules: `send` from any thread (it writes directly, with a deadline of `writeTimeout`,
/// serialised with other senders; no allocation). `close()` from any thread: it wakes the reader,
/// waits for it to deliver `.closed` and end (when called inside the handler it cannot wait for its
/// own thread, so `.closed` follows after the handler returns); after `close()` returns on another
/// thread the handler is never called again.
public final class DescriptorLink: ByteLink, CustomStringConvertible {
    /// The device path.
    public let name: String
    private let core: Core

    /// A link over `port`, which it takes over. `writeTimeout` bounds each `send` (kernel monotonic
    /// time); `clock` stamps arrivals.
    public init(port: SerialPort, clock: any MonotonicClock, writeTimeout: Duration = .milliseconds(500)) {
        name = port.path
        core = Core(
            descriptor: port.descriptor, name: port.path, ptyMasterOf: nil, clock: clock, writeTimeout: writeTimeout,
            owner: port, closeOwner: { port.close() })
    }

    /// A link over the master side of `pseudoTerminal`, which it takes over (see the type's
    /// description for the peer events). `name` is the slave path.
    public init(pseudoTerminal: PseudoTerminal, clock: any MonotonicClock, writeTimeout: Duration = .milliseconds(500)) {
        name = pseudoTerminal.slavePath
        core = Core(
            descriptor: pseudoTerminal.master, name: pseudoTerminal.slavePath, ptyMasterOf: pseudoTerminal.slavePath,
            clock: clock, writeTimeout: writeTimeout, owner: pseudoTerminal, closeOwner: { pseudoTerminal.close() })
    }

    deinit { core.close() }

    /// A short human-readable form, for logs and listings.
    public var description: String { "link \(name)" }

    /// Pty master: true while a driver has the slave open. Serial port: true until a hang-up or
    /// close. Any thread.
    public var isPeerConnected: Bool { core.peerPresent.load(ordering: .acquiring) }

    /// Starts delivery to `handler` (see `ByteLink.start(handler:)` and this type's thread rules).
    public func start(handler: @escaping LinkHandler) throws(DeviceIOError) { try core.start(handler: handler) }

    /// Sends all of `bytes` (see `ByteLink.send(_:)` and this type's thread rules).
    public func send(_ bytes: UnsafeRawBufferPointer) throws(DeviceIOError) { try core.send(bytes) }

    /// Closes the link (see `ByteLink.close()` and this type's thread rules). Idempotent; any thread.
    public func close() { core.close() }

    /// The shared state: the reader thread holds this (not the public link), so dropping the public
    /// link can close everything.
    private final class Core: Sendable {
        let descriptor: ManagedDescriptor
        let name: String
        let ptyMasterOf: String?
        let clock: any MonotonicClock
        let writeTimeout: Duration
        let owner: any Sendable
        let closeOwner: @Sendable () -> Void
        let peerPresent: Atomic<Bool>
        let sendLock = Mutex<Void>(())
        let thread = Mutex<JoinableThread?>(nil)
        let started = Atomic<Bool>(false)
        static let logger = Logger(label: "infusion.deviceio.link")

        init(
            descriptor: ManagedDescriptor, name: String, ptyMasterOf: String?, clock: any MonotonicClock,
            writeTimeout: Duration, owner: any Sendable, closeOwner: @escaping @Sendable () -> Void
        ) {
            self.descriptor = descriptor
            self.name = name
            self.ptyMasterOf = ptyMasterOf
            self.clock = clock
            self.writeTimeout = writeTimeout
            self.owner = owner
            self.closeOwner = closeOwner
            let present = ptyMasterOf == nil ? true : !((try? descriptor.withDescriptor { fd, _ in Self.isHungUp(fd) }) ?? true)
            peerPresent = Atomic(present)
        }

        /// A zero-timeout poll: does `fd` report a hang-up?
        static func isHungUp(_ fd: Int32) -> Bool {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 0) >= 0 else { return false }
            return p.revents & Int16(POLLHUP) != 0
        }

        func start(handler: @escaping LinkHandler) throws(DeviceIOError) {
            try thread.withLock { slot throws(DeviceIOError) in
                guard !descriptor.isClosed else { throw .closed(path: name) }
                guard !started.exchange(true, ordering: .acquiringAndReleasing) else { throw .alreadyStarted(path: name) }
                let threadName = "link " + (name.split(separator: "/").last.map(String.init) ?? name)
                slot = try JoinableThread(name: threadName) { [self] in self.run(handler: handler) }
            }
        }

        func send(_ bytes: UnsafeRawBufferPointer) throws(DeviceIOError) {
            if ptyMasterOf != nil, !peerPresent.load(ordering: .acquiring) {
                // The reader thread may not have seen a fresh open yet: ask the kernel (one poll).
                let hungUp = try descriptor.withDescriptor { fd, _ in Self.isHungUp(fd) }
                if hungUp { return }  // nobody listens on the slave side: the bytes go nowhere, as on a dead wire
            }
            let deadline = KernelClock.now() + writeTimeout
            try sendLock.withLock { _ throws(DeviceIOError) in try descriptor.write(bytes, deadline: deadline) }
        }

        func close() {
            descriptor.close()
            closeOwner()
            let reader = thread.withLock { $0 }
            reader?.join()
        }

        private enum Step {
            case bytes(Int, MonotonicInstant)
            case hangUp(MonotonicInstant)
            case peerBack(MonotonicInstant)
            case nothing
        }

        /// The reader thread's loop. Holds the descriptor's read lock only while waiting and reading,
        /// never while calling the handler, so the handler may call `close()` or `send`.
        private func run(handler: LinkHandler) {
            if ptyMasterOf == nil { LinkThreadScheduling.applyToCurrentThread(link: name) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
            defer { buffer.deallocate() }
            var watch: Int32 = -1
            defer { if watch >= 0 { Glibc.close(watch) } }
            var present = true
            if let slavePath = ptyMasterOf {
                // Watch first, then look: an open between the two is not missed.
                watch = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
                if watch >= 0, inotify_add_watch(watch, slavePath, UInt32(IN_OPEN)) < 0 {
                    Glibc.close(watch)
                    watch = -1
                }
                if watch < 0 {
                    Self.logger.warning(
                        "inotify unavailable: re-opens of the pty slave are detected by a 10 ms probe",
                        metadata: ["slave": "\(slavePath)"])
                }
                present = !((try? descriptor.withDescriptor { fd, _ in Self.isHungUp(fd) }) ?? true)
                peerPresent.store(present, ordering: .releasing)
                if present { handler(.peerConnected(at: clock.now())) }
            }
            while true {
                let step: Step
                do throws(DeviceIOError) {
                    step = try descriptor.withDescriptor { fd, wake throws(DeviceIOError) -> Step in
                        if ptyMasterOf != nil && !present {
                            return try waitForPeer(fd: fd, wake: wake, watch: watch, scratch: buffer)
                        }
                        guard
                            let revents = try ManagedDescriptor.wait(
                                fd: fd, wake: wake, events: POLLIN, deadline: nil, path: name)
                        else { return .nothing }
                        let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
                        let now = clock.now()
                        if count > 0 { return .bytes(count, now) }
                        if count == 0 { return .hangUp(now) }
                        let code = errno
                        switch code {
                        case EAGAIN, EINTR:
                            return revents & Int16(POLLHUP | POLLERR) != 0 ? .hangUp(now) : .nothing
                        case EIO, ENXIO, ENODEV, EPIPE:
                            return .hangUp(now)
                        default:
                            throw .system(path: name, operation: "read", errno: code)
                        }
                    }
                } catch .closed {
                    break
                } catch {
                    Self.logger.error("link failed", metadata: ["link": "\(name)", "error": "\(error)"])
                    peerPresent.store(false, ordering: .releasing)
                    handler(.disconnected(error, at: clock.now()))
                    return
                }
                switch step {
                case .bytes(let count, let at):
                    handler(.received(Array(UnsafeRawBufferPointer(rebasing: buffer[0..<count])), at: at))
                case .hangUp(let at):
                    peerPresent.store(false, ordering: .releasing)
                    if ptyMasterOf != nil {
                        present = false
                        handler(.peerDisconnected(at: at))
                    } else {
                        Self.logger.info("device hung up", metadata: ["link": "\(name)"])
                        handler(.disconnected(.disconnected(path: name), at: at))
                        return
                    }
                case .peerBack(let at):
                    present = true
                    peerPresent.store(true, ordering: .releasing)
                    handler(.peerConnected(at: at))
                case .nothing:
                    continue
                }
            }
            peerPresent.store(false, ordering: .releasing)
            handler(.closed)
        }

        /// Pty master without a peer: sleep until the slave is opened (inotify), close is requested
        /// (wake pipe), or the safety re-check interval passes; then look at the hang-up flag.
        private func waitForPeer(fd: Int32, wake: Int32, watch: Int32, scratch: UnsafeMutableRawBufferPointer)
            throws(DeviceIOError) -> Step
        {
            var fds = (
                pollfd(fd: wake, events: Int16(POLLIN), revents: 0),
                pollfd(fd: watch, events: Int16(POLLIN), revents: 0)  // a negative fd is ignored by poll
            )
            let ready = withUnsafeMutablePointer(to: &fds) {
                $0.withMemoryRebound(to: pollfd.self, capacity: 2) { poll($0, 2, watch >= 0 ? 250 : 10) }
            }
            if ready < 0 {
                let code = errno
                if code == EINTR { return .nothing }
                throw .system(path: name, operation: "poll", errno: code)
            }
            if fds.0.revents != 0 { throw .closed(path: name) }
            if fds.1.revents != 0 {
                while Glibc.read(watch, scratch.baseAddress, scratch.count) > 0 {}
            }
            return Self.isHungUp(fd) ? .nothing : .peerBack(clock.now())
        }
    }
}
