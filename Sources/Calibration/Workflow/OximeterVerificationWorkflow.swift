import Foundation
import InfusionCore
import Logging

/// Something that happened during an oximeter verification, with its time on the injected monotonic clock.
public enum OximeterVerificationEvent: Hashable, Sendable {
    /// Begin: the workflow asks for the first set point.
    case start(at: MonotonicInstant)
    /// The set point `index` is now on the simulator (the operator confirmed, or the simulator acknowledged).
    case setPointApplied(index: Int, at: MonotonicInstant)
    /// A sample from the oximeter driver (timed by its `measuredAt`).
    case reading(VitalSample)
    /// Time passed; call at least at `nextDeadline`.
    case tick(at: MonotonicInstant)
    /// The operator stopped the verification: a partial record is kept.
    case interrupt(at: MonotonicInstant, reason: String)
    /// A fault (lost link to the oximeter or the simulator): aborted, kept as incomplete.
    case fault(at: MonotonicInstant, message: String)

    var time: MonotonicInstant {
        switch self {
        case let .start(at), let .setPointApplied(_, at), let .tick(at), let .interrupt(at, _), let .fault(at, _): at
        case let .reading(sample): sample.measuredAt
        }
    }
}

/// What the verification asks its driver to do.
public enum OximeterVerificationAction: Hashable, Sendable {
    /// Put this set point on the simulator (prompt the operator, or command a remote-controlled simulator),
    /// then report `setPointApplied(index:)`.
    case applySetPoint(index: Int, OximeterSetPoint)
    /// The verification is over (done or aborted); persist and report this.
    case finished(OximeterVerificationRun)
}

/// The readings collected at one set point.
///
/// Pure value; any thread.
public struct SetPointCollection: Hashable, Sendable, Codable {
    /// The set point.
    public var setPoint: OximeterSetPoint
    /// Readings inside the collection window (all of them, including missing and flagged ones).
    public var readings: [OximeterReading]
    /// False when the window was cut short by an interruption.
    public var isComplete: Bool

    private enum CodingKeys: String, CodingKey { case setPoint = "set_point", readings, isComplete = "complete" }
}

/// The outcome of an oximeter verification: the readings always, the analysis of the completed points.
///
/// Pure value; any thread.
public struct OximeterVerificationRun: Hashable, Sendable, Codable {
    /// The plan followed.
    public var plan: OximeterVerificationPlan
    /// One collection per set point reached, in order.
    public var collections: [SetPointCollection]
    /// The analysis of the complete collections (for an incomplete run: indicative only, never a pass).
    public var result: OximeterVerificationResult?
    /// The verdict: the result's, or incomplete.
    public var verdict: CalibrationVerdict
    /// True when the sequence did not reach its end.
    public var isIncomplete: Bool
    /// Why it stopped early.
    public var interruption: CalibrationInterruption?

    private enum CodingKeys: String, CodingKey {
        case plan, collections, result, verdict, isIncomplete = "incomplete", interruption
    }
}

/// The oximeter-verification workflow as a pure state machine, like `PumpCalibrationWorkflow`.
///
/// For each set point: setup (ask for the point and wait until it is applied) → settling (the plan's
/// settling time; readings ignored) → sampling (readings whose `measuredAt` falls in the collection
/// window are kept) → next point; after the last, analysis → done. `interrupt` or `fault` → aborted
/// with the readings kept and the run marked incomplete.
///
/// A value type owned by one task; not for concurrent use. Logs through swift-log.
public struct OximeterVerificationWorkflow: Sendable {
    /// The validated plan.
    public let plan: OximeterVerificationPlan
    /// The current phase.
    public private(set) var phase: CalibrationPhase = .setup
    /// Collections so far (the current one last).
    public private(set) var collections: [SetPointCollection] = []
    /// The finished run, once `phase.isFinal`.
    public private(set) var run: OximeterVerificationRun?

    private var startedAt: MonotonicInstant?
    private var current = 0
    private var appliedAt: MonotonicInstant?
    private var lastTime: MonotonicInstant?
    private let logger: Logger

    /// A workflow for `plan`; throws when the plan is unusable.
    public init(plan: OximeterVerificationPlan, logger: Logger = Logger(label: "infusion.calibration.oximeter")) throws(CalibrationInputError) {
        self.plan = try plan.validated()
        self.logger = logger
    }

    /// The set point being worked on, if any.
    public var currentSetPoint: OximeterSetPoint? {
        guard startedAt != nil, !phase.isFinal, current < plan.setPoints.count else { return nil }
        return plan.setPoints[current]
    }

    private var windowStart: MonotonicInstant? { appliedAt.map { $0 + plan.settling(at: current) } }
    private var windowEnd: MonotonicInstant? { windowStart.map { $0 + plan.window(at: current) } }

    /// When the driver should next send `tick` (nil while waiting on the operator or when finished).
    public var nextDeadline: MonotonicInstant? {
        switch phase {
        case .settling: windowStart
        case .sampling: windowEnd
        default: nil
        }
    }

    /// Handles one event and returns the actions to carry out. Events that do not fit are ignored and logged.
    public mutating func handle(_ event: OximeterVerificationEvent) -> [OximeterVerificationAction] {
        guard !phase.isFinal else { return [] }
        let now = max(event.time, lastTime ?? event.time)
        if case .reading = event {} else { lastTime = now }
        switch event {
        case .start:
            guard startedAt == nil else { return [] }
            startedAt = now
            lastTime = now
            logger.info("oximeter verification started", metadata: ["points": "\(plan.setPoints.count)"])
            return [.applySetPoint(index: 0, plan.setPoints[0])]
        case let .setPointApplied(index, _):
            guard phase == .setup, startedAt != nil, index == current else { return ignored(event) }
            appliedAt = now
            collections.append(SetPointCollection(setPoint: plan.setPoints[current], readings: [], isComplete: false))
            transition(to: .settling)
            return advance(now)
        case let .reading(sample):
            guard let startedAt else { return ignored(event) }
            // Readings carry the device's measurement time; they advance the schedule like a tick.
            let actions = advance(now)
            if phase == .sampling, let windowStart, let windowEnd, sample.measuredAt >= windowStart, sample.measuredAt < windowEnd,
               !collections.isEmpty {
                collections[collections.count - 1].readings.append(OximeterReading(sample, since: startedAt))
            }
            return actions
        case .tick:
            return advance(now)
        case let .interrupt(_, reason):
            return abort(now, reason: reason, byOperator: true)
        case let .fault(_, message):
            return abort(now, reason: message, byOperator: false)
        }
    }

    /// Progress for the operator at `now`. Time left counts the settling and windows still to run, not
    /// the operator's time to apply each set point.
    public func progress(at now: MonotonicInstant) -> CalibrationProgress {
        let total = plan.setPoints.count
        let elapsed = startedAt.map { now - $0 } ?? .zero
        let readings = collections.reduce(0) { $0 + $1.readings.count }
        let missing = collections.reduce(0) { $0 + $1.readings.filter { $0.usableSpO2 == nil }.count }
        var remaining = Duration.zero
        if !phase.isFinal {
            for index in current..<total {
                if index == current, let windowEnd {
                    remaining += max(.zero, windowEnd - now)
                } else {
                    remaining += plan.settling(at: index) + plan.window(at: index)
                }
            }
        }
        let done = phase.isFinal ? total : current
        let detail: String
        switch phase {
        case .setup: detail = startedAt == nil ? "ready" : "set the simulator to \(plan.setPoints[current]) (point \(current + 1) of \(total))"
        case .settling: detail = "settling at \(plan.setPoints[current]) (point \(current + 1) of \(total))"
        case .sampling, .analysis: detail = "collecting at \(plan.setPoints[current]) (point \(current + 1) of \(total)), \(readings) readings"
        case .done, .aborted: detail = "finished: \(run?.verdict.outcome.description ?? phase.rawValue)"
        }
        return CalibrationProgress(phase: phase, elapsed: elapsed, remaining: remaining,
                                   fractionComplete: phase == .done ? 1 : Double(done) / Double(total),
                                   samplesTaken: readings, samplesExpected: total, samplesMissing: missing, detail: detail)
    }

    // MARK: - Internals

    private func ignored(_ event: OximeterVerificationEvent) -> [OximeterVerificationAction] {
        logger.debug("oximeter verification event ignored in this phase", metadata: ["phase": "\(phase)", "event": "\(event)"])
        return []
    }

    private mutating func transition(to next: CalibrationPhase) {
        logger.info("oximeter verification phase", metadata: ["from": "\(phase)", "to": "\(next)", "point": "\(current + 1)"])
        phase = next
    }

    private mutating func advance(_ now: MonotonicInstant) -> [OximeterVerificationAction] {
        if phase == .settling, let windowStart, now >= windowStart {
            transition(to: .sampling)
        }
        guard phase == .sampling, let windowEnd, now >= windowEnd else { return [] }
        collections[collections.count - 1].isComplete = true
        logger.info("set point collected", metadata: ["point": "\(plan.setPoints[current])",
                                                      "readings": "\(collections[collections.count - 1].readings.count)"])
        current += 1
        appliedAt = nil
        if current < plan.setPoints.count {
            transition(to: .setup)
            return [.applySetPoint(index: current, plan.setPoints[current])]
        }
        transition(to: .analysis)
        let verdict: CalibrationVerdict
        var result: OximeterVerificationResult?
        do {
            let analysed = try OximeterVerificationAnalysis.analyze(collections.map { ($0.setPoint, $0.readings) }, claim: plan.claim)
            result = analysed
            verdict = analysed.verdict
        } catch {
            verdict = CalibrationVerdict(.fail, reasons: ["the readings could not be analysed: \(error)"])
        }
        let finished = OximeterVerificationRun(plan: plan, collections: collections, result: result, verdict: verdict,
                                               isIncomplete: false, interruption: nil)
        run = finished
        transition(to: .done)
        return [.finished(finished)]
    }

    private mutating func abort(_ now: MonotonicInstant, reason: String, byOperator: Bool) -> [OximeterVerificationAction] {
        let interruption = CalibrationInterruption(phase: phase, elapsed: startedAt.map { now - $0 } ?? .zero,
                                                   reason: reason, requestedByOperator: byOperator)
        let complete = collections.filter(\.isComplete)
        let result = complete.isEmpty ? nil : try? OximeterVerificationAnalysis.analyze(complete.map { ($0.setPoint, $0.readings) }, claim: plan.claim)
        let verdict = CalibrationVerdict(.incomplete, reasons: [
            "\(byOperator ? "interrupted" : "aborted") during \(phase) at set point \(min(current + 1, plan.setPoints.count)) of \(plan.setPoints.count): \(reason)",
            "an incomplete verification never passes; \(complete.count) completed set points are analysed for information only; repeat the verification",
        ])
        let partial = OximeterVerificationRun(plan: plan, collections: collections, result: result, verdict: verdict,
                                              isIncomplete: true, interruption: interruption)
        run = partial
        transition(to: .aborted)
        logger.warning("oximeter verification aborted", metadata: ["reason": "\(reason)"])
        return [.finished(partial)]
    }
}
