import InfusionCore
import Synchronization

/// One end of an in-memory link pair, for fast deterministic tests in virtual time: a driver on one
/// end, a simulator on the other, no threads and no descriptors.
///
/// Delivery is synchronous and ordered: `send` stamps the bytes with the injected clock's `now()`
/// (with a `VirtualClock`, exactly the virtual time of the send) and calls the other end's handler
/// before it returns, on the sending thread. A handler that sends in turn does not recurse: its
/// bytes are queued and delivered, in order, by the outermost delivery loop right after it returns,
/// still before the outermost `send` returns. If another thread is already delivering for this pair,
/// that thread delivers the new events (in order) and `send` returns at once. Events for an end
/// that has not started yet wait until it starts.
///
/// Closing one end delivers `.closed` to it and `.disconnected(.disconnected)` to the other end;
/// sends then fail with `.closed` (on the closed end) or `.disconnected` (on the other).
/// `maxChunk` splits each send into chunks of at most that many bytes, to exercise parsers on split
/// frames.
///
/// Thread rules: every method may be called from any thread and from inside a handler. Unlike the
/// descriptor links, `send` copies the bytes (it allocates); this link is for tests and simulation.
public final class InMemoryLink: ByteLink, CustomStringConvertible {
    /// This end's label.
    public let name: String
    private let shared: Shared
    private let side: Int

    /// Creates a connected pair. `names` label the two ends in errors; `maxChunk` (nil: no
    /// splitting) bounds the size of each delivered chunk.
    public static func makePair(
        clock: any MonotonicClock, names: (String, String) = ("memory-a", "memory-b"), maxChunk: Int? = nil
    ) -> (InMemoryLink, InMemoryLink) {
        let shared = Shared(clock: clock, names: [names.0, names.1], maxChunk: maxChunk.map { max(1, $0) })
        return (InMemoryLink(shared: shared, side: 0), InMemoryLink(shared: shared, side: 1))
    }

    private init(shared: Shared, side: Int) {
        self.shared = shared
        self.side = side
        name = shared.names[side]
    }

    /// A short human-readable form, for logs and listings.
    public var description: String { "in-memory link \(name)" }

    /// Starts delivery to `handler` (see `ByteLink.start(handler:)` and this type's thread rules).
    public func start(handler: @escaping LinkHandler) throws(DeviceIOError) { try shared.start(side: side, handler: handler) }

    /// Copies `bytes` and delivers them to the other end (see the type's description).
    public func send(_ bytes: UnsafeRawBufferPointer) throws(DeviceIOError) { try shared.send(from: side, bytes) }

    /// Closes the link (see `ByteLink.close()` and this type's thread rules). Idempotent; any thread.
    public func close() { shared.close(side: side) }

    private final class Shared: Sendable {
        let clock: any MonotonicClock
        let names: [String]
        let maxChunk: Int?
        let state = Mutex(State())

        struct State {
            var handlers: [LinkHandler?] = [nil, nil]
            var started = [false, false]
            var closed = [false, false]
            /// A terminal event has been queued for that side.
            var ended = [false, false]
            var pending: [(side: Int, event: LinkEvent)] = []
            var delivering = false
        }

        init(clock: any MonotonicClock, names: [String], maxChunk: Int?) {
            self.clock = clock
            self.names = names
            self.maxChunk = maxChunk
        }

        func start(side: Int, handler: @escaping LinkHandler) throws(DeviceIOError) {
            let mustDeliver = try state.withLock { s throws(DeviceIOError) -> Bool in
                guard !s.closed[side] else { throw .closed(path: names[side]) }
                guard !s.started[side] else { throw .alreadyStarted(path: names[side]) }
                s.started[side] = true
                s.handlers[side] = handler
                return Self.claimDelivery(&s)
            }
            if mustDeliver { deliver() }
        }

        func send(from side: Int, _ bytes: UnsafeRawBufferPointer) throws(DeviceIOError) {
            let other = 1 - side
            let now = clock.now()
            let data = [UInt8](bytes)
            let mustDeliver = try state.withLock { s throws(DeviceIOError) -> Bool in
                guard !s.closed[side] else { throw .closed(path: names[side]) }
                guard !s.ended[side] else { throw .disconnected(path: names[side]) }
                guard !data.isEmpty else { return false }
                let size = maxChunk ?? data.count
                var start = 0
                while start < data.count {
                    let end = min(data.count, start + size)
                    s.pending.append((other, .received(Array(data[start..<end]), at: now)))
                    start = end
                }
                return Self.claimDelivery(&s)
            }
            if mustDeliver { deliver() }
        }

        func close(side: Int) {
            let other = 1 - side
            let now = clock.now()
            let mustDeliver = state.withLock { s -> Bool in
                guard !s.closed[side] else { return false }
                s.closed[side] = true
                if !s.ended[side] {
                    s.ended[side] = true
                    s.pending.append((side, .closed))
                }
                if !s.ended[other] {
                    s.ended[other] = true
                    s.pending.append((other, .disconnected(.disconnected(path: names[other]), at: now)))
                }
                return Self.claimDelivery(&s)
            }
            if mustDeliver { deliver() }
        }

        /// True when the caller must run the delivery loop (nobody else is running it).
        private static func claimDelivery(_ s: inout State) -> Bool {
            guard !s.delivering else { return false }
            s.delivering = true
            return true
        }

        /// Delivers queued events in order, one at a time, outside the lock, until none is deliverable.
        private func deliver() {
            while true {
                let next: (LinkHandler, LinkEvent)? = state.withLock { s in
                    for index in s.pending.indices {
                        let side = s.pending[index].side
                        guard let handler = s.handlers[side] else { continue }
                        let event = s.pending.remove(at: index).event
                        switch event {
                        case .closed, .disconnected: s.handlers[side] = nil
                        default: break
                        }
                        return (handler, event)
                    }
                    s.delivering = false
                    return nil
                }
                guard let (handler, event) = next else { return }
                handler(event)
            }
        }
    }
}
