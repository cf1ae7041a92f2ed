import Synchronization

/// A bounded single-producer, single-consumer queue, lock-free and allocation-free after `init`.
///
/// Exactly one thread may call `push` (the producer) and exactly one thread may call `pop`/`drain`
/// (the consumer) at a time; they may be different threads. Both are wait-free: `push` on a full ring
/// drops the element and counts it (`dropped`) rather than blocking, because the producer may be the
/// supervisor's real-time thread. Storage is allocated once in `init` (capacity rounded up to a power
/// of two) and freed in `deinit`.
public final class SPSCRing<Element: Sendable>: @unchecked Sendable {
    // @unchecked: `buffer` is shared, but each slot is written only by the producer before it publishes
    // the slot with a releasing store of `tail`, and read only by the consumer after an acquiring load
    // of it (and the other way round for `head`): the usual SPSC protocol.
    private let buffer: UnsafeMutablePointer<Element>
    private let mask: Int
    private let head = Atomic<Int>(0) // next slot to read; written by the consumer
    private let tail = Atomic<Int>(0) // next slot to write; written by the producer
    private let droppedCount = Atomic<Int>(0)

    /// How many elements it holds at most.
    public let capacity: Int

    /// A ring holding at least `minimumCapacity` elements (rounded up to a power of two, at least 2).
    /// Allocates; call outside the real-time tick.
    public init(minimumCapacity: Int) {
        var size = 2
        while size < minimumCapacity { size <<= 1 }
        capacity = size
        mask = size - 1
        buffer = .allocate(capacity: size)
    }

    deinit {
        var h = head.load(ordering: .relaxed)
        let t = tail.load(ordering: .relaxed)
        while h != t {
            (buffer + (h & mask)).deinitialize(count: 1)
            h &+= 1
        }
        buffer.deallocate()
    }

    /// Producer only. Appends `element`; returns false (and counts a drop) when the ring is full.
    @discardableResult
    public func push(_ element: Element) -> Bool {
        let t = tail.load(ordering: .relaxed)
        let h = head.load(ordering: .acquiring)
        guard t &- h < capacity else {
            droppedCount.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        (buffer + (t & mask)).initialize(to: element)
        tail.store(t &+ 1, ordering: .releasing)
        return true
    }

    /// Consumer only. Removes and returns the oldest element, or nil when empty.
    public func pop() -> Element? {
        let h = head.load(ordering: .relaxed)
        let t = tail.load(ordering: .acquiring)
        guard h != t else { return nil }
        let element = (buffer + (h & mask)).move()
        head.store(h &+ 1, ordering: .releasing)
        return element
    }

    /// Consumer only. Pops every element present now, oldest first, into `body`; returns how many.
    @discardableResult
    public func drain(_ body: (Element) throws -> Void) rethrows -> Int {
        var n = 0
        while let element = pop() {
            try body(element)
            n += 1
        }
        return n
    }

    /// Elements present (a snapshot; exact only on the producer's or consumer's thread).
    public var count: Int { tail.load(ordering: .acquiring) &- head.load(ordering: .acquiring) }

    /// Elements dropped because the ring was full, since it was made.
    public var dropped: Int { droppedCount.load(ordering: .relaxed) }
}
