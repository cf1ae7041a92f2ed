import Foundation
import InfusionCore
import Testing
@testable import DeviceSimulators

@Suite("Ketamine pharmacokinetics")
struct PharmacokineticsTests {
    let weight = BodyWeight.kilograms(80)
    var parameters: ThreeCompartmentParameters { .domino1982(weight: weight) }

    @Test("Domino 1982 parameters scale with weight and give the documented derived values")
    func dominoParameters() throws {
        let p = ThreeCompartmentParameters.domino1982(weight: .kilograms(70))
        #expect(abs(p.centralVolume - 4.41) < 1e-12)
        #expect(abs(p.k10 - 0.4381) < 1e-12)
        #expect(abs(p.k12 - 0.5921) < 1e-12)
        #expect(abs(p.k21 - 0.2470) < 1e-12)
        #expect(abs(p.k13 - 0.5900) < 1e-12)
        #expect(abs(p.k31 - 0.0146) < 1e-12)
        #expect(abs(p.clearance - 1.932) < 0.001)           // L/min, ≈ 116 L/h
        #expect(abs(p.steadyStateVolume - 193.2) < 0.1)      // L
        let model = try ThreeCompartmentModel(p)
        let terminalHalfLife = log(2) / model.dispositionRates[0] / 60 // h
        #expect(abs(terminalHalfLife - 1.91) < 0.01)
    }

    @Test("the eigen-decomposition matches the characteristic cubic and the unit-bolus coefficients")
    func decompositionMatchesCubic() throws {
        let model = try ThreeCompartmentModel(parameters)
        let reference = AnalyticThreeCompartment(parameters)
        for i in 0..<3 {
            #expect(relativeError(model.dispositionRates[i], reference.lambda[i]) < 1e-12)
            #expect(relativeError(model.modalWeights[i] * model.modalWeights[i], reference.coefficient[i]) < 1e-10)
        }
        // C(0⁺) after a unit bolus is 1/V1.
        let c0 = (model.modalWeights * model.modalWeights).sum()
        #expect(relativeError(c0, 1 / parameters.centralVolume) < 1e-13)
    }

    @Test("a bolus matches the tri-exponential closed form, plasma and effect site, at 75 Hz steps")
    func bolusMatchesClosedForm() throws {
        var pk = try Pharmacokinetics.ketamine(weight: weight)
        let reference = AnalyticThreeCompartment(parameters)
        let dose = 40.0 // mg (0.5 mg/kg)
        pk.giveBolus(.milligrams(dose))
        let checkpoints: [Duration] = [.seconds(1), .seconds(30), .seconds(60), .seconds(300), .seconds(1800), .seconds(7200)]
        var worst = 0.0
        var next = 0
        var steps = 0
        while next < checkpoints.count {
            pk.advance(by: frame75Hz, infusionRate: .zero)
            steps += 1
            if pk.elapsed >= checkpoints[next] {
                let t = pk.elapsed.seconds / 60
                let plasma = pk.plasmaConcentration.milligramsPerMillilitre * 1000
                let effect = pk.effectSiteConcentration.milligramsPerMillilitre * 1000
                worst = max(worst, relativeError(plasma, reference.bolusPlasma(dose: dose, t: t)))
                worst = max(worst, relativeError(effect, reference.bolusEffect(dose: dose, t: t)))
                next += 1
            }
        }
        #expect(steps > 500_000)
        #expect(worst < 1e-9, "max relative error vs closed form \(worst)")
    }

    @Test("a constant-rate infusion then stop matches the closed form over a 4-hour session at 75 Hz")
    func infusionMatchesClosedForm() throws {
        var pk = try Pharmacokinetics.ketamine(weight: weight)
        let reference = AnalyticThreeCompartment(parameters)
        let rate = DoseRate.milligramsPerHour(28) // 0.35 mg/kg/h × 80 kg
        let stop = Duration.seconds(40 * 60)
        let checkpoints: [Duration] = [.seconds(10), .seconds(120), .seconds(600), .seconds(2400), .seconds(3600), .seconds(4 * 3600)]
        var worstPlasma = 0.0, worstEffect = 0.0
        var next = 0
        while next < checkpoints.count {
            // Land exactly on the stop time, as a stepper does at a pump-rate change.
            let remaining = stop - pk.elapsed
            let step = remaining > .zero && remaining < frame75Hz ? remaining : frame75Hz
            pk.advance(by: step, infusionRate: pk.elapsed < stop ? rate : .zero)
            if pk.elapsed >= checkpoints[next] {
                let t = pk.elapsed.seconds / 60
                let plasma = pk.plasmaConcentration.milligramsPerMillilitre * 1000
                let expected = reference.infusionPlasma(rate: 28.0 / 60, stop: stop.seconds / 60, t: t)
                worstPlasma = max(worstPlasma, relativeError(plasma, expected))
                if pk.elapsed <= stop {
                    let effect = pk.effectSiteConcentration.milligramsPerMillilitre * 1000
                    worstEffect = max(worstEffect, relativeError(effect, reference.infusionEffect(rate: 28.0 / 60, t: t)))
                }
                next += 1
            }
        }
        #expect(pk.elapsed >= .seconds(4 * 3600))
        #expect(worstPlasma < 1e-9, "max relative error vs closed form (plasma) \(worstPlasma)")
        #expect(worstEffect < 1e-9, "max relative error vs closed form (effect site) \(worstEffect)")
        #expect(abs(pk.delivered.milligrams - 28 * 40.0 / 60) < 1e-9)
    }

    @Test("one big step equals many small ones (exact integration, no step-size error)")
    func stepSizeIndependence() throws {
        let model = try ThreeCompartmentModel(parameters)
        let rate = DoseRate.milligramsPerHour(30)
        let big = model.advance(PharmacokineticState(), by: .seconds(3600), infusionRate: rate)
        var small = PharmacokineticState()
        let step = model.step(for: .milliseconds(250))
        for _ in 0..<14_400 { small = model.advance(small, by: step, infusionRate: .milligramsPerHour(30)) }
        #expect(small.elapsed == big.elapsed)
        #expect(relativeError(model.plasmaConcentration(small).canonicalValue, model.plasmaConcentration(big).canonicalValue) < 1e-11)
        #expect(relativeError(model.effectSiteConcentration(small).canonicalValue, model.effectSiteConcentration(big).canonicalValue) < 1e-11)
        #expect(relativeError(small.eliminated, big.eliminated) < 1e-11)
    }

    @Test("a one-compartment reduction gives C = R/CL (1 − e^(−k10 t))")
    func oneCompartmentReduction() throws {
        // Peripheral exchange made negligible (the model needs positive clearances).
        let p = ThreeCompartmentParameters(
            centralVolume: 20, fastPeripheralVolume: 1, slowPeripheralVolume: 1, clearance: 1.5,
            fastDistributionClearance: 1e-12, slowDistributionClearance: 1e-12, ke0: 0.5, citation: "test")
        var pk = Pharmacokinetics(model: try ThreeCompartmentModel(p))
        let rate = 2.0 // mg/min
        for minute in 1...120 {
            pk.advance(by: .seconds(60), infusionRate: .milligramsPerHour(rate * 60))
            let expected = rate / 1.5 * (1 - exp(-1.5 / 20 * Double(minute)))
            #expect(relativeError(pk.plasmaConcentration.milligramsPerMillilitre * 1000, expected) < 1e-9)
        }
    }

    @Test("mass balance: drug in the body plus drug eliminated equals drug delivered, for any input")
    func massBalance() throws {
        var pk = try Pharmacokinetics.ketamine(weight: weight)
        var generator = SplitMix(seed: 42)
        var expectedDelivered = 0.0
        for _ in 0..<5_000 {
            let step = Duration.milliseconds(Int64(generator.next() % 20_000) + 1)
            let rate = Double(generator.next() % 600) / 10 // 0 ... 60 mg/h
            if generator.next() % 50 == 0 {
                pk.giveBolus(.milligrams(5))
                expectedDelivered += 5
            }
            pk.advance(by: step, infusionRate: .milligramsPerHour(rate))
            expectedDelivered += rate * step.seconds / 3600
            let balance = pk.amounts.total.milligrams + pk.eliminated.milligrams
            #expect(abs(balance - pk.delivered.milligrams) <= 1e-9 * max(1, pk.delivered.milligrams))
        }
        #expect(relativeError(pk.delivered.milligrams, expectedDelivered) < 1e-12)
        let amounts = pk.amounts
        #expect(amounts.central > .zero && amounts.fastPeripheral > .zero && amounts.slowPeripheral > .zero)
    }

    @Test("superposition: the response to the sum of two inputs is the sum of the responses")
    func superposition() throws {
        let model = try ThreeCompartmentModel(parameters)
        var a = PharmacokineticState(), b = PharmacokineticState(), sum = PharmacokineticState()
        a = model.bolus(a, .milligrams(20))
        sum = model.bolus(sum, .milligrams(20))
        var generator = SplitMix(seed: 7)
        for _ in 0..<2_000 {
            let step = Duration.milliseconds(Int64(generator.next() % 5_000) + 1)
            let ra = Double(generator.next() % 400) / 10, rb = Double(generator.next() % 400) / 10
            a = model.advance(a, by: step, infusionRate: .milligramsPerHour(ra))
            b = model.advance(b, by: step, infusionRate: .milligramsPerHour(rb))
            sum = model.advance(sum, by: step, infusionRate: .milligramsPerHour(ra + rb))
        }
        let plasma = model.plasmaConcentration(a).canonicalValue + model.plasmaConcentration(b).canonicalValue
        let effect = model.effectSiteConcentration(a).canonicalValue + model.effectSiteConcentration(b).canonicalValue
        #expect(relativeError(model.plasmaConcentration(sum).canonicalValue, plasma) < 1e-12)
        #expect(relativeError(model.effectSiteConcentration(sum).canonicalValue, effect) < 1e-12)
        // Homogeneity: twice the input, twice the concentration.
        let once = model.advance(PharmacokineticState(), by: .seconds(900), infusionRate: .milligramsPerHour(10))
        let twice = model.advance(PharmacokineticState(), by: .seconds(900), infusionRate: .milligramsPerHour(20))
        #expect(relativeError(model.plasmaConcentration(twice).canonicalValue, 2 * model.plasmaConcentration(once).canonicalValue) < 1e-13)
    }

    @Test("steady state: a long constant infusion approaches rate ÷ clearance")
    func steadyState() throws {
        var pk = try Pharmacokinetics.ketamine(weight: weight)
        let rate = DoseRate.milligramsPerHour(24)
        let expected = 24.0 / 60 / parameters.clearance // mg/L
        #expect(relativeError(pk.model.steadyStatePlasmaConcentration(rate: rate).milligramsPerMillilitre * 1000, expected) < 1e-14)
        for _ in 0..<96 { pk.advance(by: .seconds(3600), infusionRate: rate) } // 4 days ≫ terminal half-life
        #expect(relativeError(pk.plasmaConcentration.milligramsPerMillilitre * 1000, expected) < 1e-6)
        #expect(relativeError(pk.effectSiteConcentration.milligramsPerMillilitre * 1000, expected) < 1e-6)
        // In ng/mL: about 181 ng/mL for 0.3 mg/kg/h, an analgesic level.
        #expect(abs(pk.plasmaConcentration.nanogramsPerMillilitre - expected * 1000) < 1e-6)
    }

    @Test("ke0 puts the effect-site peak about 1 minute after a bolus, as documented")
    func effectSitePeak() throws {
        var pk = try Pharmacokinetics.ketamine(weight: weight)
        pk.giveBolus(.milligrams(40))
        var peak = 0.0, peakTime = Duration.zero
        for _ in 0..<12_000 {
            pk.advance(by: .milliseconds(10), infusionRate: .zero)
            let ce = pk.effectSiteConcentration.canonicalValue
            if ce > peak { peak = ce; peakTime = pk.elapsed }
        }
        #expect(peakTime > .seconds(57) && peakTime < .seconds(63), "effect-site peak at \(peakTime)")
        // 0.5 mg/kg in 80 kg; 1776.87 ng/mL was computed independently (SciPy matrix exponential of the 4×4 system).
        #expect(abs(peak * 1e6 - 1776.87) < 0.5, "effect-site peak \(peak * 1e6) ng/mL")
    }

    @Test("bad inputs change nothing: non-positive durations, negative and non-finite rates and doses")
    func badInputs() throws {
        var pk = try Pharmacokinetics.ketamine(weight: weight)
        pk.advance(by: .seconds(60), infusionRate: .milligramsPerHour(30))
        let before = pk.state
        pk.advance(by: .zero, infusionRate: .milligramsPerHour(30))
        pk.advance(by: .seconds(-5), infusionRate: .milligramsPerHour(30))
        pk.giveBolus(.milligrams(-10))
        pk.giveBolus(.milligrams(.nan))
        #expect(pk.state == before)
        var negative = pk, zero = pk, nan = pk
        negative.advance(by: .seconds(10), infusionRate: .milligramsPerHour(-30))
        nan.advance(by: .seconds(10), infusionRate: .milligramsPerHour(.nan))
        zero.advance(by: .seconds(10), infusionRate: .zero)
        #expect(negative.state == zero.state)
        #expect(nan.state == zero.state)
    }

    @Test("unusable parameters are refused with the parameter named")
    func parameterValidation() {
        #expect(throws: PharmacokineticParameterError.self) { try Pharmacokinetics.ketamine(weight: .kilograms(0)) }
        do {
            var p = ThreeCompartmentParameters.domino1982(weight: .kilograms(70))
            p.ke0 = .nan
            _ = try ThreeCompartmentModel(p)
            Issue.record("a NaN ke0 was accepted")
        } catch {
            #expect(error.parameter == "ke0")
            #expect(error.description.contains("ke0"))
        }
    }

    @Test("the kernels stay accurate at tiny and at equal rate constants")
    func kernels() {
        // (1 − e^{−ah})/a → h as a·h → 0.
        #expect(relativeError(ThreeCompartmentModel.phi(1e-12, 1), 1) < 1e-11)
        // ∫ convolution with equal rates is h·e^{−ah}.
        let h = 0.5, a = 0.7
        #expect(relativeError(ThreeCompartmentModel.convolution(a, a, h), h * exp(-a * h)) < 1e-14)
        #expect(relativeError(ThreeCompartmentModel.convolution(a, a + 1e-9, h), h * exp(-a * h)) < 1e-8)
        let direct = (exp(-0.1 * 3) - exp(-2.0 * 3)) / (2.0 - 0.1)
        #expect(relativeError(ThreeCompartmentModel.convolution(0.1, 2.0, 3), direct) < 1e-14)
        let x = 1e-5, hh = 2.0
        #expect(relativeError(ThreeCompartmentModel.phiIntegral(x, hh), (hh - (1 - exp(-x * hh)) / x) / x) < 1e-5)
        #expect(relativeError(ThreeCompartmentModel.phiIntegral(0.3, hh), (hh - (1 - exp(-0.3 * hh)) / 0.3) / 0.3) < 1e-14)
    }
}

/// A tiny deterministic generator for test inputs (SplitMix64).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
