import Foundation

/// Where a calibration or verification workflow is.
public enum CalibrationPhase: String, Hashable, Sendable, Codable, CustomStringConvertible {
    /// Preparing: zeroing the balance, or waiting for the first set point to be applied.
    case setup
    /// Waiting for things to settle: the balance before the pump starts, the oximeter after a set point.
    case settling
    /// Taking samples or collecting readings.
    case sampling
    /// Computing the result (momentary: the workflow passes through it to `done`).
    case analysis
    /// Finished with a result.
    case done
    /// Interrupted or failed; a partial result marked incomplete is kept.
    case aborted

    /// True for `done` and `aborted`: the workflow accepts no more events.
    public var isFinal: Bool { self == .done || self == .aborted }

    /// A short human-readable form, for logs, messages and reports.
    public var description: String { rawValue }
}

/// What a long-running workflow shows the technician: phase, time left, samples.
///
/// Pure value; any thread.
public struct CalibrationProgress: Hashable, Sendable, CustomStringConvertible {
    /// The phase.
    public var phase: CalibrationPhase
    /// Time since the workflow started.
    public var elapsed: Duration
    /// Time left, if it can be known (nil while waiting on the operator); never negative.
    public var remaining: Duration?
    /// 0...1.
    public var fractionComplete: Double
    /// Samples or readings recorded so far.
    public var samplesTaken: Int
    /// Samples expected in total (readings: set points in total).
    public var samplesExpected: Int
    /// Samples without a usable value so far.
    public var samplesMissing: Int
    /// One line for the operator ("sampling 57/241, 1 h 32 min left").
    public var detail: String

    /// Creates a progress report.
    public init(phase: CalibrationPhase, elapsed: Duration, remaining: Duration?, fractionComplete: Double,
                samplesTaken: Int, samplesExpected: Int, samplesMissing: Int, detail: String) {
        self.phase = phase
        self.elapsed = elapsed
        self.remaining = remaining.map { max(.zero, $0) }
        self.fractionComplete = min(1, max(0, fractionComplete.isFinite ? fractionComplete : 0))
        self.samplesTaken = samplesTaken
        self.samplesExpected = samplesExpected
        self.samplesMissing = samplesMissing
        self.detail = detail
    }

    /// A short human-readable form, for logs, messages and reports.
    public var description: String {
        let percent = Fixed.text(fractionComplete * 100, 0)
        let left = remaining.map { ", \($0.humanReadable) left" } ?? ""
        return "\(phase) \(percent) %\(left): \(detail)"
    }
}

/// Why and when a run stopped early.
///
/// Pure value; any thread.
public struct CalibrationInterruption: Hashable, Sendable, Codable {
    /// The phase the run was in.
    public var phase: CalibrationPhase
    /// Time since the workflow started.
    @CodedSeconds public var elapsed: Duration
    /// The reason given (operator interrupt, balance overload, pump alarm, ...).
    public var reason: String
    /// True when the operator asked for it; false for a fault.
    public var requestedByOperator: Bool

    /// Creates an interruption.
    public init(phase: CalibrationPhase, elapsed: Duration, reason: String, requestedByOperator: Bool) {
        self.phase = phase
        self.elapsed = elapsed
        self.reason = reason
        self.requestedByOperator = requestedByOperator
    }

    private enum CodingKeys: String, CodingKey {
        case phase, elapsed = "elapsed_s", reason, requestedByOperator = "requested_by_operator"
    }
}
