import Foundation
@testable import DeviceSimulators

/// The textbook closed-form solution of the three-compartment mammillary model, written independently
/// of the simulator's eigen-decomposition: the disposition rates are the roots of the characteristic
/// cubic (solved trigonometrically), and the unit-bolus coefficients are
/// A_i = (k21 − λ_i)(k31 − λ_i) / ((λ_j − λ_i)(λ_k − λ_i)) / V1.
/// Times in minutes, doses in mg, rates in mg/min, concentrations in mg/L.
struct AnalyticThreeCompartment {
    let lambda: [Double]
    let coefficient: [Double]
    let ke0: Double

    init(_ p: ThreeCompartmentParameters) {
        let (k10, k12, k21, k13, k31) = (p.k10, p.k12, p.k21, p.k13, p.k31)
        // λ³ − a2 λ² + a1 λ − a0 = 0
        let a0 = k10 * k21 * k31
        let a1 = k10 * k31 + k21 * k31 + k21 * k13 + k10 * k21 + k31 * k12
        let a2 = k10 + k12 + k13 + k21 + k31
        let b = -a2, c = a1, d = -a0
        let pp = c - b * b / 3
        let q = 2 * b * b * b / 27 - b * c / 3 + d
        let r = 2 * (-pp / 3).squareRoot()
        let phi = acos(max(-1, min(1, 3 * q / (2 * pp) * (-3 / pp).squareRoot()))) / 3
        let roots = (0..<3).map { k in r * cos(phi - 2 * Double.pi * Double(k) / 3) - b / 3 }.sorted()
        lambda = roots
        coefficient = (0..<3).map { i in
            let j = (i + 1) % 3, k = (i + 2) % 3
            return (k21 - roots[i]) * (k31 - roots[i]) / ((roots[j] - roots[i]) * (roots[k] - roots[i])) / p.centralVolume
        }
        ke0 = p.ke0
    }

    /// Plasma concentration `t` min after a bolus of `dose` mg.
    func bolusPlasma(dose: Double, t: Double) -> Double {
        (0..<3).reduce(0) { $0 + dose * coefficient[$1] * exp(-lambda[$1] * t) }
    }

    /// Effect-site concentration `t` min after a bolus of `dose` mg.
    func bolusEffect(dose: Double, t: Double) -> Double {
        (0..<3).reduce(0) { sum, i in
            sum + dose * coefficient[i] * ke0 / (ke0 - lambda[i]) * (exp(-lambda[i] * t) - exp(-ke0 * t))
        }
    }

    /// Plasma concentration at `t` min for `rate` mg/min infused from 0 to `stop` min.
    func infusionPlasma(rate: Double, stop: Double, t: Double) -> Double {
        (0..<3).reduce(0) { sum, i in
            let on = min(t, stop), off = max(0, t - stop)
            return sum + rate * coefficient[i] / lambda[i] * (1 - exp(-lambda[i] * on)) * exp(-lambda[i] * off)
        }
    }

    /// Effect-site concentration at `t` ≤ end of a constant infusion of `rate` mg/min started at 0.
    func infusionEffect(rate: Double, t: Double) -> Double {
        (0..<3).reduce(0) { sum, i in
            let b = rate * coefficient[i] / lambda[i]
            return sum + b * ((1 - exp(-ke0 * t)) - ke0 * (exp(-lambda[i] * t) - exp(-ke0 * t)) / (ke0 - lambda[i]))
        }
    }
}

/// Relative error |a − b| / |b| (absolute when b is 0).
func relativeError(_ a: Double, _ b: Double) -> Double {
    b == 0 ? abs(a) : abs(a - b) / abs(b)
}

/// The oximeter frame period at 75 Hz, rounded to the nanosecond.
let frame75Hz = Duration.nanoseconds(13_333_333)
