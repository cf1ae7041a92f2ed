import Foundation
import InfusionCore
import Testing
@testable import DeviceSimulators

@Suite("Response model and physiology noise")
struct ResponseModelTests {
    let grid: [Concentration] = stride(from: 0.0, through: 20_000, by: 25).map { .nanogramsPerMillilitre($0) }

    @Test("sigmoid Emax: zero without drug, half at EC50, bounded, monotone, bad concentrations count as zero")
    func sigmoid() {
        let e = SigmoidEmax(maximum: 10, ec50: .nanogramsPerMillilitre(500), hill: 2)
        #expect(e.effect(at: .zero) == 0)
        #expect(abs(e.effect(at: .nanogramsPerMillilitre(500)) - 5) < 1e-12)
        var previous = -1.0
        for c in grid {
            let value = e.effect(at: c)
            #expect(value >= previous && value <= 10)
            previous = value
        }
        #expect(e.effect(at: .nanogramsPerMillilitre(-3)) == 0)
        #expect(e.effect(at: .milligramsPerMillilitre(.nan)) == 0)
        #expect(e.effect(at: .milligramsPerMillilitre(.infinity)) == 0)
        #expect(abs(e.effect(at: .milligramsPerMillilitre(1e300)) - 10) < 1e-9)
    }

    @Test("pulse rate never falls and SpO2 never rises as the concentration rises; baselines without drug")
    func monotone() {
        let model = ResponseModel.ketamineDefault
        let pr = PulseRate.beatsPerMinute(70), spo2 = Percentage.percent(97)
        #expect(model.pulseRate(baseline: pr, effectSite: .zero) == pr)
        #expect(model.spo2(baseline: spo2, effectSite: .zero) == spo2)
        var lastPulse = 0.0, lastSpO2 = 101.0
        for c in grid {
            let p = model.pulseRate(baseline: pr, effectSite: c).beatsPerMinute
            let s = model.spo2(baseline: spo2, effectSite: c).percent
            #expect(p >= lastPulse)
            #expect(s <= lastSpO2)
            lastPulse = p
            lastSpO2 = s
        }
        #expect(lastPulse < 70 * 1.5)  // never above the documented maximum (+50 %)
        #expect(lastSpO2 > 97 - 4)     // never below the documented maximum fall (4 points)
    }

    @Test("the documented magnitudes: analgesic levels move the vitals only a little")
    func documentedMagnitudes() {
        let model = ResponseModel.ketamineDefault
        let analgesic = Concentration.nanogramsPerMillilitre(250)
        let rise = model.pulseRate(baseline: .beatsPerMinute(100), effectSite: analgesic).beatsPerMinute - 100
        #expect(rise > 0 && rise < 5) // "a few percent"
        #expect(97 - model.spo2(baseline: .percent(97), effectSite: analgesic).percent < 0.1)
        // At about 1 µg/mL (a large bolus), the rise is 15-25 %.
        let bolus = model.pulseRate(baseline: .beatsPerMinute(100), effectSite: .nanogramsPerMillilitre(1000)).beatsPerMinute - 100
        #expect(bolus > 15 && bolus < 25)
        // Exactly half the maximum at EC50.
        #expect(abs(model.pulseRateIncrease.effect(at: .nanogramsPerMillilitre(1500)) - 0.25) < 1e-12)
        #expect(abs(model.spo2Decrease.effect(at: .nanogramsPerMillilitre(2000)) - 2) < 1e-12)
    }

    @Test("noise is reproducible from its seed, differs between seeds and is smooth and bounded")
    func noise() {
        let a = PhysiologyNoise(seed: 3), b = PhysiologyNoise(seed: 3), c = PhysiologyNoise(seed: 4)
        var differs = false
        var previous = a.sample(at: .zero)
        var sumSquares = 0.0
        let count = 4 * 3600 * 4 // every 250 ms for 4 h
        for i in 1...count {
            let t = Duration.milliseconds(250 * Int64(i))
            let x = a.sample(at: t), y = b.sample(at: t), z = c.sample(at: t)
            #expect(x == y)
            if x.pulseRate != z.pulseRate { differs = true }
            // Smooth: no jumps between samples 250 ms apart.
            #expect(abs(x.pulseRate - previous.pulseRate) < 2)
            #expect(abs(x.spo2 - previous.spo2) < 0.6)
            #expect(x.perfusionFactor >= 0.2)
            sumSquares += x.pulseRate * x.pulseRate
            previous = x
        }
        #expect(differs)
        let rms = (sumSquares / Double(count)).squareRoot()
        #expect(rms > 0.5 && rms < 3, "pulse-rate noise RMS \(rms) bpm")
    }

    @Test("the synthetic plethysmogram stays within 0...1 and peaks early in the beat")
    func plethysmogram() {
        var peak = (value: 0.0, phase: 0.0)
        for i in 0..<1000 {
            let phase = Double(i) / 1000
            let v = syntheticPlethysmogram(phase: phase)
            #expect(v >= 0 && v <= 1)
            #expect(abs(syntheticPlethysmogram(phase: phase + 7) - v) < 1e-12) // periodic
            if v > peak.value { peak = (v, phase) }
        }
        #expect(abs(peak.phase - 0.2) < 0.01)
        #expect(syntheticPlethysmogram(phase: .nan) == 0)
    }
}
