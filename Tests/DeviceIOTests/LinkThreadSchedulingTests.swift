import CRealTime
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

/// The CPUs the calling thread may run on: how many, and the highest-numbered one.
private func currentThreadAffinity() -> (count: Int32, last: Int32) {
    (crt_allowed_cpu_count(), crt_last_allowed_cpu())
}

/// True when this process may use SCHED_FIFO at `priority` (root / CAP_SYS_NICE, or RLIMIT_RTPRIO).
private func realTimeAllowed(_ priority: Int32) -> Bool {
    var limit = rlimit()
    return geteuid() == 0 || (getrlimit(__rlimit_resource_t(__RLIMIT_RTPRIO.rawValue), &limit) == 0 && limit.rlim_cur >= rlim_t(priority))
}

/// Process-wide state: serialized, and the setting is put back to "normal" after each test.
@Suite("Device link reader threads: real-time scheduling", .serialized)
struct LinkThreadSchedulingTests {
    /// Starts a simulator link (pty master) and a driver link (serial port on the slave), sends one
    /// byte each way, and returns the scheduling each reader thread had when it delivered the byte.
    static func readerScheduling() throws -> (driver: (policy: Int32, priority: Int32), simulator: (policy: Int32, priority: Int32)) {
        let seen = try readerThreads()
        return (seen.driver.scheduling, seen.simulator.scheduling)
    }

    /// As `readerScheduling()`, with each reader thread's CPU affinity.
    static func readerThreads() throws -> (driver: ThreadPlacement, simulator: ThreadPlacement) {
        let (simulator, driver, _) = try DescriptorLinkTests.makePair()
        defer {
            driver.close()
            simulator.close()
        }
        let atDriver = Mutex<ThreadPlacement?>(nil)
        let atSimulator = Mutex<ThreadPlacement?>(nil)
        let driverEvents = EventRecorder()
        let simulatorEvents = EventRecorder()
        try simulator.start { event in
            if case .received = event { atSimulator.withLock { $0 = $0 ?? ThreadPlacement() } }
            simulatorEvents.handler(event)
        }
        try driver.start { event in
            if case .received = event { atDriver.withLock { $0 = $0 ?? ThreadPlacement() } }
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

    @Test("with a CPU set too, a serial port's reader runs pinned to that CPU alone; a pty master's is neither raised nor pinned")
    func pinnedWhenAsked() throws {
        defer { LinkThreadScheduling.useRealTime(priority: nil) }
        let process = currentThreadAffinity()
        let cpu = process.last  // a CPU this process may use
        LinkThreadScheduling.useRealTime(priority: 19, cpu: cpu)
        let pinnedBefore = LinkThreadScheduling.realTimeThreadsPinned
        let seen = try Self.readerThreads()
        #expect(seen.simulator.scheduling.policy == SCHED_OTHER)
        #expect(seen.simulator.affinity.count == process.count, "the simulator's reader keeps the process's CPUs")
        if realTimeAllowed(19) {
            #expect(LinkThreadScheduling.pinnedCPU == cpu)
            #expect(seen.driver.scheduling.policy == SCHED_FIFO)
            #expect(seen.driver.affinity.count == 1 && seen.driver.affinity.last == cpu, "pinned to CPU \(cpu): \(seen.driver.affinity)")
            #expect(seen.driver.runningOn == cpu)
            #expect(LinkThreadScheduling.realTimeThreadsPinned == pinnedBefore + 1)
        } else {
            // Without SCHED_FIFO nothing is pinned: pinning serves the real-time wake-up only.
            #expect(seen.driver.affinity.count == process.count)
            #expect(LinkThreadScheduling.realTimeThreadsPinned == pinnedBefore)
        }
    }

    @Test("a CPU this process may not use is refused: the reader still runs (raised, unpinned), and nothing is pinned without a priority")
    func unusableCPU() throws {
        defer { LinkThreadScheduling.useRealTime(priority: nil) }
        let process = currentThreadAffinity()
        LinkThreadScheduling.useRealTime(priority: 19, cpu: process.last + 1)
        let pinnedBefore = LinkThreadScheduling.realTimeThreadsPinned
        let seen = try Self.readerThreads()
        #expect(seen.driver.affinity.count == process.count, "refused: the reader keeps the process's CPUs")
        #expect(LinkThreadScheduling.realTimeThreadsPinned == pinnedBefore)
        LinkThreadScheduling.useRealTime(priority: nil, cpu: 0)
        #expect(LinkThreadScheduling.pinnedCPU == nil, "a CPU without a priority is ignored")
        #expect(try Self.readerThreads().driver.affinity.count == process.count)
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

/// How a thread is scheduled and where it may run, as seen from the thread itself.
struct ThreadPlacement: Sendable {
    let scheduling: (policy: Int32, priority: Int32)
    let affinity: (count: Int32, last: Int32)
    let runningOn: Int32

    /// The calling thread's placement.
    init() {
        scheduling = currentThreadScheduling()
        affinity = currentThreadAffinity()
        runningOn = crt_current_cpu()
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

    @Test("with a CPU set, a driver host's timer thread is pinned to it with the readers; a simulator host's is not")
    func timerThreadsPinned() throws {
        defer { LinkThreadScheduling.useRealTime(priority: nil) }
        let process = currentThreadAffinity()
        LinkThreadScheduling.useRealTime(priority: 19, cpu: process.last)
        let pinnedBefore = LinkThreadScheduling.realTimeThreadsPinned
        #expect(try Self.timerThreadPolicy(linkUpOnOpen: false) == SCHED_OTHER)
        #expect(LinkThreadScheduling.realTimeThreadsPinned == pinnedBefore, "a simulator's timer thread is never pinned")
        _ = try Self.timerThreadPolicy(linkUpOnOpen: true)
        #expect(LinkThreadScheduling.realTimeThreadsPinned == pinnedBefore + (realTimeAllowed(19) ? 1 : 0))
    }
}
