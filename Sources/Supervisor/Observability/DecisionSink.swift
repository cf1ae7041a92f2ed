import Synchronization

/// Where supervisor decisions go. The durable record (Records) will consume them; the runner hands
/// every decision of every step to its sink on the real-time thread.
///
/// Threads: `record` is called on the thread that runs the steps (the runner's real-time thread in
/// production). A sink used by the runner must not allocate, lock or block there: use
/// `DecisionRing` and drain it from another thread. `InMemoryDecisionSink` is for tests.
public protocol DecisionSink: AnyObject, Sendable {
    /// Takes one decision.
    func record(_ event: DecisionEvent)
}

extension DecisionSink {
    /// Hands every decision of a step to the sink, in order.
    public func record(_ output: borrowing StepOutput) {
        for event in output.decisions { record(event) }
    }
}

/// The runner's sink: a preallocated lock-free ring (single producer: the runner's thread; single
/// consumer: the durable record's thread). `record` never allocates; when the consumer falls behind,
/// new decisions are dropped and counted (`dropped`) rather than blocking the supervisor.
public final class DecisionRing: DecisionSink {
    private let ring: SPSCRing<DecisionEvent>

    /// A ring for at least `capacity` decisions. Allocates once.
    public init(capacity: Int = 4096) { ring = SPSCRing(minimumCapacity: capacity) }

    /// Producer (runner) thread.
    public func record(_ event: DecisionEvent) { ring.push(event) }

    /// Consumer thread. Pops every decision present now, oldest first; returns how many.
    @discardableResult
    public func drain(_ body: (DecisionEvent) throws -> Void) rethrows -> Int { try ring.drain(body) }

    /// Decisions waiting.
    public var count: Int { ring.count }
    /// Decisions dropped because the consumer fell behind.
    public var dropped: Int { ring.dropped }
    /// Capacity.
    public var capacity: Int { ring.capacity }
}

/// A sink that keeps every decision in memory, behind a lock. For tests and tools only: it allocates
/// and locks, so never give it to a real-time runner. Any thread.
public final class InMemoryDecisionSink: DecisionSink {
    private let storage = Mutex<[DecisionEvent]>([])

    /// An empty sink.
    public init() {}

    /// Appends `event` (allocates, locks: tests only).
    public func record(_ event: DecisionEvent) { storage.withLock { $0.append(event) } }

    /// Every decision so far, in order.
    public var events: [DecisionEvent] { storage.withLock { $0 } }

    /// Forgets every decision.
    public func removeAll() { storage.withLock { $0.removeAll() } }
}
