import Drivers
import InfusionCore
import Logging
import Synchronization

/// Drives an `OximeterVerificationWorkflow` with a real (or simulated) oximeter driver: asks `applySetPoint`
/// to put each set point on the SpO2 simulator (prompt the technician and wait for Enter, or announce it
/// and go on when unattended), feeds every sample the driver publishes (timed by its `measuredAt`), and
/// ticks at the workflow's deadlines. Cancelling the calling task, or `applySetPoint` throwing, interrupts
/// the run cleanly: the partial run is returned marked incomplete, with its readings kept.
///
/// The runner installs the oximeter's sample handler for the run and removes it at the end; samples are
/// buffered under a lock and fed in order on the runner's task. `clock` must be the clock the driver
/// stamps samples with. Runs on the caller's task; one run at a time.
public struct OximeterVerificationRunner: Sendable {
    /// The oximeter under test (its driver owns its port).
    public let oximeter: any PulseOximeter
    /// The time source (the driver's clock).
    public let clock: any MonotonicClock
    /// Puts set point `index` on the simulator; returns when it is there. Throws (any error) to interrupt.
    public let applySetPoint: @Sendable (Int, OximeterSetPoint) async throws -> Void
    /// Sleeps until the instant (on `clock`); throws `CancellationError` when the task is cancelled.
    public let sleep: @Sendable (MonotonicInstant) async throws -> Void
    /// The longest sleep between two looks at the sample buffer and at cancellation.
    public let pollInterval: Duration
    private let logger: Logger

    /// A runner for `oximeter` on `clock`.
    public init(oximeter: any PulseOximeter, clock: any MonotonicClock, pollInterval: Duration = .milliseconds(200),
                applySetPoint: @escaping @Sendable (Int, OximeterSetPoint) async throws -> Void,
                sleep: @escaping @Sendable (MonotonicInstant) async throws -> Void,
                logger: Logger = Logger(label: "infusion.calibration.oximeter-runner")) {
        self.oximeter = oximeter
        self.clock = clock
        self.pollInterval = pollInterval
        self.applySetPoint = applySetPoint
        self.sleep = sleep
        self.logger = logger
    }

    /// Runs `workflow` to its end and returns the run (complete, or incomplete after a cancellation or a
    /// failed set point). `progress` is called after every set point change and at least every
    /// `pollInterval`, on the caller's task.
    public func run(_ workflow: OximeterVerificationWorkflow,
                    progress: (CalibrationProgress) -> Void = { _ in }) async -> OximeterVerificationRun? {
        var workflow = workflow
        let inbox = SampleInbox()
        oximeter.setSampleHandler { sample in inbox.append(sample) }
        defer { oximeter.setSampleHandler(nil) }
        var actions = workflow.handle(.start(at: clock.now()))
        while !workflow.phase.isFinal {
            for action in actions {
                guard case let .applySetPoint(index, point) = action else { continue }
                progress(workflow.progress(at: clock.now()))
                do {
                    try await applySetPoint(index, point)
                    try Task.checkCancellation()
                    _ = inbox.take()  // readings taken while the simulator was being set belong to no set point
                    actions = workflow.handle(.setPointApplied(index: index, at: clock.now()))
                } catch {
                    actions = workflow.handle(.interrupt(at: clock.now(), reason: Self.reason(error)))
                }
            }
            guard !workflow.phase.isFinal else { break }
            if Task.isCancelled {
                actions = workflow.handle(.interrupt(at: clock.now(), reason: "cancelled by the operator"))
                continue
            }
            if actions.contains(where: { if case .applySetPoint = $0 { true } else { false } }) { continue }
            let now = clock.now()
            let wake = min(workflow.nextDeadline ?? now + pollInterval, now + pollInterval)
            do {
                try await sleep(wake)
            } catch {
                actions = workflow.handle(.interrupt(at: clock.now(), reason: "cancelled by the operator"))
                continue
            }
            actions = []
            for sample in inbox.take() {
                actions += workflow.handle(.reading(sample))
            }
            actions += workflow.handle(.tick(at: clock.now()))
            progress(workflow.progress(at: clock.now()))
        }
        progress(workflow.progress(at: clock.now()))
        logger.info("oximeter verification ended", metadata: ["phase": "\(workflow.phase)"])
        return workflow.run
    }

    private static func reason(_ error: any Error) -> String {
        error is CancellationError ? "cancelled by the operator" : "\(error)"
    }

    /// Samples from the driver's link thread to the runner's task.
    private final class SampleInbox: Sendable {
        private let samples = Mutex<[VitalSample]>([])
        func append(_ sample: VitalSample) {
            samples.withLock { if $0.count < 100_000 { $0.append(sample) } }
        }
        func take() -> [VitalSample] {
            samples.withLock { taken in
                defer { taken.removeAll(keepingCapacity: true) }
                return taken
            }
        }
    }
}
