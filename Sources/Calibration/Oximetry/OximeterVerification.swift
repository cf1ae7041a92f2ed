import Foundation
import InfusionCore

/// One guided set point of an oximeter verification: the SpO2 and pulse rate the simulator is set to,
/// with optional per-point settling and collection times.
///
/// Pure value; any thread. JSON: `spo2_percent`, `pulse_rate_bpm`, `settling_s`, `window_s`.
public struct OximeterSetPoint: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The simulated saturation, %.
    @CodedQuantity public var spo2: Percentage
    /// The simulated pulse rate.
    @CodedQuantity public var pulseRate: PulseRate
    /// Overrides the plan's settling time for this point.
    @CodedOptionalSeconds public var settling: Duration?
    /// Overrides the plan's collection window for this point.
    @CodedOptionalSeconds public var window: Duration?

    /// Creates a set point.
    public init(spo2: Percentage, pulseRate: PulseRate, settling: Duration? = nil, window: Duration? = nil) {
        self.spo2 = spo2
        self.pulseRate = pulseRate
        self.settling = settling
        self.window = window
    }

    /// "SpO2 90 %, 75 bpm".
    public var description: String {
        "SpO2 \(NumberText.format(spo2.percent, fractionDigits: 1)) %, \(NumberText.format(pulseRate.beatsPerMinute, fractionDigits: 1)) bpm"
    }

    private enum CodingKeys: String, CodingKey {
        case spo2 = "spo2_percent", pulseRate = "pulse_rate_bpm", settling = "settling_s", window = "window_s"
    }
}

/// The accuracy an oximeter claims, and so what a verification is judged against.
///
/// Defaults: A_rms ≤ 4 % over 70–100 % SpO2 (ISO 80601-2-61 limit, clinical.md §3.3 [B]: confirm in the
/// standard), pulse rate within ±3 bpm (typical IFU claim, clinical.md §3.3 [S]), and at least 10 valid
/// readings per set point. Every value is configurable.
///
/// Pure value; any thread.
public struct OximeterClaim: Hashable, Sendable, Codable {
    /// The largest allowed A_rms, %.
    @CodedQuantity public var armsLimit: Percentage
    /// The SpO2 range the A_rms claim covers (set points outside it are reported, not judged), %.
    public var claimRange: ClosedRange<Double>
    /// The largest allowed |mean pulse rate − set pulse rate| at any set point.
    @CodedQuantity public var pulseRateTolerance: PulseRate
    /// Fewer valid SpO2 readings than this at a set point fails the verification.
    public var minimumValidReadings: Int

    /// Creates a claim.
    public init(armsLimit: Percentage = .percent(4), claimRange: ClosedRange<Double> = 70...100,
                pulseRateTolerance: PulseRate = .beatsPerMinute(3), minimumValidReadings: Int = 10) {
        self.armsLimit = armsLimit
        self.claimRange = claimRange
        self.pulseRateTolerance = pulseRateTolerance
        self.minimumValidReadings = minimumValidReadings
    }

    /// The claim if usable.
    public func validated() throws(CalibrationInputError) -> OximeterClaim {
        guard armsLimit.percent.isFinite, armsLimit.percent > 0, armsLimit.percent <= 20 else {
            throw CalibrationInputError("A_rms limit \(armsLimit.percent) % is not within (0, 20] %", fix: "use the oximeter's claim, such as 4 % (or 2 % for many adult sensors)")
        }
        guard claimRange.lowerBound.isFinite, claimRange.upperBound.isFinite, claimRange.lowerBound >= 0, claimRange.upperBound <= 100 else {
            throw CalibrationInputError("SpO2 claim range \(claimRange) is not within 0...100 %", fix: "use 70...100 %")
        }
        guard pulseRateTolerance.beatsPerMinute.isFinite, pulseRateTolerance.beatsPerMinute > 0 else {
            throw CalibrationInputError("pulse-rate tolerance \(pulseRateTolerance) is not positive", fix: "use ±3 bpm")
        }
        guard minimumValidReadings >= 1 else {
            throw CalibrationInputError("minimum valid readings \(minimumValidReadings) is below 1", fix: "use 10")
        }
        return self
    }

    private enum CodingKeys: String, CodingKey {
        case armsLimit = "arms_limit_percent", claimRange = "claim_range_percent"
        case pulseRateTolerance = "pulse_rate_tolerance_bpm", minimumValidReadings = "minimum_valid_readings"
    }
}

/// One oximeter reading during a collection window. A missing value is nil, never 0.
///
/// Pure value; any thread. JSON: `elapsed_s` (since the verification started), `spo2_percent`,
/// `pulse_rate_bpm` (numbers or null), `flags` (names of the quality conditions).
public struct OximeterReading: Hashable, Sendable, Codable {
    /// When the reading was measured, since the verification started.
    @CodedSeconds public var elapsed: Duration
    /// SpO2, or nil when the oximeter reported none.
    @CodedOptionalQuantity public var spo2: Percentage?
    /// Pulse rate, or nil when the oximeter reported none.
    @CodedOptionalQuantity public var pulseRate: PulseRate?
    /// Quality conditions reported with the reading.
    public var quality: OximetryQuality

    /// Creates a reading.
    public init(elapsed: Duration, spo2: Percentage?, pulseRate: PulseRate?, quality: OximetryQuality = []) {
        self.elapsed = elapsed
        self.spo2 = spo2
        self.pulseRate = pulseRate
        self.quality = quality
    }

    /// A reading from a driver's sample, timed from `start` by the sample's measurement time.
    public init(_ sample: VitalSample, since start: MonotonicInstant) {
        self.init(elapsed: sample.measuredAt - start, spo2: sample.spo2, pulseRate: sample.pulseRate, quality: sample.quality)
    }

    /// True when no invalidating quality condition (probe off, searching, low perfusion, ...) is set.
    public var isTrustworthy: Bool { quality.isDisjoint(with: .invalidating) }

    /// The SpO2 value if it may be used (present and trustworthy).
    public var usableSpO2: Double? { isTrustworthy ? spo2?.percent.finiteValue : nil }

    /// The pulse rate if it may be used (present and trustworthy).
    public var usablePulseRate: Double? { isTrustworthy ? pulseRate?.beatsPerMinute.finiteValue : nil }

    private enum CodingKeys: String, CodingKey {
        case elapsed = "elapsed_s", spo2 = "spo2_percent", pulseRate = "pulse_rate_bpm", flags
    }

    /// Decodes the value from the record's JSON form; throws `DecodingError` for malformed or out-of-range data.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        _elapsed = try container.decode(CodedSeconds.self, forKey: .elapsed)
        _spo2 = try container.decode(CodedOptionalQuantity<Percentage>.self, forKey: .spo2)
        _pulseRate = try container.decode(CodedOptionalQuantity<PulseRate>.self, forKey: .pulseRate)
        var quality: OximetryQuality = []
        for name in try container.decode([String].self, forKey: .flags) {
            guard let flag = OximetryQuality.named(name) else {
                throw DecodingError.dataCorruptedError(forKey: .flags, in: container, debugDescription: "unknown oximetry flag \"\(name)\"")
            }
            quality.insert(flag)
        }
        self.quality = quality
    }

    /// Encodes the value in the record's JSON form (see the type's documentation).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(_elapsed, forKey: .elapsed)
        try container.encode(_spo2, forKey: .spo2)
        try container.encode(_pulseRate, forKey: .pulseRate)
        try container.encode(quality.names, forKey: .flags)
    }
}

extension OximetryQuality {
    /// The single flag printed as `name` by `names`, or nil.
    static func named(_ name: String) -> OximetryQuality? {
        for bit in 0..<32 {
            let flag = OximetryQuality(rawValue: 1 << UInt32(bit))
            if flag.names == [name] { return flag }
        }
        return nil
    }
}

extension Double {
    /// Self when finite, otherwise nil.
    var finiteValue: Double? { isFinite ? self : nil }
}

/// The statistics of one set point's collection window.
///
/// Pure value; any thread.
public struct SetPointResult: Hashable, Sendable, Codable {
    /// The set point.
    public var setPoint: OximeterSetPoint
    /// Readings received in the window.
    public var readings: Int
    /// Readings with a usable SpO2 (present, no invalidating flag).
    public var validSpO2: Int
    /// Readings with no (or a non-finite) SpO2 value (excluded, never treated as 0).
    public var missingSpO2: Int
    /// Readings with an SpO2 value but an invalidating flag (excluded).
    public var flaggedSpO2: Int
    /// Readings with a usable pulse rate.
    public var validPulseRate: Int
    /// Readings with no pulse rate (excluded).
    public var missingPulseRate: Int
    /// Mean of the usable SpO2 readings.
    @CodedOptionalQuantity public var meanSpO2: Percentage?
    /// Mean SpO2 − set SpO2 (the bias at this point).
    @CodedOptionalQuantity public var bias: Percentage?
    /// sqrt(mean((SpO2 − set)²)) over this point's usable readings.
    @CodedOptionalQuantity public var rmsError: Percentage?
    /// Mean of the usable pulse-rate readings.
    @CodedOptionalQuantity public var meanPulseRate: PulseRate?
    /// Mean pulse rate − set pulse rate.
    @CodedOptionalQuantity public var pulseRateError: PulseRate?
    /// The largest |pulse rate − set| of a single usable reading.
    @CodedOptionalQuantity public var maximumPulseRateDeviation: PulseRate?
    /// True when the set SpO2 lies in the claim range (the point counts toward A_rms).
    public var inClaimRange: Bool

    private enum CodingKeys: String, CodingKey {
        case setPoint = "set_point", readings, validSpO2 = "valid_spo2", missingSpO2 = "missing_spo2"
        case flaggedSpO2 = "flagged_spo2", validPulseRate = "valid_pulse_rate", missingPulseRate = "missing_pulse_rate"
        case meanSpO2 = "mean_spo2_percent", bias = "bias_percent", rmsError = "rms_error_percent"
        case meanPulseRate = "mean_pulse_rate_bpm", pulseRateError = "pulse_rate_error_bpm"
        case maximumPulseRateDeviation = "max_pulse_rate_deviation_bpm", inClaimRange = "in_claim_range"
    }
}

/// The numbers of an oximeter verification.
///
/// Pure value; any thread.
public struct OximeterAnalysis: Hashable, Sendable, Codable {
    /// One result per set point, in order.
    public var points: [SetPointResult]
    /// A_rms = sqrt(Σ (SpO2_i − set_i)² / n) over every usable reading at set points in the claim range;
    /// nil when there is none.
    @CodedOptionalQuantity public var arms: Percentage?
    /// n: the data pairs in A_rms.
    public var armsPairs: Int
    /// Mean of (SpO2_i − set_i) over the same pairs (the overall bias).
    @CodedOptionalQuantity public var meanBias: Percentage?
    /// The largest |mean pulse-rate error| over the set points.
    @CodedOptionalQuantity public var maximumPulseRateError: PulseRate?
    /// Readings left out: no SpO2, or flagged.
    public var excludedReadings: Int
    /// What the analysis noticed.
    public var findings: [CalibrationFinding]

    private enum CodingKeys: String, CodingKey {
        case points, arms = "arms_percent", armsPairs = "arms_pairs", meanBias = "mean_bias_percent"
        case maximumPulseRateError = "max_pulse_rate_error_bpm", excludedReadings = "excluded_readings", findings
    }
}

/// An oximeter analysis and its verdict.
///
/// Pure value; any thread.
public struct OximeterVerificationResult: Hashable, Sendable, Codable {
    /// The numbers.
    public var analysis: OximeterAnalysis
    /// The claim judged against.
    public var claim: OximeterClaim
    /// Pass or fail with every criterion.
    public var verdict: CalibrationVerdict
}

/// Oximeter accuracy against a simulator's set points. Pure; any thread.
///
/// A_rms = sqrt( Σ_(i=1..n) (SpO2_i − SR_i)² / n ), the root-mean-square difference between the
/// oximeter's readings and the reference over all data pairs in the claimed range (ISO 80601-2-61, as
/// quoted in oximeter IFUs: "about two-thirds of measurements within ±A_rms", clinical.md §3.3). Against a
/// simulator the reference is the set point, so this verifies the monitor's processing chain and display,
/// not the sensor's calibration on people. Missing and flagged readings are excluded and counted.
public enum OximeterVerificationAnalysis {
    /// Analyses the readings collected at each set point and judges them against `claim`.
    public static func analyze(_ collected: [(setPoint: OximeterSetPoint, readings: [OximeterReading])],
                               claim: OximeterClaim = OximeterClaim()) throws(CalibrationInputError) -> OximeterVerificationResult {
        let claim = try claim.validated()
        var points: [SetPointResult] = []
        var squares = 0.0, differences = 0.0, pairs = 0, excluded = 0
        var findings: [CalibrationFinding] = []
        for (setPoint, readings) in collected {
            let target = setPoint.spo2.percent, targetRate = setPoint.pulseRate.beatsPerMinute
            let spo2 = readings.compactMap(\.usableSpO2)
            let rates = readings.compactMap(\.usablePulseRate)
            let missing = readings.filter { $0.spo2.map { !$0.percent.isFinite } ?? true }.count
            let flagged = readings.filter { ($0.spo2?.percent.isFinite ?? false) && !$0.isTrustworthy }.count
            excluded += missing + flagged
            let inRange = claim.claimRange.contains(target)
            if inRange {
                for value in spo2 {
                    squares += (value - target) * (value - target)
                    differences += value - target
                    pairs += 1
                }
            }
            let mean = spo2.isEmpty ? nil : spo2.reduce(0, +) / Double(spo2.count)
            let rms = spo2.isEmpty ? nil : (spo2.map { ($0 - target) * ($0 - target) }.reduce(0, +) / Double(spo2.count)).squareRoot()
            let meanRate = rates.isEmpty ? nil : rates.reduce(0, +) / Double(rates.count)
            let maxDeviation = rates.map { abs($0 - targetRate) }.max()
            points.append(SetPointResult(
                setPoint: setPoint, readings: readings.count, validSpO2: spo2.count, missingSpO2: missing, flaggedSpO2: flagged,
                validPulseRate: rates.count, missingPulseRate: readings.filter { $0.pulseRate == nil }.count,
                meanSpO2: mean.map(Percentage.percent), bias: mean.map { .percent($0 - target) }, rmsError: rms.map(Percentage.percent),
                meanPulseRate: meanRate.map(PulseRate.beatsPerMinute), pulseRateError: meanRate.map { .beatsPerMinute($0 - targetRate) },
                maximumPulseRateDeviation: maxDeviation.map(PulseRate.beatsPerMinute), inClaimRange: inRange))
            if missing + flagged > 0 {
                findings.append(CalibrationFinding(
                    .info, code: "excluded-readings",
                    "\(setPoint): \(missing) readings without SpO2 and \(flagged) flagged readings were excluded (never counted as 0)"))
            }
        }
        let arms = pairs > 0 ? (squares / Double(pairs)).squareRoot() : nil
        let analysis = OximeterAnalysis(
            points: points, arms: arms.map(Percentage.percent), armsPairs: pairs,
            meanBias: pairs > 0 ? .percent(differences / Double(pairs)) : nil,
            maximumPulseRateError: points.compactMap { $0.pulseRateError.map { abs($0.beatsPerMinute) } }.max().map(PulseRate.beatsPerMinute),
            excludedReadings: excluded, findings: findings)
        return OximeterVerificationResult(analysis: analysis, claim: claim, verdict: verdict(analysis, claim: claim))
    }

    static func verdict(_ analysis: OximeterAnalysis, claim: OximeterClaim) -> CalibrationVerdict {
        var failed = false
        var reasons: [String] = []
        let range = "\(NumberText.format(claim.claimRange.lowerBound, fractionDigits: 1))–\(NumberText.format(claim.claimRange.upperBound, fractionDigits: 1)) %"
        let limit = Fixed.text(claim.armsLimit.percent, 2)
        if analysis.points.isEmpty {
            failed = true
            reasons.append("no set points were measured")
        }
        if let arms = analysis.arms?.percent {
            if arms <= claim.armsLimit.percent {
                reasons.append("A_rms \(Fixed.text(arms, 2)) % over \(range) (\(analysis.armsPairs) readings) is within the claimed \(limit) %")
            } else {
                failed = true
                reasons.append("A_rms \(Fixed.text(arms, 2)) % over \(range) (\(analysis.armsPairs) readings) exceeds the claimed \(limit) %: check the sensor and the monitor against another simulator; remove the oximeter from service if confirmed")
            }
        } else if !analysis.points.isEmpty {
            failed = true
            reasons.append("no usable SpO2 reading at any set point in \(range): A_rms cannot be computed; check the probe is on the simulator's finger and the output format")
        }
        for point in analysis.points {
            if point.validSpO2 < claim.minimumValidReadings {
                failed = true
                reasons.append("\(point.setPoint): only \(point.validSpO2) usable SpO2 readings (at least \(claim.minimumValidReadings) needed): lengthen the window or check the link")
            }
            guard let error = point.pulseRateError?.beatsPerMinute else {
                failed = true
                reasons.append("\(point.setPoint): no usable pulse-rate reading")
                continue
            }
            if abs(error) > claim.pulseRateTolerance.beatsPerMinute {
                failed = true
                reasons.append("\(point.setPoint): pulse-rate error \(Fixed.signed(error, 1)) bpm exceeds ±\(Fixed.text(claim.pulseRateTolerance.beatsPerMinute, 1)) bpm")
            }
        }
        if let worst = analysis.maximumPulseRateError?.beatsPerMinute, worst <= claim.pulseRateTolerance.beatsPerMinute,
           analysis.points.allSatisfy({ $0.pulseRateError != nil }) {
            reasons.append("pulse-rate error at most \(Fixed.text(worst, 1)) bpm at every set point, within ±\(Fixed.text(claim.pulseRateTolerance.beatsPerMinute, 1)) bpm")
        }
        return CalibrationVerdict(failed ? .fail : .pass, reasons: reasons)
    }
}
