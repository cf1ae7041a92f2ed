import Glibc
import InfusionCore
import Synchronization
import Testing

@testable import DeviceIO

/// The scheduling policy and priority of the thread that calls it (`pthread_getschedparam`).
private func currentThreadScheduling() -> (policy: Int32, priority: Int32) {
    var policy: Int32 = 0
    var parameters = sched_param()
    _ = pthread_getschedparam(pthread_self(), &policy, &parameters)
    return (policy, parameters.sched_priority)
}

/// Process-wide state: serialized, and the setting is put back to "normal" after each test.
@Suite("Device link reader threads: real-time scheduling", .serialized)
struct LinkThreadSchedulingTests {
    /// Starts a simulator link (pty master) and a driver link (serial port on the slave), sends one
    /// byte each way, and returns the scheduling each reader thread had when it delivered the byte.
    static func readerScheduling() throws -> (driver: (policy: Int32, priority: Int32), simulator: (policy: Int32, priority: Int32)) {
        let (simulator, driver, _) = try DescriptorLinkTests.makePair()
        defer {
            driver.close()
            simulator.close()
        }
        let atDriver = Mutex<(policy: Int32, priority: Int32)?>(nil)
        let atSimulator = Mutex<(policy: Int32, priority: Int32)?>(nil)
        let driverEvents = EventRecorder()
        let simulatorEvents = EventRecorder()
        try simulator.start { event in
            if case .received = event { atSimulator.withLock { $0 = $0 ?? currentThreadScheduling() } }
            simulatorEvents.handler(event)
        }
        try driver.start { event in
            if case .received = event { atDriver.withLock { $0 = $0 ?? currentThreadScheduling() } }
            driverEvents.handler(event)
        }
        #expect(simulatorEvents.wait { $0.contains { $0.isPeerConnected } })
        try driver.send([0x30])
        try simulator.send([0x31])
        #expect(simulatorEvents.waitForBytes(1) && driverEvents.waitForBytes(1))
        let driverSide = try #require(atDriver.withLock { $0 })
        let simulatorSide = try #require(atSimulator.withLock { $0 })
        return (driverSide, simulatorSide)
    }

    @Test("by default every reader thread runs in the normal scheduler")
    func normalByDefault() throws {
        LinkThreadScheduling.useRealTime(priority: nil)
        #expect(LinkThreadScheduling.realTimePriority == nil)
        let seen = try Self.readerScheduling()
        #expect(seen.driver.policy == SCHED_OTHER)
        #expect(seen.simulator.policy == SCHED_OTHER)
    }

    @Test("with a priority set, a serial port's reader runs under SCHED_FIFO at it; a pty master's never does")
    func realTimeWhenAsked() throws {
        defer { LinkThreadScheduling.useRealTime(priority: nil) }
        LinkThreadScheduling.useRealTime(priority: 19)
        #expect(LinkThreadScheduling.realTimePriority == 19)
        let raisedBefore = LinkThreadScheduling.realTimeThreadsStarted
        let seen = try Self.readerScheduling()
        #expect(seen.simulator.policy == SCHED_OTHER)
        // Whether the system grants SCHED_FIFO depends on the privileges (root / CAP_SYS_NICE, or RLIMIT_RTPRIO).
        var limit = rlimit()
        let allowed = geteuid() == 0 || (getrlimit(__rlimit_resource_t(__RLIMIT_RTPRIO.rawValue), &limit) == 0 && limit.rlim_cur >= 19)
        if allowed {
            #expect(seen.driver.policy == SCHED_FIFO)
            #expect(seen.driver.priority == 19)
            #expect(LinkThreadScheduling.realTimeThreadsStarted == raisedBefore + 1)
        } else {
            // Refused: the link still works, in the normal scheduler (and the refusal is logged once).
            #expect(seen.driver.policy == SCHED_OTHER)
            #expect(LinkThreadScheduling.realTimeThreadsStarted == raisedBefore)
        }
    }

    @Test("priorities are clamped to 1...99")
    func clamped() {
        defer { LinkThreadScheduling.useRealTime(priority: nil) }
        LinkThreadScheduling.useRealTime(priority: 0)
        #expect(LinkThreadScheduling.realTimePriority == 1)
        LinkThreadScheduling.useRealTime(priority: 250)
        #expect(LinkThreadScheduling.realTimePriority == 99)
    }
}

/// An endpoint whose first tick records the scheduling of the thread that ran it (the host's timer thread).
private struct SchedulingProbe: LinkEndpoint {
    typealias Output = Int32
    var due: MonotonicInstant? = .origin
    var nextDeadline: MonotonicInstant? { due }
    mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<Int32>) {}
    mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<Int32>) {}
    mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<Int32>) {}
    mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<Int32>) {
        due = nil
        effects.emit(currentThreadScheduling().policy)
    }
}

extension LinkThreadSchedulingTests {
    /// The policy a host's timer thread ran its first tick under.
    static func timerThreadPolicy(linkUpOnOpen: Bool) throws -> Int32? {
        let seen = Collected<Int32>()
        let host = EndpointHost(
            endpoint: SchedulingProbe(), name: "probe", clock: SystemMonotonicClock(), linkUpOnOpen: linkUpOnOpen,
            open: { () throws(DeviceIOError) -> any ByteLink in InMemoryLink.makePair(clock: SystemMonotonicClock()).0 }, onOutput: { seen.append($0) })
        host.start()
        defer { host.stop() }
        let deadline = SystemMonotonicClock().now() + .seconds(5)
        while seen.all.isEmpty, SystemMonotonicClock().now() < deadline { usleep(1_000) }
        return seen.all.first
    }

    @Test("a driver host's timer thread takes the link priority; a simulator host's does not")
    func timerThreads() throws {
        defer { LinkThreadScheduling.useRealTime(priority: nil) }
        LinkThreadScheduling.useRealTime(priority: nil)
        #expect(try Self.timerThreadPolicy(linkUpOnOpen: true) == SCHED_OTHER)
        LinkThreadScheduling.useRealTime(priority: 19)
        #expect(try Self.timerThreadPolicy(linkUpOnOpen: false) == SCHED_OTHER)
        let expected = geteuid() == 0 ? SCHED_FIFO : SCHED_OTHER
        #expect(try Self.timerThreadPolicy(linkUpOnOpen: true) == expected)
    }
}
