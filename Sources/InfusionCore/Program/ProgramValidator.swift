/// Dose error reduction: checks a program request against the drug library (clinical.md §6.1,
/// R-DL-01 to R-DL-09, R-DL-11, R-DL-12) and works out the pump rates and volumes.
///
/// Pure and deterministic; any thread. Every limit comes from the library; nothing is hard-coded.
/// Limit checks use the prescribed (unrounded) values, which are never below what the pump will
/// deliver, so rounding can only make the delivered program safer than the checked one.
public enum ProgramValidator {
    /// Validates `request` against `library` (whose checksum was verified when it was loaded: R-DL-11).
    public static func validate(_ request: ProgramRequest, library: DrugLibrary) -> ValidationResult {
        var findings = FindingList()

        // R-DL-09: a care area must be selected, and be one of this library's.
        guard let profileName = request.profile, !profileName.allSatisfy(\.isWhitespace) else {
            findings.hard(.careArea, "no care area selected: choose a profile (\(library.profiles.map(\.id).joined(separator: ", ")))", limit: nil)
            return findings.result(calculation: nil, candidate: nil)
        }
        guard let profile = library.profile(named: profileName) else {
            findings.hard(.careArea, "care area \"\(profileName)\" is not in \(library.identity): choose one of \(library.profiles.map(\.id).joined(separator: ", "))", limit: nil)
            return findings.result(calculation: nil, candidate: nil)
        }

        // R-DL-01: the drug must be in this profile.
        guard let drug = profile.drug(named: request.drug) else {
            findings.hard(.drugAndConcentration, "\"\(request.drug)\" is not in the \(profile.name) profile: choose one of \(profile.drugs.map(\.name).joined(separator: ", "))", limit: nil)
            return findings.result(calculation: nil, candidate: nil)
        }
        let allowed = drug.concentrations.map { $0.formatted() }.joined(separator: " or ")

        // R-DL-01: only the library's concentrations.
        var concentration: Concentration?
        if let given = request.concentration {
            if drug.concentrations.contains(given) {
                concentration = given
            } else {
                findings.hard(.drugAndConcentration, "\(drug.name) \(given) is not an allowed concentration in \(profile.name): only \(allowed) may be infused", limit: allowed)
            }
        } else {
            findings.hard(.drugAndConcentration, "no concentration given: \(drug.name) must be \(allowed)", limit: allowed)
        }

        // R-DL-02: weight required and in range.
        let range = "\(drug.weightRange.lowerBound)–\(drug.weightRange.upperBound)"
        var weight: BodyWeight?
        if let given = request.weight {
            if drug.weightRange.contains(given) { weight = given }
            else { findings.hard(.weight, "patient weight \(given) is outside \(range) allowed for \(drug.name): check the weight", limit: range) }
        } else {
            findings.hard(.weight, "patient weight is required for weight-based \(drug.name) dosing: enter it in kg", limit: range)
        }

        // R-DL-12 and R-DL-03: the dose must be a library dose in the library's dosing unit.
        var doseRate: WeightBasedDoseRate?
        switch request.dose {
        case let .volumeRate(rate, _):
            findings.hard(.outsideLibrary, "a bare pump rate (\(rate)) is programming outside the drug library, which is not allowed for \(drug.name): enter the dose in \(drug.doseRateUnit)", limit: drug.doseRateUnit.symbol)
        case let .absolute(_, unit):
            findings.hard(.doseUnits, "dose written in \(unit) but \(drug.name) is dosed in \(drug.doseRateUnit) in this library: re-enter it in \(drug.doseRateUnit)", limit: drug.doseRateUnit.symbol)
        case let .weightBased(rate, unit):
            if unit != drug.doseRateUnit {
                findings.hard(.doseUnits, "dose written in \(unit) but \(drug.name) is dosed in \(drug.doseRateUnit) in this library: re-enter it in \(drug.doseRateUnit)", limit: drug.doseRateUnit.symbol)
            } else {
                doseRate = rate
            }
        }

        // R-DL-04 to R-DL-06: dose-rate limits.
        if let rate = doseRate {
            let show = { (q: WeightBasedDoseRate) in q.formatted(in: drug.doseRateUnit, fractionDigits: 4) }
            let limits = drug.doseRate
            if !rate.isPositive {
                findings.hard(.minimum, "a dose rate of \(show(rate)) delivers no drug: enter a positive dose", limit: limits.hardMinimum.map(show))
            } else if rate > limits.hardMaximum {
                findings.hard(.hardMaximum, "dose rate \(show(rate)) is above the hard maximum \(show(limits.hardMaximum)) for \(drug.name): it cannot be overridden; reduce the dose", limit: show(limits.hardMaximum))
            } else if let softMax = limits.softMaximum, rate > softMax {
                findings.soft(.softMaximum, "dose rate \(show(rate)) is above the soft maximum \(show(softMax)) for \(drug.name): confirm with a reason, or reduce the dose", limit: show(softMax))
            }
            if rate.isPositive, let hardMin = limits.hardMinimum, rate < hardMin {
                findings.hard(.minimum, "dose rate \(show(rate)) is below the hard minimum \(show(hardMin)) for \(drug.name): increase the dose", limit: show(hardMin))
            } else if rate.isPositive, let softMin = limits.softMinimum, rate < softMin {
                findings.soft(.minimum, "dose rate \(show(rate)) is below the soft minimum \(show(softMin)) for \(drug.name): confirm with a reason, or increase the dose", limit: show(softMin))
            }
            if let weight {
                let absolute = Dosing.absoluteDoseRate(rate, weight: weight)
                if absolute > drug.absoluteRateCap {
                    findings.hard(.hardMaximum, "\(show(rate)) × \(weight) = \(absolute) is above the absolute cap \(drug.absoluteRateCap) for \(drug.name) regardless of weight: reduce the dose", limit: drug.absoluteRateCap.formatted())
                }
            }
        }

        // Session duration (clinical.md §1.3, with R-DL-08).
        let totalDuration = request.duration + (request.loading?.over ?? .zero)
        if request.duration <= .zero {
            findings.hard(.cumulativeDose, "the infusion duration must be longer than zero: enter the planned duration", limit: nil)
        } else if totalDuration > drug.sessionDuration.hardMaximum {
            findings.hard(.cumulativeDose, "session duration \(totalDuration.humanReadable) is above the hard maximum \(drug.sessionDuration.hardMaximum.humanReadable): shorten the session", limit: drug.sessionDuration.hardMaximum.humanReadable)
        } else if let soft = drug.sessionDuration.softMaximum, totalDuration > soft {
            findings.soft(.cumulativeDose, "session duration \(totalDuration.humanReadable) is above the soft maximum \(soft.humanReadable): confirm with a reason, or shorten the session", limit: soft.humanReadable)
        }

        // R-DL-07: loading dose.
        if let loading = request.loading {
            let show = { (q: WeightBasedDose) in q.formatted(in: drug.bolusDoseUnit, fractionDigits: 4) }
            if loading.unit != drug.bolusDoseUnit {
                findings.hard(.doseUnits, "loading dose written in \(loading.unit) but \(drug.name) boluses are dosed in \(drug.bolusDoseUnit): re-enter it", limit: drug.bolusDoseUnit.symbol)
            }
            if !loading.dose.isPositive {
                findings.hard(.loadingDose, "a loading dose of \(show(loading.dose)) delivers no drug: enter a positive dose or leave the loading dose out", limit: nil)
            } else if loading.dose > drug.loadingDose.hardMaximum {
                findings.hard(.loadingDose, "loading dose \(show(loading.dose)) is above the hard maximum \(show(drug.loadingDose.hardMaximum)): reduce it", limit: show(drug.loadingDose.hardMaximum))
            } else if let soft = drug.loadingDose.softMaximum, loading.dose > soft {
                findings.soft(.loadingDose, "loading dose \(show(loading.dose)) is above the soft maximum \(show(soft)): confirm with a reason, or reduce it", limit: show(soft))
            }
            if let hardMin = drug.loadingDuration.hardMinimum, loading.over < hardMin {
                findings.hard(.loadingDose, "loading dose over \(loading.over.humanReadable) is faster than the minimum \(hardMin.humanReadable): give it more slowly", limit: hardMin.humanReadable)
            } else if let softMin = drug.loadingDuration.softMinimum, loading.over < softMin {
                findings.soft(.loadingDose, "loading dose over \(loading.over.humanReadable) is faster than the recommended \(softMin.humanReadable): confirm with a reason, or give it more slowly", limit: softMin.humanReadable)
            }
        }

        // Compute rates, volumes and the projection when the inputs allow it.
        guard let concentration, let weight, let rate = doseRate, request.duration > .zero,
              let exactRate = Dosing.pumpRate(doseRate: rate, weight: weight, concentration: concentration)
        else { return findings.result(calculation: nil, candidate: nil) }

        let pump = request.pump
        let pumpRate = roundForPump(exactRate, pump)
        let deliveredDoseRate = Dosing.doseRate(pumpRate: pumpRate.actual, weight: weight, concentration: concentration) ?? .zero
        var vtbi = Dosing.volume(rate: pumpRate.actual, over: request.duration)
        if let step = pump?.volumeResolution { vtbi = vtbi.roundedDown(toMultipleOf: step).actual }

        var loadingPhase: LoadingPhase?
        var loadingDose = WeightBasedDose.zero
        if let loading = request.loading, loading.dose.isPositive, loading.over > .zero {
            loadingDose = loading.dose
            let mass = Dosing.absoluteDose(loading.dose, weight: weight)
            if let volume = Dosing.volume(containing: mass, concentration: concentration),
               let exact = Dosing.rate(toDeliver: volume, over: loading.over) {
                let rounded = roundForPump(exact, pump)
                var delivered = Dosing.volume(rate: rounded.actual, over: loading.over)
                if let step = pump?.volumeResolution { delivered = delivered.roundedDown(toMultipleOf: step).actual }
                loadingPhase = LoadingPhase(dose: loading.dose, duration: loading.over, pumpRate: rounded, volume: min(delivered, volume))
                checkPumpRange(rounded, phase: "loading", pump: pump, into: &findings)
            }
        }
        checkPumpRange(pumpRate, phase: "maintenance", pump: pump, into: &findings)

        // R-DL-08: projected cumulative dose, as prescribed (≥ what the rounded rates deliver).
        let cumulative = loadingDose.exactlyAdding(Dosing.dose(rate: rate, over: request.duration))
        let show = { (q: WeightBasedDose) in q.formatted(in: drug.bolusDoseUnit, fractionDigits: 3) }
        if cumulative > drug.cumulativeDose.hardMaximum {
            findings.hard(.cumulativeDose, "projected session dose \(show(cumulative)) is above the hard maximum \(show(drug.cumulativeDose.hardMaximum)): reduce the dose or the duration", limit: show(drug.cumulativeDose.hardMaximum))
        } else if let soft = drug.cumulativeDose.softMaximum, cumulative > soft {
            findings.soft(.cumulativeDose, "projected session dose \(show(cumulative)) is above the soft maximum \(show(soft)): confirm with a reason, or reduce the dose or the duration", limit: show(soft))
        }

        let calculation = ProgramCalculation(
            pumpRate: pumpRate, deliveredDoseRate: deliveredDoseRate,
            absoluteDoseRate: Dosing.absoluteDoseRate(rate, weight: weight), duration: request.duration, vtbi: vtbi,
            loading: loadingPhase, projectedCumulativeDose: cumulative,
            projectedCumulativeMass: Dosing.absoluteDose(cumulative, weight: weight))
        let candidate = ValidatedProgram(
            libraryName: library.name, libraryVersion: library.version, librarySHA256: library.sha256,
            profile: profile, drug: drug, concentration: concentration, weight: weight, doseRate: rate,
            calculation: calculation, overriddenFindings: [], confirmation: nil)
        return findings.result(calculation: calculation, candidate: candidate)
    }

    /// Rounds a rate down to the pump's resolution (toward less drug).
    static func roundForPump(_ rate: VolumeRate, _ pump: PumpCapabilities?) -> Rounded<VolumeRate> {
        guard let step = pump?.rateResolution, step.isPositive else { return Rounded(requested: rate, actual: rate) }
        return rate.roundedDown(toMultipleOf: step)
    }

    static func checkPumpRange(_ rate: Rounded<VolumeRate>, phase: String, pump: PumpCapabilities?, into findings: inout FindingList) {
        if let max = pump?.maximumRate, rate.requested > max {
            findings.hard(.hardMaximum, "the \(phase) rate \(rate.requested) is above this pump's maximum \(max): use a higher concentration from the library or another pump", limit: max.formatted())
        }
        if !rate.actual.isPositive {
            findings.hard(.minimum, "the \(phase) rate \(rate.requested) rounds to zero on this pump: the dose is below what the pump can deliver", limit: nil)
        } else if let min = pump?.minimumRate, rate.actual < min {
            findings.hard(.minimum, "the \(phase) rate \(rate.actual) is below this pump's minimum \(min): use a lower concentration or another pump", limit: min.formatted())
        }
    }
}

/// Collects findings, hard first in the final result.
struct FindingList {
    private(set) var items: [Finding] = []
    mutating func hard(_ rule: ProgramRule, _ message: String, limit: String?) {
        items.append(Finding(rule: rule, severity: .hard, message: message, limit: limit))
    }
    mutating func soft(_ rule: ProgramRule, _ message: String, limit: String?) {
        items.append(Finding(rule: rule, severity: .soft, message: message, limit: limit))
    }
    func result(calculation: ProgramCalculation?, candidate: ValidatedProgram?) -> ValidationResult {
        let ordered = items.filter { $0.severity == .hard } + items.filter { $0.severity == .soft }
        return ValidationResult(findings: ordered, calculation: calculation, candidate: candidate)
    }
}
