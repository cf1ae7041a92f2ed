import Glibc
import InfusionCore
import Synchronization
import Testing

@testable import DeviceIO

/// A clock that counts its readings, so a test can see that arrival times come from the injected clock.
final class CountingClock: MonotonicClock {
    let readings = Atomic<Int64>(0)
    let base = SystemMonotonicClock()
    func now() -> MonotonicInstant {
        readings.add(1, ordering: .relaxed)
        return base.now()
    }
}

@Suite("Descriptor links over real ptys")
struct DescriptorLinkTests {
    /// A simulator link on a pty master and a driver link on its slave.
    static func makePair(
        clock: any MonotonicClock = SystemMonotonicClock(), settings: SerialSettings = .newEra19200
    ) throws -> (simulator: DescriptorLink, driver: DescriptorLink, slavePath: String) {
        let pty = try PseudoTerminal()
        let simulator = DescriptorLink(pseudoTerminal: pty, clock: clock)
        let port = try SerialPort(path: pty.slavePath, settings: settings)
        let driver = DescriptorLink(port: port, clock: clock)
        return (simulator, driver, pty.slavePath)
    }

    @Test("bytes go both ways through the handlers, stamped by the injected clock", arguments: [
        SerialSettings.newEra19200, .fresenius19200, .contec115200,
    ])
    func bothWays(settings: SerialSettings) throws {
        let clock = CountingClock()
        let (simulator, driver, _) = try Self.makePair(clock: clock, settings: settings)
        defer {
            driver.close()
            simulator.close()
        }
        let atSimulator = EventRecorder()
        let atDriver = EventRecorder()
        try simulator.start(handler: atSimulator.handler)
        try driver.start(handler: atDriver.handler)
        #expect(atSimulator.wait { $0.contains { $0.isPeerConnected } })
        #expect(simulator.isPeerConnected && driver.isPeerConnected)

        let before = SystemMonotonicClock().now()
        let command = Array("\u{02}RAT\u{03}".utf8)
        try driver.send(command)
        #expect(atSimulator.waitForBytes(command.count))
        #expect(atSimulator.receivedBytes == command)

        let reply = (0...255).map { UInt8($0) }
        try simulator.send(reply)
        #expect(atDriver.waitForBytes(reply.count))
        #expect(atDriver.receivedBytes == reply)
        let after = SystemMonotonicClock().now()

        for event in atSimulator.snapshot + atDriver.snapshot {
            if case .received(_, let at) = event { #expect(at >= before && at <= after) }
        }
        #expect(clock.readings.load(ordering: .relaxed) >= 2)
    }

    @Test("the handler runs as soon as bytes arrive: one byte at a time, each with its own arrival time")
    func perByteDelivery() throws {
        let (simulator, driver, _) = try Self.makePair()
        defer {
            driver.close()
            simulator.close()
        }
        let atDriver = EventRecorder()
        try driver.start(handler: atDriver.handler)
        try simulator.start { _ in }
        var sentAt: [MonotonicInstant] = []
        for byte in UInt8(1)...5 {
            sentAt.append(SystemMonotonicClock().now())
            try simulator.send([byte])
            #expect(atDriver.waitForBytes(Int(byte)))
        }
        let arrivals = atDriver.snapshot.compactMap { event -> (UInt8, MonotonicInstant)? in
            if case .received(let bytes, let at) = event, bytes.count == 1 { return (bytes[0], at) }
            return nil
        }
        #expect(arrivals.map(\.0) == [1, 2, 3, 4, 5])
        for (index, arrival) in arrivals.enumerated() {
            #expect(arrival.1 >= sentAt[index])
            #expect(arrival.1 - sentAt[index] < .milliseconds(100))
        }
    }

    @Test("the simulator closing is a disconnection on the driver's link within 100 ms")
    func hangUpWithin100ms() throws {
        let (simulator, driver, slavePath) = try Self.makePair()
        defer { driver.close() }
        let atDriver = EventRecorder()
        try driver.start(handler: atDriver.handler)
        try simulator.start { _ in }
        pause(.milliseconds(20))
        let closedAt = SystemMonotonicClock().now()
        simulator.close()
        #expect(atDriver.wait(timeout: .seconds(2)) { $0.contains { $0.isTerminal } })
        guard case .disconnected(let error, let at)? = atDriver.snapshot.last else {
            Issue.record("expected .disconnected last, got \(atDriver.snapshot)")
            return
        }
        #expect(error == .disconnected(path: slavePath))
        #expect(at - closedAt < .milliseconds(100), "hang-up seen after \(at - closedAt)")
        #expect(!driver.isPeerConnected)
        #expect(throws: DeviceIOError.disconnected(path: slavePath)) { try driver.send([1]) }
        // Exactly one terminal event: closing afterwards adds nothing.
        driver.close()
        #expect(atDriver.snapshot.filter(\.isTerminal).count == 1)
    }

    @Test("a simulator's link reports the driver leaving and coming back, and bytes flow again")
    func peerLeavesAndReturns() throws {
        let pty = try PseudoTerminal()
        let simulator = DescriptorLink(pseudoTerminal: pty, clock: SystemMonotonicClock())
        defer { simulator.close() }
        let atSimulator = EventRecorder()
        try simulator.start(handler: atSimulator.handler)
        #expect(!simulator.isPeerConnected)
        try simulator.send(Array("nobody listens".utf8))  // discarded, not queued

        for round in 1...3 {
            let (port, openedIn) = try measure { try SerialPort(path: pty.slavePath, settings: .newEra19200) }
            _ = openedIn
            let openedAt = SystemMonotonicClock().now()
            #expect(atSimulator.wait { $0.filter(\.isPeerConnected).count == round })
            if case .peerConnected(let at)? = atSimulator.snapshot.last(where: \.isPeerConnected) {
                #expect(at - openedAt < .milliseconds(300), "re-open seen after \(at - openedAt)")
            }
            #expect(simulator.isPeerConnected)
            try simulator.send([UInt8(round)])
            #expect(try port.read(upTo: 16, timeout: .seconds(1)) == [UInt8(round)])
            try port.write([0x40 + UInt8(round)], timeout: .seconds(1))
            #expect(atSimulator.waitForBytes(round))
            let closedAt = SystemMonotonicClock().now()
            port.close()
            #expect(atSimulator.wait { $0.filter(\.isPeerDisconnected).count == round })
            if case .peerDisconnected(let at)? = atSimulator.snapshot.last(where: \.isPeerDisconnected) {
                #expect(at - closedAt < .milliseconds(100))
            }
            #expect(!simulator.isPeerConnected)
        }
        #expect(atSimulator.receivedBytes == [0x41, 0x42, 0x43])
        #expect(!atSimulator.snapshot.contains { $0.isTerminal })
    }

    @Test("a link started while the driver is already connected reports the peer at once")
    func peerAlreadyThere() throws {
        let pty = try PseudoTerminal()
        let port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
        defer { port.close() }
        let simulator = DescriptorLink(pseudoTerminal: pty, clock: SystemMonotonicClock())
        defer { simulator.close() }
        #expect(simulator.isPeerConnected)
        let atSimulator = EventRecorder()
        try simulator.start(handler: atSimulator.handler)
        #expect(atSimulator.wait { $0.first?.isPeerConnected == true })
    }

    @Test("close() is idempotent, ends with exactly one .closed, and the handler is never called after it returns")
    func closeSemantics() throws {
        let (simulator, driver, slavePath) = try Self.makePair()
        let atDriver = EventRecorder()
        try driver.start(handler: atDriver.handler)
        #expect(throws: DeviceIOError.alreadyStarted(path: slavePath)) { try driver.start { _ in } }
        driver.close()
        let countAtClose = atDriver.snapshot.count
        #expect(atDriver.snapshot.last == .closed)
        driver.close()
        #expect(throws: DeviceIOError.closed(path: slavePath)) { try driver.send([1]) }
        #expect(throws: DeviceIOError.closed(path: slavePath)) { try driver.start { _ in } }
        try? simulator.send([1, 2, 3])
        pause(.milliseconds(20))
        #expect(atDriver.snapshot.count == countAtClose)
        simulator.close()
    }

    @Test("close() from inside the handler does not deadlock, and .closed follows")
    func closeFromHandler() throws {
        let (simulator, driver, _) = try Self.makePair()
        defer { simulator.close() }
        let atDriver = EventRecorder()
        let record = atDriver.handler
        try driver.start { [driver] event in
            record(event)
            if case .received = event { driver.close() }
        }
        try simulator.start { _ in }
        try simulator.send([7])
        #expect(atDriver.wait { $0.contains { $0.isClosed } })
        #expect(atDriver.snapshot.filter(\.isTerminal).count == 1)
    }

    @Test("dropping a started link without close() releases its descriptor and thread")
    func dropReleases() throws {
        let pty = try PseudoTerminal()
        defer { pty.close() }
        do {
            let port = try SerialPort(path: pty.slavePath, settings: .newEra19200)
            let link = DescriptorLink(port: port, clock: SystemMonotonicClock())
            try link.start { _ in }
            #expect(pty.isSlaveOpen)
        }
        let recorder = EventRecorder()
        _ = recorder.wait(timeout: .milliseconds(500)) { _ in !pty.isSlaveOpen }
        #expect(!pty.isSlaveOpen)
    }

    @Test("opening and closing many links leaks no descriptor and no thread")
    func noLeaks() async {
        // In a child process, so the counts are not disturbed by the suites running in parallel here.
        await #expect(processExitsWith: .success) {
            func count(_ directory: String) -> Int {
                guard let dir = opendir(directory) else { return -1 }
                defer { closedir(dir) }
                var entries = 0
                while readdir(dir) != nil { entries += 1 }
                return entries
            }
            func cycle() throws {
                let (simulator, driver, _) = try DescriptorLinkTests.makePair()
                try simulator.start { _ in }
                try driver.start { _ in }
                try driver.send([1, 2, 3])
                try simulator.send([4, 5, 6])
                driver.close()
                simulator.close()
            }
            do {
                try cycle()  // warm up lazily created runtime state
                let descriptorsBefore = count("/proc/self/fd")
                let threadsBefore = count("/proc/self/task")
                for _ in 0..<20 { try cycle() }
                let descriptorsAfter = count("/proc/self/fd")
                let threadsAfter = count("/proc/self/task")
                exit(descriptorsAfter == descriptorsBefore && threadsAfter == threadsBefore ? 0 : 1)
            } catch {
                exit(2)
            }
        }
    }

    @Test("a send from the real-time path with a raw buffer does not need an array")
    func rawBufferSend() throws {
        let (simulator, driver, _) = try Self.makePair()
        defer {
            driver.close()
            simulator.close()
        }
        let atSimulator = EventRecorder()
        try simulator.start(handler: atSimulator.handler)
        let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 1)
        defer { frame.deallocate() }
        for index in 0..<8 { frame[index] = UInt8(0xF0 + index) }
        try driver.send(UnsafeRawBufferPointer(frame))
        #expect(atSimulator.waitForBytes(8))
        #expect(atSimulator.receivedBytes == (0..<8).map { UInt8(0xF0 + $0) })
    }
}
