#if canImport(Glibc)
import Glibc
#endif
import CRealTime
import Foundation
import Logging
import Synchronization
import Testing
@testable import InfusionCore
@testable import Supervisor

/// The lock-free parts (SPSC ring, seqlock cells) and the real-time runner, with real threads, short
/// periods and bounded run times.
@Suite("Runtime: rings, input cells and the real-time runner", .serialized)
struct RuntimeTests {
    // MARK: Ring

    @Test("the SPSC ring keeps order across threads and counts drops when full")
    func ring() async {
        let ring = SPSCRing<Int>(minimumCapacity: 100)
        #expect(ring.capacity == 128)
        for i in 0..<128 { #expect(ring.push(i)) }
        #expect(!ring.push(999))
        #expect(ring.dropped == 1)
        var drained: [Int] = []
        ring.drain { drained.append($0) }
        #expect(drained == Array(0..<128))

        let total = 50_000
        let producer = Thread {
            var i = 0
            while i < total {
                if ring.push(i) { i += 1 } else { sched_yield() }
            }
        }
        producer.start()
        var expected = 0
        let deadline = Date().addingTimeInterval(30)
        while expected < total, Date() < deadline {
            if let v = ring.pop() {
                #expect(v == expected)
                if v != expected { break }
                expected += 1
            } else {
                sched_yield()
            }
        }
        #expect(expected == total)
    }

    // MARK: Cells

    @Test("vital-sign and pump-status cells round-trip every field, absent values included")
    func cellRoundTrip() {
        let cell = VitalSampleCell()
        #expect(cell.read() == nil)
        let samples = [
            VitalSample(arrivedAt: MonotonicInstant(nanoseconds: 123), measuredAt: MonotonicInstant(nanoseconds: 100), spo2: .percent(97.5),
                        pulseRate: .beatsPerMinute(72), perfusionIndex: .percent(3.2), quality: [.artifact, .marginalPerfusion]),
            VitalSample(arrivedAt: MonotonicInstant(nanoseconds: -5), spo2: nil, pulseRate: nil, quality: .probeOff),
        ]
        for s in samples {
            cell.publish(s)
            #expect(cell.read() == s)
        }
        #expect(cell.publications == 2)
        let pump = PumpStatusCell()
        let statuses = [
            PumpStatus(receivedAt: MonotonicInstant(nanoseconds: 42), state: .infusing, rate: .millilitresPerHour(28), volumeInfused: .millilitres(1.25),
                       alarms: [.lowBattery, .remoteControlLost]),
            PumpStatus(receivedAt: MonotonicInstant(nanoseconds: 43), state: .unknown),
        ]
        for p in statuses {
            pump.publish(p)
            #expect(pump.read() == p)
        }
        pump.publishConnection(.silent)
        pump.publishWatchdogArmed(true)
        #expect(pump.linkState == .silent && pump.watchdogArmed)
        // An unknown state byte decodes to `.unknown` (fail safe).
        var words = PumpStatusCell.encode(statuses[0])
        words.w1 = (words.w1 & ~0xff) | 0xee
        #expect(PumpStatusCell.decode(words).state == .unknown)
    }

    @Test("a reader never sees a torn sample while one writer publishes as fast as it can")
    func seqlockConsistency() {
        let cell = VitalSampleCell()
        let stop = Atomic<Bool>(false)
        let writer = Thread {
            var n: Int64 = 1
            while !stop.load(ordering: .relaxed) {
                // Every field derives from n: a torn read mixes two publications and is detectable.
                cell.publish(VitalSample(arrivedAt: MonotonicInstant(nanoseconds: n), measuredAt: MonotonicInstant(nanoseconds: n * 3),
                                         spo2: .percent(Double(n % 100)), pulseRate: .beatsPerMinute(Double(n)), perfusionIndex: .percent(Double(-n)),
                                         quality: OximetryQuality(rawValue: UInt32(truncatingIfNeeded: n & 0x3ff))))
                n += 1
            }
        }
        writer.start()
        var reads = 0
        var torn = 0
        let deadline = Date().addingTimeInterval(0.3)
        while Date() < deadline {
            guard let s = cell.read() else { continue }
            let n = s.arrivedAt.nanoseconds
            let consistent = s.measuredAt.nanoseconds == n * 3 && s.spo2 == .percent(Double(n % 100)) && s.pulseRate == .beatsPerMinute(Double(n))
                && s.perfusionIndex == .percent(Double(-n)) && s.quality.rawValue == UInt32(truncatingIfNeeded: n & 0x3ff)
            if !consistent { torn += 1 }
            reads += 1
        }
        stop.store(true, ordering: .relaxed)
        #expect(reads > 100, "the reader ran (\(reads) reads)")
        #expect(torn == 0)
    }

    // MARK: Runner

    /// A pipe the stop path writes into; the test reads the frames back.
    final class StopPipe: @unchecked Sendable {
        let read: Int32
        let write: Int32
        init() throws {
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { throw RunnerError.system(call: "pipe", errno: errno) }
            read = fds[0]
            write = fds[1]
            _ = fcntl(read, F_SETFL, fcntl(read, F_GETFL) | O_NONBLOCK)
        }
        deinit { close(read); close(write) }

        /// Waits up to `timeout` for `count` bytes; returns them.
        func frame(count: Int, timeout: Duration) -> [UInt8] {
            var bytes: [UInt8] = []
            let clock = SystemMonotonicClock()
            let end = clock.now() + timeout
            while bytes.count < count, clock.now() < end {
                var pfd = pollfd(fd: read, events: Int16(POLLIN), revents: 0)
                _ = poll(&pfd, 1, 5)
                var buffer = [UInt8](repeating: 0, count: 64)
                let n = Glibc.read(read, &buffer, 64)
                if n > 0 { bytes += buffer[0..<n] }
            }
            return bytes
        }
    }

    /// Captures log lines.
    final class LogCapture: @unchecked Sendable {
        let lines = Mutex<[String]>([])
        func handler(_ label: String) -> LogHandler { Handler(capture: self) }
        struct Handler: LogHandler {
            let capture: LogCapture
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) {
                capture.lines.withLock { $0.append("\(event.level): \(event.message)") }
            }
        }
    }

    static let stopFrame: [UInt8] = Array("0STP\r".utf8)

    func waitUntil(_ timeout: Duration, _ condition: () -> Bool) -> Bool {
        let clock = SystemMonotonicClock()
        let end = clock.now() + timeout
        while clock.now() < end {
            if condition() { return true }
            usleep(500)
        }
        return condition()
    }

    struct Rig {
        let runner: SupervisorRunner
        let channel: RunnerChannel
        let pipe: StopPipe
        let mailbox: PumpCommandMailbox
        let ring: DecisionRing
        let stopPath: FileDescriptorStopPath
        let logs: LogCapture
        /// Where the thread that wrote the first stop frame (the runner's) could run, and ran.
        let stopThread: StopThreadProbe
    }

    /// Wraps a stop path and records, on the thread that calls `sendStop()` first, how many CPUs that
    /// thread may run on, the highest of them, and the CPU it runs on.
    final class StopThreadProbe: PumpStopPath, @unchecked Sendable {
        let inner: any PumpStopPath
        let seen = Mutex<(allowed: Int32, last: Int32, running: Int32)?>(nil)
        init(_ inner: any PumpStopPath) { self.inner = inner }
        func sendStop() -> StopWriteResult {
            let placement = (crt_allowed_cpu_count(), crt_last_allowed_cpu(), crt_current_cpu())
            seen.withLock { $0 = $0 ?? placement }
            return inner.sendStop()
        }
        func engageSecondaryStop() { inner.engageSecondaryStop() }
    }

    func rig(period: Duration, realTime: Int32? = nil, cpu: Int32? = nil) throws -> Rig {
        let pipe = try StopPipe()
        let stopPath = FileDescriptorStopPath(fileDescriptor: pipe.write, stopFrame: Self.stopFrame)
        let probe = StopThreadProbe(stopPath)
        let mailbox = PumpCommandMailbox()
        let ring = DecisionRing(capacity: 1024)
        let logs = LogCapture()
        let setup = ChannelSetup(configuration: ChannelConfiguration(channel: 7, program: try Programs.program(), pumpHasWatchdog: true),
                                 stopPath: probe, commands: mailbox)
        let runner = try SupervisorRunner(
            configuration: .init(period: period, realTimePriority: realTime, lockMemory: false, latenessRecordCapacity: 4096, cpu: cpu),
            channels: [setup], decisions: ring, logger: Logger(label: "test", factory: logs.handler))
        return Rig(runner: runner, channel: runner.channels[0], pipe: pipe, mailbox: mailbox, ring: ring, stopPath: stopPath, logs: logs,
                   stopThread: probe)
    }

    /// Brings the rig's channel to infusing and publishes a desaturation; true when the stop frame came.
    func stopOnce(_ r: Rig) throws -> Bool {
        try bringToInfusing(r)
        r.channel.vitals.publish(VitalSample(arrivedAt: SystemMonotonicClock().now(), spo2: .percent(80), pulseRate: .beatsPerMinute(72)))
        return r.pipe.frame(count: Self.stopFrame.count, timeout: .seconds(1)) == Self.stopFrame
    }

    /// Plays the drivers: good vitals, a stopped pump, then an operator start and the pump following it.
    func bringToInfusing(_ r: Rig) throws {
        let clock = SystemMonotonicClock()
        r.channel.vitals.publishConnection(.connected)
        r.channel.pump.publishConnection(.connected)
        r.channel.pump.publishWatchdogArmed(true)
        r.channel.vitals.publish(VitalSample(arrivedAt: clock.now(), spo2: .percent(97), pulseRate: .beatsPerMinute(72)))
        r.channel.pump.publish(PumpStatus(receivedAt: clock.now(), state: .stopped, rate: .zero, volumeInfused: .zero))
        #expect(r.channel.submit(.start))
        var command: TimedPumpCommand?
        #expect(waitUntil(.seconds(2)) { command = command ?? r.mailbox.next(); return command != nil })
        guard case let .start(rate, _)? = command?.command else {
            Issue.record("expected a start command, got \(String(describing: command))")
            return
        }
        r.channel.pump.publish(PumpStatus(receivedAt: clock.now(), state: .infusing, rate: rate, volumeInfused: .zero))
        r.channel.vitals.publish(VitalSample(arrivedAt: clock.now(), spo2: .percent(97), pulseRate: .beatsPerMinute(72)))
        #expect(waitUntil(.seconds(2)) { r.channel.mode == .infusing })
    }

    @Test("the runner ticks on absolute deadlines, beats its heartbeat, counts lateness, and stops cleanly")
    func ticks() throws {
        let r = try rig(period: .milliseconds(2))
        try r.runner.start()
        #expect(throws: RunnerError.alreadyStarted) { try r.runner.start() }
        #expect(waitUntil(.seconds(2)) { r.runner.heartbeat.beats >= 50 })
        let clock = SystemMonotonicClock()
        #expect(r.runner.heartbeat.isAlive(now: clock.now(), within: .milliseconds(200)))
        r.runner.stop()
        r.runner.stop() // idempotent
        let stats = r.runner.counters.snapshot()
        #expect(stats.ticks >= 50)
        #expect(stats.timerWakeups >= 40)
        #expect(stats.worstWakeLateness >= .zero)
        #expect(stats.pollErrors == 0)
        var lateness: [Int64] = []
        r.runner.latenessRecord?.drain { lateness.append($0) }
        #expect(lateness.count == Int(stats.timerWakeups) || lateness.count == r.runner.latenessRecord?.capacity)
        #expect(lateness.allSatisfy { $0 >= 0 && $0 <= stats.worstWakeLateness.nanoseconds })
        let beats = r.runner.heartbeat.beats
        usleep(20_000)
        #expect(r.runner.heartbeat.beats == beats, "no ticks after stop")
        #expect(r.logs.lines.withLock { $0.contains { $0.contains("normal scheduler") } }, "it says clearly that it is not real-time")
    }

    @Test("a stop-worthy sample wakes the runner at once: the pre-encoded stop frame is written long before the next period")
    func wakesOnInput() throws {
        let r = try rig(period: .seconds(1)) // a long period: only the input wake-up can explain a fast stop
        try r.runner.start()
        defer { r.runner.stop() }
        try bringToInfusing(r)
        let clock = SystemMonotonicClock()
        let published = clock.now()
        r.channel.vitals.publish(VitalSample(arrivedAt: published, spo2: .percent(80), pulseRate: .beatsPerMinute(72)))
        let frame = r.pipe.frame(count: Self.stopFrame.count, timeout: .milliseconds(500))
        let latency = clock.now() - published
        #expect(frame == Self.stopFrame, "the stop frame, byte for byte")
        // Half the period: only the input wake-up can explain it (typically well under a millisecond).
        #expect(latency < .milliseconds(500), "stop written \(latency) after the sample; the period is 1 s")
        #expect(r.stopPath.stopsSent == 1)
        #expect(waitUntil(.seconds(1)) { r.channel.mode == .stoppedBySupervisor })
        // Confirmation comes back through the pump's reported state.
        // Two publications, each a wake-up: the second tick certainly read a stopped status.
        let ticksBefore = r.runner.counters.snapshot().ticks
        r.channel.pump.publish(PumpStatus(receivedAt: clock.now(), state: .stopped, rate: .zero, volumeInfused: .millilitres(0.01)))
        #expect(waitUntil(.seconds(3)) { r.runner.counters.snapshot().ticks >= ticksBefore + 1 })
        r.channel.pump.publish(PumpStatus(receivedAt: clock.now(), state: .stopped, rate: .zero, volumeInfused: .millilitres(0.01)))
        #expect(waitUntil(.seconds(3)) { r.runner.counters.snapshot().ticks >= ticksBefore + 2 })
        #expect(r.channel.highestAlarmPriority == .high)
        r.runner.stop()
        r.channel.withEngine { engine in
            #expect(!engine.state.stopPending, "the pump's stopped status confirmed the stop")
            #expect(engine.alarms[.spo2CriticallyLow].isPresent)
        }
        var kinds: [DecisionKind] = []
        r.ring.drain { kinds.append($0.kind) }
        #expect(kinds.contains(.startCommanded))
        #expect(kinds.contains(.stopCommanded))
        #expect(kinds.contains { if case .stopConfirmed = $0 { true } else { false } })
        #expect(r.runner.counters.snapshot().stopFramesWritten == 1)
        #expect(r.runner.counters.snapshot().inputWakeups > 0)
    }

    @Test("an operator action queued after the runner read its inputs waits for the next tick, never judged on older inputs")
    func actionsNeverSeeOlderInputs() throws {
        // The runner thread is not started: this test plays its two phases (read, then step) by hand, with
        // the operator's start arriving between them, the interleaving that once refused a start with
        // "no oximeter reading yet" although the first sample had been published before the start.
        let r = try rig(period: .seconds(1))
        let clock = SystemMonotonicClock()
        let counters = RunnerCounters()
        r.channel.vitals.publishConnection(.connected)
        r.channel.pump.publishConnection(.connected)
        r.channel.pump.publishWatchdogArmed(true)
        r.channel.readCells() // the runner reads: nothing published yet, nothing queued
        r.channel.vitals.publish(VitalSample(arrivedAt: clock.now(), spo2: .percent(97), pulseRate: .beatsPerMinute(72)))
        r.channel.pump.publish(PumpStatus(receivedAt: clock.now(), state: .stopped, rate: .zero, volumeInfused: .zero))
        #expect(r.channel.submit(.start))
        r.channel.tick(now: clock.now(), sink: r.ring, counters: counters)
        var kinds: [DecisionKind] = []
        r.ring.drain { kinds.append($0.kind) }
        #expect(!kinds.contains(.startRefused(.noVitals)), "the start waited for inputs at least as new as itself")
        #expect(r.mailbox.next() == nil, "no start in the tick that read the inputs before the start was queued")
        r.channel.readCells()
        r.channel.tick(now: clock.now(), sink: r.ring, counters: counters)
        r.ring.drain { kinds.append($0.kind) }
        #expect(kinds.contains(.startCommanded), "the next tick starts with the sample it has now read: \(kinds)")
        guard case .start? = r.mailbox.next()?.command else {
            Issue.record("expected a start command for the driver")
            return
        }
    }

    @Test("an unconfirmed stop is repeated by the runner and escalates to the secondary stop")
    func unconfirmedStop() throws {
        let r = try rig(period: .milliseconds(5))
        try r.runner.start()
        defer { r.runner.stop() }
        try bringToInfusing(r)
        #expect(r.channel.submit(.pause))
        // The pump never reports itself stopped: after 2 × 2 s the secondary stop is engaged.
        #expect(waitUntil(.seconds(6)) { r.stopPath.secondaryStops > 0 })
        #expect(r.stopPath.stopsSent >= 3)
        #expect(r.channel.mode == .fault)
        #expect(r.channel.highestAlarmPriority == .high)
        #expect(r.channel.alarmAudible)
    }

    @Test("SCHED_FIFO is requested and the outcome is logged either way")
    func realTimeLogged() throws {
        let r = try rig(period: .milliseconds(5), realTime: 10)
        try r.runner.start()
        #expect(waitUntil(.seconds(1)) { r.runner.heartbeat.beats > 5 })
        r.runner.stop()
        let lines = r.logs.lines.withLock { $0 }
        if r.runner.realTimeStatus.fifoScheduling {
            #expect(lines.contains { $0.contains("SCHED_FIFO priority 10") && $0.hasPrefix("info") })
        } else {
            #expect(lines.contains { $0.contains("could not use SCHED_FIFO") && $0.hasPrefix("warning") })
        }
    }

    @Test("pinned to a CPU under SCHED_FIFO, the runner's thread runs on that CPU alone and says so; unpinned, it keeps the process's CPUs")
    func pinnedToCPU() throws {
        let processCPUs = crt_allowed_cpu_count()
        let cpu = crt_last_allowed_cpu()  // a CPU this process may use
        let r = try rig(period: .milliseconds(5), realTime: 10, cpu: cpu)
        try r.runner.start()
        #expect(try stopOnce(r))
        r.runner.stop()
        let seen = try #require(r.stopThread.seen.withLock { $0 })
        let lines = r.logs.lines.withLock { $0 }
        if r.runner.realTimeStatus.fifoScheduling {
            #expect(r.runner.realTimeStatus.pinnedCPU == cpu)
            #expect(seen.allowed == 1 && seen.last == cpu && seen.running == cpu, "the stop was written on CPU \(cpu) only: \(seen)")
            #expect(lines.contains { $0.hasPrefix("info") && $0.contains("pinned to CPU \(cpu)") })
        } else {
            // Without SCHED_FIFO nothing is pinned: pinning serves the real-time wake-up only.
            #expect(r.runner.realTimeStatus.pinnedCPU == nil)
            #expect(seen.allowed == processCPUs)
        }
        let unpinned = try rig(period: .milliseconds(5), realTime: 10)
        try unpinned.runner.start()
        #expect(try stopOnce(unpinned))
        unpinned.runner.stop()
        #expect(unpinned.runner.realTimeStatus.pinnedCPU == nil)
        #expect(unpinned.stopThread.seen.withLock { $0 }?.allowed == processCPUs)
    }

    @Test("a CPU this process may not use is refused with a warning that says what to do; the runner still supervises, unpinned")
    func unusableCPU() throws {
        let processCPUs = crt_allowed_cpu_count()
        let cpu = crt_last_allowed_cpu() + 1
        let r = try rig(period: .milliseconds(5), realTime: 10, cpu: cpu)
        try r.runner.start()
        #expect(try stopOnce(r), "it still stops the pump")
        r.runner.stop()
        #expect(r.runner.realTimeStatus.pinnedCPU == nil)
        #expect(r.stopThread.seen.withLock { $0 }?.allowed == processCPUs)
        if r.runner.realTimeStatus.fifoScheduling {
            #expect(r.logs.lines.withLock { $0.contains { $0.hasPrefix("warning") && $0.contains("could not be pinned to CPU \(cpu)") && $0.contains("choose a CPU") } })
        }
    }

    @Test("an unusable configuration is refused with a reason")
    func invalidConfiguration() throws {
        let ring = DecisionRing()
        #expect(throws: RunnerError.self) {
            _ = try SupervisorRunner(configuration: .init(period: .zero), channels: [], decisions: ring)
        }
        do {
            _ = try SupervisorRunner(channels: [], decisions: ring)
            Issue.record("no channels should be refused")
        } catch {
            #expect(error.description.contains("no channels"))
        }
    }
}
