import Foundation

/// Something the analysis noticed about the data: a missing sample, a mass that went down, a reading
/// that never settled. Findings never change numbers silently; they say what was done with the data.
///
/// Pure value; any thread.
public struct CalibrationFinding: Hashable, Sendable, Codable, CustomStringConvertible {
    /// How much a finding matters.
    public enum Severity: String, Hashable, Sendable, Codable, Comparable {
        /// For the record; the result stands.
        case info
        /// The result stands but the technician should look (for example balance noise).
        case warning
        /// The result cannot be trusted; the verdict is fail or incomplete.
        case error

        private var rank: Int {
            switch self { case .info: 0; case .warning: 1; case .error: 2 }
        }

        /// Orders severities: info < warning < error.
        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
    }

    /// How much it matters.
    public var severity: Severity
    /// A stable machine-readable code (`missing-samples`, `mass-decrease`, `unstable-readings`, ...).
    public var code: String
    /// What happened and what to do, for the operator and the report.
    public var message: String

    /// Creates a finding.
    public init(_ severity: Severity, code: String, _ message: String) {
        self.severity = severity
        self.code = code
        self.message = message
    }

    /// A short human-readable form, for logs, messages and reports.
    public var description: String { "\(severity.rawValue): \(message)" }
}

/// The outcome of a calibration or verification.
///
/// Pure value; any thread.
public enum CalibrationOutcome: String, Hashable, Sendable, Codable, CustomStringConvertible {
    /// Every criterion met with complete data.
    case pass
    /// At least one criterion not met, or the data could not demonstrate accuracy.
    case fail
    /// The run was interrupted or aborted before its end: never a pass, the samples are kept.
    case incomplete

    /// A short human-readable form, for logs, messages and reports.
    public var description: String {
        switch self {
        case .pass: "PASS"
        case .fail: "FAIL"
        case .incomplete: "INCOMPLETE"
        }
    }
}

/// A verdict with its reasons: every criterion checked, in plain words.
///
/// Pure value; any thread.
public struct CalibrationVerdict: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Pass, fail or incomplete.
    public var outcome: CalibrationOutcome
    /// One line per criterion checked (met or not), and why a run is incomplete.
    public var reasons: [String]

    /// Creates a verdict.
    public init(_ outcome: CalibrationOutcome, reasons: [String]) {
        self.outcome = outcome
        self.reasons = reasons
    }

    /// True only for `.pass`.
    public var passed: Bool { outcome == .pass }

    /// A short human-readable form, for logs, messages and reports.
    public var description: String {
        ([outcome.description] + reasons.map { "  - \($0)" }).joined(separator: "\n")
    }
}

/// Why a calibration input or configuration was refused: what is wrong and what to do.
///
/// Pure value; any thread.
public struct CalibrationInputError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong.
    public var problem: String
    /// What to do about it.
    public var fix: String

    /// Creates an error.
    public init(_ problem: String, fix: String) {
        self.problem = problem
        self.fix = fix
    }

    /// A short human-readable form, for logs, messages and reports.
    public var description: String { "\(problem): \(fix)" }
}
