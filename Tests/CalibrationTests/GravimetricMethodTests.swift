import DeviceProtocols
import Foundation
import InfusionCore
import Testing
@testable import Calibration

@Suite("Gravimetric accuracy: synthetic pumps, methods, density, balance replies")
struct GravimetricMethodTests {
    // MARK: Synthetic pumps

    @Test("An accurate pump (25 mL/h, noise ±2 mg, 1 mg resolution) passes the standard method")
    func accuratePumpPasses() throws {
        let method = GravimetricMethod.standard()
        let delivery = SyntheticDelivery(rate: 25)
        let result = try GravimetricAnalysis.analyze(samples: delivery.samples(method), setRate: .millilitresPerHour(25),
                                                     density: .waterAt20C, method: method)
        // Over one hour the noise (±2 mg on 25 g) moves A by at most ±0.02 %.
        #expect(abs(result.analysis.overallError.percent) < 0.05)
        #expect(result.verdict.outcome == .pass)
        // Short windows see the noise more: ±4 mg on 0.83 mL in 2 min is at most ±0.5 %.
        let two = try #require(result.analysis.trumpet.first)
        #expect(two.window.intervals == 4)
        #expect(try #require(two.maximumError?.percent) < 1 && (try #require(two.minimumError?.percent)) > -1)
        // The trumpet narrows with the window.
        let spread = result.analysis.trumpet.compactMap { point in
            point.maximumError.flatMap { high in point.minimumError.map { high.percent - $0.percent } }
        }
        #expect(spread.count == 5)
        #expect(try #require(spread.first) > (try #require(spread.last)))
    }

    @Test("A pump delivering 6 % less than commanded fails with an overall error of about −6 %")
    func shortPumpFails() throws {
        let method = GravimetricMethod.standard()
        let delivery = SyntheticDelivery(rate: 25, deliveryFactor: 0.94)
        let result = try GravimetricAnalysis.analyze(samples: delivery.samples(method), setRate: .millilitresPerHour(25),
                                                     density: .waterAt20C, method: method)
        #expect(abs(result.analysis.overallError.percent - -6) < 0.05)
        #expect(result.verdict.outcome == .fail)
        let reason = try #require(result.verdict.reasons.first)
        #expect(reason.contains("-6.0") && reason.contains("exceeds the claimed ±5.00 %") && reason.contains("under-delivers"))
        for point in result.analysis.trumpet {
            #expect(abs(try #require(point.maximumError?.percent) - -6) < 1)
            #expect(abs(try #require(point.minimumError?.percent) - -6) < 1)
        }
        // Against a ±7 % claim the same pump passes: the claim is configurable.
        let lenient = try GravimetricAnalysis.analyze(samples: delivery.samples(method), setRate: .millilitresPerHour(25), density: .waterAt20C,
                                                      method: method, claim: PumpAccuracyClaim(overallTolerance: .percent(7)))
        #expect(lenient.verdict.outcome == .pass)
    }

    @Test("Density matters: masses of water at 25 °C analysed with the 25 °C density give ~0 %, with 1.0 g/mL about −0.3 %")
    func densityIsApplied() throws {
        let method = GravimetricMethod.standard()
        let density = try WaterDensity.density(celsius: 25)
        let delivery = SyntheticDelivery(rate: 25, density: density.gramsPerMillilitre, noise: 0)
        let right = try GravimetricAnalysis.analyze(samples: delivery.samples(method), setRate: .millilitresPerHour(25), density: density, method: method)
        #expect(abs(right.analysis.overallError.percent) < 0.01)
        let wrong = try GravimetricAnalysis.analyze(samples: delivery.samples(method), setRate: .millilitresPerHour(25),
                                                    density: LiquidDensity(unchecked: 1.0), method: method)
        #expect(abs(wrong.analysis.overallError.percent - (0.997045 - 1) * 100) < 0.01)
    }

    @Test("Trumpet limits are judged when the claim gives them")
    func trumpetLimits() throws {
        let method = GravimetricMethod.standard()
        let samples = SyntheticDelivery(rate: 5, noise: 0.004).samples(method)
        let tight = PumpAccuracyClaim(overallTolerance: .percent(5), trumpetLimits: [
            .init(window: .seconds(120), limit: .percent(0.5)), .init(window: .seconds(31 * 60), limit: .percent(5)),
        ])
        let result = try GravimetricAnalysis.analyze(samples: samples, setRate: .millilitresPerHour(5), density: .waterAt20C, method: method, claim: tight)
        // ±4 mg noise on 0.166 g per 2 min exceeds ±0.5 % somewhere in the hour.
        #expect(result.verdict.outcome == .fail)
        #expect(result.verdict.reasons.contains { $0.hasPrefix("trumpet 2.0 min") && $0.contains("outside ±0.50 %") })
        #expect(result.verdict.reasons.contains { $0.hasPrefix("trumpet 31.0 min") && $0.contains("within ±5.00 %") })
        let missing = PumpAccuracyClaim(trumpetLimits: [.init(window: .seconds(7 * 60), limit: .percent(5))])
        let noWindow = try GravimetricAnalysis.analyze(samples: samples, setRate: .millilitresPerHour(5), density: .waterAt20C, method: method, claim: missing)
        #expect(noWindow.verdict.outcome == .fail)
        #expect(noWindow.verdict.reasons.contains { $0.contains("no trumpet point for the 7.0 min window") })
    }

    // MARK: Methods, windows, periods

    @Test("Standard method: Δt 30 s gives p = 4, 10, 22, 38, 62 and m = (60 − P)/Δt + 1 windows over the second hour")
    func standardWindows() throws {
        let method = try GravimetricMethod.standard().validated()
        #expect(method.sampleCount == 241)
        #expect(method.analysisStartIndex == 120 && method.analysisEndIndex == 240)
        #expect(method.observationWindowSizes.map(\.intervals) == [4, 10, 22, 38, 62])
        let analysis = try GravimetricAnalysis.analyze(samples: SyntheticDelivery(rate: 25).samples(method), setRate: .millilitresPerHour(25),
                                                       density: .waterAt20C, method: method).analysis
        // m = (60 − P)/0.5 + 1: 117, 111, 99, 83, 59.
        #expect(analysis.trumpet.map(\.windowCount) == [117, 111, 99, 83, 59])
        #expect(analysis.trumpet.map { $0.window.actual } == GravimetricMethod.standardWindows)
    }

    @Test("p is derived from Δt: 60 s gives 2, 5, 11, 19, 31; 45 s rounds to the nearest whole interval")
    func windowsFromInterval() throws {
        let oneMinute = try GravimetricMethod.standard(samplingInterval: .seconds(60)).validated()
        #expect(oneMinute.observationWindowSizes.map(\.intervals) == [2, 5, 11, 19, 31])
        let odd = try GravimetricMethod(samplingInterval: .seconds(45), duration: .seconds(7200), analysisStart: .seconds(3600)).validated()
        // 120/45 = 2.67 → 3 (2.25 min); 300/45 = 6.67 → 7 (5.25 min); 660/45 = 14.67 → 15; 1140/45 = 25.3 → 25; 1860/45 = 41.3 → 41.
        #expect(odd.observationWindowSizes.map(\.intervals) == [3, 7, 15, 25, 41])
        #expect(odd.observationWindowSizes.first?.actual == .seconds(135))
    }

    @Test("The second hour is analysed: a start-up transient in the first hour does not count")
    func secondHourSelection() throws {
        let method = GravimetricMethod.standard()
        // 20 % over-delivery during the first 30 minutes, accurate after.
        let delivery = SyntheticDelivery(rate: 25, noise: 0, resolution: 1e-9, startupFactor: 1.2, startupDuration: .seconds(1800))
        let standard = try GravimetricAnalysis.analyze(samples: delivery.samples(method), setRate: .millilitresPerHour(25), density: .waterAt20C, method: method)
        #expect(abs(standard.analysis.overallError.percent) < 0.01)
        #expect(standard.analysis.analysedFrom == .seconds(3600) && standard.analysis.analysedTo == .seconds(7200))
        #expect(standard.verdict.outcome == .pass)
        // Analysing the whole run instead sees the transient: 0.5 h × 20 % over 2 h = +5 %.
        let whole = GravimetricMethod(samplingInterval: .seconds(30), duration: .seconds(7200), analysisStart: .zero)
        let wholeRun = try GravimetricAnalysis.analyze(samples: delivery.samples(method), setRate: .millilitresPerHour(25), density: .waterAt20C, method: whole)
        #expect(abs(wholeRun.analysis.overallError.percent - 5) < 0.01)
        // The flow chart still has the first hour.
        #expect(approximately(standard.analysis.flow.first?.flow?.millilitresPerHour, 30, 1e-6))
    }

    @Test("Quick mode: 30 min run, minutes 10–30 analysed, windows 2, 5, 11, 19 (31 does not fit), marked indicative")
    func quickMode() throws {
        let method = try GravimetricMethod.quick().validated()
        #expect(method.mode == .quick)
        #expect(method.duration == .seconds(1800) && method.analysisStart == .seconds(600) && method.analysisEnd == .seconds(1800))
        #expect(method.windows == [2, 5, 11, 19].map { Duration.seconds($0 * 60) })
        #expect(method.observationWindowSizes.map(\.intervals) == [4, 10, 22, 38])
        let result = try GravimetricAnalysis.analyze(samples: SyntheticDelivery(rate: 25).samples(method), setRate: .millilitresPerHour(25),
                                                     density: .waterAt20C, method: method)
        // m = 40 − p + 1.
        #expect(result.analysis.trumpet.map(\.windowCount) == [37, 31, 19, 3])
        #expect(result.verdict.outcome == .pass)
        #expect(result.verdict.reasons.contains { $0.contains("not the IEC 60601-2-24 method") })
        let short = try GravimetricAnalysis.analyze(samples: SyntheticDelivery(rate: 25, deliveryFactor: 0.94).samples(method),
                                                    setRate: .millilitresPerHour(25), density: .waterAt20C, method: method)
        #expect(short.verdict.outcome == .fail)
    }

    @Test("A window longer than the analysis period is left out and reported")
    func windowDoesNotFit() throws {
        let method = GravimetricMethod(samplingInterval: .seconds(30), duration: .seconds(1800), analysisStart: .seconds(600))
        let result = try GravimetricAnalysis.analyze(samples: SyntheticDelivery(rate: 25).samples(method), setRate: .millilitresPerHour(25),
                                                     density: .waterAt20C, method: method)
        #expect(result.analysis.trumpet.count == 4)
        #expect(result.analysis.findings.contains { $0.code == "window-does-not-fit" && $0.message.contains("31 min") })
    }

    @Test("Unusable methods are refused with the setting and the fix")
    func invalidMethods() {
        func problem(_ method: GravimetricMethod) -> String? {
            do {
                _ = try method.validated()
                return nil
            } catch {
                return error.description
            }
        }
        #expect(problem(GravimetricMethod(samplingInterval: .seconds(0), duration: .seconds(600), analysisStart: .zero))?.contains("not positive") == true)
        #expect(problem(GravimetricMethod(samplingInterval: .seconds(7), duration: .seconds(600), analysisStart: .zero))?.contains("run duration 10 min is not a whole number of sampling intervals") == true)
        #expect(problem(GravimetricMethod(samplingInterval: .seconds(30), duration: .seconds(600), analysisStart: .seconds(45)))?.contains("analysis start") == true)
        #expect(problem(GravimetricMethod(samplingInterval: .seconds(30), duration: .seconds(600), analysisStart: .seconds(600)))?.contains("analysis period") == true)
        #expect(problem(GravimetricMethod(samplingInterval: .seconds(30), duration: .seconds(600), analysisStart: .seconds(540),
                                          observationWindows: [.seconds(300)]))?.contains("no observation window fits") == true)
        #expect(problem(GravimetricMethod(samplingInterval: .seconds(30), duration: .seconds(600), analysisStart: .zero, observationWindows: [])) != nil)
        #expect(throws: CalibrationInputError.self) {
            try GravimetricAnalysis.analyze(samples: [], setRate: .millilitresPerHour(0), density: .waterAt20C, method: .quick())
        }
        #expect(throws: CalibrationInputError.self) { try PumpAccuracyClaim(overallTolerance: .percent(-1)).validated() }
    }

    // MARK: Density

    @Test("Water density: table values, 20 °C = 0.99820 g/mL (protocols.md §A7), linear interpolation, range")
    func waterDensity() throws {
        #expect(abs(try WaterDensity.density(celsius: 20).gramsPerMillilitre - 0.99820) < 0.000005)
        #expect(try WaterDensity.density(celsius: 15).gramsPerMillilitre == 0.999100)
        #expect(try WaterDensity.density(celsius: 30).gramsPerMillilitre == 0.995647)
        #expect(try WaterDensity.density(celsius: 25).gramsPerMillilitre == 0.997045)
        // 22.5 °C: halfway between 0.997771 (22 °C) and 0.997539 (23 °C) = 0.997655.
        #expect(approximately(try WaterDensity.density(celsius: 22.5).gramsPerMillilitre, 0.997655, 1e-12))
        // 20.25 °C: 0.998204 + 0.25 × (0.997993 − 0.998204) = 0.99815125.
        #expect(approximately(try WaterDensity.density(celsius: 20.25).gramsPerMillilitre, 0.99815125, 1e-12))
        // Strictly decreasing over 15–30 °C.
        let values = try stride(from: 15.0, through: 30.0, by: 0.5).map { try WaterDensity.density(celsius: $0).gramsPerMillilitre }
        #expect(zip(values, values.dropFirst()).allSatisfy { $0 > $1 })
        for outside in [14.9, 30.1, Double.nan, -Double.infinity] {
            #expect(throws: CalibrationInputError.self) { try WaterDensity.density(celsius: outside) }
        }
        #expect(throws: CalibrationInputError.self) { try LiquidDensity(gramsPerMillilitre: 998.2) }
    }

    @Test("Evaporation rate from a blank run: least-squares slope of mass against time, sign flipped")
    func blankRun() throws {
        // 100 g losing 0.3 g/h, every 30 s for 20 minutes, with alternating ±1 mg.
        let samples = (0...40).map { index in
            BalanceSample(index: index, elapsed: .seconds(30 * index),
                          grams: 100 - 0.3 * Double(index) / 120 + (index.isMultiple(of: 2) ? 0.001 : -0.001))
        }
        let correction = try EvaporationCorrection.fromBlankRun(samples)
        #expect(abs(correction.gramsPerHour - 0.3) < 0.01)
        #expect(throws: CalibrationInputError.self) { try EvaporationCorrection.fromBlankRun(Array(samples.prefix(5))) }
        #expect(throws: CalibrationInputError.self) { try EvaporationCorrection.lossRate(gramsPerHour: .nan).validated() }
    }

    // MARK: Balance replies

    @Test("MT-SICS replies map to readings: weights in g/mg/kg, dynamic, S I, overload, underload, errors")
    func mtsicsReplies() throws {
        func reading(_ line: String) throws -> BalanceReading { BalanceReading(mtsics: try MTSICSResponse(line: line)) }
        #expect(try reading("S S     100.00 g") == .weight(grams: 100, stable: true))
        #expect(try reading("S D      12.3456 g") == .weight(grams: 12.3456, stable: false))
        #expect(try reading("S S   1.2345 kg") == .weight(grams: 1234.5, stable: true))
        #expect(try reading("S S 250.0 mg") == .weight(grams: 0.25, stable: true))
        #expect(try reading("S S 3.5 ct") == .problem(.unsupportedUnit("ct")))
        #expect(try reading("S I") == .problem(.notExecutable))
        #expect(try reading("S +") == .problem(.overload))
        #expect(try reading("S -") == .problem(.underload))
        #expect(try reading("ES") == .problem(.protocolError("ES syntax error")))
        #expect(try reading("EL") == .problem(.protocolError("EL logical error")))
        #expect(try reading("Z A") == .problem(.protocolError("unexpected reply \"Z A\"")))
        #expect(BalanceProblem.overload.endsRun && BalanceProblem.underload.endsRun && !BalanceProblem.noReply.endsRun)
        #expect(BalanceProblem.overload.description.contains("exceeds the balance's capacity"))
        #expect(BalanceProblem.underload.description.contains("zero the balance and repeat"))
    }
}
