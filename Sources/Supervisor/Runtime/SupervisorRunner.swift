#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CRealTime
import InfusionCore
import Logging
import Synchronization

/// What the runner needs to supervise one channel: the channel's configuration and the two ways to
/// its pump.
public struct ChannelSetup: Sendable {
    /// Limits, channel number, watchdog capability.
    public var configuration: ChannelConfiguration
    /// The urgent path: pre-encoded stop frame written on the runner's thread.
    public var stopPath: any PumpStopPath
    /// The non-urgent path: starts and rate changes for the driver's thread.
    public var commands: any PumpCommandSink

    /// A channel setup; see each property.
    public init(configuration: ChannelConfiguration, stopPath: any PumpStopPath, commands: any PumpCommandSink) {
        self.configuration = configuration
        self.stopPath = stopPath
        self.commands = commands
    }
}

/// One supervised channel inside a runner: the input cells its drivers publish into, the operator's
/// action queue, and (on the runner's thread only) its rule engine.
///
/// Drivers: the oximeter driver's thread publishes into `vitals`, the pump driver's thread into
/// `pump`; the session's thread submits operator actions with `submit(_:)`. Each of those wakes the
/// runner at once.
public final class RunnerChannel: @unchecked Sendable {
    // @unchecked: `engine`, `output`, `lastVitals`, `lastPump` are touched only by the runner's thread
    // while it runs (and by `withEngine` only when it does not); everything shared is atomic or a
    // lock-free cell.
    /// The oximeter driver publishes samples and link state here (single publisher thread).
    public let vitals: VitalSampleCell
    /// The pump driver publishes status, link state and watchdog state here (single publisher thread).
    public let pump: PumpStatusCell
    private let actions: SPSCRing<OperatorAction>
    private let wakeup: Wakeup
    let stopPath: any PumpStopPath
    let commands: any PumpCommandSink
    var engine: SupervisorChannel
    var output = StepOutput()
    var lastVitals: VitalSample?
    var lastPump: PumpStatus?
    /// Operator actions that were queued before `readCells()` read the inputs: only those are stepped in
    /// this tick, so an action never sees inputs older than itself (start right after the first sample).
    var actionsBeforeRead = 0
    private let publishedMode = Atomic<UInt8>(ChannelMode.idle.rawValue)
    private let publishedAudible = Atomic<Bool>(false)
    private let publishedPriority = Atomic<UInt8>(0)

    init(setup: ChannelSetup, wakeup: Wakeup, now: MonotonicInstant) {
        vitals = VitalSampleCell(wakeup: wakeup)
        pump = PumpStatusCell(wakeup: wakeup)
        actions = SPSCRing(minimumCapacity: 32)
        self.wakeup = wakeup
        stopPath = setup.stopPath
        commands = setup.commands
        engine = SupervisorChannel(configuration: setup.configuration, now: now)
    }

    /// The session's thread (single producer). Queues an operator action for the next step and wakes
    /// the runner. Returns false when the queue is full (32 pending actions).
    @discardableResult
    public func submit(_ action: OperatorAction) -> Bool {
        let queued = actions.push(action)
        wakeup.signal()
        return queued
    }

    /// The channel's mode after the last step. Any thread.
    public var mode: ChannelMode { ChannelMode(rawValue: publishedMode.load(ordering: .acquiring)) ?? .fault }

    /// True when an alarm sound should play after the last step. Any thread.
    public var alarmAudible: Bool { publishedAudible.load(ordering: .acquiring) }

    /// The highest present alarm priority after the last step (nil: none). Any thread.
    public var highestAlarmPriority: AlarmPriority? { AlarmPriority(rawValue: Int(publishedPriority.load(ordering: .acquiring))) }

    /// Reads the rule engine. Only while the runner is not running (before `start()` or after `stop()`).
    public func withEngine<R>(_ body: (SupervisorChannel) throws -> R) rethrows -> R { try body(engine) }

    /// Runner thread. Counts the queued operator actions, then reads the input cells (keeping the
    /// previous value when a read was contended). Actions queued after this point wait for the next
    /// tick (their own wake-up makes that immediate), so every action is judged on inputs at least as
    /// new as itself.
    func readCells() {
        actionsBeforeRead = min(actions.count, 8)
        if let v = vitals.read() { lastVitals = v }
        if let p = pump.read() { lastPump = p }
    }

    /// Runner thread. One tick of this channel (after `readCells()`): step once per action that was
    /// queued before the read (at least once, at most 8), and dispatch what each step decided. No
    /// allocation, no lock.
    func tick(now: MonotonicInstant, sink: any DecisionSink, counters: RunnerCounters) {
        var remaining = actionsBeforeRead
        var inputs = ChannelInputs(vitals: lastVitals, oximeter: vitals.linkState, pump: lastPump, pumpLink: pump.linkState,
                                   pumpWatchdogArmed: pump.watchdogArmed, action: remaining > 0 ? actions.pop() : nil)
        repeat {
            engine.step(inputs: inputs, now: now, into: &output)
            dispatch(now: now, sink: sink, counters: counters)
            remaining -= 1
            inputs.action = remaining > 0 ? actions.pop() : nil
        } while inputs.action != nil
        publishedMode.store(engine.state.mode.rawValue, ordering: .releasing)
        publishedAudible.store(engine.alarms.isAudible(at: now), ordering: .releasing)
        publishedPriority.store(UInt8(engine.alarms.highestPriority?.rawValue ?? 0), ordering: .releasing)
    }

    /// Urgent commands first, written on this thread through the stop path; then (only when there was
    /// no stop) starts and rate changes to the driver; then every decision to the sink.
    private func dispatch(now: MonotonicInstant, sink: any DecisionSink, counters: RunnerCounters) {
        if output.stopIsUrgent {
            for command in output.commands where command.isUrgent {
                if command == .secondaryStop {
                    stopPath.engageSecondaryStop()
                    counters.secondaryStops.wrappingAdd(1, ordering: .relaxed)
                } else {
                    switch stopPath.sendStop() {
                    case .written: counters.stopFrames.wrappingAdd(1, ordering: .relaxed)
                    case .partial, .failed: counters.stopWriteFailures.wrappingAdd(1, ordering: .relaxed)
                    }
                }
            }
        } else {
            for command in output.commands {
                commands.submit(command, at: now)
                counters.commandsSubmitted.wrappingAdd(1, ordering: .relaxed)
            }
        }
        for event in output.decisions { sink.record(event) }
        if output.decisions.dropped > 0 || output.alarmEvents.dropped > 0 || output.commands.dropped > 0 {
            counters.outputOverflows.wrappingAdd(1, ordering: .relaxed)
        }
    }
}

/// The safety supervisor's real-time runner: one dedicated thread that steps every channel at a fixed
/// period on absolute monotonic deadlines, and at once whenever new input is published.
///
/// How it waits: a `timerfd` on CLOCK_MONOTONIC armed with an ABSOLUTE first deadline and the period
/// as interval (so deadlines never drift), and an eventfd (`Wakeup`) that every input cell and the
/// action queue signal; the thread sleeps in `poll(2)` on both. A stop decision therefore never waits
/// for the next period.
///
/// The tick reads the lock-free input cells (seqlocks), steps each channel, writes urgent stop frames
/// directly through each channel's `PumpStopPath`, hands other commands to its `PumpCommandSink`,
/// records decisions in the `DecisionSink` (use a `DecisionRing`), updates the counters and beats the
/// heartbeat. It allocates nothing and takes no lock.
///
/// On start it tries SCHED_FIFO (`realTimePriority`) and `mlockall` (`lockMemory`) and logs clearly,
/// through swift-log, whether each worked; without them it still runs, with weaker latency.
///
/// Threads: `start()` and `stop()` from one controlling thread. Drivers publish into
/// `channels[i].vitals` / `.pump`; the session submits actions with `channels[i].submit(_:)`.
public final class SupervisorRunner: @unchecked Sendable {
    // @unchecked: mutable state (`thread`) is touched only by the controlling thread in start/stop;
    // the runner thread reads immutable properties, atomics and its channels' thread-confined state.

    /// Runner settings.
    public struct Configuration: Sendable {
        /// The tick period (default 10 ms).
        public var period: Duration
        /// SCHED_FIFO priority to request (1–99), or nil to stay in the normal scheduler.
        public var realTimePriority: Int32?
        /// Lock all current and future memory (`mlockall`) so the tick never page-faults. Process-wide.
        public var lockMemory: Bool
        /// When above zero, every timer wake-up's lateness (ns) is pushed into `latenessRecord`, a ring
        /// of this capacity (for jitter measurements).
        public var latenessRecordCapacity: Int
        /// The CPU to pin the runner's thread to (with SCHED_FIFO only), or nil to let it run anywhere.
        /// Pin the device links' threads that publish its inputs to the same CPU
        /// (`LinkThreadScheduling.useRealTime(priority:cpu:)`): a publication then wakes the runner on the
        /// publisher's own CPU, where it preempts the publisher as that returns from its system call,
        /// instead of on the CPU it last ran on, where a normal task inside a long kernel path holds it off
        /// (on a `preempt=none` kernel, traced up to 1.7 ms; docs/supervisor.md "Real-time placement").
        /// `RealTimePlacement.automatic()` gives the production choice.
        public var cpu: Int32?

        /// Settings; the defaults are the production ones (10 ms, SCHED_FIFO 20, memory locked), with no
        /// CPU pinning unless `cpu` is given.
        public init(period: Duration = .milliseconds(10), realTimePriority: Int32? = 20, lockMemory: Bool = true,
                    latenessRecordCapacity: Int = 0, cpu: Int32? = nil) {
            self.period = period
            self.realTimePriority = realTimePriority
            self.lockMemory = lockMemory
            self.latenessRecordCapacity = latenessRecordCapacity
            self.cpu = cpu
        }
    }

    /// What the runner managed to get from the system when its thread started.
    public struct RealTimeStatus: Hashable, Sendable {
        /// True when the thread runs under SCHED_FIFO.
        public let fifoScheduling: Bool
        /// True when `mlockall` succeeded.
        public let memoryLocked: Bool
        /// The CPU the thread is pinned to, when `Configuration.cpu` was given and the system agreed.
        public let pinnedCPU: Int32?
    }

    /// The settings.
    public let configuration: Configuration
    /// The supervised channels, in setup order.
    public let channels: [RunnerChannel]
    /// Where every decision goes.
    public let decisions: any DecisionSink
    /// Ticks, wake-ups, overruns, lateness.
    public let counters = RunnerCounters()
    /// The sign of life for an outside watchdog.
    public let heartbeat = Heartbeat()
    /// Timer wake-up lateness in nanoseconds, when `latenessRecordCapacity > 0` (single consumer).
    public let latenessRecord: SPSCRing<Int64>?
    /// Signalled by every publication; the runner's thread polls it.
    public let wakeup: Wakeup

    private let clock: any MonotonicClock
    private let system = SystemMonotonicClock()
    private let logger: Logger
    private let timerFD: Int32
    private let running = Atomic<Bool>(false)
    private let fifo = Atomic<Bool>(false)
    private let locked = Atomic<Bool>(false)
    private let pinned = Atomic<Int32>(-1)
    private let threadReady = Atomic<Bool>(false)
    private let armErrno = Atomic<Int32>(0)
    private var thread: pthread_t?
    private var started = false

    /// Sets up a runner (not yet running). `clock` stamps the steps and must be the clock the drivers
    /// stamp samples and statuses with (the waiting itself is always on CLOCK_MONOTONIC).
    /// Allocates everything the tick will use. Throws when the system lacks eventfd/timerfd or the
    /// configuration is unusable.
    public init(configuration: Configuration = Configuration(), channels setups: [ChannelSetup], decisions: any DecisionSink,
                clock: any MonotonicClock = SystemMonotonicClock(), logger: Logger = Logger(label: "infusioncontrol.supervisor")) throws(RunnerError) {
        guard configuration.period >= .microseconds(100), configuration.period <= .seconds(1) else {
            throw .invalidConfiguration("period \(configuration.period) is outside 100 µs to 1 s")
        }
        guard !setups.isEmpty else { throw .invalidConfiguration("no channels: give at least one ChannelSetup") }
        self.configuration = configuration
        self.decisions = decisions
        self.clock = clock
        self.logger = logger
        let wakeup = try Wakeup()
        self.wakeup = wakeup
        let fd = crt_timerfd_monotonic()
        guard fd >= 0 else { throw .system(call: "timerfd_create", errno: errno) }
        timerFD = fd
        let now = clock.now()
        channels = setups.map { RunnerChannel(setup: $0, wakeup: wakeup, now: now) }
        latenessRecord = configuration.latenessRecordCapacity > 0 ? SPSCRing(minimumCapacity: configuration.latenessRecordCapacity) : nil
    }

    deinit {
        stop()
        close(timerFD)
    }

    /// What the runner got from the system (valid once `start()` has returned).
    public var realTimeStatus: RealTimeStatus {
        let cpu = pinned.load(ordering: .acquiring)
        return RealTimeStatus(fifoScheduling: fifo.load(ordering: .acquiring), memoryLocked: locked.load(ordering: .acquiring),
                              pinnedCPU: cpu >= 0 ? cpu : nil)
    }

    /// True while the thread runs.
    public var isRunning: Bool { running.load(ordering: .acquiring) }

    /// Starts the thread (once per runner). Returns when the thread is about to enter its loop; throws
    /// when the thread or its timer could not be set up (nothing is supervised then: say so to the operator).
    public func start() throws(RunnerError) {
        guard !started else { throw .alreadyStarted }
        started = true
        if configuration.lockMemory {
            if mlockall(MCL_CURRENT | MCL_FUTURE) == 0 {
                locked.store(true, ordering: .releasing)
                logger.info("supervisor memory locked (mlockall): the tick will not page-fault")
            } else {
                let e = errno
                logger.warning("supervisor could not lock memory (mlockall: \(String(cString: strerror(e)))): running unlocked, a page fault may delay a tick; grant CAP_IPC_LOCK or raise RLIMIT_MEMLOCK (LimitMEMLOCK=infinity in the systemd unit)")
            }
        }
        running.store(true, ordering: .releasing)
        let box = Unmanaged.passRetained(self).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { context in
            guard let context else { return nil }
            let runner = Unmanaged<SupervisorRunner>.fromOpaque(context).takeRetainedValue()
            runner.threadMain()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<SupervisorRunner>.fromOpaque(box).release()
            running.store(false, ordering: .releasing)
            throw .system(call: "pthread_create", errno: rc)
        }
        thread = tid
        while !threadReady.load(ordering: .acquiring) { sched_yield() }
        let failed = armErrno.load(ordering: .acquiring)
        if failed != 0 {
            pthread_join(tid, nil)
            thread = nil
            throw .system(call: "timerfd_settime", errno: failed)
        }
    }

    /// Stops the thread and waits for it. Idempotent. Channels keep their last state (`withEngine`).
    public func stop() {
        guard let tid = thread else { return }
        running.store(false, ordering: .releasing)
        wakeup.signal()
        pthread_join(tid, nil)
        thread = nil
        logger.info("supervisor runner stopped after \(counters.snapshot().ticks) ticks")
    }

    private func threadMain() {
        setUpRealTime()
        let period = configuration.period.nanoseconds
        let first = system.now().nanoseconds + period
        if crt_timerfd_arm_absolute(timerFD, first, period) != 0 {
            let e = errno
            armErrno.store(e == 0 ? EINVAL : e, ordering: .releasing)
            logger.critical("supervisor timer could not be armed (timerfd_settime: \(String(cString: strerror(e)))): the supervisor is NOT running; stop every pump by hand")
            running.store(false, ordering: .releasing)
            threadReady.store(true, ordering: .releasing)
            return
        }
        logger.info("supervisor runner started: \(channels.count) channel(s), period \(configuration.period)")
        let fds = UnsafeMutablePointer<pollfd>.allocate(capacity: 2)
        defer { fds.deallocate() }
        var nextDeadline = first
        threadReady.store(true, ordering: .releasing)
        while running.load(ordering: .acquiring) {
            fds[0] = pollfd(fd: wakeup.fileDescriptor, events: Int16(POLLIN), revents: 0)
            fds[1] = pollfd(fd: timerFD, events: Int16(POLLIN), revents: 0)
            if poll(fds, 2, -1) < 0 {
                if errno != EINTR { counters.pollErrors.wrappingAdd(1, ordering: .relaxed) }
                continue
            }
            let woke = system.now().nanoseconds
            if fds[1].revents & Int16(POLLIN) != 0 {
                let expirations = Int64(truncatingIfNeeded: crt_timerfd_expirations(timerFD))
                if expirations > 0 {
                    let deadline = nextDeadline + (expirations - 1) * period
                    nextDeadline += expirations * period
                    let lateness = max(woke - deadline, 0)
                    counters.timerWakeups.wrappingAdd(1, ordering: .relaxed)
                    counters.lastLateness.store(lateness, ordering: .relaxed)
                    RunnerCounters.raise(counters.worstLateness, to: lateness)
                    if expirations > 1 { counters.overruns.wrappingAdd(UInt64(expirations - 1), ordering: .relaxed) }
                    latenessRecord?.push(lateness)
                }
            }
            if fds[0].revents & Int16(POLLIN) != 0 {
                wakeup.drain()
                counters.inputWakeups.wrappingAdd(1, ordering: .relaxed)
            }
            guard running.load(ordering: .acquiring) else { break }
            tick()
            let took = system.now().nanoseconds - woke
            RunnerCounters.raise(counters.worstTick, to: took)
            if took > period { counters.overruns.wrappingAdd(1, ordering: .relaxed) }
        }
    }

    /// One tick: read every channel's cells, then take `now` (so no sample can be newer than `now`),
    /// then step and dispatch every channel. No allocation, no lock.
    private func tick() {
        // Read first, then the clock: a sample stamped before its publication is never "from the future".
        for channel in channels { channel.readCells() }
        let now = clock.now()
        for channel in channels { channel.tick(now: now, sink: decisions, counters: counters) }
        counters.ticks.wrappingAdd(1, ordering: .relaxed)
        heartbeat.beat(at: now)
    }

    private func setUpRealTime() {
        guard let priority = configuration.realTimePriority else {
            logger.notice("supervisor runner uses the normal scheduler (realTimePriority is nil): wake-up latency is not bounded")
            return
        }
        var param = sched_param()
        param.sched_priority = priority
        let rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param)
        if rc == 0 {
            fifo.store(true, ordering: .releasing)
            logger.info("supervisor runner thread runs under SCHED_FIFO priority \(priority)")
            if let cpu = configuration.cpu {
                let failed = crt_pin_current_thread_to_cpu(cpu)
                if failed == 0 {
                    pinned.store(cpu, ordering: .releasing)
                    logger.info("supervisor runner thread pinned to CPU \(cpu), with the device links' threads")
                } else {
                    logger.warning("supervisor runner could not be pinned to CPU \(cpu) (sched_setaffinity: \(String(cString: strerror(failed)))): it runs on any CPU, and an input's wake-up may wait for a kernel path on another CPU; choose a CPU this process may use")
                }
            }
        } else {
            logger.warning("supervisor runner could not use SCHED_FIFO priority \(priority) (pthread_setschedparam: \(String(cString: strerror(rc)))): running under the normal scheduler, wake-up latency is not bounded; grant CAP_SYS_NICE or set LimitRTPRIO in the systemd unit")
        }
    }
}
