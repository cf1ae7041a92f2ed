import Foundation
import InfusionCore
import Testing
@testable import Calibration

/// The trumpet computation against a data set small enough to compute by hand.
///
/// Set-up: set rate r = 60 mL/h (1 mL/min), density ρ = 1.000 g/mL, Δt = 1 min, a 10-minute run,
/// analysis period 4–10 min (six intervals), observation windows 2, 3 and 5 min (p = 2, 3, 5).
///
/// Weights W_0...W_10 (g): 0, 0.5, 1.3, 2.3, 3.3, 4.4, 5.3, 6.3, 7.5, 8.3, 9.36
/// Mass per interval (g):    0.5, 0.8, 1.0, 1.0 | 1.1, 0.9, 1.0, 1.2, 0.8, 1.06
/// Q_i = ΔW / (ρ · 1/60 h) (mL/h): 30, 48, 60, 60 | 66, 54, 60, 72, 48, 63.6
/// Analysis period = intervals 5...10; (Q_i − r)/r × 100 = +10, −10, 0, +20, −20, +6 (%).
///
/// p = 2, m = 6 − 2 + 1 = 5 windows:
///   (10 − 10)/2 = 0; (−10 + 0)/2 = −5; (0 + 20)/2 = +10; (20 − 20)/2 = 0; (−20 + 6)/2 = −7
///   → E_2(max) = +10 %, E_2(min) = −7 %
/// p = 3, m = 4:
///   (10 − 10 + 0)/3 = 0; (−10 + 0 + 20)/3 = +3.3333…; (0 + 20 − 20)/3 = 0; (20 − 20 + 6)/3 = +2
///   → E_3(max) = +10/3 %, E_3(min) = 0 %
/// p = 5, m = 2:
///   (10 − 10 + 0 + 20 − 20)/5 = 0; (−10 + 0 + 20 − 20 + 6)/5 = −0.8
///   → E_5(max) = 0 %, E_5(min) = −0.8 %
/// Overall: W_10 − W_4 = 9.36 − 3.3 = 6.06 g = 6.06 mL in 6 min → Q̄ = 60.6 mL/h → A = +1.0 %.
@Suite("Trumpet curve: hand-computed data set")
struct TrumpetHandComputedTests {
    static let weights = [0, 0.5, 1.3, 2.3, 3.3, 4.4, 5.3, 6.3, 7.5, 8.3, 9.36]
    static let density = LiquidDensity(unchecked: 1.0)
    static let method = GravimetricMethod(samplingInterval: .seconds(60), duration: .seconds(600),
                                          analysisStart: .seconds(240), analysisEnd: .seconds(600),
                                          observationWindows: [.seconds(120), .seconds(180), .seconds(300)])

    static func samples(dropping dropped: Set<Int> = []) -> [BalanceSample] {
        weights.enumerated().map { index, grams in
            dropped.contains(index)
                ? BalanceSample(index: index, elapsed: .seconds(60 * index), problem: .noReply)
                : BalanceSample(index: index, elapsed: .seconds(60 * index), grams: grams)
        }
    }

    func analyse(_ samples: [BalanceSample], evaporation: EvaporationCorrection = .none,
                 method: GravimetricMethod = TrumpetHandComputedTests.method) throws -> PumpAccuracyResult {
        try GravimetricAnalysis.analyze(samples: samples, setRate: .millilitresPerHour(60), density: Self.density,
                                        evaporation: evaporation, method: method)
    }

    @Test("Q_i, overall error and E_p(max)/E_p(min) match the hand computation")
    func handComputed() throws {
        let result = try analyse(Self.samples())
        let analysis = result.analysis
        let expectedFlows = [30, 48, 60, 60, 66, 54, 60, 72, 48, 63.6]
        #expect(analysis.flow.count == 10)
        for (interval, expected) in zip(analysis.flow, expectedFlows) {
            #expect(approximately(interval.flow?.millilitresPerHour, expected), "Q_\(interval.index)")
        }
        #expect(approximately(analysis.overallError.percent, 1.0))
        #expect(approximately(analysis.meanFlow.millilitresPerHour, 60.6))
        #expect(approximately(analysis.deliveredVolume.millilitres, 6.06))
        #expect(analysis.analysedFrom == .seconds(240) && analysis.analysedTo == .seconds(600))

        #expect(analysis.trumpet.map(\.window.intervals) == [2, 3, 5])
        #expect(analysis.trumpet.map(\.windowCount) == [5, 4, 2])
        #expect(analysis.trumpet.map(\.excludedWindows) == [0, 0, 0])
        let expected: [(max: Double, min: Double)] = [(10, -7), (10.0 / 3.0, 0), (0, -0.8)]
        for (point, hand) in zip(analysis.trumpet, expected) {
            #expect(approximately(point.maximumError?.percent, hand.max), "E_\(point.window.intervals)(max)")
            #expect(approximately(point.minimumError?.percent, hand.min), "E_\(point.window.intervals)(min)")
        }
        #expect(result.verdict.outcome == .pass)
        #expect(result.verdict.reasons.first?.contains("+1.00 %") == true)
    }

    @Test("The standard's summation formula gives the same extremes as the mass-difference computation")
    func summationFormulaAgrees() throws {
        let flows = [66, 54, 60, 72, 48, 63.6]
        let two = try #require(GravimetricAnalysis.trumpetExtremes(flows: flows, setRate: 60, p: 2))
        let three = try #require(GravimetricAnalysis.trumpetExtremes(flows: flows, setRate: 60, p: 3))
        let five = try #require(GravimetricAnalysis.trumpetExtremes(flows: flows, setRate: 60, p: 5))
        #expect(approximately(two.maximum, 10) && approximately(two.minimum, -7))
        #expect(approximately(three.maximum, 10.0 / 3.0) && approximately(three.minimum, 0))
        #expect(approximately(five.maximum, 0) && approximately(five.minimum, -0.8))
        #expect(GravimetricAnalysis.trumpetExtremes(flows: flows, setRate: 60, p: 7) == nil)
        #expect(GravimetricAnalysis.trumpetExtremes(flows: flows, setRate: 0, p: 2) == nil)
    }

    @Test("Evaporation correction: 0.6 g/h adds 0.01 g per 1-min interval, +1 % on every deviation")
    func evaporationCorrection() throws {
        // Each corrected ΔW gains 0.6 g/h × 1/60 h = 0.01 g, so Q_i gains 0.6 mL/h = 1 % of r.
        // A = 1.0 + 1.0 = +2.0 %; E_2 = +11 / −6; E_5 = (0 + 1) / (−0.8 + 1) = +1 / +0.2.
        let result = try analyse(Self.samples(), evaporation: .lossRate(gramsPerHour: 0.6))
        let analysis = result.analysis
        #expect(approximately(analysis.overallError.percent, 2.0))
        #expect(approximately(analysis.trumpet[0].maximumError?.percent, 11))
        #expect(approximately(analysis.trumpet[0].minimumError?.percent, -6))
        #expect(approximately(analysis.trumpet[2].maximumError?.percent, 1))
        #expect(approximately(analysis.trumpet[2].minimumError?.percent, 0.2))
        #expect(approximately(analysis.flow[0].flow?.millilitresPerHour, 30.6))
    }

    @Test("A missing sample is left out, never filled: windows ending on it are excluded and counted")
    func missingSample() throws {
        // Drop W_7 (6.3 g). Intervals 7 (6→7) and 8 (7→8) have no flow.
        // p = 2: windows 4→6, 5→7, 6→8, 7→9, 8→10; 5→7 and 7→9 need W_7 → excluded.
        //   4→6: (5.3 − 3.3) g / 2 min = 60 mL/h → 0 %; 6→8: (7.5 − 5.3)/2 min = 66 → +10 %; 8→10: 1.86/2 min = 55.8 → −7 %
        // p = 3: 4→7 and 7→10 excluded; 5→8: 3.1 g/3 min = 62 → +3.333 %; 6→9: 3.0 g/3 min = 60 → 0 %
        // p = 5: neither window (4→9, 5→10) needs W_7: 0 % and −0.8 % as before. A = +1.0 % (ends present).
        let result = try analyse(Self.samples(dropping: [7]))
        let analysis = result.analysis
        #expect(analysis.flow[6].flow == nil && analysis.flow[6].massChangeGrams == nil)
        #expect(analysis.flow[7].flow == nil)
        #expect(analysis.flow.compactMap(\.flow).count == 8)
        #expect(analysis.trumpet.map(\.excludedWindows) == [2, 2, 0])
        #expect(approximately(analysis.trumpet[0].maximumError?.percent, 10))
        #expect(approximately(analysis.trumpet[0].minimumError?.percent, -7))
        #expect(approximately(analysis.trumpet[1].maximumError?.percent, 10.0 / 3.0))
        #expect(approximately(analysis.trumpet[1].minimumError?.percent, 0))
        #expect(approximately(analysis.trumpet[2].minimumError?.percent, -0.8))
        #expect(approximately(analysis.overallError.percent, 1.0))
        #expect(analysis.counts.missingInAnalysis == 1 && analysis.counts.expectedInAnalysis == 7)
        // 1 of 7 (14 %) missing exceeds the default 10 %: the data cannot demonstrate accuracy.
        #expect(result.verdict.outcome == .fail)
        #expect(result.verdict.reasons.contains { $0.contains("1 of 7 samples in the analysis period are missing") })

        var lenient = Self.method
        lenient.maximumMissingFraction = 0.2
        #expect(try analyse(Self.samples(dropping: [7]), method: lenient).verdict.outcome == .pass)
    }

    @Test("A missing analysis endpoint: the overall error uses the nearest weights inside the period")
    func missingEndpoint() throws {
        // Drop W_4: the overall error runs from W_5 (4.4 g at 5 min) to W_10: 4.96 g in 5 min = 59.52 mL/h → −0.8 %.
        var lenient = Self.method
        lenient.maximumMissingFraction = 0.2
        let result = try analyse(Self.samples(dropping: [4]), method: lenient)
        #expect(approximately(result.analysis.overallError.percent, -0.8))
        #expect(result.analysis.analysedFrom == .seconds(300))
        #expect(result.analysis.findings.contains { $0.code == "analysis-endpoint-missing" })
    }

    @Test("Too few weights in the analysis period is an error that says what to do")
    func tooFewWeights() {
        #expect(throws: CalibrationInputError.self) {
            try analyse(Self.samples(dropping: [4, 5, 6, 7, 8, 9]))
        }
        do {
            _ = try analyse(Self.samples(dropping: [4, 5, 6, 7, 8]))
            Issue.record("expected an error: the weights span 9–10 min of 4–10 min")
        } catch {
            #expect("\(error)".contains("repeat the run"))
        }
    }

    @Test("A non-monotonic mass is kept as measured (negative flow) and reported")
    func nonMonotonicMass() throws {
        var samples = Self.samples()
        samples[6] = BalanceSample(index: 6, elapsed: .seconds(360), grams: 4.3)  // 1.1 g below W_5: a disturbed vessel
        let analysis = try analyse(samples).analysis
        #expect(approximately(analysis.flow[5].massChangeGrams, -0.1))
        #expect(approximately(analysis.flow[5].flow?.millilitresPerHour, -6))
        #expect(analysis.counts.massDecreases == 1)
        let finding = try #require(analysis.findings.first { $0.code == "mass-decrease" })
        #expect(finding.severity == .warning)
        #expect(finding.message.contains("0.1000 g"))
    }

    @Test("Dynamic readings: flag uses and counts them; skip treats them as missing")
    func unstableReadings() throws {
        var samples = Self.samples()
        samples[5] = BalanceSample(index: 5, elapsed: .seconds(300), grams: 4.4, stable: false)
        let flagged = try analyse(samples).analysis
        #expect(flagged.counts.dynamicUsed == 1)
        #expect(approximately(flagged.trumpet[0].maximumError?.percent, 10))
        #expect(flagged.findings.contains { $0.code == "unstable-readings" })

        var skipping = Self.method
        skipping.unstableReadings = .skip
        skipping.maximumMissingFraction = 0.2
        let skipped = try analyse(samples, method: skipping).analysis
        #expect(skipped.counts.dynamicSkipped == 1)
        #expect(skipped.counts.missingInAnalysis == 1)
        #expect(skipped.flow[4].flow == nil && skipped.flow[5].flow == nil)
    }

    @Test("Readings off schedule, duplicated or outside the run are ignored and reported")
    func offSchedule() throws {
        var samples = Self.samples()
        samples[3] = BalanceSample(index: 3, elapsed: .seconds(200), grams: 2.3)  // 20 s late > Δt/4 = 15 s
        samples.append(BalanceSample(index: 9, elapsed: .seconds(545), grams: 99))  // duplicate, farther from 540 s
        samples.append(BalanceSample(index: 11, elapsed: .seconds(660), grams: 10))  // outside the 10-minute run
        let analysis = try analyse(samples).analysis
        #expect(analysis.counts.offSchedule == 3)
        #expect(analysis.flow[2].flow == nil)  // interval 3 lost its end
        #expect(approximately(analysis.overallError.percent, 1.0))  // the duplicate 99 g was not used
        #expect(analysis.findings.contains { $0.code == "off-schedule" })
        #expect(analysis.findings.contains { $0.code == "duplicate-samples" })
    }
}
