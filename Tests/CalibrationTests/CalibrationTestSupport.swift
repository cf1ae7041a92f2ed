import Foundation
import InfusionCore
@testable import Calibration

/// A deterministic pseudo-random generator (SplitMix64), so synthetic data is the same on every run.
struct SplitMix64: RandomNumberGenerator {
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

/// A test double for "pump delivering into a beaker on a balance": the mass on the pan at time t after
/// the pump started. Not a simulator: it only produces numbers for the analysis and the workflow.
struct SyntheticDelivery {
    /// Set rate, mL/h.
    var rate: Double
    /// Delivered / commanded (0.94 for a pump 6 % short).
    var deliveryFactor = 1.0
    /// g/mL.
    var density = LiquidDensity.waterAt20C.gramsPerMillilitre
    /// ± uniform noise on each reading, grams.
    var noise = 0.002
    /// Balance resolution, grams.
    var resolution = 0.001
    /// Evaporation loss, g/h.
    var evaporation = 0.0
    /// Extra delivery factor during the first `startupDuration` (start-up transient).
    var startupFactor = 1.0
    var startupDuration = Duration.zero
    var seed: UInt64 = 42

    /// The true mass at `t` (no noise).
    func mass(at t: Duration) -> Double {
        let hours = t.hours
        let startupHours = min(hours, startupDuration.hours)
        let volume = rate * deliveryFactor * (startupHours * startupFactor + (hours - startupHours))
        return volume * density - evaporation * hours
    }

    /// Samples 0...N of `method`, taken exactly on schedule.
    func samples(_ method: GravimetricMethod) -> [BalanceSample] {
        var generator = SplitMix64(seed: seed)
        return (0..<method.sampleCount).map { index in
            let t = method.scheduledTime(ofSample: index)
            return BalanceSample(index: index, elapsed: t, grams: reading(at: t, using: &generator))
        }
    }

    /// A noisy reading rounded to the resolution.
    func reading(at t: Duration, using generator: inout SplitMix64) -> Double {
        let noisy = mass(at: t) + Double.random(in: -noise...noise, using: &generator)
        return (noisy / resolution).rounded() * resolution
    }
}

func approximately(_ a: Double?, _ b: Double, _ tolerance: Double = 1e-9) -> Bool {
    guard let a else { return false }
    return abs(a - b) <= tolerance
}
