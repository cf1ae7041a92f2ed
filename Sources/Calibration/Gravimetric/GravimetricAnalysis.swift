import Foundation
import InfusionCore

/// The flow over one sampling interval: from sample `index − 1` to sample `index`.
///
/// Pure value; any thread. JSON: `index`, `start_s`, `end_s`, `mass_change_g` (evaporation-corrected,
/// or null), `flow_mL_h` (or null when either sample is missing).
public struct FlowInterval: Hashable, Sendable, Codable {
    /// i: the interval ends at sample i (1...N).
    public var index: Int
    /// When the interval starts (the actual time of sample i − 1, or its scheduled time when missing).
    @CodedSeconds public var start: Duration
    /// When the interval ends (the actual time of sample i, or its scheduled time when missing).
    @CodedSeconds public var end: Duration
    /// W_i − W_(i−1) in grams, corrected for evaporation; nil when either weight is missing.
    public var massChangeGrams: Double?
    /// Q_i = ΔW / (ρ Δt); nil when either weight is missing.
    @CodedOptionalQuantity public var flow: VolumeRate?

    /// Creates an interval.
    public init(index: Int, start: Duration, end: Duration, massChangeGrams: Double?, flow: VolumeRate?) {
        self.index = index
        self.start = start
        self.end = end
        self.massChangeGrams = massChangeGrams
        self.flow = flow
    }

    private enum CodingKeys: String, CodingKey {
        case index, start = "start_s", end = "end_s", massChangeGrams = "mass_change_g", flow = "flow_mL_h"
    }
}

/// One point of the trumpet curve: over every observation window of p consecutive intervals in the
/// analysis period, the largest and smallest percentage deviation of the window's mean flow from the set
/// rate.
///
/// Pure value; any thread.
public struct TrumpetPoint: Hashable, Sendable, Codable {
    /// The window (nominal P, p, and p × Δt).
    public var window: ObservationWindow
    /// m: the number of windows in the analysis period, (T_A − P) / Δt + 1.
    public var windowCount: Int
    /// Windows left out because a sample at either end is missing.
    public var excludedWindows: Int
    /// E_p(max), %; nil when no window could be computed.
    @CodedOptionalQuantity public var maximumError: Percentage?
    /// E_p(min), %; nil when no window could be computed.
    @CodedOptionalQuantity public var minimumError: Percentage?

    /// Creates a point.
    public init(window: ObservationWindow, windowCount: Int, excludedWindows: Int, maximumError: Percentage?, minimumError: Percentage?) {
        self.window = window
        self.windowCount = windowCount
        self.excludedWindows = excludedWindows
        self.maximumError = maximumError
        self.minimumError = minimumError
    }

    private enum CodingKeys: String, CodingKey {
        case window, windowCount = "windows", excludedWindows = "excluded_windows"
        case maximumError = "ep_max_percent", minimumError = "ep_min_percent"
    }
}

/// How the samples of a run were used.
///
/// Pure value; any thread.
public struct SampleCounts: Hashable, Sendable, Codable {
    /// Samples scheduled in the analysis period (b − a + 1).
    public var expectedInAnalysis: Int
    /// Of those, samples with no usable weight (missing, errors, skipped dynamic readings, never taken).
    public var missingInAnalysis: Int
    /// Samples in the whole run with no usable weight, including ones never taken.
    public var missingInRun: Int
    /// Dynamic readings used (policy `flag`) in the whole run.
    public var dynamicUsed: Int
    /// Dynamic readings treated as missing (policy `skip`).
    public var dynamicSkipped: Int
    /// Samples ignored because their time was too far from their schedule, their index was outside the
    /// run, or another sample had the same index.
    public var offSchedule: Int
    /// Intervals (whole run) in which the corrected mass went down.
    public var massDecreases: Int

    /// Creates counts.
    public init(expectedInAnalysis: Int = 0, missingInAnalysis: Int = 0, missingInRun: Int = 0, dynamicUsed: Int = 0,
                dynamicSkipped: Int = 0, offSchedule: Int = 0, massDecreases: Int = 0) {
        self.expectedInAnalysis = expectedInAnalysis
        self.missingInAnalysis = missingInAnalysis
        self.missingInRun = missingInRun
        self.dynamicUsed = dynamicUsed
        self.dynamicSkipped = dynamicSkipped
        self.offSchedule = offSchedule
        self.massDecreases = massDecreases
    }

    private enum CodingKeys: String, CodingKey {
        case expectedInAnalysis = "expected_in_analysis", missingInAnalysis = "missing_in_analysis"
        case missingInRun = "missing_in_run", dynamicUsed = "dynamic_used", dynamicSkipped = "dynamic_skipped"
        case offSchedule = "off_schedule", massDecreases = "mass_decreases"
    }
}

/// The numbers of a gravimetric pump-accuracy analysis.
///
/// Pure value; any thread.
public struct PumpAccuracyAnalysis: Hashable, Sendable, Codable {
    /// The rate the pump was set to.
    @CodedQuantity public var setRate: VolumeRate
    /// The liquid density used.
    public var density: LiquidDensity
    /// The evaporation correction applied.
    public var evaporation: EvaporationCorrection
    /// The method (Δt, periods, windows).
    public var method: GravimetricMethod
    /// Actual time of the first weight used for the overall error (the analysis start, unless that sample
    /// is missing).
    @CodedSeconds public var analysedFrom: Duration
    /// Actual time of the last weight used for the overall error.
    @CodedSeconds public var analysedTo: Duration
    /// Volume delivered between `analysedFrom` and `analysedTo`.
    @CodedQuantity public var deliveredVolume: Volume
    /// Mean flow over the analysis period.
    @CodedQuantity public var meanFlow: VolumeRate
    /// Overall volume error over the analysis period, 100 (Q̄ − r) / r, %.
    @CodedQuantity public var overallError: Percentage
    /// The trumpet curve, one point per observation window that fits.
    public var trumpet: [TrumpetPoint]
    /// Q_i for every interval of the run (start-up included), for the flow chart.
    public var flow: [FlowInterval]
    /// How the samples were used.
    public var counts: SampleCounts
    /// What the analysis noticed.
    public var findings: [CalibrationFinding]

    private enum CodingKeys: String, CodingKey {
        case setRate = "set_rate_mL_h", density = "density_g_mL", evaporation, method
        case analysedFrom = "analysed_from_s", analysedTo = "analysed_to_s", deliveredVolume = "delivered_volume_mL"
        case meanFlow = "mean_flow_mL_h", overallError = "overall_error_percent", trumpet, flow, counts, findings
    }
}

/// An analysis and its verdict against the claim.
///
/// Pure value; any thread.
public struct PumpAccuracyResult: Hashable, Sendable, Codable {
    /// The numbers.
    public var analysis: PumpAccuracyAnalysis
    /// The claim judged against.
    public var claim: PumpAccuracyClaim
    /// Pass or fail, with every criterion.
    public var verdict: CalibrationVerdict
}

/// Gravimetric infusion-pump accuracy per the IEC 60601-2-24 method (the accuracy test of the 1998 and
/// 2012 editions). Pure functions of the samples; no clock, no I/O; any thread.
///
/// Formulas (with Δt = S, density ρ, set rate r, corrected weights W):
/// - flow in interval i: Q_i = (W_i − W_(i−1)) / (ρ Δt)  (mL/h, Δt in hours);
/// - overall error over the analysis period [a, b]: A = 100 (Q̄ − r) / r with
///   Q̄ = (W_b − W_a) / (ρ (t_b − t_a));
/// - trumpet curve: for an observation window P, p = P / Δt, m = (T_A − P) / Δt + 1 windows;
///   E_p(max) = max over j = 1…m of (100 / p) Σ_(i = j)^(j + p − 1) (Q_i − r) / r and E_p(min) the minimum.
///   The mean of p consecutive Q_i telescopes to the window's mass difference, so each window is
///   computed as 100 (ΔW_window / (ρ · window time) − r) / r: identical for a regular grid, and correct
///   when readings arrive a little off schedule or a sample inside the window is missing.
///
/// Sources: the B. Braun Infusomat Space IFU ch. 8 (Δt = 0.5 min, T = 120 min, trumpet curve on the second
/// hour, windows p × Δt; https://manualshive.com/en/manual/braun/infusomat-space-p/2804975?page=55, cited
/// in clinical.md §3.1); the Smiths Medical CADD operator's manual, "Accuracy Test Results" (start-up curve
/// Q_i against time, trumpet curve Ep(max)/Ep(min) against the observation window from the last hour, mean
/// flow error; tests per IEC 60601-2-24); Cebeiro, Musacchio, Fernández Sardá, "Low flow measurement for
/// infusion pumps: implementation and uncertainty determination of the normalized method" (the gravimetric
/// method of IEC 60601-2-24). The windows of 2, 5, 11, 19 and 31 min and the E_p summation as written above
/// are background knowledge of the standard's text [B], not quoted from it: confirm against the purchased
/// standard. The standard's second mean error B (over the last hour of a long run) is not computed.
public enum GravimetricAnalysis {
    /// Analyses a run and judges it against `claim`.
    ///
    /// Samples are placed on the grid by their `index`; a sample more than the method's tolerance away
    /// from its scheduled time, or a second sample with the same index, is ignored (reported). Missing
    /// weights are never filled in: intervals and windows that need them are left out and counted. Throws
    /// for an unusable method or claim, or when the analysis period holds fewer than two weights, or when
    /// the weights used span less than half of it.
    public static func analyze(samples: [BalanceSample], setRate: VolumeRate, density: LiquidDensity,
                               evaporation: EvaporationCorrection = .none, method: GravimetricMethod,
                               claim: PumpAccuracyClaim = PumpAccuracyClaim()) throws(CalibrationInputError) -> PumpAccuracyResult {
        let method = try method.validated()
        let claim = try claim.validated()
        let evaporation = try evaporation.validated()
        guard setRate.isPositive else {
            throw CalibrationInputError("set rate \(setRate) is not positive", fix: "give the rate the pump was set to, such as 25 mL/h")
        }
        let grid = Grid(samples: samples, method: method, evaporation: evaporation)
        var findings = grid.findings
        let flow = grid.flowIntervals(density: density)
        let r = setRate.millilitresPerHour
        let a = method.analysisStartIndex, b = method.analysisEndIndex

        // Overall error: the first and last weights inside the analysis period.
        guard let first = (a...b).first(where: { grid.weights[$0] != nil }),
              let last = (a...b).last(where: { grid.weights[$0] != nil }), first < last,
              let firstWeight = grid.weights[first], let lastWeight = grid.weights[last] else {
            throw CalibrationInputError(
                "fewer than two balance weights in the analysis period (\(method.analysisStart.humanReadable)–\(method.analysisEnd.humanReadable))",
                fix: "check the balance link and repeat the run; the samples taken are kept in the record")
        }
        guard 2 * (last - first) >= b - a else {
            throw CalibrationInputError(
                "the weights in the analysis period span only \(((grid.times[last] - grid.times[first])).humanReadable) of \((method.analysisEnd - method.analysisStart).humanReadable)",
                fix: "too many samples are missing at the ends of the analysis period: check the balance link and repeat the run")
        }
        if first != a || last != b {
            findings.append(CalibrationFinding(
                .warning, code: "analysis-endpoint-missing",
                "the sample at the \(first != a ? "start" : "end") of the analysis period is missing; the overall error uses the weights at \(grid.times[first].humanReadable) and \(grid.times[last].humanReadable)"))
        }
        let spanHours = (grid.times[last] - grid.times[first]).hours
        let deliveredMillilitres = (lastWeight - firstWeight) / density.gramsPerMillilitre
        let meanFlow = deliveredMillilitres / spanHours
        let overall = 100 * (meanFlow - r) / r

        // Trumpet curve.
        var trumpet: [TrumpetPoint] = []
        for window in method.observationWindowSizes {
            let p = window.intervals
            let m = (b - a) - p + 1
            var maximum: Double?
            var minimum: Double?
            var excluded = 0
            for j in 0..<max(0, m) {
                let start = a + j, end = a + j + p
                guard let ws = grid.weights[start], let we = grid.weights[end] else {
                    excluded += 1
                    continue
                }
                let hours = (grid.times[end] - grid.times[start]).hours
                let windowFlow = (we - ws) / density.gramsPerMillilitre / hours
                let error = 100 * (windowFlow - r) / r
                maximum = Swift.max(maximum ?? error, error)
                minimum = Swift.min(minimum ?? error, error)
            }
            if excluded > 0 {
                findings.append(CalibrationFinding(
                    maximum == nil ? .error : .info, code: "trumpet-windows-excluded",
                    "\(excluded) of \(m) windows of \(window.actual.humanReadable) have a missing sample at an end and were left out"))
            }
            trumpet.append(TrumpetPoint(window: window, windowCount: m, excludedWindows: excluded,
                                        maximumError: maximum.map(Percentage.percent), minimumError: minimum.map(Percentage.percent)))
        }
        for nominal in method.windows where !method.observationWindowSizes.contains(where: { $0.nominal == nominal }) {
            findings.append(CalibrationFinding(
                .info, code: "window-does-not-fit",
                "the \(nominal.humanReadable) window is longer than the analysis period and is not computed"))
        }

        // Counts and data-quality findings.
        var counts = grid.counts
        counts.expectedInAnalysis = b - a + 1
        counts.missingInAnalysis = (a...b).filter { grid.weights[$0] == nil }.count
        counts.massDecreases = flow.filter { ($0.massChangeGrams ?? 0) < 0 }.count
        if counts.massDecreases > 0 {
            let largest = flow.compactMap(\.massChangeGrams).min() ?? 0
            let severity: CalibrationFinding.Severity = -largest > method.massDecreaseWarningGrams ? .warning : .info
            findings.append(CalibrationFinding(
                severity, code: "mass-decrease",
                "the mass went down in \(counts.massDecreases) of \(flow.count) intervals (largest \(Fixed.text(-largest, 4)) g); those flows are kept as measured (negative)"
                    + (severity == .warning ? ": more than balance noise; check the vessel was not touched and the tubing does not rest on the pan" : ": balance noise or evaporation")))
        }
        if counts.missingInRun > 0 {
            findings.append(CalibrationFinding(
                .info, code: "missing-samples",
                "\(counts.missingInRun) of \(method.sampleCount) samples have no usable weight (\(counts.missingInAnalysis) in the analysis period); they were left out, never filled in"))
        }

        let analysis = PumpAccuracyAnalysis(
            setRate: setRate, density: density, evaporation: evaporation, method: method,
            analysedFrom: grid.times[first], analysedTo: grid.times[last],
            deliveredVolume: .millilitres(deliveredMillilitres), meanFlow: .millilitresPerHour(meanFlow),
            overallError: .percent(overall), trumpet: trumpet, flow: flow, counts: counts, findings: findings)
        return PumpAccuracyResult(analysis: analysis, claim: claim, verdict: verdict(analysis, claim: claim))
    }

    /// Q_i for every interval of a (possibly partial) run, for charts and incomplete records. Samples are
    /// placed on the grid as in `analyze`; intervals with a missing weight have a nil flow.
    public static func flowSeries(samples: [BalanceSample], density: LiquidDensity,
                                  evaporation: EvaporationCorrection = .none, method: GravimetricMethod) -> [FlowInterval] {
        Grid(samples: samples, method: method, evaporation: evaporation).flowIntervals(density: density)
    }

    /// E_p(max) and E_p(min) straight from the standard's summation, for flows Q_1...Q_n on a regular
    /// grid: the largest and smallest of (100 / p) Σ_(i=j)^(j+p−1) (Q_i − r) / r over j = 1...n − p + 1.
    /// Nil when p is not in 1...n or r is not positive. Used to cross-check `analyze`.
    public static func trumpetExtremes(flows: [Double], setRate r: Double, p: Int) -> (maximum: Double, minimum: Double)? {
        guard p >= 1, p <= flows.count, r > 0 else { return nil }
        let deviations = flows.map { ($0 - r) / r }
        var maximum = -Double.infinity, minimum = Double.infinity
        for j in 0...(flows.count - p) {
            let error = 100 / Double(p) * deviations[j..<(j + p)].reduce(0, +)
            maximum = max(maximum, error)
            minimum = min(minimum, error)
        }
        return (maximum, minimum)
    }

    /// Judges an analysis against a claim: the overall error, any trumpet limits, and whether enough data
    /// was present.
    static func verdict(_ analysis: PumpAccuracyAnalysis, claim: PumpAccuracyClaim) -> CalibrationVerdict {
        var failed = false
        var reasons: [String] = []
        let method = analysis.method
        let period = "\(Fixed.text(method.analysisStart.minutes, 0))–\(Fixed.text(method.analysisEnd.minutes, 0)) min"
        let error = analysis.overallError.percent
        let tolerance = claim.overallTolerance.percent
        if abs(error) <= tolerance {
            reasons.append("overall volume error \(Fixed.signed(error, 2)) % over \(period) is within the claimed ±\(Fixed.text(tolerance, 2)) %")
        } else {
            failed = true
            reasons.append("overall volume error \(Fixed.signed(error, 2)) % over \(period) exceeds the claimed ±\(Fixed.text(tolerance, 2)) %: the pump \(error < 0 ? "under" : "over")-delivers; service or recalibrate it before clinical use")
        }
        for limit in claim.trumpetLimits {
            let name = "\(Fixed.text(limit.window.minutes, 1)) min"
            guard let point = analysis.trumpet.first(where: { $0.window.nominal == limit.window }) else {
                failed = true
                reasons.append("no trumpet point for the \(name) window the claim limits: add it to the method's windows")
                continue
            }
            guard let high = point.maximumError?.percent, let low = point.minimumError?.percent else {
                failed = true
                reasons.append("the \(name) trumpet point could not be computed (missing samples): repeat the run")
                continue
            }
            let bound = limit.limit.percent
            if high <= bound && low >= -bound {
                reasons.append("trumpet \(name): E_p max \(Fixed.signed(high, 2)) %, min \(Fixed.signed(low, 2)) % within ±\(Fixed.text(bound, 2)) %")
            } else {
                failed = true
                reasons.append("trumpet \(name): E_p max \(Fixed.signed(high, 2)) %, min \(Fixed.signed(low, 2)) % outside ±\(Fixed.text(bound, 2)) %")
            }
        }
        let counts = analysis.counts
        let missingFraction = Double(counts.missingInAnalysis) / Double(max(1, counts.expectedInAnalysis))
        if missingFraction > method.maximumMissingFraction {
            failed = true
            reasons.append("\(counts.missingInAnalysis) of \(counts.expectedInAnalysis) samples in the analysis period are missing (more than \(Fixed.text(method.maximumMissingFraction * 100, 0)) %): the data cannot demonstrate accuracy; fix the balance link and repeat")
        }
        for finding in analysis.findings where finding.severity == .error {
            failed = true
            reasons.append(finding.message)
        }
        if method.mode == .quick {
            reasons.append("quick check (analysis \(period)): indicative only, not the IEC 60601-2-24 method")
        }
        return CalibrationVerdict(failed ? .fail : .pass, reasons: reasons)
    }
}

/// The samples placed on the sampling grid, with evaporation-corrected weights.
struct Grid {
    /// Corrected weight at each grid index 0...N, nil when missing.
    var weights: [Double?]
    /// Actual time of each grid sample (scheduled time when missing).
    var times: [Duration]
    var counts = SampleCounts()
    var findings: [CalibrationFinding] = []

    init(samples: [BalanceSample], method: GravimetricMethod, evaporation: EvaporationCorrection) {
        let n = method.intervalCount
        weights = Array(repeating: nil, count: n + 1)
        times = (0...n).map { method.scheduledTime(ofSample: $0) }
        var chosen: [Int: BalanceSample] = [:]
        var outsideRun = 0, offTime = 0, duplicates = 0
        for sample in samples {
            guard (0...n).contains(sample.index) else {
                outsideRun += 1
                continue
            }
            let offset = abs((sample.elapsed - method.scheduledTime(ofSample: sample.index)).nanoseconds)
            guard offset <= method.sampleTimeTolerance.nanoseconds else {
                offTime += 1
                continue
            }
            if let existing = chosen[sample.index] {
                duplicates += 1
                let existingOffset = abs((existing.elapsed - method.scheduledTime(ofSample: sample.index)).nanoseconds)
                if existing.grams != nil && (sample.grams == nil || existingOffset <= offset) { continue }
            }
            chosen[sample.index] = sample
        }
        for (index, sample) in chosen {
            guard let grams = sample.grams else { continue }
            if !sample.isStable {
                if method.unstableReadings == .skip {
                    counts.dynamicSkipped += 1
                    continue
                }
                counts.dynamicUsed += 1
            }
            times[index] = sample.elapsed
            weights[index] = grams + evaporation.gramsPerHour * sample.elapsed.hours
        }
        counts.offSchedule = outsideRun + offTime + duplicates
        counts.missingInRun = weights.filter { $0 == nil }.count
        if offTime > 0 {
            findings.append(CalibrationFinding(
                .warning, code: "off-schedule",
                "\(offTime) readings were more than \(method.sampleTimeTolerance.humanReadable) from their scheduled time and were ignored: the balance answered late; check its settings (use immediate weighing, SI)"))
        }
        if outsideRun > 0 {
            findings.append(CalibrationFinding(.info, code: "outside-run", "\(outsideRun) samples lie outside the run (0–\(method.duration.humanReadable)) and were ignored"))
        }
        if duplicates > 0 {
            findings.append(CalibrationFinding(.warning, code: "duplicate-samples", "\(duplicates) samples repeat an index already taken; the one closest to its scheduled time was kept"))
        }
        if counts.dynamicUsed > 0 {
            findings.append(CalibrationFinding(
                .info, code: "unstable-readings",
                "\(counts.dynamicUsed) readings were dynamic (not settled) and were used as read (policy: flag)"))
        }
        if counts.dynamicSkipped > 0 {
            findings.append(CalibrationFinding(
                .warning, code: "unstable-readings-skipped",
                "\(counts.dynamicSkipped) readings were dynamic (not settled) and were treated as missing (policy: skip)"))
        }
    }

    func flowIntervals(density: LiquidDensity) -> [FlowInterval] {
        guard weights.count > 1 else { return [] }
        return (1..<weights.count).map { i in
            guard let previous = weights[i - 1], let current = weights[i] else {
                return FlowInterval(index: i, start: times[i - 1], end: times[i], massChangeGrams: nil, flow: nil)
            }
            let change = current - previous
            let hours = (times[i] - times[i - 1]).hours
            let flow = hours > 0 ? VolumeRate.millilitresPerHour(change / density.gramsPerMillilitre / hours) : nil
            return FlowInterval(index: i, start: times[i - 1], end: times[i], massChangeGrams: change, flow: flow)
        }
    }
}
