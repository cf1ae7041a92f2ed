import Foundation
import InfusionCore
import Logging

/// How the balance is asked for a weight.
public enum WeighingMode: String, Hashable, Sendable, Codable {
    /// `SI`: the weight now, stable or not (default: a drip never lets the balance settle, and the method
    /// needs a weight at every Δt).
    case immediate
    /// `S`: the next stable weight (may answer `S I` after the balance's own time-out).
    case stable
}

/// Everything a gravimetric pump calibration needs before it starts.
///
/// Pure value; any thread.
public struct PumpCalibrationPlan: Hashable, Sendable, Codable {
    /// The rate the pump is set to.
    @CodedQuantity public var setRate: VolumeRate
    /// Sampling and analysis method (standard, quick or custom).
    public var method: GravimetricMethod
    /// Density of the test liquid.
    public var density: LiquidDensity
    /// Evaporation correction.
    public var evaporation: EvaporationCorrection
    /// What the pump claims.
    public var claim: PumpAccuracyClaim
    /// Time between zeroing the balance and starting the pump, for the reading to settle (default 30 s).
    @CodedSeconds public var settlingTime: Duration
    /// `SI` or `S`.
    public var weighing: WeighingMode

    /// Creates a plan; the workflow validates it.
    public init(setRate: VolumeRate, method: GravimetricMethod = .standard(), density: LiquidDensity = .waterAt20C,
                evaporation: EvaporationCorrection = .none, claim: PumpAccuracyClaim = PumpAccuracyClaim(),
                settlingTime: Duration = .seconds(30), weighing: WeighingMode = .immediate) {
        self.setRate = setRate
        self.method = method
        self.density = density
        self.evaporation = evaporation
        self.claim = claim
        self.settlingTime = settlingTime
        self.weighing = weighing
    }

    /// The plan if usable (method, claim, evaporation, a positive rate, settling 0...10 min).
    public func validated() throws(CalibrationInputError) -> PumpCalibrationPlan {
        guard setRate.isPositive else {
            throw CalibrationInputError("set rate \(setRate) is not positive", fix: "give the test rate, such as 25 mL/h (volumetric) or 5 mL/h (syringe)")
        }
        guard settlingTime >= .zero, settlingTime <= .seconds(600) else {
            throw CalibrationInputError("settling time \(settlingTime.humanReadable) is not within 0...10 min", fix: "use 30 s")
        }
        var plan = self
        plan.method = try method.validated()
        plan.claim = try claim.validated()
        plan.evaporation = try evaporation.validated()
        return plan
    }

    private enum CodingKeys: String, CodingKey {
        case setRate = "set_rate_mL_h", method, density = "density_g_mL", evaporation, claim
        case settlingTime = "settling_s", weighing
    }
}

/// Something that happened, reported to the workflow by whoever drives it (the CLI, a test). Every event
/// carries the time it happened on the injected monotonic clock.
public enum PumpCalibrationEvent: Hashable, Sendable {
    /// Begin: the workflow asks for the balance to be zeroed.
    case start(at: MonotonicInstant)
    /// The balance was zeroed (with the empty collection vessel and the outlet in place).
    case balanceZeroed(at: MonotonicInstant)
    /// The pump reported it is running at the set rate: t = 0 of the run.
    case pumpStarted(at: MonotonicInstant)
    /// The balance's answer to `readBalance(sample:)`.
    case reading(sample: Int, BalanceReading, at: MonotonicInstant)
    /// Time passed; call at least at `nextDeadline`.
    case tick(at: MonotonicInstant)
    /// The operator stopped the run (Ctrl-C): a partial record is kept.
    case interrupt(at: MonotonicInstant, reason: String)
    /// A fault outside the balance readings (pump alarm, lost link, zero refused): the run is aborted and
    /// kept as incomplete.
    case fault(at: MonotonicInstant, message: String)

    var time: MonotonicInstant {
        switch self {
        case let .start(at), let .balanceZeroed(at), let .pumpStarted(at), let .reading(_, _, at), let .tick(at),
             let .interrupt(at, _), let .fault(at, _):
            at
        }
    }
}

/// What the workflow asks its driver to do, in order.
public enum PumpCalibrationAction: Hashable, Sendable {
    /// Zero the balance (`Z`), then report `balanceZeroed` (or `fault` if it refuses).
    case zeroBalance
    /// Start the pump at this rate, then report `pumpStarted`.
    case startPump(VolumeRate)
    /// Weigh (`SI` or `S`) and report `reading(sample:)` with this index.
    case readBalance(sample: Int, mode: WeighingMode)
    /// Stop the pump.
    case stopPump
    /// The run is over (done or aborted); persist and report this.
    case finished(PumpCalibrationRun)
}

/// The outcome of a gravimetric run: the samples always, the analysis when the run completed.
///
/// Pure value; any thread.
public struct PumpCalibrationRun: Hashable, Sendable, Codable {
    /// The plan the run followed.
    public var plan: PumpCalibrationPlan
    /// Every sample, in order, including those without a weight.
    public var samples: [BalanceSample]
    /// Q_i for every interval with both weights (also for an incomplete run).
    public var flow: [FlowInterval]
    /// The analysis and its verdict; nil for an incomplete run or when the data could not be analysed.
    public var result: PumpAccuracyResult?
    /// The verdict: `result`'s, or fail when the analysis was impossible, or incomplete.
    public var verdict: CalibrationVerdict
    /// True when the run did not reach its end.
    public var isIncomplete: Bool
    /// Why it stopped early.
    public var interruption: CalibrationInterruption?
    /// Time the pump ran (pump start to the end of sampling or the interruption), if it started.
    @CodedOptionalSeconds public var pumpRunTime: Duration?

    private enum CodingKeys: String, CodingKey {
        case plan, samples, flow, result, verdict, isIncomplete = "incomplete", interruption, pumpRunTime = "pump_run_time_s"
    }
}

/// The gravimetric pump-calibration workflow as a pure state machine: feed it events (with their times),
/// carry out the actions it returns. No clock and no I/O inside, so the CLI drives it with the system
/// clock and tests drive it in virtual time.
///
/// Phases: setup (zero the balance) → settling (`settlingTime`, then start the pump) → sampling (a
/// reading every Δt from pump start, t = 0, to the end of the run) → analysis → done; any phase →
/// aborted on `interrupt` or `fault`, or on a balance overload/underload. An aborted run keeps every
/// sample and is marked incomplete; its verdict is never pass.
///
/// Sampling: sample k is due at t0 + k Δt; a request not answered within the method's sample-time
/// tolerance (Δt/4 by default) is recorded as missing (`noReply`), and a sample whose time passes
/// without a tick is recorded as `notRequested`. Late replies are ignored.
///
/// A value type owned by one task (the driver's loop); not for concurrent use. Logs transitions through
/// swift-log.
public struct PumpCalibrationWorkflow: Sendable {
    /// The validated plan.
    public let plan: PumpCalibrationPlan
    /// The current phase.
    public private(set) var phase: CalibrationPhase = .setup
    /// Samples recorded so far (including missing ones).
    public private(set) var samples: [BalanceSample] = []
    /// The finished run, once `phase.isFinal`.
    public private(set) var run: PumpCalibrationRun?

    private var startedAt: MonotonicInstant?
    private var zeroedAt: MonotonicInstant?
    private var pumpRequested = false
    private var pumpStartedAt: MonotonicInstant?
    private var nextIndex = 0
    private var pending: Int?
    private var lastTime: MonotonicInstant?
    private let logger: Logger

    /// A workflow for `plan`; throws when the plan is unusable.
    public init(plan: PumpCalibrationPlan, logger: Logger = Logger(label: "infusion.calibration.pump")) throws(CalibrationInputError) {
        self.plan = try plan.validated()
        self.logger = logger
    }

    /// When the driver should next send `tick` (nil when nothing is timed: waiting on the driver, or finished).
    public var nextDeadline: MonotonicInstant? {
        switch phase {
        case .settling:
            guard !pumpRequested, let zeroedAt else { return nil }
            return zeroedAt + plan.settlingTime
        case .sampling:
            guard let t0 = pumpStartedAt else { return nil }
            if let pending { return t0 + plan.method.scheduledTime(ofSample: pending) + plan.method.sampleTimeTolerance }
            guard nextIndex < plan.method.sampleCount else { return nil }
            return t0 + plan.method.scheduledTime(ofSample: nextIndex)
        default:
            return nil
        }
    }

    /// Handles one event and returns the actions to carry out, in order. Events that do not fit the phase
    /// (a reading before the pump started, anything after the end) are ignored and logged. An event time
    /// earlier than a previous one is treated as the previous one.
    public mutating func handle(_ event: PumpCalibrationEvent) -> [PumpCalibrationAction] {
        guard !phase.isFinal else {
            logger.debug("calibration event after the end ignored", metadata: ["event": "\(event)"])
            return []
        }
        let now = max(event.time, lastTime ?? event.time)
        lastTime = now
        switch event {
        case .start:
            guard startedAt == nil else { return [] }
            startedAt = now
            logger.info("pump calibration started", metadata: ["rate": "\(plan.setRate)", "mode": "\(plan.method.mode.rawValue)"])
            return [.zeroBalance]
        case .balanceZeroed:
            guard phase == .setup, startedAt != nil else { return ignored(event) }
            zeroedAt = now
            transition(to: .settling)
            return advance(now)
        case .pumpStarted:
            guard phase == .settling, pumpRequested, pumpStartedAt == nil else { return ignored(event) }
            pumpStartedAt = now
            transition(to: .sampling)
            return advance(now)
        case let .reading(index, reading, _):
            guard phase == .sampling, let t0 = pumpStartedAt, pending == index else { return ignored(event) }
            let sample = BalanceSample(index: index, elapsed: now - t0, reading: reading)
            samples.append(sample)
            pending = nil
            nextIndex = index + 1
            if let problem = sample.problem, problem.endsRun {
                return abort(now, reason: "sample \(index) at \(sample.elapsed.humanReadable): \(problem)", byOperator: false)
            }
            return advance(now)
        case .tick:
            return advance(now)
        case let .interrupt(_, reason):
            return abort(now, reason: reason, byOperator: true)
        case let .fault(_, message):
            return abort(now, reason: message, byOperator: false)
        }
    }

    /// Progress for the operator at `now`.
    public func progress(at now: MonotonicInstant) -> CalibrationProgress {
        let duration = plan.method.duration
        let expected = plan.method.sampleCount
        let missing = samples.filter { $0.grams == nil }.count
        let elapsed = startedAt.map { now - $0 } ?? .zero
        switch phase {
        case .setup:
            return CalibrationProgress(phase: phase, elapsed: elapsed, remaining: plan.settlingTime + duration, fractionComplete: 0,
                                       samplesTaken: 0, samplesExpected: expected, samplesMissing: 0,
                                       detail: startedAt == nil ? "ready" : "zeroing the balance")
        case .settling:
            let settleLeft = zeroedAt.map { $0 + plan.settlingTime - now } ?? plan.settlingTime
            return CalibrationProgress(phase: phase, elapsed: elapsed, remaining: max(.zero, settleLeft) + duration, fractionComplete: 0,
                                       samplesTaken: 0, samplesExpected: expected, samplesMissing: 0,
                                       detail: pumpRequested ? "starting the pump at \(plan.setRate)" : "letting the balance settle")
        case .sampling, .analysis:
            let t0 = pumpStartedAt ?? now
            let run = now - t0
            return CalibrationProgress(phase: phase, elapsed: elapsed, remaining: duration - run, fractionComplete: run / duration,
                                       samplesTaken: samples.count, samplesExpected: expected, samplesMissing: missing,
                                       detail: "sample \(samples.count) of \(expected) at \(plan.setRate), \(missing) missing")
        case .done, .aborted:
            let verdict = run?.verdict.outcome.description ?? phase.rawValue
            return CalibrationProgress(phase: phase, elapsed: elapsed, remaining: .zero, fractionComplete: phase == .done ? 1 : Double(samples.count) / Double(expected),
                                       samplesTaken: samples.count, samplesExpected: expected, samplesMissing: missing,
                                       detail: "finished: \(verdict)")
        }
    }

    // MARK: - Internals

    private func ignored(_ event: PumpCalibrationEvent) -> [PumpCalibrationAction] {
        logger.warning("calibration event ignored in this phase", metadata: ["phase": "\(phase)", "event": "\(event)"])
        return []
    }

    private mutating func transition(to next: CalibrationPhase) {
        logger.info("pump calibration phase", metadata: ["from": "\(phase)", "to": "\(next)"])
        phase = next
    }

    /// Time-driven progress: start the pump after settling; request, time out and skip samples; finish.
    private mutating func advance(_ now: MonotonicInstant) -> [PumpCalibrationAction] {
        switch phase {
        case .settling:
            if !pumpRequested, let zeroedAt, now >= zeroedAt + plan.settlingTime {
                pumpRequested = true
                return [.startPump(plan.setRate)]
            }
            return []
        case .sampling:
            guard let t0 = pumpStartedAt else { return [] }
            let method = plan.method
            let tolerance = method.sampleTimeTolerance
            if let index = pending {
                guard now > t0 + method.scheduledTime(ofSample: index) + tolerance else { return [] }
                samples.append(BalanceSample(index: index, elapsed: now - t0, problem: .noReply))
                logger.warning("balance sample missing: no reply", metadata: ["sample": "\(index)"])
                pending = nil
                nextIndex = index + 1
            }
            while nextIndex < method.sampleCount {
                let due = t0 + method.scheduledTime(ofSample: nextIndex)
                if now < due { return [] }
                if now > due + tolerance {
                    samples.append(BalanceSample(index: nextIndex, elapsed: now - t0, problem: .notRequested))
                    logger.warning("balance sample missing: its time passed without a tick", metadata: ["sample": "\(nextIndex)"])
                    nextIndex += 1
                    continue
                }
                pending = nextIndex
                return [.readBalance(sample: nextIndex, mode: plan.weighing)]
            }
            return finish(now)
        default:
            return []
        }
    }

    private mutating func finish(_ now: MonotonicInstant) -> [PumpCalibrationAction] {
        transition(to: .analysis)
        let flow = GravimetricAnalysis.flowSeries(samples: samples, density: plan.density, evaporation: plan.evaporation, method: plan.method)
        var result: PumpAccuracyResult?
        let verdict: CalibrationVerdict
        do {
            let analysed = try GravimetricAnalysis.analyze(samples: samples, setRate: plan.setRate, density: plan.density,
                                                           evaporation: plan.evaporation, method: plan.method, claim: plan.claim)
            result = analysed
            verdict = analysed.verdict
        } catch {
            verdict = CalibrationVerdict(.fail, reasons: ["the run could not be analysed: \(error)"])
        }
        let finished = PumpCalibrationRun(plan: plan, samples: samples, flow: flow, result: result, verdict: verdict,
                                          isIncomplete: false, interruption: nil, pumpRunTime: pumpStartedAt.map { now - $0 })
        run = finished
        transition(to: .done)
        logger.info("pump calibration finished", metadata: ["verdict": "\(verdict.outcome)"])
        return [.stopPump, .finished(finished)]
    }

    private mutating func abort(_ now: MonotonicInstant, reason: String, byOperator: Bool) -> [PumpCalibrationAction] {
        let interruption = CalibrationInterruption(phase: phase, elapsed: startedAt.map { now - $0 } ?? .zero,
                                                   reason: reason, requestedByOperator: byOperator)
        let flow = GravimetricAnalysis.flowSeries(samples: samples, density: plan.density, evaporation: plan.evaporation, method: plan.method)
        let verdict = CalibrationVerdict(.incomplete, reasons: [
            "\(byOperator ? "interrupted" : "aborted") during \(phase) after \(samples.count) of \(plan.method.sampleCount) samples: \(reason)",
            "an incomplete run never passes; the samples are kept in this record; repeat the calibration",
        ])
        let partial = PumpCalibrationRun(plan: plan, samples: samples, flow: flow, result: nil, verdict: verdict,
                                         isIncomplete: true, interruption: interruption, pumpRunTime: pumpStartedAt.map { now - $0 })
        run = partial
        let pumpMayRun = pumpRequested
        pending = nil
        transition(to: .aborted)
        logger.warning("pump calibration aborted", metadata: ["reason": "\(reason)", "operator": "\(byOperator)"])
        return (pumpMayRun ? [.stopPump] : []) + [.finished(partial)]
    }
}
