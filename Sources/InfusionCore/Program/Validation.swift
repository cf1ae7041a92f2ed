/// The program-validation rules of clinical.md §6.1 that this validator enforces.
public enum ProgramRule: String, Hashable, Sendable, CaseIterable {
    /// Drug or concentration not in the active care-area library.
    case drugAndConcentration = "R-DL-01"
    /// Patient weight missing or outside the library's range.
    case weight = "R-DL-02"
    /// Dose written in a unit other than the library's dosing unit.
    case doseUnits = "R-DL-03"
    /// Dose rate above the hard maximum, or the absolute cap (also: beyond what the pump can do).
    case hardMaximum = "R-DL-04"
    /// Dose rate between the soft and hard maximum.
    case softMaximum = "R-DL-05"
    /// Dose rate below the soft or hard minimum.
    case minimum = "R-DL-06"
    /// Loading dose and its duration.
    case loadingDose = "R-DL-07"
    /// Projected cumulative dose and session duration.
    case cumulativeDose = "R-DL-08"
    /// No care area selected, or one not in the library.
    case careArea = "R-DL-09"
    /// Library integrity (checked when the library is loaded).
    case libraryIntegrity = "R-DL-11"
    /// Programming outside the drug library (a bare mL/h infusion).
    case outsideLibrary = "R-DL-12"
}

/// How serious a finding is.
public enum FindingSeverity: String, Hashable, Sendable, Codable {
    /// A hard limit: the program is rejected; there is no override.
    case hard
    /// A soft limit: the program needs an explicit confirmation with a reason, which is recorded.
    case soft
}

/// One broken rule: which rule, how serious, what happened, and the limit it was checked against.
public struct Finding: Hashable, Sendable {
    /// The rule (clinical.md §6.1 id).
    public let rule: ProgramRule
    /// Hard (reject) or soft (confirm).
    public let severity: FindingSeverity
    /// A sentence for the clinician: what was asked, the limit, and what to do.
    public let message: String
    /// The limit as written in the library ("1 mg/kg/h"), when there is one.
    public let limit: String?
}

/// A soft-limit override: who confirmed it and why. Both are recorded with the program.
public struct SoftLimitConfirmation: Hashable, Sendable {
    /// Why the clinician proceeds past the soft limit(s). Must not be blank.
    public let reason: String
    /// Who confirmed (operator id), when known.
    public let confirmedBy: String?

    /// A confirmation with its reason and, when known, the confirming operator.
    public init(reason: String, confirmedBy: String? = nil) {
        self.reason = reason
        self.confirmedBy = confirmedBy
    }
}

/// Why a confirmation was refused.
public enum ConfirmationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The program breaks a hard limit; nothing can accept it.
    case rejected([Finding])
    /// A soft-limit confirmation needs a reason.
    case missingReason
    /// There was nothing to confirm (the program was accepted as it is).
    case nothingToConfirm

    public var description: String {
        switch self {
        case let .rejected(findings):
            "the program breaks a hard limit and cannot be confirmed: " + findings.filter { $0.severity == .hard }.map(\.message).joined(separator: "; ")
        case .missingReason:
            "a soft-limit override needs a reason: say why the dose outside the soft limit is intended"
        case .nothingToConfirm:
            "the program is within every limit: there is nothing to confirm"
        }
    }
}

/// The loading phase of a program: a dose given over a time, before the maintenance infusion.
public struct LoadingPhase: Hashable, Sendable {
    /// The loading dose per kilogram, as prescribed.
    public let dose: WeightBasedDose
    /// Over how long.
    public let duration: Duration
    /// The pump rate for the loading phase, rounded down to the pump's resolution.
    public let pumpRate: Rounded<VolumeRate>
    /// The volume the loading phase infuses at the actual rate.
    public let volume: Volume
}

/// The numbers a program works out to, computed whenever the inputs allow it (also for a rejected
/// program, so the clinician sees what was asked for).
public struct ProgramCalculation: Hashable, Sendable {
    /// Maintenance pump rate: requested (exact) and actual (rounded down to the pump's resolution).
    public let pumpRate: Rounded<VolumeRate>
    /// The weight-based dose rate the actual pump rate delivers (≤ the prescribed one).
    public let deliveredDoseRate: WeightBasedDoseRate
    /// The prescribed dose rate in mg/h for this patient.
    public let absoluteDoseRate: DoseRate
    /// Maintenance duration.
    public let duration: Duration
    /// Volume to be infused by the maintenance phase at the actual rate.
    public let vtbi: Volume
    /// The loading phase, if any.
    public let loading: LoadingPhase?
    /// Projected cumulative dose of the whole session (loading + maintenance), per kg, as prescribed.
    public let projectedCumulativeDose: WeightBasedDose
    /// The same in mg.
    public let projectedCumulativeMass: Mass
    /// Total session time: loading + maintenance.
    public var totalDuration: Duration { duration + (loading?.duration ?? .zero) }
    /// Total volume of the session at the actual rates.
    public var totalVolume: Volume { vtbi.exactlyAdding(loading?.volume ?? .zero) }
}

/// A program that passed validation, with its soft-limit confirmation if it needed one. Only the
/// validator creates one, so a value of this type never exceeds a hard limit.
public struct ValidatedProgram: Hashable, Sendable {
    /// The library it was validated against: name, version and SHA-256.
    public let libraryName: String
    /// The library's version.
    public let libraryVersion: String
    /// The library's verified SHA-256.
    public let librarySHA256: String
    /// The care-area profile, with the supervisor's monitoring rules.
    public let profile: CareAreaProfile
    /// The drug entry and its limits.
    public let drug: DrugEntry
    /// The solution's concentration.
    public let concentration: Concentration
    /// The patient's weight.
    public let weight: BodyWeight
    /// The prescribed maintenance dose rate.
    public let doseRate: WeightBasedDoseRate
    /// Pump rates, volumes and projections.
    public let calculation: ProgramCalculation
    /// Soft findings that were confirmed (empty when none).
    public let overriddenFindings: [Finding]
    /// The confirmation of those findings (nil when none were needed).
    public let confirmation: SoftLimitConfirmation?

    /// The highest rate this program may ever command, in mL/h: the larger of the loading and
    /// maintenance actual rates. The supervisor never commands more.
    public var maximumPumpRate: VolumeRate {
        max(calculation.pumpRate.actual, calculation.loading?.pumpRate.actual ?? .zero)
    }

    /// The volume at which the session's hard cumulative dose is reached (the supervisor stops there).
    public var cumulativeHardLimitVolume: Volume {
        let mass = Dosing.absoluteDose(drug.cumulativeDose.hardMaximum, weight: weight)
        return Dosing.volume(containing: mass, concentration: concentration) ?? .zero
    }
}

/// The result of validating a program request.
public struct ValidationResult: Hashable, Sendable {
    /// Status of a validated program.
    public enum Status: String, Hashable, Sendable, Codable {
        /// Within every limit.
        case accepted
        /// Breaks soft limits only: needs a confirmation with a reason.
        case needsConfirmation = "needs-confirmation"
        /// Breaks a hard limit: cannot be run.
        case rejected
    }

    /// Every finding, hard first.
    public let findings: [Finding]
    /// The computed rates and volumes, when the inputs allowed them to be computed.
    public let calculation: ProgramCalculation?
    let candidate: ValidatedProgram?

    /// Accepted, needs confirmation, or rejected.
    public var status: Status {
        if candidate == nil || findings.contains(where: { $0.severity == .hard }) { return .rejected }
        return findings.isEmpty ? .accepted : .needsConfirmation
    }

    /// The program, when it is accepted without any confirmation; nil otherwise.
    public var acceptedProgram: ValidatedProgram? { status == .accepted ? candidate : nil }

    /// Confirms the soft findings with a reason and returns the program. Throws for a rejected program
    /// (no override of a hard limit exists), for a blank reason, or when there is nothing to confirm.
    public func confirm(_ confirmation: SoftLimitConfirmation) throws(ConfirmationError) -> ValidatedProgram {
        switch status {
        case .rejected: throw .rejected(findings)
        case .accepted: throw .nothingToConfirm
        case .needsConfirmation:
            guard !confirmation.reason.allSatisfy(\.isWhitespace) else { throw .missingReason }
            guard let candidate else { throw .rejected(findings) }
            return ValidatedProgram(
                libraryName: candidate.libraryName, libraryVersion: candidate.libraryVersion,
                librarySHA256: candidate.librarySHA256, profile: candidate.profile, drug: candidate.drug,
                concentration: candidate.concentration, weight: candidate.weight, doseRate: candidate.doseRate,
                calculation: candidate.calculation, overriddenFindings: findings, confirmation: confirmation)
        }
    }
}
