import Foundation
import InfusionCore
import Logging

/// What a gravimetric calibration needs from a balance. The MT-SICS driver (or any other balance
/// driver) conforms; the workflow never sees the wire protocol.
///
/// Implementations own their file descriptor and must be safe to call from the runner's task.
public protocol CalibrationBalance: Sendable {
    /// Zeroes the balance (MT-SICS `Z`). Throws an error whose description tells the operator what to do
    /// (for example "zero refused (Z I): the reading is not stable; shield the balance from drafts").
    func zero() async throws
    /// One weighing (`SI` or `S`). Never throws: a time-out is `.problem(.noReply)`, a link failure
    /// `.problem(.communication(...))`. Must return within a few seconds (well inside Δt/4).
    func weigh(_ mode: WeighingMode) async -> BalanceReading
}

/// What a gravimetric calibration needs from the pump under test.
///
/// Implementations own their file descriptor and must be safe to call from the runner's task.
public protocol CalibrationPump: Sendable {
    /// Starts infusing at `rate` (already validated by the caller against the pump's range). Throws an
    /// error whose description tells the operator what to do.
    func start(at rate: VolumeRate) async throws
    /// Stops the pump. Called at the end of every run, also after cancellation: it must not skip the stop
    /// because the task is cancelled.
    func stop() async
}

/// Drives a `PumpCalibrationWorkflow` with real (or simulated) devices: carries out its actions, feeds
/// it the replies with their times from `clock`, and sleeps until its deadlines. Cancelling the calling
/// task interrupts the run cleanly: the pump is stopped and the partial run is returned marked incomplete.
///
/// `sleep(until:)` is injected so tests run in virtual time (advance a `VirtualClock`) and production
/// uses `Task.sleep`. Runs on the caller's task; one run at a time.
public struct PumpCalibrationRunner<Balance: CalibrationBalance, Pump: CalibrationPump>: Sendable {
    /// The balance.
    public let balance: Balance
    /// The pump under test.
    public let pump: Pump
    /// The time source.
    public let clock: any MonotonicClock
    /// Sleeps until the instant (on `clock`); throws `CancellationError` when the task is cancelled.
    public let sleep: @Sendable (MonotonicInstant) async throws -> Void
    private let logger: Logger

    /// A runner for these devices, clock and sleeper.
    public init(balance: Balance, pump: Pump, clock: any MonotonicClock,
                sleep: @escaping @Sendable (MonotonicInstant) async throws -> Void,
                logger: Logger = Logger(label: "infusion.calibration.runner")) {
        self.balance = balance
        self.pump = pump
        self.clock = clock
        self.sleep = sleep
        self.logger = logger
    }

    /// Runs `workflow` to its end and returns the run (complete, or incomplete after a cancellation or
    /// a fault). `progress` is called after every event, on the caller's task.
    public func run(_ workflow: PumpCalibrationWorkflow,
                    progress: (CalibrationProgress) -> Void = { _ in }) async -> PumpCalibrationRun? {
        var workflow = workflow
        var events: [PumpCalibrationEvent] = [.start(at: clock.now())]
        while !workflow.phase.isFinal {
            if events.isEmpty {
                if Task.isCancelled {
                    events.append(.interrupt(at: clock.now(), reason: "cancelled by the operator"))
                } else if let deadline = workflow.nextDeadline {
                    do {
                        try await sleep(deadline)
                        events.append(.tick(at: clock.now()))
                    } catch {
                        events.append(.interrupt(at: clock.now(), reason: "cancelled by the operator"))
                    }
                } else {
                    events.append(.fault(at: clock.now(), message: "the calibration stalled waiting for a device: report this as a bug"))
                }
            }
            let event = events.removeFirst()
            for action in workflow.handle(event) {
                switch action {
                case .zeroBalance:
                    do {
                        try await balance.zero()
                        events.append(.balanceZeroed(at: clock.now()))
                    } catch {
                        events.append(.fault(at: clock.now(), message: "the balance could not be zeroed: \(error)"))
                    }
                case let .startPump(rate):
                    do {
                        try await pump.start(at: rate)
                        events.append(.pumpStarted(at: clock.now()))
                    } catch {
                        events.append(.fault(at: clock.now(), message: "the pump did not start: \(error)"))
                    }
                case let .readBalance(index, mode):
                    let reading = await balance.weigh(mode)
                    let now = clock.now()
                    // A tick first, so a reply later than the tolerance is recorded as missing, not misplaced.
                    events.append(.tick(at: now))
                    events.append(.reading(sample: index, reading, at: now))
                case .stopPump:
                    await pump.stop()
                case .finished:
                    break
                }
            }
            progress(workflow.progress(at: clock.now()))
        }
        logger.info("pump calibration run ended", metadata: ["phase": "\(workflow.phase)"])
        return workflow.run
    }
}
