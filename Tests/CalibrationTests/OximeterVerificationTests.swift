import Foundation
import InfusionCore
import Testing
@testable import Calibration

@Suite("Oximeter verification: A_rms, missing data, set-points file")
struct OximeterVerificationTests {
    static func reading(_ seconds: Int, _ spo2: Double?, _ rate: Double?, _ quality: OximetryQuality = []) -> OximeterReading {
        OximeterReading(elapsed: .seconds(seconds), spo2: spo2.map(Percentage.percent), pulseRate: rate.map(PulseRate.beatsPerMinute), quality: quality)
    }

    /// Hand computation:
    /// - set 90 %, 75 bpm: SpO2 91, 89, 92, 90 → differences +1, −1, +2, 0 → squares 1, 1, 4, 0 (sum 6);
    ///   mean 90.5, bias +0.5; PR 75, 76, 74, 75 → mean 75, error 0.
    /// - set 80 %, 60 bpm: SpO2 78, 79, 81, (missing), (85 with probe off) → usable 78, 79, 81 →
    ///   differences −2, −1, +1 → squares 4, 1, 1 (sum 6); mean 79.333…, bias −0.666…;
    ///   PR 61, 62, (missing), 60, (flagged) → usable 61, 62, 60 → mean 61, error +1.
    /// - set 60 %, 75 bpm (outside 70–100 %): SpO2 63, 63 → bias +3, reported, not in A_rms.
    /// A_rms = sqrt((6 + 6) / 7) = sqrt(12/7) = 1.309307341…; mean bias = (1 − 1 + 2 + 0 − 2 − 1 + 1) / 7 = 0.
    static let collected: [(setPoint: OximeterSetPoint, readings: [OximeterReading])] = [
        (OximeterSetPoint(spo2: .percent(90), pulseRate: .beatsPerMinute(75)),
         [reading(1, 91, 75), reading(2, 89, 76), reading(3, 92, 74), reading(4, 90, 75)]),
        (OximeterSetPoint(spo2: .percent(80), pulseRate: .beatsPerMinute(60)),
         [reading(11, 78, 61), reading(12, 79, 62), reading(13, 81, nil), reading(14, nil, 60), reading(15, 85, 90, .probeOff)]),
        (OximeterSetPoint(spo2: .percent(60), pulseRate: .beatsPerMinute(75)), [reading(21, 63, 75), reading(22, 63, 75)]),
    ]

    static let claim = OximeterClaim(minimumValidReadings: 2)

    @Test("A_rms, bias and pulse-rate error match the hand computation")
    func armsHandComputed() throws {
        let result = try OximeterVerificationAnalysis.analyze(Self.collected, claim: Self.claim)
        let analysis = result.analysis
        #expect(approximately(analysis.arms?.percent, (12.0 / 7.0).squareRoot()))
        #expect(approximately(analysis.arms?.percent, 1.309307341, 1e-9))
        #expect(analysis.armsPairs == 7)
        #expect(approximately(analysis.meanBias?.percent, 0))
        let ninety = analysis.points[0], eighty = analysis.points[1], sixty = analysis.points[2]
        #expect(approximately(ninety.meanSpO2?.percent, 90.5) && approximately(ninety.bias?.percent, 0.5))
        #expect(approximately(ninety.rmsError?.percent, (6.0 / 4.0).squareRoot()))
        #expect(approximately(ninety.pulseRateError?.beatsPerMinute, 0))
        #expect(approximately(eighty.meanSpO2?.percent, 238.0 / 3.0) && approximately(eighty.bias?.percent, -2.0 / 3.0))
        #expect(approximately(eighty.meanPulseRate?.beatsPerMinute, 61) && approximately(eighty.pulseRateError?.beatsPerMinute, 1))
        #expect(eighty.validSpO2 == 3 && eighty.missingSpO2 == 1 && eighty.flaggedSpO2 == 1)
        #expect(eighty.validPulseRate == 3 && eighty.missingPulseRate == 1)
        #expect(!sixty.inClaimRange && approximately(sixty.bias?.percent, 3))
        #expect(analysis.excludedReadings == 2)
        #expect(approximately(analysis.maximumPulseRateError?.beatsPerMinute, 1))
        #expect(result.verdict.outcome == .pass)
        #expect(result.verdict.reasons.first?.contains("A_rms 1.31 %") == true)
    }

    @Test("Missing readings are excluded and counted, never treated as 0")
    func missingNeverZero() throws {
        // If the missing SpO2 were taken as 0 the 80 % point's mean would be 59.5 % and A_rms about 30 %.
        let result = try OximeterVerificationAnalysis.analyze(Self.collected, claim: Self.claim)
        #expect(try #require(result.analysis.arms?.percent) < 2)
        #expect(result.analysis.findings.contains { $0.message.contains("1 readings without SpO2 and 1 flagged") })
        // A point where every reading is missing has no statistics and fails the verification.
        let empty = [(OximeterSetPoint(spo2: .percent(85), pulseRate: .beatsPerMinute(75)), [Self.reading(1, nil, nil), Self.reading(2, nil, nil)])]
        let none = try OximeterVerificationAnalysis.analyze(empty, claim: Self.claim)
        #expect(none.analysis.points[0].meanSpO2 == nil && none.analysis.arms == nil)
        #expect(none.verdict.outcome == .fail)
        #expect(none.verdict.reasons.contains { $0.contains("A_rms cannot be computed") })
    }

    @Test("Fails when A_rms exceeds the claim, when the pulse rate is off, or with too few readings")
    func failures() throws {
        let strict = try OximeterVerificationAnalysis.analyze(Self.collected, claim: OximeterClaim(armsLimit: .percent(1), minimumValidReadings: 2))
        #expect(strict.verdict.outcome == .fail)
        #expect(strict.verdict.reasons.contains { $0.contains("exceeds the claimed 1.00 %") })
        let tightRate = try OximeterVerificationAnalysis.analyze(Self.collected, claim: OximeterClaim(pulseRateTolerance: .beatsPerMinute(0.5), minimumValidReadings: 2))
        #expect(tightRate.verdict.reasons.contains { $0.contains("SpO2 80 %, 60 bpm: pulse-rate error +1.0 bpm exceeds ±0.5 bpm") })
        let defaults = try OximeterVerificationAnalysis.analyze(Self.collected)
        #expect(defaults.verdict.outcome == .fail)
        #expect(defaults.verdict.reasons.contains { $0.contains("only 4 usable SpO2 readings (at least 10 needed)") })
    }

    @Test("Default plan: 70–100 % in 5 % steps at 75 bpm plus three pulse rates, 30 s settling and window")
    func defaultPlan() throws {
        let plan = try OximeterVerificationPlan().validated()
        #expect(plan.setPoints.map(\.spo2.percent) == [70, 75, 80, 85, 90, 95, 100, 97, 97, 97])
        #expect(plan.setPoints.map(\.pulseRate.beatsPerMinute) == [75, 75, 75, 75, 75, 75, 75, 40, 120, 180])
        #expect(plan.totalDuration == .seconds(600))
        #expect(plan.claim.armsLimit == .percent(4) && plan.claim.claimRange == 70...100 && plan.claim.pulseRateTolerance == .beatsPerMinute(3))
    }

    @Test("Set-points TOML: points, per-point overrides, claim")
    func setPointsFile() throws {
        let text = """
            # bench check for the ward's Nonin 7500
            settling = "20 s"
            window = "1 min"

            [claim]
            arms_max_percent = 3
            spo2_range_percent = [70, 100]
            pulse_rate_tolerance_bpm = 2.5
            minimum_valid_readings = 15

            [[point]]
            spo2 = 95
            pulse_rate = 80

            [[point]]
            spo2 = 72.5
            pulse_rate = 120
            settling = "45 s"
            window = "90 s"
            """
        let plan = try OximeterVerificationPlan.load(toml: text, source: "bench.toml")
        #expect(plan.setPoints.count == 2)
        #expect(plan.setPoints[1].spo2 == .percent(72.5) && plan.setPoints[1].pulseRate == .beatsPerMinute(120))
        #expect(plan.settlingTime == .seconds(20) && plan.collectionWindow == .seconds(60))
        #expect(plan.settling(at: 0) == .seconds(20) && plan.settling(at: 1) == .seconds(45) && plan.window(at: 1) == .seconds(90))
        #expect(plan.claim.armsLimit == .percent(3) && plan.claim.pulseRateTolerance == .beatsPerMinute(2.5) && plan.claim.minimumValidReadings == 15)
    }

    @Test("Set-points TOML errors name the file, the key and the fix")
    func setPointsFileErrors() {
        func message(_ text: String) -> String {
            do {
                _ = try OximeterVerificationPlan.load(toml: text, source: "points.toml")
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(message("[[point]]\nspo2 = 90\npulse_rate = 75\nspo3 = 1").contains("points.toml: point[0].spo3: unknown key \"spo3\""))
        #expect(message("[[point]]\nspo2 = 90").contains("point[0].pulse_rate: missing \"pulse_rate\""))
        #expect(message("[[point]]\nspo2 = 120\npulse_rate = 75").contains("SpO2 is not within 0...100 %"))
        #expect(message("[[point]]\nspo2 = 90\npulse_rate = 400").contains("pulse rate is not within 20...300 bpm"))
        #expect(message("[[point]]\nspo2 = \"ninety\"\npulse_rate = 75").contains("must be a number"))
        #expect(message("window = \"30 parsecs\"\n[[point]]\nspo2 = 90\npulse_rate = 75").contains("points.toml: window: unknown unit"))
        #expect(message("window = 30\n[[point]]\nspo2 = 90\npulse_rate = 75").contains("must be a string with a unit"))
        #expect(message("settling = \"30 s\"").contains("no [[point]] tables"))
        #expect(message("[claim]\narms_max_percent = -1\n[[point]]\nspo2 = 90\npulse_rate = 75").contains("claim: A_rms limit"))
        #expect(message("[claim]\nspo2_range_percent = [100, 70]\n[[point]]\nspo2 = 90\npulse_rate = 75").contains("two increasing numbers"))
        let syntax = message("[[point]\nspo2 = 90")
        #expect(syntax.hasPrefix("points.toml:1: not valid TOML"))
    }

    @Test("Readings round-trip through JSON with their flags; missing values are null")
    func readingJSON() throws {
        let reading = Self.reading(15, 85, nil, [.probeOff, .artifact])
        let data = try CalibrationJSON.encode(reading)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"pulse_rate_bpm\" : null") && text.contains("\"probe off\"") && text.contains("\"elapsed_s\" : 15"))
        #expect(try CalibrationJSON.decode(OximeterReading.self, from: data) == reading)
        let bad = Data(#"{"elapsed_s": 1, "spo2_percent": 90, "pulse_rate_bpm": 70, "flags": ["on fire"]}"#.utf8)
        #expect(throws: CalibrationInputError.self) { try CalibrationJSON.decode(OximeterReading.self, from: bad) }
    }
}
