import Foundation
import InfusionCore

/// What to do with a dynamic (not yet stable) balance reading.
public enum UnstableReadingPolicy: String, Hashable, Sendable, Codable {
    /// Use the weight and report how many readings were dynamic. The default: with liquid dripping into
    /// the vessel a balance rarely reports "stable", and the method needs a weight at every Δt.
    case flag
    /// Treat a dynamic reading as missing.
    case skip
}

/// How a gravimetric pump-accuracy run is sampled and analysed: the sampling interval Δt, the run length,
/// the analysis period and the trumpet-curve observation windows.
///
/// `standard` is the IEC 60601-2-24 method as published in manufacturers' accuracy statements (B. Braun
/// Infusomat Space IFU ch. 8: Δt = 0.5 min, T = 120 min, trumpet curve on the second hour, observation
/// windows p × Δt; windows of 2, 5, 11, 19 and 31 min per clinical.md §3.1 [B]). `quick` is NOT the
/// standard's method: see `quick`.
///
/// Pure value; any thread.
public struct GravimetricMethod: Hashable, Sendable, Codable {
    /// Which preset the method came from.
    public enum Mode: String, Hashable, Sendable, Codable {
        /// IEC 60601-2-24: two hours, analysis of the second hour, windows 2, 5, 11, 19, 31 min.
        case standard
        /// The routine check (`GravimetricMethod.quick`): not the standard's method.
        case quick
        /// Anything else the technician configured.
        case custom
    }

    /// The preset, for the record.
    public var mode: Mode
    /// Δt: the time between balance samples (default 30 s).
    @CodedSeconds public var samplingInterval: Duration
    /// The run length from pump start; the last sample is taken at `duration`.
    @CodedSeconds public var duration: Duration
    /// Start of the analysis period, from pump start (a whole number of Δt).
    @CodedSeconds public var analysisStart: Duration
    /// End of the analysis period, from pump start (a whole number of Δt, at most `duration`).
    @CodedSeconds public var analysisEnd: Duration
    /// The nominal observation windows P of the trumpet curve; each becomes p = P / Δt intervals
    /// (rounded to the nearest whole number, at least 1).
    public var observationWindows: [CodedSeconds]
    /// How far a reading may be from its scheduled time (k × Δt) and still count as sample k
    /// (default Δt / 4). Also the workflow's reading time-out.
    @CodedSeconds public var sampleTimeTolerance: Duration
    /// What to do with dynamic readings.
    public var unstableReadings: UnstableReadingPolicy
    /// The largest fraction of samples in the analysis period that may be missing before the run fails
    /// as unable to demonstrate accuracy (default 0.10).
    public var maximumMissingFraction: Double
    /// A mass decrease between consecutive samples larger than this (grams) is reported as a warning
    /// (a disturbed vessel); smaller decreases are counted as balance noise or evaporation (default 0.05 g).
    public var massDecreaseWarningGrams: Double

    /// The nominal observation windows as durations.
    public var windows: [Duration] { observationWindows.map(\.wrappedValue) }

    /// Creates a method; call `validated()` before use.
    public init(mode: Mode = .custom, samplingInterval: Duration = .seconds(30), duration: Duration,
                analysisStart: Duration, analysisEnd: Duration? = nil,
                observationWindows: [Duration] = GravimetricMethod.standardWindows,
                sampleTimeTolerance: Duration? = nil, unstableReadings: UnstableReadingPolicy = .flag,
                maximumMissingFraction: Double = 0.10, massDecreaseWarningGrams: Double = 0.05) {
        self.mode = mode
        self.samplingInterval = samplingInterval
        self.duration = duration
        self.analysisStart = analysisStart
        self.analysisEnd = analysisEnd ?? duration
        self.observationWindows = observationWindows.map(CodedSeconds.init(wrappedValue:))
        self.sampleTimeTolerance = sampleTimeTolerance ?? samplingInterval / 4
        self.unstableReadings = unstableReadings
        self.maximumMissingFraction = maximumMissingFraction
        self.massDecreaseWarningGrams = massDecreaseWarningGrams
    }

    /// The trumpet-curve observation windows of IEC 60601-2-24: 2, 5, 11, 19 and 31 min (clinical.md §3.1 [B]).
    public static let standardWindows: [Duration] = [2, 5, 11, 19, 31].map { .seconds($0 * 60) }

    /// The IEC 60601-2-24 method: Δt = 30 s, a 120-minute run, the trumpet curve and overall error over
    /// the second hour (60–120 min), windows of 2, 5, 11, 19 and 31 min.
    public static func standard(samplingInterval: Duration = .seconds(30)) -> GravimetricMethod {
        GravimetricMethod(mode: .standard, samplingInterval: samplingInterval, duration: .seconds(7200),
                          analysisStart: .seconds(3600), analysisEnd: .seconds(7200))
    }

    /// The quick routine check. NOT the IEC 60601-2-24 method, and its results are indicative only:
    /// a 30-minute run, the first 10 minutes allowed for start-up, the overall error and trumpet curve
    /// computed over minutes 10–30 (20 minutes instead of the second hour), with the standard windows that
    /// fit in 20 minutes (2, 5, 11 and 19 min; the 31-minute window is dropped). A short start-up
    /// allowance favours pumps that settle quickly and a 20-minute period sees fewer long-window
    /// fluctuations, so a quick pass does not replace the standard test after repair or for acceptance.
    public static func quick(samplingInterval: Duration = .seconds(30)) -> GravimetricMethod {
        let start = Duration.seconds(600), end = Duration.seconds(1800)
        return GravimetricMethod(mode: .quick, samplingInterval: samplingInterval, duration: end,
                                 analysisStart: start, analysisEnd: end,
                                 observationWindows: standardWindows.filter { $0 <= end - start })
    }

    /// Δt as a whole number of nanoseconds (for grid arithmetic).
    var intervalNanoseconds: Int64 { samplingInterval.nanoseconds }

    /// The number of sampling intervals in the run: samples 0...`sampleCount - 1` are scheduled.
    public var intervalCount: Int { Int(duration.nanoseconds / max(1, intervalNanoseconds)) }

    /// The number of scheduled samples (one at t = 0 and one every Δt to `duration`).
    public var sampleCount: Int { intervalCount + 1 }

    /// The sample index at the start of the analysis period.
    public var analysisStartIndex: Int { Int(analysisStart.nanoseconds / max(1, intervalNanoseconds)) }

    /// The sample index at the end of the analysis period.
    public var analysisEndIndex: Int { Int(analysisEnd.nanoseconds / max(1, intervalNanoseconds)) }

    /// The scheduled time of sample `index`.
    public func scheduledTime(ofSample index: Int) -> Duration { samplingInterval * index }

    /// The observation windows as whole numbers of intervals p, with the window length actually used
    /// (p × Δt), in the order given. A window longer than the analysis period is left out.
    public var observationWindowSizes: [ObservationWindow] {
        let analysisIntervals = analysisEndIndex - analysisStartIndex
        return windows.compactMap { nominal in
            let ratio = nominal.seconds / samplingInterval.seconds
            guard ratio.isFinite else { return nil }
            let p = max(1, Int(ratio.rounded()))
            guard p <= analysisIntervals else { return nil }
            return ObservationWindow(nominal: nominal, intervals: p, actual: samplingInterval * p)
        }
    }

    /// The method if it is usable, otherwise an error saying which setting is wrong and how to fix it.
    /// Checks: Δt positive and dividing the run length and both ends of the analysis period; the
    /// analysis period non-empty and inside the run; at least one window; tolerances in range.
    public func validated() throws(CalibrationInputError) -> GravimetricMethod {
        guard samplingInterval > .zero else {
            throw CalibrationInputError("sampling interval \(samplingInterval.humanReadable) is not positive",
                                        fix: "use Δt = 30 s (IEC 60601-2-24) or another positive interval")
        }
        guard samplingInterval >= .seconds(1) else {
            throw CalibrationInputError("sampling interval \(samplingInterval.humanReadable) is shorter than 1 s",
                                        fix: "a balance cannot be read usefully faster than once a second; use Δt = 30 s")
        }
        func isMultiple(_ value: Duration) -> Bool { value.nanoseconds % intervalNanoseconds == 0 }
        for (name, value) in [("run duration", duration), ("analysis start", analysisStart), ("analysis end", analysisEnd)] {
            guard isMultiple(value) else {
                throw CalibrationInputError(
                    "\(name) \(value.humanReadable) is not a whole number of sampling intervals (\(samplingInterval.humanReadable))",
                    fix: "choose a sampling interval that divides it, or round the \(name) to a multiple of Δt")
            }
        }
        guard duration > .zero, duration <= .seconds(7 * 24 * 3600) else {
            throw CalibrationInputError("run duration \(duration.humanReadable) is not between Δt and one week",
                                        fix: "use 120 min (IEC 60601-2-24) or 30 min for the quick check")
        }
        guard analysisStart >= .zero, analysisStart < analysisEnd, analysisEnd <= duration else {
            throw CalibrationInputError(
                "analysis period \(analysisStart.humanReadable)–\(analysisEnd.humanReadable) is not inside the run (0–\(duration.humanReadable))",
                fix: "the analysis period must start before it ends and end by the end of the run (standard: 60–120 min)")
        }
        guard !windows.isEmpty else {
            throw CalibrationInputError("no observation windows", fix: "use the standard windows 2, 5, 11, 19 and 31 min")
        }
        guard windows.allSatisfy({ $0 > .zero }) else {
            throw CalibrationInputError("an observation window is not positive", fix: "give windows in minutes, such as 2, 5, 11, 19, 31")
        }
        guard !observationWindowSizes.isEmpty else {
            throw CalibrationInputError(
                "no observation window fits in the analysis period of \((analysisEnd - analysisStart).humanReadable)",
                fix: "lengthen the analysis period or use shorter windows (2 min is the shortest standard window)")
        }
        guard sampleTimeTolerance > .zero, sampleTimeTolerance < samplingInterval / 2 + .nanoseconds(1) else {
            throw CalibrationInputError("sample time tolerance \(sampleTimeTolerance.humanReadable) is not within (0, Δt/2]",
                                        fix: "use Δt/4 (the default)")
        }
        guard maximumMissingFraction.isFinite, (0...1).contains(maximumMissingFraction) else {
            throw CalibrationInputError("maximum missing fraction \(maximumMissingFraction) is not within 0...1", fix: "use 0.10 (the default)")
        }
        guard massDecreaseWarningGrams.isFinite, massDecreaseWarningGrams >= 0 else {
            throw CalibrationInputError("mass decrease warning \(massDecreaseWarningGrams) g is negative", fix: "use 0.05 g (the default)")
        }
        return self
    }

    private enum CodingKeys: String, CodingKey {
        case mode
        case samplingInterval = "sampling_interval_s"
        case duration = "duration_s"
        case analysisStart = "analysis_start_s"
        case analysisEnd = "analysis_end_s"
        case observationWindows = "observation_windows_s"
        case sampleTimeTolerance = "sample_time_tolerance_s"
        case unstableReadings = "unstable_readings"
        case maximumMissingFraction = "maximum_missing_fraction"
        case massDecreaseWarningGrams = "mass_decrease_warning_g"
    }
}

/// One trumpet-curve observation window: nominal P, the whole number of intervals p = P / Δt, and the
/// length actually used, p × Δt.
public struct ObservationWindow: Hashable, Sendable, Codable {
    /// The window asked for (2 min, 5 min, ...).
    @CodedSeconds public var nominal: Duration
    /// p: the number of consecutive flow intervals averaged.
    public var intervals: Int
    /// p × Δt (equal to `nominal` when Δt divides it).
    @CodedSeconds public var actual: Duration

    /// Creates a window.
    public init(nominal: Duration, intervals: Int, actual: Duration) {
        self.nominal = nominal
        self.intervals = intervals
        self.actual = actual
    }

    private enum CodingKeys: String, CodingKey {
        case nominal = "nominal_s", intervals = "p", actual = "actual_s"
    }
}

/// The accuracy the pump's manufacturer claims, and so what a calibration is judged against.
///
/// Pure value; any thread.
public struct PumpAccuracyClaim: Hashable, Sendable, Codable {
    /// A trumpet-curve limit: over windows of `window`, E_p(max) ≤ +limit and E_p(min) ≥ −limit.
    public struct TrumpetLimit: Hashable, Sendable, Codable {
        /// The nominal observation window it applies to (must be one of the method's windows).
        @CodedSeconds public var window: Duration
        /// The largest allowed deviation, %.
        @CodedQuantity public var limit: Percentage

        /// Creates a limit.
        public init(window: Duration, limit: Percentage) {
            self.window = window
            self.limit = limit
        }

        private enum CodingKeys: String, CodingKey { case window = "window_s", limit = "limit_percent" }
    }

    /// The overall volume error allowed over the analysis period, ± % (default ±5 %, the typical
    /// volumetric-pump claim in clinical.md §3.1; syringe pumps often claim ±2 %).
    @CodedQuantity public var overallTolerance: Percentage
    /// Optional trumpet-curve limits; empty means the trumpet curve is reported, not judged.
    public var trumpetLimits: [TrumpetLimit]

    /// Creates a claim.
    public init(overallTolerance: Percentage = .percent(5), trumpetLimits: [TrumpetLimit] = []) {
        self.overallTolerance = overallTolerance
        self.trumpetLimits = trumpetLimits
    }

    /// The claim if usable: the tolerance and limits must be positive and finite.
    public func validated() throws(CalibrationInputError) -> PumpAccuracyClaim {
        guard overallTolerance.percent.isFinite, overallTolerance.percent > 0, overallTolerance.percent < 100 else {
            throw CalibrationInputError("accuracy claim ±\(overallTolerance.percent) % is not between 0 and 100 %",
                                        fix: "use the pump's stated accuracy, such as ±5 %")
        }
        for limit in trumpetLimits where !(limit.limit.percent.isFinite && limit.limit.percent > 0) {
            throw CalibrationInputError("trumpet limit \(limit.limit.percent) % for the \(limit.window.humanReadable) window is not positive",
                                        fix: "give trumpet limits as positive percentages")
        }
        return self
    }

    private enum CodingKeys: String, CodingKey {
        case overallTolerance = "overall_tolerance_percent", trumpetLimits = "trumpet_limits"
    }
}

/// Correction for liquid lost from the collection vessel by evaporation during the run.
///
/// Pure value; any thread.
public enum EvaporationCorrection: Hashable, Sendable, Codable {
    /// No correction (an oil layer on the vessel, or a short run).
    case none
    /// Add back mass lost at this rate, g/h (positive: mass lost per hour).
    case lossRate(gramsPerHour: Double)

    /// The loss rate in g/h (0 for `.none`).
    public var gramsPerHour: Double {
        switch self {
        case .none: 0
        case let .lossRate(rate): rate
        }
    }

    /// The loss rate measured by a blank run: the vessel on the balance with no flow, weighed over time.
    /// The least-squares slope of mass against time (g/h), negated (a falling mass is a positive loss).
    /// Samples without a weight are ignored. Throws when fewer than three weights span less than 10 minutes.
    public static func fromBlankRun(_ samples: [BalanceSample]) throws(CalibrationInputError) -> EvaporationCorrection {
        let points = samples.compactMap { sample in sample.grams.map { (sample.elapsed.hours, $0) } }
        guard points.count >= 3, let first = points.map(\.0).min(), let last = points.map(\.0).max(),
              (last - first) * 60 >= 10 else {
            throw CalibrationInputError(
                "the blank run has \(points.count) weights spanning too little time to measure evaporation",
                fix: "weigh the vessel with no flow for at least 10 minutes (30 minutes is better) at the same Δt")
        }
        let n = Double(points.count)
        let meanT = points.map(\.0).reduce(0, +) / n
        let meanM = points.map(\.1).reduce(0, +) / n
        let sxy = points.map { ($0.0 - meanT) * ($0.1 - meanM) }.reduce(0, +)
        let sxx = points.map { ($0.0 - meanT) * ($0.0 - meanT) }.reduce(0, +)
        guard sxx > 0 else {
            throw CalibrationInputError("the blank run's samples all have the same time", fix: "repeat the blank run")
        }
        return .lossRate(gramsPerHour: -(sxy / sxx))
    }

    /// The correction if usable (a finite rate below 10 g/h, a generous bound for an open beaker).
    public func validated() throws(CalibrationInputError) -> EvaporationCorrection {
        let rate = gramsPerHour
        guard rate.isFinite, abs(rate) < 10 else {
            throw CalibrationInputError("evaporation rate \(rate) g/h is implausible",
                                        fix: "measure it with a blank run, or use an oil layer and no correction")
        }
        return self
    }

    private enum CodingKeys: String, CodingKey { case lossRate = "loss_g_per_h" }

    /// Decodes the value from the record's JSON form; throws `DecodingError` for malformed or out-of-range data.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let rate = try container.decodeIfPresent(Double.self, forKey: .lossRate) {
            self = .lossRate(gramsPerHour: rate)
        } else {
            self = .none
        }
    }

    /// Encodes the value in the record's JSON form (see the type's documentation).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        if case let .lossRate(rate) = self { try container.encode(rate, forKey: .lossRate) }
    }
}
