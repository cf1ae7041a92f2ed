import Foundation
import InfusionCore

// How the virtual patient's pulse rate and SpO2 respond to ketamine.
//
// THIS RESPONSE MODEL EXISTS TO TEST THE CONTROLLER, NOT TO PREDICT PATIENTS. Its shape is
// pharmacologically sensible (a sympathomimetic pulse-rate rise, a mild SpO2 fall only at high
// concentrations) but its constants are chosen to give the supervisor something plausible to watch.
// Numbers marked "invented for testing" have no source.

/// A sigmoid Emax (Hill) relation: effect = maximum · Cᵞ / (EC50ᵞ + Cᵞ).
///
/// Guarantees: 0 at zero concentration, monotonically non-decreasing in the concentration (for
/// non-negative `maximum`), never above `maximum`, and exactly `maximum / 2` at `ec50`. Negative or
/// non-finite concentrations count as zero. A plain value; any thread.
public struct SigmoidEmax: Hashable, Sendable {
    /// The effect approached at very high concentration (in the caller's effect unit).
    public var maximum: Double
    /// The concentration giving half the maximum effect.
    public var ec50: Concentration
    /// The Hill coefficient γ (steepness), > 0.
    public var hill: Double

    /// A sigmoid Emax relation.
    public init(maximum: Double, ec50: Concentration, hill: Double) {
        self.maximum = maximum
        self.ec50 = ec50
        self.hill = hill
    }

    /// The effect at `concentration`.
    public func effect(at concentration: Concentration) -> Double {
        let c = concentration.canonicalValue
        guard c.isFinite, c > 0, ec50.canonicalValue > 0, hill > 0 else { return 0 }
        let x = c / ec50.canonicalValue
        let ratio = switch hill {
        case 1: x
        case 2: x * x
        case 1.5: x * x.squareRoot()
        default: Foundation.pow(x, hill)
        }
        guard ratio.isFinite else { return maximum }
        return maximum * ratio / (1 + ratio)
    }
}

/// Maps the effect-site ketamine concentration to the patient's pulse rate and SpO2.
///
/// - Pulse rate: baseline × (1 + `pulseRateIncrease`(Ce)), a sympathomimetic rise. The default maximum
///   (+50 %) is of the order of the largest rise reported with anaesthetic S-ketamine concentrations
///   (heart rate up by at most 43.5 % at a mean serum S-ketamine of about 1 960 ng/mL: Långsjö JW et al.,
///   *S-ketamine anesthesia increases cerebral blood flow in excess of the metabolic needs in humans*,
///   Anesthesiology 2005;103(2):258–268). EC50 1 500 ng/mL (racemic) and γ 1.5 are invented for testing;
///   with them an analgesic infusion (about 150–250 ng/mL) raises the pulse by only a few percent,
///   1 000 ng/mL by about 18 %, and the effect-site peak of an instantaneous 0.5 mg/kg bolus (about
///   1 780 ng/mL with the Domino model) by about 28 %.
/// - SpO2: baseline − `spo2Decrease`(Ce) percentage points, floored at 0. Respiratory depression is rare at
///   analgesic doses (Cohen SP et al., ASRA/AAPM/ASA consensus guidelines on IV ketamine for chronic pain,
///   Reg Anesth Pain Med 2018;43(5):521–546, via reference/clinical.md), so the default effect is mild and
///   only appears at anaesthetic concentrations: at most 4 points, EC50 2 000 ng/mL, γ 2 (all invented
///   for testing).
///
/// Guarantees: the pulse rate never falls and the SpO2 never rises as the concentration rises; with
/// no drug both equal their baselines. Pure; any thread.
public struct ResponseModel: Hashable, Sendable {
    /// Fractional pulse-rate increase (0.5 = +50 %) as a function of the effect-site concentration.
    public var pulseRateIncrease: SigmoidEmax
    /// SpO2 decrease in percentage points as a function of the effect-site concentration.
    public var spo2Decrease: SigmoidEmax

    /// A response model from its two relations.
    public init(pulseRateIncrease: SigmoidEmax, spo2Decrease: SigmoidEmax) {
        self.pulseRateIncrease = pulseRateIncrease
        self.spo2Decrease = spo2Decrease
    }

    /// The documented default (see the type's comment for sources and invented numbers).
    public static let ketamineDefault = ResponseModel(
        pulseRateIncrease: SigmoidEmax(maximum: 0.5, ec50: .nanogramsPerMillilitre(1500), hill: 1.5),
        spo2Decrease: SigmoidEmax(maximum: 4, ec50: .nanogramsPerMillilitre(2000), hill: 2))

    /// A patient whose vitals do not respond to the drug (for tests that need flat vitals).
    public static let none = ResponseModel(
        pulseRateIncrease: SigmoidEmax(maximum: 0, ec50: .nanogramsPerMillilitre(1), hill: 1),
        spo2Decrease: SigmoidEmax(maximum: 0, ec50: .nanogramsPerMillilitre(1), hill: 1))

    /// Pulse rate at effect-site concentration `ce` for a patient whose drug-free pulse is `baseline`.
    public func pulseRate(baseline: PulseRate, effectSite ce: Concentration) -> PulseRate {
        baseline * (1 + pulseRateIncrease.effect(at: ce))
    }

    /// SpO2 at effect-site concentration `ce` for a patient whose drug-free SpO2 is `baseline`.
    public func spo2(baseline: Percentage, effectSite ce: Concentration) -> Percentage {
        .percent(max(0, baseline.percent - spo2Decrease.effect(at: ce)))
    }
}

/// Slow, smooth, reproducible physiological variation ("baseline noise") added to the pulse rate, SpO2 and
/// perfusion index.
///
/// A pure function of the seed and the time since the session started: the same seed gives the same
/// variation at the same instant however the session is stepped. Each channel is the sum of two octaves of
/// value noise (random values of unit variance at fixed grid points, smoothly interpolated): a slow one
/// (20 s grid) and a fast one (2 s grid). Amplitudes (standard deviation at grid points) are invented for
/// testing: pulse rate 1.5 + 0.7 bpm, SpO2 0.4 + 0.2 percentage points, perfusion index 8 % + 4 % of its value.
/// Any thread.
public struct PhysiologyNoise: Hashable, Sendable {
    /// The seed; equal seeds give equal noise.
    public let seed: UInt64

    /// Noise determined by `seed`.
    public init(seed: UInt64) { self.seed = seed }

    /// The variation at time `t` after the start.
    public func sample(at t: Duration) -> (pulseRate: Double, spo2: Double, perfusionFactor: Double) {
        var scratch = Cache()
        return sample(at: t, cache: &scratch)
    }

    /// The grid values last used, so that stepping through time recomputes them only when a grid point
    /// is passed (every 2 s or 20 s). Owned by one caller; results are identical with or without it.
    public struct Cache: Sendable {
        var index = [Int64](repeating: -1, count: 6)
        var g0 = [Double](repeating: 0, count: 6)
        var g1 = [Double](repeating: 0, count: 6)
        /// An empty cache.
        public init() {}
    }

    /// `sample(at:)` using and updating `cache` (the same values, computed faster when `t` advances
    /// in small steps). Allocation-free once the cache exists.
    public func sample(at t: Duration, cache: inout Cache) -> (pulseRate: Double, spo2: Double, perfusionFactor: Double) {
        let ns = max(t.nanoseconds, 0)
        let slow: Int64 = 20_000_000_000, fast: Int64 = 2_000_000_000
        let pulse = 1.5 * octave(0, ns, slow, &cache) + 0.7 * octave(1, ns, fast, &cache)
        let spo2 = 0.4 * octave(2, ns, slow, &cache) + 0.2 * octave(3, ns, fast, &cache)
        let pi = 0.08 * octave(4, ns, slow, &cache) + 0.04 * octave(5, ns, fast, &cache)
        return (pulse, spo2, max(0.2, 1 + pi))
    }

    private func octave(_ channel: Int, _ ns: Int64, _ period: Int64, _ cache: inout Cache) -> Double {
        let index = ns / period
        if cache.index[channel] != index {
            cache.index[channel] = index
            cache.g0[channel] = gridValue(UInt64(channel + 1), UInt64(index))
            cache.g1[channel] = gridValue(UInt64(channel + 1), UInt64(index + 1))
        }
        let f = Double(ns % period) / Double(period)
        let s = f * f * (3 - 2 * f)
        let g0 = cache.g0[channel]
        return g0 + (cache.g1[channel] - g0) * s
    }

    /// A zero-mean, unit-variance value for one grid point (uniform on ±√3: cheap, and the shape of the
    /// distribution does not matter for this purpose).
    private func gridValue(_ channel: UInt64, _ index: UInt64) -> Double {
        let bits = Self.mix(seed ^ Self.mix(channel &* 0x9E37_79B9_7F4A_7C15 ^ index))
        let unit = Double(bits >> 11) * 0x1p-53 // [0, 1)
        return (2 * unit - 1) * 1.732_050_807_568_877_2
    }

    /// SplitMix64's finaliser: a bijective 64-bit mix.
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A synthetic photoplethysmogram shape, invented for testing (it is not a physiological model): a
/// systolic peak at 20 % of the cardiac cycle and a smaller diastolic wave at 55 %, scaled to 0...1.
/// `phase` is the fraction of the current beat (any real number; only its fractional part counts). Pure.
public func syntheticPlethysmogram(phase: Double) -> Double {
    guard phase.isFinite else { return 0 }
    let p = phase - phase.rounded(.down)
    func bump(_ centre: Double, _ width: Double) -> Double {
        let d = abs(p - centre), x = min(d, 1 - d) / width // distance around the cycle
        return Foundation.exp(-x * x)
    }
    let raw = bump(0.2, 0.08) + 0.35 * bump(0.55, 0.1)
    return min(1, max(0, raw / 1.0005))
}
