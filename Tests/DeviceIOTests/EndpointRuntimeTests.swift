import Foundation
import Synchronization
import Testing
@testable import DeviceIO
import InfusionCore

/// A toy driver: sends "PING n" every `period` while the link is up; records replies with their times.
struct Pinger: LinkEndpoint {
    enum Output: Sendable, Equatable { case up, down, pong(Int, MonotonicInstant) }
    var period: Duration
    var next: MonotonicInstant?
    var count = 0
    var buffer: [UInt8] = []

    var nextDeadline: MonotonicInstant? { next }

    mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        effects.emit(.up)
        next = now
    }
    mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        effects.emit(.down)
        next = nil
        buffer.removeAll()
    }
    mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        buffer += bytes
        while let newline = buffer.firstIndex(of: 0x0A) {
            let line = String(decoding: buffer[..<newline], as: UTF8.self)
            buffer.removeSubrange(...newline)
            if line.hasPrefix("PONG "), let n = Int(line.dropFirst(5)) { effects.emit(.pong(n, now)) }
        }
    }
    mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        count += 1
        effects.send(Array("PING \(count)\n".utf8))
        next = now + period
    }
}

/// A toy device: answers each "PING n" line with "PONG n".
struct Ponger: LinkEndpoint {
    typealias Output = String
    var buffer: [UInt8] = []
    var nextDeadline: MonotonicInstant? { nil }
    mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<String>) { effects.emit("up") }
    mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<String>) { effects.emit("down"); buffer.removeAll() }
    mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        buffer += bytes
        while let newline = buffer.firstIndex(of: 0x0A) {
            let line = String(decoding: buffer[..<newline], as: UTF8.self)
            buffer.removeSubrange(...newline)
            if line.hasPrefix("PING ") { effects.send(Array("PONG \(line.dropFirst(5))\n".utf8)) }
        }
    }
    mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {}
}

final class Collected<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])
    func append(_ item: T) { items.withLock { $0.append(item) } }
    var all: [T] { items.withLock { $0 } }
}

@Suite("Endpoint runtime: virtual network")
struct VirtualNetworkTests {
    @Test("endpoints exchange bytes in virtual time, exactly and deterministically")
    func pingPong() {
        let clock = VirtualClock()
        let network = VirtualNetwork(clock: clock)
        var outputs: [Pinger.Output] = []
        let driver = network.add(Pinger(period: .seconds(1))) { outputs.append($0) }
        let device = network.add(Ponger())
        network.connect(driver, device, latency: .milliseconds(5))
        network.run(for: .milliseconds(9_999))
        // Pings at 0…9 s, each answered 10 ms later (5 ms each way).
        let pongs = outputs.compactMap { if case let .pong(n, t) = $0 { (n, t) } else { nil } }
        #expect(outputs.first == .up)
        #expect(pongs.count == 10)
        for (index, pong) in pongs.enumerated() {
            #expect(pong.0 == index + 1)
            #expect(pong.1 == MonotonicInstant.origin + .seconds(index) + .milliseconds(10))
        }
        #expect(clock.now() == MonotonicInstant.origin + .milliseconds(9_999))
    }

    @Test("baud-rate pacing delays bytes as a serial line would")
    func pacing() {
        let clock = VirtualClock()
        let network = VirtualNetwork(clock: clock)
        var outputs: [Pinger.Output] = []
        let driver = network.add(Pinger(period: .seconds(10))) { outputs.append($0) }
        let device = network.add(Ponger())
        network.connect(driver, device, bitsPerSecond: 9600)
        network.run(for: .seconds(1))
        // "PING 1\n" (7 bytes) then "PONG 1\n" (7 bytes): 14 bytes × 10 bits at 9600 bit/s.
        let expected = MonotonicInstant.origin + .nanoseconds(14 * 1_041_666)
        #expect(outputs.contains(.pong(1, expected)))
    }

    @Test("pulling the plug loses bytes in flight and tells both ends")
    func unplug() {
        let clock = VirtualClock()
        let network = VirtualNetwork(clock: clock)
        var outputs: [Pinger.Output] = []
        var deviceLog: [String] = []
        let driver = network.add(Pinger(period: .seconds(1))) { outputs.append($0) }
        let device = network.add(Ponger()) { deviceLog.append($0) }
        network.connect(driver, device, latency: .milliseconds(500))
        network.run(for: .milliseconds(700))  // ping 1 delivered at 0.5 s; pong 1 would arrive at 1.0 s
        network.disconnect(driver)
        network.run(for: .seconds(5))
        #expect(outputs == [.up, .down])
        #expect(deviceLog == ["up", "down"])
        #expect(network.nextEventTime() == nil)
    }

    @Test("timers that are not on a link run at their deadlines")
    func timers() {
        let clock = VirtualClock()
        let network = VirtualNetwork(clock: clock)
        var fired: [MonotonicInstant] = []
        var next: MonotonicInstant? = .origin + .milliseconds(10)
        network.addTimer(deadline: { next }, tick: { now in
            fired.append(now)
            next = fired.count < 3 ? now + .milliseconds(10) : nil
        })
        network.run(for: .seconds(1))
        #expect(fired == [10, 20, 30].map { MonotonicInstant.origin + .milliseconds($0) })
    }
}

@Suite("Endpoint runtime: real threads over a pty")
struct EndpointHostTests {
    @Test("a driver endpoint and a simulator endpoint talk over a real pseudo-terminal")
    func overPTY() throws {
        let clock = SystemMonotonicClock()
        let pty = try PseudoTerminal()
        let simLog = Collected<String>()
        let simulator = EndpointHost(endpoint: Ponger(), name: "sim", clock: clock, linkUpOnOpen: false,
                                     open: { () throws(DeviceIOError) -> any ByteLink in DescriptorLink(pseudoTerminal: pty, clock: clock) },
                                     onOutput: { simLog.append($0) })
        simulator.start()
        let outputs = Collected<Pinger.Output>()
        let path = pty.slavePath
        let driver = EndpointHost(endpoint: Pinger(period: .milliseconds(20)), name: "drv", clock: clock,
                                  open: { () throws(DeviceIOError) -> any ByteLink in
                                      DescriptorLink(port: try SerialPort(path: path, settings: .newEra19200), clock: clock)
                                  },
                                  onOutput: { outputs.append($0) })
        driver.start()
        let deadline = Date().addingTimeInterval(10)
        while outputs.all.filter({ if case .pong = $0 { true } else { false } }).count < 5, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        #expect(outputs.all.first == .up)
        #expect(outputs.all.filter { if case .pong = $0 { true } else { false } }.count >= 5)
        #expect(simLog.all.first == "up")
        driver.stop()
        simulator.stop()
    }

    @Test("a driver reconnects when its device comes back on the same path")
    func reconnects() throws {
        let clock = SystemMonotonicClock()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("endpoint-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let linkPath = directory.appendingPathComponent("pump0").path

        func startSimulator() throws -> (PseudoTerminal, EndpointHost<Ponger>) {
            let pty = try PseudoTerminal()
            try? FileManager.default.removeItem(atPath: linkPath)
            try FileManager.default.createSymbolicLink(atPath: linkPath, withDestinationPath: pty.slavePath)
            let host = EndpointHost(endpoint: Ponger(), name: "sim", clock: clock, linkUpOnOpen: false,
                                    open: { () throws(DeviceIOError) -> any ByteLink in DescriptorLink(pseudoTerminal: pty, clock: clock) },
                                    onOutput: { _ in })
            host.start()
            return (pty, host)
        }

        var (_, simulator) = try startSimulator()
        let outputs = Collected<Pinger.Output>()
        let driver = EndpointHost(endpoint: Pinger(period: .milliseconds(20)), name: "drv", clock: clock,
                                  reconnectInterval: .milliseconds(50),
                                  open: { () throws(DeviceIOError) -> any ByteLink in
                                      DescriptorLink(port: try SerialPort(path: linkPath, settings: .newEra19200), clock: clock)
                                  },
                                  onOutput: { outputs.append($0) })
        driver.start()
        // Generous: these wait for things that must eventually happen; timing limits are asserted separately.
        func waitFor(_ condition: () -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(10)
            while !condition(), Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
            return condition()
        }
        #expect(waitFor { outputs.all.contains { if case .pong = $0 { true } else { false } } })
        // Unplug: the link goes first (as udev removes it; otherwise the reconnecting driver could open the
        // dead pty's number once another test's pseudo-terminal gets it), then the pty master closes and
        // the driver's port hangs up.
        try? FileManager.default.removeItem(atPath: linkPath)
        simulator.stop()
        let unplugged = Date()
        #expect(waitFor { outputs.all.contains(.down) })
        #expect(Date().timeIntervalSince(unplugged) < 1.0, "unplug must be noticed within 1 s")
        (_, simulator) = try startSimulator()  // plugged back in
        #expect(waitFor { outputs.all.filter { $0 == .up }.count == 2 })
        let before = outputs.all.count
        #expect(waitFor { outputs.all.count > before + 2 })
        #expect(outputs.all.suffix(2).allSatisfy { if case .pong = $0 { true } else { false } })
        driver.stop()
        simulator.stop()
    }
}
