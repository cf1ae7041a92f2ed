#if canImport(Glibc)
import Glibc
#endif
import DeviceIO
import Foundation
import Drivers
import InfusionCore
import Logging
import Supervisor
import Synchronization

/// Wires ONE supervisor channel to its devices: an `InfusionPump` and a `PulseOximeter`
/// (docs/supervisor.md "What an oximeter driver does" / "What a pump driver does").
///
/// - Oximeter samples go to `channel.vitals.publish` on the oximeter's link thread (no task hop);
///   connection changes go to `channel.vitals.publishConnection`.
/// - Pump statuses go to `channel.pump.publish`, connection changes to `channel.pump.publishConnection`;
///   when the pump connects and the family has a communication watchdog, the watchdog is (re)armed and
///   `publishWatchdogArmed(true)` follows its confirmation (`false` on any link loss).
/// - `stopPath` is a `PumpStopPath` over `pump.sendStopNow()` (a frame encoded in advance, written on the
///   supervisor's thread). Its secondary stop asks the wiring to close the pump driver, so the
///   keep-alives stop and the pump's own watchdog stops it (families with one); for families without a
///   watchdog it is a documented no-op beyond being counted.
/// - `commands` is the `StopStampedMailbox` the supervisor fills with starts and rate changes; a drain
///   thread (woken by the mailbox's eventfd) hands them, in order, to one task that calls
///   `setVolumeToInfuse`/`setRate`/`start` (skipping every step once a stop has been written after the
///   command was decided, so a stop is never followed by the RUN of an earlier start) and logs outcomes that are not confirmed (the supervisor
///   judges delivery from the reported status, never from these outcomes). A refused command is also
///   kept in `lastRefusal` for the operator's display. A family without a remote start (Fresenius Base
///   A/Agilia) refuses `start` with what to do: the channel then stays `checked` with the rate set, the
///   operator starts the infusion at the pump, and the supervisor confirms delivery from the pump's
///   reported state; if the pump does not infuse at the commanded rate within the profile's
///   rate-mismatch hold, the supervisor raises the rate-mismatch alarm and latches a stop.
/// - A status task asks the pump for a full snapshot (`pump.status()`: state, rate, volume counter) every
///   `statusInterval` and right after each start or rate change, so the supervisor can compare the
///   commanded and reported rate and count the dose from the pump's own counter (drivers' keep-alive
///   polls may report only the run state).
///
/// Use: `let wiring = try ChannelWiring(pump:oximeter:)`, build the runner with
/// `wiring.channelSetup(configuration:)`, then `wiring.connect(to: runner.channels[i])`; `close()` at the
/// end (it does not close the drivers unless the secondary stop did; the caller owns them).
///
/// Threads: every method may be called from any thread. The wiring owns its drain thread and its tasks.
public final class ChannelWiring: @unchecked Sendable {
    // @unchecked: mutable state is the `Mutex`-protected `tasks` and atomics; the rest is immutable.
    /// The pump driven by this channel (not owned: the caller closes it).
    public let pump: any InfusionPump
    /// The oximeter monitoring this channel (not owned: the caller closes it).
    public let oximeter: any PulseOximeter
    /// The supervisor's urgent path to the pump.
    public let stopPath: DriverStopPath
    /// Where the supervisor queues starts and rate changes; drained by the wiring. Each command is
    /// stamped with the stop count at its submission, so a stop decided after it cancels it.
    public let commands: StopStampedMailbox
    /// How long the pump's own communication watchdog is armed for, when the family has one.
    public let watchdogTimeout: Duration
    /// How often (real time) the wiring asks the pump for a full status snapshot.
    public let statusInterval: Duration

    private let wakeup: Wakeup
    private let logger: Logger
    private let running = Atomic<Bool>(true)
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let refusal = RefusalBox()
    private let commandStream: AsyncStream<DrainItem>
    private let commandContinuation: AsyncStream<DrainItem>.Continuation

    private enum DrainItem: Sendable {
        case command(StampedPumpCommand)
        case secondaryStop
    }

    /// A wiring for `pump` and `oximeter`. `watchdogTimeout` is used to arm the pump's communication
    /// watchdog when `pump.safety.stopsWhenControllerSilent` (New Era safe mode: whole seconds 1…255).
    /// Throws when no eventfd can be created for the mailbox.
    /// `statusInterval` is real time: shorten it with a scaled clock.
    public init(pump: any InfusionPump, oximeter: any PulseOximeter, watchdogTimeout: Duration = .seconds(5),
                statusInterval: Duration = .seconds(1),
                logger: Logger = Logger(label: "infusioncontrol.session")) throws(RunnerError) {
        self.pump = pump
        self.statusInterval = statusInterval
        self.oximeter = oximeter
        self.watchdogTimeout = watchdogTimeout
        self.logger = logger
        let wakeup = try Wakeup()
        self.wakeup = wakeup
        let stopPath = DriverStopPath(pump: pump, wakeup: wakeup)
        self.stopPath = stopPath
        commands = StopStampedMailbox(capacity: 64, stopPath: stopPath, wakeup: wakeup)
        (commandStream, commandContinuation) = AsyncStream.makeStream(of: DrainItem.self)
    }

    /// The runner's setup for this channel: `configuration` (its `pumpHasWatchdog` should be
    /// `pump.safety.stopsWhenControllerSilent`), this wiring's stop path and mailbox.
    public func channelSetup(configuration: ChannelConfiguration) -> ChannelSetup {
        ChannelSetup(configuration: configuration, stopPath: stopPath, commands: commands)
    }

    /// Starts feeding `channel` from the devices and draining its commands. Call once, after the runner
    /// exists (before or after `runner.start()`).
    public func connect(to channel: RunnerChannel) {
        let vitals = channel.vitals
        oximeter.setSampleHandler { sample in vitals.publish(sample) }
        vitals.publishConnection(oximeter.connection)
        let oximeterEvents = oximeter.events
        let pumpEvents = pump.events
        let pump = self.pump
        let logger = self.logger
        let watchdogTimeout = self.watchdogTimeout
        let cell = channel.pump
        let oximeterTask = Task {
            for await event in oximeterEvents {
                if case let .connection(connection, _) = event { vitals.publishConnection(connection) }
            }
        }
        let pumpTask = Task {
            for await event in pumpEvents {
                switch event {
                case .status(let status):
                    cell.publish(status)
                case let .connection(connection, _):
                    cell.publishConnection(connection)
                    if connection != .connected {
                        cell.publishWatchdogArmed(false)
                    } else if pump.safety.stopsWhenControllerSilent {
                        Task {
                            switch await pump.armWatchdog(timeout: watchdogTimeout) {
                            case .confirmed: cell.publishWatchdogArmed(true)
                            case .refused(let refusal):
                                logger.error("\(pump.name): the pump refused to arm its watchdog (\(refusal)); starts will be refused")
                            case .uncertain(let reason):
                                logger.error("\(pump.name): arming the pump's watchdog is uncertain (\(reason)); starts will be refused")
                            }
                        }
                    }
                case .alarms:
                    break  // the alarms also arrive in the next status, which the supervisor judges
                }
            }
        }
        let interval = statusInterval
        let statusTask = Task {
            while !Task.isCancelled {
                _ = await pump.status()  // published through `pump.events` as `.status`
                try? await Task.sleep(for: interval)
            }
        }
        let stream = commandStream
        let refusal = self.refusal
        let stopPath = self.stopPath
        let commandTask = Task {
            await Self.execute(stream, pump: pump, stopPath: stopPath, logger: logger) { refused in refusal.store(refused) }
        }
        let started: [Task<Void, Never>] = [oximeterTask, pumpTask, statusTask, commandTask]
        tasks.withLock { $0.append(contentsOf: started) }
        let thread = Thread { [self] in drainLoop() }
        thread.name = "session-commands \(pump.name)"
        thread.start()
    }

    /// The latest command the pump refused (with the driver's reason and what to do), for the operator's
    /// display; nil when none was refused. Any thread.
    public var lastRefusal: RefusedPumpCommand? { refusal.latest }

    /// Stops the drain thread and the tasks and removes the sample handler. Does not close the drivers.
    public func close() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        wakeup.signal()
        oximeter.setSampleHandler(nil)
        commandContinuation.finish()
        for task in tasks.withLock({ $0 }) { task.cancel() }
    }

    deinit { close() }

    /// The drain thread: waits on the mailbox's eventfd (100 ms at most, to notice `close`) and hands
    /// every queued command, then a pending secondary stop, to the command task.
    private func drainLoop() {
        var descriptor = pollfd(fd: wakeup.fileDescriptor, events: Int16(POLLIN), revents: 0)
        var counter: UInt64 = 0
        var secondaryHandled = false
        while running.load(ordering: .acquiring) {
            descriptor.revents = 0
            if poll(&descriptor, 1, 100) > 0 { _ = read(wakeup.fileDescriptor, &counter, 8) }
            while let command = commands.next() { commandContinuation.yield(.command(command)) }
            if !secondaryHandled, stopPath.secondaryStopsEngaged > 0 {
                secondaryHandled = true
                commandContinuation.yield(.secondaryStop)
            }
        }
    }

    private static func execute(_ stream: AsyncStream<DrainItem>, pump: any InfusionPump, stopPath: DriverStopPath,
                                logger: Logger, noteRefusal: @Sendable (RefusedPumpCommand) -> Void) async {
        func report<T>(_ outcome: PumpCommandOutcome<T>, _ command: RefusedPumpCommand.Command, _ what: String) {
            switch outcome {
            case .confirmed: break
            case .refused(let refusal):
                noteRefusal(RefusedPumpCommand(command: command, refusal: refusal))
                if command == .start, refusal.isNoRemoteStart {
                    logger.warning("\(pump.name): the pump refused a remote start: \(refusal). The channel stays 'checked' with the rate set: start the infusion at the pump; the supervisor confirms delivery from the pump's reported state and stops with a rate-mismatch alarm if it does not infuse at the commanded rate in time")
                } else {
                    logger.error("\(pump.name): the pump refused to \(what): \(refusal)")
                }
            case .uncertain(let reason):
                logger.warning("\(pump.name): \(what): uncertain (\(reason)); the supervisor judges from the reported status")
            }
        }
        for await item in stream {
            switch item {
            case .secondaryStop:
                if pump.safety.stopsWhenControllerSilent {
                    logger.critical("\(pump.name): secondary stop: closing the driver so the keep-alives stop and the pump's own watchdog stops it")
                    pump.close()
                } else {
                    logger.critical("\(pump.name): secondary stop requested, but this pump family has no communication watchdog: stop the pump by hand")
                }
                return
            case .command(let stamped):
                // A stop the supervisor wrote after deciding this command overrides it: checked before
                // every step, so a start in progress never reaches RUN once a stop has gone out.
                func overridden(_ step: String) -> Bool {
                    guard stopPath.stopsSent != stamped.stopsBefore else { return false }
                    logger.warning("\(pump.name): not sending \(step): the supervisor stopped the pump after deciding \(stamped.command.command)")
                    return true
                }
                switch stamped.command.command {
                case let .start(rate, volumeLimit):
                    if overridden("the volume limit") { continue }
                    report(await pump.setVolumeToInfuse(volumeLimit), .setVolumeToInfuse, "set the volume limit to \(volumeLimit)")
                    if overridden("the rate") { continue }
                    report(await pump.setRate(rate), .setRate, "set the rate to \(rate)")
                    if overridden("the start") { continue }
                    report(await pump.start(), .start, "start")
                    _ = await pump.status()
                case .setRate(let rate):
                    if overridden("the rate change") { continue }
                    report(await pump.setRate(rate), .setRate, "set the rate to \(rate)")
                    _ = await pump.status()
                case .stop, .secondaryStop:
                    break  // urgent commands never come through the mailbox (PumpStopPath)
                }
            }
        }
    }
}

/// A start or rate change with the number of stops the supervisor had written when it decided it.
public struct StampedPumpCommand: Hashable, Sendable {
    /// The command and when it was decided.
    public let command: TimedPumpCommand
    /// `DriverStopPath.stopsSent` at submission: a larger count later means a stop overrides it.
    public let stopsBefore: Int
}

/// The wiring's `PumpCommandSink`: a bounded lock-free queue (like `PumpCommandMailbox`) whose entries
/// carry the stop path's stop count read at submission. Submission and stop both run on the supervisor's
/// thread, so the stamp orders each command exactly against every stop.
///
/// Threads: `submit` on the supervisor's thread (no allocation, no lock); `next` on the wiring's drain
/// thread (the single consumer).
public final class StopStampedMailbox: PumpCommandSink {
    private let ring: SPSCRing<StampedPumpCommand>
    private let stopPath: DriverStopPath
    private let wakeup: Wakeup?

    /// A mailbox for up to `capacity` commands stamped from `stopPath`; `wakeup` is signalled per submission.
    public init(capacity: Int, stopPath: DriverStopPath, wakeup: Wakeup?) {
        ring = SPSCRing(minimumCapacity: capacity)
        self.stopPath = stopPath
        self.wakeup = wakeup
    }

    /// Supervisor thread. Queues `command` with the current stop count.
    public func submit(_ command: PumpCommand, at: MonotonicInstant) {
        ring.push(StampedPumpCommand(command: TimedPumpCommand(command: command, at: at), stopsBefore: stopPath.stopsSent))
        wakeup?.signal()
    }

    /// Drain thread. The oldest queued command, or nil.
    public func next() -> StampedPumpCommand? { ring.pop() }

    /// Commands dropped because the drain did not keep up.
    public var dropped: Int { ring.dropped }
}

/// The latest refusal, shared by the wiring and its command task.
private final class RefusalBox: Sendable {
    private let value = Mutex<RefusedPumpCommand?>(nil)
    var latest: RefusedPumpCommand? { value.withLock { $0 } }
    func store(_ refused: RefusedPumpCommand) { value.withLock { $0 = refused } }
}

/// A command the pump refused, as `ChannelWiring.lastRefusal` keeps it for the operator.
public struct RefusedPumpCommand: Hashable, Sendable {
    /// Which of the wiring's commands.
    public enum Command: String, Hashable, Sendable {
        /// `setVolumeToInfuse` (the volume limit of a start).
        case setVolumeToInfuse = "set volume limit"
        /// `setRate` (of a start or a titration).
        case setRate = "set rate"
        /// `start`.
        case start
    }

    /// The refused command.
    public let command: Command
    /// The driver's reason: the device's code and what to do.
    public let refusal: PumpRefusal

    /// A refusal of `command` for `refusal`.
    public init(command: Command, refusal: PumpRefusal) {
        self.command = command
        self.refusal = refusal
    }
}

/// A `PumpStopPath` over a driver's fast stop (`InfusionPump.sendStopNow()`: a frame encoded in advance,
/// written on the calling thread). The secondary stop only sets a flag and signals the wiring's eventfd;
/// the wiring then closes the driver (see `ChannelWiring`).
///
/// Threads: `sendStop()` and `engageSecondaryStop()` run on the supervisor's thread: no lock, no log.
public final class DriverStopPath: PumpStopPath {
    private let pump: any InfusionPump
    private let wakeup: Wakeup
    private let sent = Atomic<Int>(0)
    private let secondary = Atomic<Int>(0)

    /// A stop path for `pump`; `wakeup` is signalled on a secondary stop.
    public init(pump: any InfusionPump, wakeup: Wakeup) {
        self.pump = pump
        self.wakeup = wakeup
    }

    /// Writes the pump's pre-encoded stop frame now. `.failed(EIO)` when the driver has no link or the
    /// write failed (the driver does not say which errno).
    public func sendStop() -> StopWriteResult {
        sent.wrappingAdd(1, ordering: .relaxed)
        return pump.sendStopNow() ? .written : .failed(errno: EIO)
    }

    /// Flags the secondary stop and wakes the wiring's drain thread.
    public func engageSecondaryStop() {
        secondary.wrappingAdd(1, ordering: .relaxed)
        wakeup.signal()
    }

    /// How many stops were written (or attempted).
    public var stopsSent: Int { sent.load(ordering: .relaxed) }
    /// How many times the secondary stop was engaged.
    public var secondaryStopsEngaged: Int { secondary.load(ordering: .relaxed) }
}
