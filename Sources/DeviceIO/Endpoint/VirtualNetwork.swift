import HeapModule
import InfusionCore

/// Runs several `LinkEndpoint`s (simulated devices and drivers) and other timed participants together
/// in virtual time, deterministically: a 4-hour session with 75 Hz oximetry runs in as long as the
/// computation takes. Bytes travel between connected endpoints through an event queue (with an optional
/// latency and baud-rate pacing), and the clock jumps straight to the next thing that happens.
///
/// Single-threaded: create, drive and inspect it from one thread. Ties at one instant are broken by
/// the order events were scheduled, so every run with the same inputs is identical.
public final class VirtualNetwork {
    /// Identifies a participant.
    public struct NodeID: Hashable, Sendable {
        let index: Int
    }

    /// The network's clock; advanced only by `run(until:)` and `step()`.
    public let clock: VirtualClock

    private var nodes: [AnyNode] = []
    /// Each node's wire, by node index (nil: not connected).
    private var peers: [Wire?] = []
    private var queue = DeliveryQueue()

    private struct Wire {
        let peer: Int
        /// Latency in nanoseconds.
        let latency: Int64
        /// Nanoseconds per byte on the wire (10 bits per byte), or 0 for no pacing.
        let nanosPerByte: Int64
    }

    /// A network on `clock`.
    public init(clock: VirtualClock) { self.clock = clock }

    /// Adds a link endpoint; its outputs go to `onOutput` (called on the caller's thread, in order).
    @discardableResult
    public func add<E: LinkEndpoint>(_ endpoint: E, onOutput: @escaping (E.Output) -> Void = { _ in }) -> NodeID {
        addNode(EndpointNode(endpoint: endpoint, onOutput: onOutput))
    }

    /// Adds a timed participant that is not on a link (the safety supervisor, the virtual patient, a
    /// recorder): `deadline` is read after every event, and `tick` is called when it is due.
    @discardableResult
    public func addTimer(deadline: @escaping () -> MonotonicInstant?, tick: @escaping (MonotonicInstant) -> Void) -> NodeID {
        addNode(TimerNode(deadline: deadline, tick: tick))
    }

    /// Connects two endpoints with a wire and brings the link up at both ends. `bitsPerSecond` paces
    /// bytes as a serial line would (10 bits per byte); nil delivers after `latency` only.
    public func connect(_ a: NodeID, _ b: NodeID, latency: Duration = .zero, bitsPerSecond: Int? = nil) {
        let perByte = bitsPerSecond.map { Int64(10_000_000_000 / max($0, 1)) } ?? 0
        peers[a.index] = Wire(peer: b.index, latency: latency.nanoseconds, nanosPerByte: perByte)
        peers[b.index] = Wire(peer: a.index, latency: latency.nanoseconds, nanosPerByte: perByte)
        let now = clock.now()
        nodes[a.index].linkUp(at: now, network: self, from: a.index)
        nodes[b.index].linkUp(at: now, network: self, from: b.index)
    }

    /// Pulls the plug between `a` and its peer: bytes in flight are lost, and both ends see the link go down.
    public func disconnect(_ a: NodeID) {
        guard let wire = peers[a.index] else { return }
        peers[a.index] = nil
        peers[wire.peer] = nil
        queue.drop { $0.target == a.index || $0.target == wire.peer }
        let now = clock.now()
        nodes[a.index].linkDown(at: now, network: self, from: a.index)
        nodes[wire.peer].linkDown(at: now, network: self, from: wire.peer)
    }

    /// Runs `body` on endpoint `id` (which must have been added as `E`) with the current time, then
    /// carries out its effects. Returns nil if `id` is not an `E`.
    public func perform<E: LinkEndpoint, R>(_ id: NodeID, as type: E.Type, _ body: (inout E, MonotonicInstant, inout EndpointEffects<E.Output>) -> R) -> R? {
        guard let node = nodes[id.index] as? EndpointNode<E> else { return nil }
        return node.perform(at: clock.now(), network: self, from: id.index, body)
    }

    /// Processes everything due up to and including `end`, then leaves the clock at `end`.
    public func run(until end: MonotonicInstant) {
        while let next = nextEventTime(), next <= end {
            clock.advance(to: next)
            process(at: next)
        }
        clock.advance(to: end)
    }

    /// Runs for `duration` of virtual time.
    public func run(for duration: Duration) { run(until: clock.now() + duration) }

    /// The earliest pending delivery or deadline, if any.
    public func nextEventTime() -> MonotonicInstant? {
        var next = queue.first?.time
        for node in nodes {
            if let d = node.deadline { next = next.map { min($0, d) } ?? d }
        }
        return next
    }

    private func process(at now: MonotonicInstant) {
        while let delivery = queue.first, delivery.time <= now {
            queue.removeFirst()
            nodes[delivery.target].receive(delivery.bytes, at: now, network: self, from: delivery.target)
        }
        for index in nodes.indices {
            if let d = nodes[index].deadline, d <= now { nodes[index].tick(at: now, network: self, from: index) }
        }
    }

    /// Called by nodes to put bytes on their wire.
    fileprivate func transmit(_ frames: [[UInt8]], from index: Int, at now: MonotonicInstant) {
        guard !frames.isEmpty, let wire = peers[index] else { return }
        var time = MonotonicInstant(nanoseconds: now.nanoseconds + wire.latency)
        for frame in frames {
            if wire.nanosPerByte > 0 { time = MonotonicInstant(nanoseconds: time.nanoseconds + wire.nanosPerByte * Int64(frame.count)) }
            queue.insert(Delivery(time: max(time, now), target: wire.peer, bytes: frame))
        }
    }
}

// MARK: - Nodes

private class AnyNode {
    var deadline: MonotonicInstant? { nil }
    func linkUp(at now: MonotonicInstant, network: VirtualNetwork, from index: Int) {}
    func linkDown(at now: MonotonicInstant, network: VirtualNetwork, from index: Int) {}
    func receive(_ bytes: [UInt8], at now: MonotonicInstant, network: VirtualNetwork, from index: Int) {}
    func tick(at now: MonotonicInstant, network: VirtualNetwork, from index: Int) {}
}

private final class EndpointNode<E: LinkEndpoint>: AnyNode {
    private(set) var endpoint: E
    let onOutput: (E.Output) -> Void
    /// `endpoint.nextDeadline`, read again after every call that can change the endpoint (they all go
    /// through `perform`): the network reads every node's deadline after every event, and some
    /// endpoints compute theirs (the simulated New Era pump converts decimal settings), so reading it
    /// once per change keeps long virtual sessions fast.
    private var cachedDeadline: MonotonicInstant?

    init(endpoint: E, onOutput: @escaping (E.Output) -> Void) {
        self.endpoint = endpoint
        self.onOutput = onOutput
        cachedDeadline = endpoint.nextDeadline
    }

    override var deadline: MonotonicInstant? { cachedDeadline }

    private func apply(_ effects: EndpointEffects<E.Output>, network: VirtualNetwork, from index: Int, at now: MonotonicInstant) {
        network.transmit(effects.outgoing, from: index, at: now)
        for output in effects.outputs { onOutput(output) }
    }

    func perform<R>(at now: MonotonicInstant, network: VirtualNetwork, from index: Int, _ body: (inout E, MonotonicInstant, inout EndpointEffects<E.Output>) -> R) -> R {
        var effects = EndpointEffects<E.Output>()
        let result = body(&endpoint, now, &effects)
        cachedDeadline = endpoint.nextDeadline
        apply(effects, network: network, from: index, at: now)
        return result
    }

    override func linkUp(at now: MonotonicInstant, network: VirtualNetwork, from index: Int) {
        perform(at: now, network: network, from: index) { e, now, fx in e.linkUp(at: now, effects: &fx) }
    }
    override func linkDown(at now: MonotonicInstant, network: VirtualNetwork, from index: Int) {
        perform(at: now, network: network, from: index) { e, now, fx in e.linkDown(at: now, effects: &fx) }
    }
    override func receive(_ bytes: [UInt8], at now: MonotonicInstant, network: VirtualNetwork, from index: Int) {
        perform(at: now, network: network, from: index) { e, now, fx in e.receive(bytes, at: now, effects: &fx) }
    }
    override func tick(at now: MonotonicInstant, network: VirtualNetwork, from index: Int) {
        perform(at: now, network: network, from: index) { e, now, fx in e.tick(at: now, effects: &fx) }
    }
}

private final class TimerNode: AnyNode {
    let deadlineProvider: () -> MonotonicInstant?
    let action: (MonotonicInstant) -> Void
    init(deadline: @escaping () -> MonotonicInstant?, tick: @escaping (MonotonicInstant) -> Void) {
        deadlineProvider = deadline
        action = tick
    }
    override var deadline: MonotonicInstant? { deadlineProvider() }
    override func tick(at now: MonotonicInstant, network: VirtualNetwork, from index: Int) { action(now) }
}

// MARK: - Delivery queue

private struct Delivery: Comparable {
    var time: MonotonicInstant
    var sequence: UInt64 = 0
    var target: Int
    var bytes: [UInt8]

    static func < (a: Delivery, b: Delivery) -> Bool { a.time != b.time ? a.time < b.time : a.sequence < b.sequence }
    static func == (a: Delivery, b: Delivery) -> Bool { a.time == b.time && a.sequence == b.sequence }
}

/// Deliveries ordered by (time, insertion order): a min-heap from swift-collections.
private struct DeliveryQueue {
    private var heap = Heap<Delivery>()
    private var counter: UInt64 = 0

    var first: Delivery? { heap.min }

    mutating func insert(_ delivery: Delivery) {
        var d = delivery
        d.sequence = counter
        counter += 1
        heap.insert(d)
    }

    mutating func removeFirst() { _ = heap.popMin() }

    mutating func drop(where predicate: (Delivery) -> Bool) {
        heap = Heap(heap.unordered.filter { !predicate($0) })
    }
}

// MARK: - A driver's session in virtual time

/// Runs one endpoint (a driver's session) inside a `VirtualNetwork`, so the driver's public class (built
/// on `EndpointRunner`) works unchanged in virtual time: `perform` submits to the endpoint and then runs
/// the network, event by event, until `isSettled(endpoint)` says the work submitted has completed (its
/// completion output has reached `onOutput`) or nothing more can happen. The network's clock advances
/// meanwhile, as real time would while a real driver waits for its reply.
///
/// Threads: like the network, single-threaded. Call it (and everything else that touches the network)
/// from one task at a time; `@unchecked Sendable` only so a driver class can hold it. `currentLink` is
/// nil: a fast stop has no raw link here and reports that it was not sent.
public final class VirtualEndpointRunner<E: LinkEndpoint>: EndpointRunner, @unchecked Sendable {
    /// The endpoint's node, to `connect` it to a simulator.
    public let node: VirtualNetwork.NodeID
    /// The network it runs in.
    public let network: VirtualNetwork
    private let endpointNode: EndpointNode<E>
    private let isSettled: (E) -> Bool

    /// Adds `endpoint` to `network`; its outputs go to `onOutput` in order. `isSettled` is true when the
    /// endpoint has no submitted work left (nothing queued or awaiting a reply).
    public init(network: VirtualNetwork, endpoint: E, onOutput: @escaping (E.Output) -> Void,
                isSettled: @escaping (E) -> Bool) {
        let node = EndpointNode(endpoint: endpoint, onOutput: onOutput)
        self.node = network.addNode(node)
        self.network = network
        self.endpointNode = node
        self.isSettled = isSettled
    }

    /// Runs `body` on the endpoint at the network's current time, then runs the network until the
    /// endpoint is settled (or no event is left).
    @discardableResult
    public func perform<R>(_ body: (inout E, MonotonicInstant, inout EndpointEffects<E.Output>) -> R) -> R {
        let result = endpointNode.perform(at: network.clock.now(), network: network, from: node.index, body)
        while !isSettled(endpointNode.endpoint), let next = network.nextEventTime() {
            network.run(until: next)
        }
        return result
    }

    /// The endpoint's current state, for tests and diagnostics.
    public var endpoint: E { endpointNode.endpoint }

    /// No raw link in virtual time.
    public var currentLink: (any ByteLink)? { nil }

    /// Unplugs the endpoint from its peer (both ends see the link go down).
    public func stop() { network.disconnect(node) }
}

extension VirtualNetwork {
    /// Every participant joins here: one node and, at the same index, its (absent) wire.
    fileprivate func addNode(_ node: AnyNode) -> NodeID {
        nodes.append(node)
        peers.append(nil)
        return NodeID(index: nodes.count - 1)
    }
}
