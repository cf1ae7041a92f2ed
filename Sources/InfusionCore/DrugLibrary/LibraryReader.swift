import Foundation

// MARK: - Reading a drug library

/// The drug-library part of the strict TOML reader: one function per table of docs/drug-library.md,
/// each collecting every problem instead of stopping at the first.
extension StrictTOMLReader {
    /// A limit written as a quantity ("1.0 mg/kg/h"): must be greater than zero, or with `allowZero` not
    /// negative, since a zero limit would block or disable its rule.
    mutating func limit<Q: PhysicalQuantity>(
        _ t: inout Table, _ name: String, _ type: Q.Type, required: Bool = true, allowZero: Bool = false
    ) -> Q? {
        guard let value = quantity(&t, name, Q.self, required: required) else { return nil }
        return checkLimitSign(value.canonicalValue, t.key(name), allowZero: allowZero) ? value : nil
    }

    /// A limit written as a duration ("15 s"): like `limit(_:_:_:required:allowZero:)`.
    mutating func durationLimit(_ t: inout Table, _ name: String, required: Bool = true, allowZero: Bool = false) -> Duration? {
        guard let value = duration(&t, name, required: required, allowZero: true) else { return nil }
        return checkLimitSign(value.seconds, t.key(name), allowZero: allowZero) ? value : nil
    }

    private mutating func checkLimitSign(_ value: Double, _ path: String, allowZero: Bool) -> Bool {
        if value > 0 || (allowZero && value == 0) { return true }
        report(path, allowZero ? "must not be negative" : "must be greater than zero",
               fix: "a zero limit would block or disable the rule; use a positive value")
        return false
    }

    /// Checks limits that must be in order (hard-min ≤ soft-min ≤ soft-max ≤ hard-max), reporting each
    /// pair out of order.
    mutating func checkLimits<V: Comparable>(_ t: Table, _ values: [(String, V?)]) {
        checkOrder(t, values, why: "a soft limit never lies beyond its hard limit")
    }

    // MARK: The library

    /// Reads the whole library from the root table; nil when anything was reported (the checksum's issues
    /// must already be recorded).
    mutating func readLibrary(_ top: inout Table, checksum: LibraryChecksum.Outcome) -> DrugLibrary? {
        checkFormat(&top, supported: DrugLibrary.formatVersion)
        var name: String?, version: String?
        if var header = subtable(&top, "library") {
            name = string(&header, "name")
            version = string(&header, "version")
            header.markUsed("sha256")
            finish(header, allowed: ["name", "version", "sha256"])
        }
        var profiles: [CareAreaProfile] = []
        for var entry in tableArray(&top, "profile") {
            if let profile = readProfile(&entry) { profiles.append(profile) }
        }
        finish(top, allowed: ["format", "library", "profile"])
        for (index, profile) in profiles.enumerated() {
            if profiles[..<index].contains(where: { $0.id.lowercased() == profile.id.lowercased() || $0.name.lowercased() == profile.name.lowercased() }) {
                report("profile[\(index)].id", "duplicate profile \"\(profile.id)\" (\(profile.name))",
                       fix: "give each profile a unique id and name")
            }
        }
        guard let name, let version, issues.isEmpty else { return nil }
        return DrugLibrary(name: name, version: version, sha256: checksum.computed, profiles: profiles, source: source)
    }

    mutating func readProfile(_ t: inout Table) -> CareAreaProfile? {
        let id = string(&t, "id")
        let name = string(&t, "name")
        let careArea = string(&t, "care_area")
        if let id, id.contains(where: { $0.isWhitespace }) {
            report(t.key("id"), "profile id \"\(id)\" contains white space", fix: "use letters, digits and dashes, e.g. \"ketamine-chronic-pain\"")
        }
        let start = subtable(&t, "start_checks").flatMap { table -> StartChecks? in var table = table; return readStartChecks(&table) }
        let monitoring = subtable(&t, "monitoring").flatMap { table -> MonitoringRules? in var table = table; return readMonitoring(&table) }
        let alarms = subtable(&t, "alarms").flatMap { table -> AlarmSettings? in var table = table; return readAlarms(&table) }
        var drugs: [DrugEntry] = []
        for var entry in tableArray(&t, "drug") {
            if let drug = readDrug(&entry) { drugs.append(drug) }
        }
        for (index, drug) in drugs.enumerated() where drugs[..<index].contains(where: { $0.name.lowercased() == drug.name.lowercased() }) {
            report("\(t.path).drug[\(index)].name", "duplicate drug \"\(drug.name)\" in this profile",
                   fix: "list each drug once per profile, with all its concentrations in one entry")
        }
        finish(t, allowed: ["id", "name", "care_area", "start_checks", "monitoring", "alarms", "drug"])
        guard let id, let name, let careArea, let start, let monitoring, let alarms else { return nil }
        return CareAreaProfile(id: id, name: name, careArea: careArea, drugs: drugs, startChecks: start, monitoring: monitoring, alarms: alarms)
    }

    mutating func readStartChecks(_ t: inout Table) -> StartChecks? {
        let spo2 = limit(&t, "spo2_min", Percentage.self)
        let pulseMin = limit(&t, "pulse_min", PulseRate.self)
        let pulseMax = limit(&t, "pulse_max", PulseRate.self)
        let age = durationLimit(&t, "vitals_max_age")
        checkPercent(t.key("spo2_min"), spo2)
        checkOrder(t, [("pulse_min", pulseMin), ("pulse_max", pulseMax)], why: "otherwise no pulse rate passes the start check")
        finish(t, allowed: ["spo2_min", "pulse_min", "pulse_max", "vitals_max_age"])
        guard let spo2, let pulseMin, let pulseMax, let age else { return nil }
        return StartChecks(spo2Minimum: spo2, pulseMinimum: pulseMin, pulseMaximum: pulseMax, vitalsMaxAge: age)
    }

    private mutating func checkPercent(_ path: String, _ value: Percentage?) {
        if let value, value.percent > 100 { report(path, "an SpO2 threshold above 100 % can never be met", fix: "use a value from 50 to 100 %") }
        if let value, value.percent < 50 { report(path, "an SpO2 threshold below 50 % would never protect the patient", fix: "use a value from 50 to 100 %") }
    }

    mutating func readMonitoring(_ t: inout Table) -> MonitoringRules? {
        let spo2Pause = limit(&t, "spo2_pause_below", Percentage.self)
        let spo2Hold = durationLimit(&t, "spo2_pause_hold")
        let spo2Immediate = limit(&t, "spo2_immediate_pause_below", Percentage.self)
        let spo2Warning = limit(&t, "spo2_warning_at_or_below", Percentage.self)
        let spo2WarningHold = durationLimit(&t, "spo2_warning_hold", allowZero: true)
        let pulseAbove = limit(&t, "pulse_pause_above", PulseRate.self)
        let pulseBelow = limit(&t, "pulse_pause_below", PulseRate.self)
        let pulseHold = durationLimit(&t, "pulse_pause_hold", allowZero: true)
        let pulseWarning = limit(&t, "pulse_warning_above", PulseRate.self)
        let pulseWarningHold = durationLimit(&t, "pulse_warning_hold", allowZero: true)
        let invalidAfter = durationLimit(&t, "invalid_signal_alarm_after", allowZero: true)
        let lossAlarm = durationLimit(&t, "monitoring_loss_alarm_after")
        let lossPause = durationLimit(&t, "monitoring_loss_pause_after")
        let maxAge = durationLimit(&t, "sample_max_age")
        let stopDeadline = durationLimit(&t, "stop_confirmation_deadline")
        let rateTolerance = limit(&t, "rate_tolerance", Percentage.self)
        let rateHold = durationLimit(&t, "rate_mismatch_hold", allowZero: true)
        let volumeTolerance = limit(&t, "volume_tolerance", Volume.self)

        for (key, value) in [("spo2_pause_below", spo2Pause), ("spo2_immediate_pause_below", spo2Immediate), ("spo2_warning_at_or_below", spo2Warning)] {
            checkPercent(t.key(key), value)
        }
        checkOrder(t, [("spo2_immediate_pause_below", spo2Immediate), ("spo2_pause_below", spo2Pause)],
                   why: "the pause without delay is for a deeper desaturation than the pause after the hold time")
        checkOrder(t, [("spo2_pause_below", spo2Pause), ("spo2_warning_at_or_below", spo2Warning)],
                   why: "as SpO2 falls the warning comes first, then the pause")
        checkOrder(t, [("pulse_pause_below", pulseBelow), ("pulse_warning_above", pulseWarning), ("pulse_pause_above", pulseAbove)],
                   why: "a rising pulse warns before it pauses, and the low pause limit lies below both")
        checkOrder(t, [("invalid_signal_alarm_after", invalidAfter), ("monitoring_loss_pause_after", lossPause)],
                   why: "an invalid signal alarms before monitoring loss pauses delivery")
        checkOrder(t, [("monitoring_loss_alarm_after", lossAlarm), ("monitoring_loss_pause_after", lossPause)],
                   why: "loss of monitoring alarms before it pauses delivery")
        if let spo2Hold, spo2Hold < .seconds(10) || spo2Hold > .seconds(30) {
            report(t.key("spo2_pause_hold"), "the SpO2 pause hold time must be 10 to 30 s (R-MON-01), not \(spo2Hold.humanReadable)",
                   fix: "choose a hold time from 10 s to 30 s")
        }
        if let rateTolerance, rateTolerance.percent >= 100 {
            report(t.key("rate_tolerance"), "a rate tolerance of 100 % or more never detects a wrong rate", fix: "use a few percent, e.g. \"5 %\"")
        }
        if let stopDeadline, stopDeadline > .seconds(10) {
            report(t.key("stop_confirmation_deadline"), "a stop confirmation deadline over 10 s leaves an unconfirmed stop unalarmed too long",
                   fix: "use at most 10 s (clinical.md R-MON-09 proposes 2 s)")
        }
        finish(t, allowed: ["spo2_pause_below", "spo2_pause_hold", "spo2_immediate_pause_below", "spo2_warning_at_or_below",
                            "spo2_warning_hold", "pulse_pause_above", "pulse_pause_below", "pulse_pause_hold", "pulse_warning_above",
                            "pulse_warning_hold", "invalid_signal_alarm_after", "monitoring_loss_alarm_after",
                            "monitoring_loss_pause_after", "sample_max_age", "stop_confirmation_deadline", "rate_tolerance",
                            "rate_mismatch_hold", "volume_tolerance"])
        guard let spo2Pause, let spo2Hold, let spo2Immediate, let spo2Warning, let spo2WarningHold, let pulseAbove, let pulseBelow,
              let pulseHold, let pulseWarning, let pulseWarningHold, let invalidAfter, let lossAlarm, let lossPause, let maxAge,
              let stopDeadline, let rateTolerance, let rateHold, let volumeTolerance else { return nil }
        return MonitoringRules(
            spo2PauseBelow: spo2Pause, spo2PauseHold: spo2Hold, spo2ImmediatePauseBelow: spo2Immediate,
            spo2WarningAtOrBelow: spo2Warning, spo2WarningHold: spo2WarningHold, pulsePauseAbove: pulseAbove,
            pulsePauseBelow: pulseBelow, pulsePauseHold: pulseHold, pulseWarningAbove: pulseWarning,
            pulseWarningHold: pulseWarningHold, invalidSignalAlarmAfter: invalidAfter, monitoringLossAlarmAfter: lossAlarm,
            monitoringLossPauseAfter: lossPause, sampleMaxAge: maxAge, stopConfirmationDeadline: stopDeadline,
            rateTolerance: rateTolerance, rateMismatchHold: rateHold, volumeTolerance: volumeTolerance)
    }

    mutating func readAlarms(_ t: inout Table) -> AlarmSettings? {
        let audio = durationLimit(&t, "audio_pause_max")
        let escalate = durationLimit(&t, "escalate_medium_after")
        if let audio, audio > .seconds(300) {
            report(t.key("audio_pause_max"), "an audio pause longer than 5 min silences alarms too long",
                   fix: "use at most 300 s (clinical.md R-ALM-03 proposes 120 s)")
        }
        finish(t, allowed: ["audio_pause_max", "escalate_medium_after"])
        guard let audio, let escalate else { return nil }
        return AlarmSettings(audioPauseMax: audio, escalateMediumAfter: escalate)
    }

    mutating func readDrug(_ t: inout Table) -> DrugEntry? {
        let name = string(&t, "name")
        var concentrations: [Concentration] = []
        if let value = t.value("concentrations") {
            if let array = value.array, !array.isEmpty {
                for (index, element) in array.enumerated() {
                    let path = t.key("concentrations")
                    guard let text = element.string else {
                        report(path, "concentration \(index + 1) must be a quoted quantity such as \"1 mg/mL\"", fix: "quote it with its unit")
                        continue
                    }
                    do {
                        let c = try Concentration.parse(text)
                        if !c.isPositive { report(path, "concentration \"\(text)\" must be greater than zero", fix: "remove it") }
                        else if concentrations.contains(c) { report(path, "concentration \"\(text)\" is listed twice", fix: "list each concentration once") }
                        else { concentrations.append(c) }
                    } catch {
                        report(path, error.description, fix: "write concentrations like \"1 mg/mL\"")
                    }
                }
            } else {
                report(t.key("concentrations"), "\"concentrations\" must be a non-empty array of quantities",
                       fix: "write concentrations = [\"1 mg/mL\", \"2 mg/mL\"]")
            }
        } else {
            report(t.key("concentrations"), "missing required key \"concentrations\"", fix: "add concentrations = [\"1 mg/mL\"]")
        }
        var doseUnit: WeightBasedDoseRateUnit?
        if let text = string(&t, "dose_unit") {
            doseUnit = WeightBasedDoseRateUnit.unit(named: text)
            if doseUnit == nil {
                report(t.key("dose_unit"), "unsupported dosing unit \"\(text)\"",
                       fix: "use a weight-based dose-rate unit: \(WeightBasedDoseRateUnit.acceptedSymbols)")
            }
        }
        var bolusUnit: WeightBasedDoseUnit?
        if let text = string(&t, "bolus_unit") {
            bolusUnit = WeightBasedDoseUnit.unit(named: text)
            if bolusUnit == nil {
                report(t.key("bolus_unit"), "unsupported bolus unit \"\(text)\"", fix: "use one of \(WeightBasedDoseUnit.acceptedSymbols)")
            }
        }
        let weightMin = limit(&t, "weight_min", BodyWeight.self)
        let weightMax = limit(&t, "weight_max", BodyWeight.self)
        let rateHardMin = limit(&t, "dose_rate_hard_min", WeightBasedDoseRate.self, required: false)
        let rateSoftMin = limit(&t, "dose_rate_soft_min", WeightBasedDoseRate.self, required: false)
        let rateSoftMax = limit(&t, "dose_rate_soft_max", WeightBasedDoseRate.self)
        let rateHardMax = limit(&t, "dose_rate_hard_max", WeightBasedDoseRate.self)
        let cap = limit(&t, "absolute_rate_cap", DoseRate.self)
        let loadSoftMax = limit(&t, "loading_dose_soft_max", WeightBasedDose.self)
        let loadHardMax = limit(&t, "loading_dose_hard_max", WeightBasedDose.self)
        let loadHardMinDuration = durationLimit(&t, "loading_min_duration_hard")
        let loadSoftMinDuration = durationLimit(&t, "loading_min_duration_soft", required: false)
        let cumulativeSoft = limit(&t, "cumulative_dose_soft_max", WeightBasedDose.self)
        let cumulativeHard = limit(&t, "cumulative_dose_hard_max", WeightBasedDose.self)
        let durationSoft = durationLimit(&t, "duration_soft_max")
        let durationHard = durationLimit(&t, "duration_hard_max")
        var end: EndOfInfusionAction?
        if let text = string(&t, "end_of_infusion") {
            end = EndOfInfusionAction(rawValue: text.lowercased())
            if end == nil {
                report(t.key("end_of_infusion"), "unsupported end-of-infusion action \"\(text)\"",
                       fix: "use \"stop\" (KVO of drug-containing solution counts toward the dose and is not supported)")
            }
        }
        checkLimits(t, [("weight_min", weightMin), ("weight_max", weightMax)])
        checkLimits(t, [("dose_rate_hard_min", rateHardMin), ("dose_rate_soft_min", rateSoftMin),
                            ("dose_rate_soft_max", rateSoftMax), ("dose_rate_hard_max", rateHardMax)])
        checkLimits(t, [("loading_dose_soft_max", loadSoftMax), ("loading_dose_hard_max", loadHardMax)])
        checkLimits(t, [("loading_min_duration_hard", loadHardMinDuration), ("loading_min_duration_soft", loadSoftMinDuration)])
        checkLimits(t, [("cumulative_dose_soft_max", cumulativeSoft), ("cumulative_dose_hard_max", cumulativeHard)])
        checkLimits(t, [("duration_soft_max", durationSoft), ("duration_hard_max", durationHard)])
        finish(t, allowed: ["name", "concentrations", "dose_unit", "bolus_unit", "weight_min", "weight_max",
                            "dose_rate_hard_min", "dose_rate_soft_min", "dose_rate_soft_max", "dose_rate_hard_max",
                            "absolute_rate_cap", "loading_dose_soft_max", "loading_dose_hard_max",
                            "loading_min_duration_hard", "loading_min_duration_soft", "cumulative_dose_soft_max",
                            "cumulative_dose_hard_max", "duration_soft_max", "duration_hard_max", "end_of_infusion"])
        guard let name, !concentrations.isEmpty, let doseUnit, let bolusUnit, let weightMin, let weightMax, let rateSoftMax,
              let rateHardMax, let cap, let loadSoftMax, let loadHardMax, let loadHardMinDuration, let cumulativeSoft,
              let cumulativeHard, let durationSoft, let durationHard, let end, weightMin <= weightMax else { return nil }
        return DrugEntry(
            name: name, concentrations: concentrations, doseRateUnit: doseUnit, bolusDoseUnit: bolusUnit,
            weightRange: weightMin...weightMax,
            doseRate: Limits(hardMinimum: rateHardMin, softMinimum: rateSoftMin, softMaximum: rateSoftMax, hardMaximum: rateHardMax),
            absoluteRateCap: cap,
            loadingDose: Limits(softMaximum: loadSoftMax, hardMaximum: loadHardMax),
            loadingDuration: Limits(hardMinimum: loadHardMinDuration, softMinimum: loadSoftMinDuration, hardMaximum: durationHard),
            cumulativeDose: Limits(softMaximum: cumulativeSoft, hardMaximum: cumulativeHard),
            sessionDuration: Limits(softMaximum: durationSoft, hardMaximum: durationHard),
            endOfInfusion: end)
    }
}
