import InfusionCore

/// What a `LinkEndpoint` asks for in answer to one event: bytes to send, in order, and outputs to
/// publish (statuses, samples, request completions), in order.
///
/// The endpoint only describes effects; the host that runs it (an `EndpointHost` over a real link, or a
/// `VirtualNetwork` in virtual time) carries them out after the endpoint returns.
public struct EndpointEffects<Output: Sendable>: Sendable {
    /// Frames to write on the link, in order.
    public private(set) var outgoing: [[UInt8]] = []
    /// Outputs to publish, in order.
    public private(set) var outputs: [Output] = []

    /// No effects yet.
    public init() {}

    /// Queues `bytes` to be written on the link.
    public mutating func send(_ bytes: [UInt8]) { outgoing.append(bytes) }

    /// Queues an output for the host's observer.
    public mutating func emit(_ output: Output) { outputs.append(output) }

    /// True when there is nothing to do.
    public var isEmpty: Bool { outgoing.isEmpty && outputs.isEmpty }
}

/// One end of a device link as a pure state machine: a driver's session rules or a simulated device's
/// behaviour (DESIGN.md principle 4). Bytes and time go in; bytes to send, outputs and the next instant
/// it needs to be woken at come out. No threads, no clocks, no descriptors: the same endpoint runs over
/// a real serial port or pseudo-terminal in an `EndpointHost`, and many of them run together,
/// deterministically, in virtual time in a `VirtualNetwork`.
///
/// Hosts call the methods one at a time (never concurrently) with non-decreasing `now`.
public protocol LinkEndpoint: Sendable {
    /// What the endpoint publishes (driver: statuses, samples, completions; simulator: log events).
    associatedtype Output: Sendable

    /// The earliest instant at which `tick` must be called; nil when nothing is timed. Hosts read it
    /// after every call.
    var nextDeadline: MonotonicInstant? { get }

    /// The link is up: a port was (re)opened, or a driver opened the simulator's pty.
    mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<Output>)

    /// The link went down: unplugged, hung up, or closed by the other side.
    mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<Output>)

    /// Bytes arrived at `now` (one chunk; frames may be split across chunks or share one).
    mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<Output>)

    /// Time has reached (or passed) `nextDeadline`.
    mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<Output>)
}
