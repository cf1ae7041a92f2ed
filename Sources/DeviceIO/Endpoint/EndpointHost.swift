import Foundation
import InfusionCore
import Logging
import Synchronization

/// Runs one `LinkEndpoint` over a real link on real threads: link events feed the endpoint as they
/// arrive (on the link's delivery thread), a timer thread calls `tick` at the endpoint's deadlines
/// (converted to real waits through the clock, so a `ScaledClock` speeds everything up alike), and
/// a link that goes down is reopened every `reconnectInterval` until it comes back.
///
/// Thread rules: every method may be called from any thread. The endpoint is only touched under the
/// host's lock; sends and outputs are carried out after the lock is released, in the order they were
/// produced. `onOutput` is called on whichever thread produced the output (link, timer or caller of
/// `perform`), never concurrently with itself; it may call `perform` again.
///
/// Scheduling: a driver's host (`linkUpOnOpen`) runs its timer thread under `LinkThreadScheduling`, like
/// its serial link's reader, so that no thread holding the endpoint's lock runs at a lower priority than
/// the reader waiting for it. A simulator's host stays in the normal scheduler.
///
/// Ownership: the host owns the links it opens and closes them on `stop()` or when they go down.
public final class EndpointHost<Endpoint: LinkEndpoint>: @unchecked Sendable {
    /// Opens the link (a serial port, a pty master…). Called on start and on every reconnect attempt.
    public typealias Opener = @Sendable () throws(DeviceIOError) -> any ByteLink

    /// A name for logs ("pump0 /dev/infusion/pump0").
    public let name: String
    private let clock: any MonotonicClock
    private let open: Opener
    private let reconnectInterval: Duration
    private let onOutput: @Sendable (Endpoint.Output) -> Void
    private let linkUpOnOpen: Bool
    private let logger: Logger

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var endpoint: Endpoint
    private var link: (any ByteLink)? {
        didSet { fastLink.withLock { $0 = link } }
    }
    private var generation = 0
    private var reconnectAt: MonotonicInstant?
    private var running = false
    private var stopped = false
    private var lastOpenError: DeviceIOError?
    private var holdDisconnected = false

    // A copy of `link` for `currentLink` (the supervisor's stop path): its lock is held only to copy one
    // reference, never while the endpoint decodes, ticks or a link is opened, so a stop never waits for
    // the host's own work (or for a host thread preempted while holding `condition`).
    private let fastLink = Mutex<(any ByteLink)?>(nil)

    // Keeps effects in production order across threads; recursive so `onOutput` may call `perform`.
    private let delivery = NSRecursiveLock()
    private let timerDone = DispatchSemaphore(value: 0)

    /// A host for `endpoint`; nothing happens until `start()`.
    ///
    /// `linkUpOnOpen`: true for a driver (an opened port is the link being up); false for a simulator
    /// behind a pty master, whose link is up only when a driver opens the slave (`.peerConnected`).
    public init(
        endpoint: Endpoint, name: String, clock: any MonotonicClock, reconnectInterval: Duration = .milliseconds(500),
        linkUpOnOpen: Bool = true, open: @escaping Opener, onOutput: @escaping @Sendable (Endpoint.Output) -> Void
    ) {
        self.linkUpOnOpen = linkUpOnOpen
        self.endpoint = endpoint
        self.name = name
        self.clock = clock
        self.open = open
        self.reconnectInterval = reconnectInterval
        self.onOutput = onOutput
        var logger = Logger(label: "infusion.endpoint")
        logger[metadataKey: "link"] = "\(name)"
        self.logger = logger
    }

    /// Opens the link (retrying every `reconnectInterval` if it cannot be opened yet) and starts the
    /// timer thread. Calling it again does nothing.
    public func start() {
        condition.lock()
        guard !running, !stopped else { condition.unlock(); return }
        running = true
        reconnectAt = clock.now()
        condition.unlock()
        let thread = Thread { [self] in timerLoop() }
        thread.name = "endpoint \(name)"
        thread.start()
    }

    /// Stops the timer thread and closes the link. The endpoint sees `linkDown` if the link was up.
    /// Idempotent; waits for the timer thread to finish (do not call it from `onOutput`).
    public func stop() {
        condition.lock()
        guard running, !stopped else { stopped = true; condition.unlock(); return }
        stopped = true
        let current = link
        link = nil
        generation += 1
        var effects = EndpointEffects<Endpoint.Output>()
        if current != nil { endpoint.linkDown(at: clock.now(), effects: &effects) }
        condition.broadcast()
        delivery.lock()
        condition.unlock()
        deliver(effects, on: nil)
        delivery.unlock()
        current?.close()
        timerDone.wait()
    }

    /// Runs `body` on the endpoint under the host's lock with the current time, then carries out the
    /// effects it produced. This is how a driver's public API submits requests.
    @discardableResult
    public func perform<R>(_ body: (inout Endpoint, MonotonicInstant, inout EndpointEffects<Endpoint.Output>) -> R) -> R {
        condition.lock()
        var effects = EndpointEffects<Endpoint.Output>()
        let result = body(&endpoint, clock.now(), &effects)
        let target = link
        condition.signal()  // the deadline may have moved
        delivery.lock()
        condition.unlock()
        deliver(effects, on: target)
        delivery.unlock()
        return result
    }

    /// Simulates pulling the plug: closes the current link (the endpoint sees `linkDown`), and opens a new
    /// one after `reopenAfter` of clock time, or only on `reconnectNow()` when nil.
    public func disconnect(reopenAfter: Duration?) {
        condition.lock()
        guard running, !stopped else { condition.unlock(); return }
        let current = link
        link = nil
        generation += 1
        let now = clock.now()
        var effects = EndpointEffects<Endpoint.Output>()
        if current != nil { endpoint.linkDown(at: now, effects: &effects) }
        reconnectAt = reopenAfter.map { now + $0 }
        holdDisconnected = reopenAfter == nil
        condition.broadcast()
        delivery.lock()
        condition.unlock()
        deliver(effects, on: nil)
        delivery.unlock()
        current?.close()
    }

    /// Opens the link again now (after `disconnect`).
    public func reconnectNow() {
        condition.lock()
        holdDisconnected = false
        if link == nil { reconnectAt = clock.now() }
        condition.broadcast()
        condition.unlock()
    }

    /// The link currently open, if any: for a fast path that writes a pre-encoded frame directly
    /// (the supervisor's stop). Nil while disconnected. Does not take the host's lock (which is held
    /// while the endpoint works): only a small lock held for the copy of one reference. Any thread.
    public var currentLink: (any ByteLink)? {
        fastLink.withLock { $0 }
    }

    /// True while a link is open.
    public var isConnected: Bool { currentLink != nil }

    // MARK: Internals

    private func deliver(_ effects: EndpointEffects<Endpoint.Output>, on target: (any ByteLink)?) {
        if let target {
            for frame in effects.outgoing {
                do {
                    try target.send(frame)
                } catch {
                    logger.debug("send failed: \(error)")
                    break  // the link's own event (disconnected/closed) will tell the endpoint
                }
            }
        } else if !effects.outgoing.isEmpty {
            logger.trace("\(effects.outgoing.count) frame(s) dropped: no link")
        }
        for output in effects.outputs { onOutput(output) }
    }

    private func handle(_ event: LinkEvent, generation eventGeneration: Int) {
        condition.lock()
        guard eventGeneration == generation, !stopped else { condition.unlock(); return }
        var effects = EndpointEffects<Endpoint.Output>()
        var toClose: (any ByteLink)?
        var wakeTimer = true
        switch event {
        case let .received(bytes, at):
            // Bytes arrive up to thousands of times a second; the timer thread needs waking only when its
            // deadline moved earlier (a later or unchanged one: it wakes at the old one and recomputes).
            let before = endpoint.nextDeadline
            endpoint.receive(bytes, at: at, effects: &effects)
            if let after = endpoint.nextDeadline {
                wakeTimer = before.map { after < $0 } ?? true
            } else {
                wakeTimer = false
            }
        case let .peerConnected(at):
            endpoint.linkUp(at: at, effects: &effects)
        case let .peerDisconnected(at):
            endpoint.linkDown(at: at, effects: &effects)
        case let .disconnected(error, at):
            logger.notice("link down: \(error)")
            endpoint.linkDown(at: at, effects: &effects)
            toClose = link
            link = nil
            generation += 1
            if !holdDisconnected { reconnectAt = at + reconnectInterval }
        case .closed:
            break
        }
        let target = link
        if wakeTimer { condition.signal() }
        delivery.lock()
        condition.unlock()
        deliver(effects, on: target)
        delivery.unlock()
        toClose?.close()
    }

    private func timerLoop() {
        // A driver's timer thread takes the endpoint's lock too: if it ran in the normal scheduler while the
        // link's reader runs under SCHED_FIFO, a reader waiting for that lock would wait for a CFS time slice.
        if linkUpOnOpen { LinkThreadScheduling.applyToCurrentThread(link: name) }
        condition.lock()
        while !stopped {
            let now = clock.now()
            if let due = reconnectAt, due <= now, link == nil, !holdDisconnected {
                reconnectAt = nil
                attemptOpen(now: now)  // may unlock and relock
                continue
            }
            if let deadline = endpoint.nextDeadline, deadline <= now {
                var effects = EndpointEffects<Endpoint.Output>()
                endpoint.tick(at: now, effects: &effects)
                let target = link
                delivery.lock()
                condition.unlock()
                deliver(effects, on: target)
                delivery.unlock()
                condition.lock()
                continue
            }
            let next = [endpoint.nextDeadline, link == nil && !holdDisconnected ? reconnectAt : nil].compactMap { $0 }.min()
            if let next {
                let wait = clock.realDuration(of: next - now)
                _ = condition.wait(until: Date(timeIntervalSinceNow: max(wait.seconds, 0)))
            } else {
                condition.wait()
            }
        }
        condition.unlock()
        timerDone.signal()
    }

    /// Called with the lock held; returns with it held.
    private func attemptOpen(now: MonotonicInstant) {
        let opened: any ByteLink
        do {
            opened = try open()
        } catch {
            if error != lastOpenError { logger.notice("cannot open: \(error)") }
            lastOpenError = error
            reconnectAt = now + reconnectInterval
            return
        }
        lastOpenError = nil
        generation += 1
        let myGeneration = generation
        link = opened
        var effects = EndpointEffects<Endpoint.Output>()
        if linkUpOnOpen { endpoint.linkUp(at: clock.now(), effects: &effects) }
        delivery.lock()
        condition.unlock()
        do {
            try opened.start { [weak self] event in self?.handle(event, generation: myGeneration) }
        } catch {
            logger.notice("cannot start link: \(error)")
        }
        deliver(effects, on: opened)
        delivery.unlock()
        condition.lock()
    }
}
