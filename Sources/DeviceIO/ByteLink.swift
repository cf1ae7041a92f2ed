import InfusionCore

/// What a `ByteLink` reports to its handler.
///
/// Order and termination: events arrive in order, one at a time (never concurrently for one link).
/// Every started link ends with exactly one terminal event, `.disconnected` or `.closed`; nothing
/// follows it.
public enum LinkEvent: Sendable, Equatable {
    /// Bytes arrived. `at` is the injected clock's time when the read returned (all bytes of one
    /// chunk share it); a chunk holds whatever the kernel had (1 to 4096 bytes), so a frame may be
    /// split over several chunks or several frames may share one.
    case received([UInt8], at: MonotonicInstant)
    /// Pseudo-terminal master links only: a driver opened the slave side (again), so bytes sent now
    /// reach it. Reported at start when a driver already has it open.
    case peerConnected(at: MonotonicInstant)
    /// Pseudo-terminal master links only: the last process holding the slave side closed it. The
    /// link stays usable; `.peerConnected` follows when a driver opens the slave again. Bytes sent
    /// meanwhile are discarded, as on a wire nobody listens to.
    case peerDisconnected(at: MonotonicInstant)
    /// Terminal: the other end hung up (adapter unplugged, pty master closed, in-memory peer
    /// closed) or the descriptor failed; the error says which. Call `close()` to release the link.
    case disconnected(DeviceIOError, at: MonotonicInstant)
    /// Terminal: `close()` was called on this link.
    case closed
}

/// Receives a link's events. Called on the link's delivery thread (see the link type), never
/// concurrently with itself for one link; it should return quickly (hand long work elsewhere), since
/// the next bytes wait until it returns.
public typealias LinkHandler = @Sendable (LinkEvent) -> Void

/// A bidirectional byte stream to one device: the one interface drivers and simulators use, over a
/// serial port, a pseudo-terminal master, or an in-memory pair (`DescriptorLink`, `InMemoryLink`).
///
/// Event-driven: after `start(handler:)` every chunk of received bytes is pushed to the handler as
/// soon as it arrives, stamped with the arrival time from the link's injected `MonotonicClock`;
/// nobody polls.
///
/// Thread rules: `start` once, from any thread. `send` from any thread at any time, including the
/// supervisor's real-time thread: the raw-buffer form never allocates, and concurrent sends are
/// serialised so frames never interleave. `close` from any thread, including inside the handler;
/// idempotent.
public protocol ByteLink: AnyObject, Sendable {
    /// A short name for logs and errors (the device path, or the in-memory pair's label).
    var name: String { get }

    /// Starts delivering events to `handler`. Throws `.alreadyStarted` on a second call and
    /// `.closed` after `close()`.
    func start(handler: @escaping LinkHandler) throws(DeviceIOError)

    /// Sends all of `bytes` or throws: `.writeTimedOut` (with the count that went out),
    /// `.disconnected`, `.closed`. Never allocates. `bytes` need only be valid during the call.
    func send(_ bytes: UnsafeRawBufferPointer) throws(DeviceIOError)

    /// Closes the link: stops delivery (the handler receives `.closed` as its last event unless the
    /// link had already ended with `.disconnected`) and releases the descriptor. Idempotent.
    func close()
}

extension ByteLink {
    /// Sends all of `bytes`. Does not allocate: the bytes are passed to `send(_:)` in place, so a
    /// pre-encoded frame held in an array can be sent from the real-time thread.
    public func send(_ bytes: [UInt8]) throws(DeviceIOError) {
        try withRawBytes(of: bytes) { raw throws(DeviceIOError) in try send(raw) }
    }
}
