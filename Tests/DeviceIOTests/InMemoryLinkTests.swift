import InfusionCore
import Synchronization
import Testing

@testable import DeviceIO

@Suite("In-memory links in virtual time")
struct InMemoryLinkTests {
    @Test("send delivers before it returns, stamped with the virtual time of the send")
    func synchronousVirtualTime() throws {
        let clock = VirtualClock(start: MonotonicInstant(nanoseconds: 1_000))
        let (driver, simulator) = InMemoryLink.makePair(clock: clock, names: ("driver", "pump"))
        let atSimulator = EventRecorder()
        try simulator.start(handler: atSimulator.handler)
        try driver.start { _ in }
        try driver.send([1, 2])
        #expect(atSimulator.snapshot == [.received([1, 2], at: MonotonicInstant(nanoseconds: 1_000))])
        clock.advance(by: .milliseconds(250))
        try driver.send([3])
        #expect(atSimulator.snapshot.last == .received([3], at: MonotonicInstant(nanoseconds: 1_000) + .milliseconds(250)))
    }

    @Test("a handler that replies does not recurse: 10 000 round trips complete, in order, before the first send returns")
    func pingPongWithoutRecursion() throws {
        let (driver, simulator) = InMemoryLink.makePair(clock: VirtualClock())
        @Sendable func encode(_ value: Int) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
        @Sendable func decode(_ bytes: [UInt8]) -> Int { Int(bytes[0]) << 8 | Int(bytes[1]) }
        let limit = 20_000
        let depth = Mutex(0)
        let maxDepth = Mutex(0)
        let seenByDriver = Mutex<[Int]>([])
        try simulator.start { [simulator] event in
            guard case .received(let bytes, _) = event else { return }
            let level = depth.withLock { value -> Int in
                value += 1
                return value
            }
            maxDepth.withLock { $0 = max($0, level) }
            try? simulator.send(encode(decode(bytes) + 1))
            depth.withLock { $0 -= 1 }
        }
        try driver.start { [driver] event in
            guard case .received(let bytes, _) = event else { return }
            let value = decode(bytes)
            seenByDriver.withLock { $0.append(value) }
            if value < limit { try? driver.send(encode(value + 1)) }
        }
        try driver.send(encode(0))
        let seen = seenByDriver.withLock { $0 }
        #expect(seen == Array(stride(from: 1, through: limit + 1, by: 2)))
        #expect(maxDepth.withLock { $0 } == 1)
    }

    @Test("events wait for a handler: bytes sent before start are delivered on start, in order")
    func bufferedUntilStart() throws {
        let (a, b) = InMemoryLink.makePair(clock: VirtualClock())
        try a.send([1])
        try a.send([2, 3])
        let atB = EventRecorder()
        try b.start(handler: atB.handler)
        #expect(atB.receivedBytes == [1, 2, 3])
        #expect(atB.snapshot.count == 2)
    }

    @Test("closing one end: .closed there, .disconnected on the other, sends fail, nothing after the terminal event")
    func closeSemantics() throws {
        let clock = VirtualClock()
        let (a, b) = InMemoryLink.makePair(clock: clock, names: ("a", "b"))
        let atA = EventRecorder()
        let atB = EventRecorder()
        try a.start(handler: atA.handler)
        try b.start(handler: atB.handler)
        #expect(throws: DeviceIOError.alreadyStarted(path: "a")) { try a.start { _ in } }
        clock.advance(by: .seconds(3))
        a.close()
        a.close()
        #expect(atA.snapshot == [.closed])
        #expect(atB.snapshot == [.disconnected(.disconnected(path: "b"), at: MonotonicInstant(nanoseconds: 3_000_000_000))])
        #expect(throws: DeviceIOError.closed(path: "a")) { try a.send([1]) }
        #expect(throws: DeviceIOError.disconnected(path: "b")) { try b.send([1]) }
        b.close()
        #expect(atB.snapshot.count == 1)
        #expect(throws: DeviceIOError.closed(path: "b")) { try b.start { _ in } }
    }

    @Test("maxChunk splits sends into chunks, to exercise parsers on split frames")
    func chunking() throws {
        let (a, b) = InMemoryLink.makePair(clock: VirtualClock(), maxChunk: 3)
        let atB = EventRecorder()
        try b.start(handler: atB.handler)
        try a.send(Array(0..<8))
        #expect(atB.snapshot.map { event -> Int in
            if case .received(let bytes, _) = event { return bytes.count }
            return -1
        } == [3, 3, 2])
        #expect(atB.receivedBytes == Array(0..<8))
    }

    @Test("concurrent senders on several threads lose nothing and never interleave a send")
    func concurrentSenders() throws {
        let (a, b) = InMemoryLink.makePair(clock: SystemMonotonicClock())
        let atB = EventRecorder()
        try b.start(handler: atB.handler)
        let senders = (0..<4).map { sender in
            Background { () -> Bool in
                for _ in 0..<500 { try? a.send([UInt8(sender), UInt8(sender), UInt8(sender)]) }
                return true
            }
        }
        for sender in senders { #expect(sender.value(timeout: .seconds(10)) == true) }
        #expect(atB.waitForBytes(4 * 500 * 3))
        for event in atB.snapshot {
            guard case .received(let bytes, _) = event else { continue }
            #expect(bytes.count == 3 && Set(bytes).count == 1)
        }
    }

    @Test("the same link protocol drives both kinds of link")
    func protocolUse() throws {
        func roundTrip(_ x: any ByteLink, _ y: any ByteLink) throws -> [UInt8] {
            let atY = EventRecorder()
            try y.start(handler: atY.handler)
            try x.start { _ in }
            try x.send([0x02, 0x41, 0x03])
            atY.waitForBytes(3)
            x.close()
            y.close()
            return atY.receivedBytes
        }
        let (a, b) = InMemoryLink.makePair(clock: VirtualClock())
        #expect(try roundTrip(a, b) == [0x02, 0x41, 0x03])
        let (simulator, driver, _) = try DescriptorLinkTests.makePair()
        #expect(try roundTrip(driver, simulator) == [0x02, 0x41, 0x03])
    }
}
