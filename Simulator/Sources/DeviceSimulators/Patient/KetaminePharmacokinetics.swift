import Foundation
import InfusionCore

// The virtual patient's pharmacokinetics: a three-compartment mammillary model with an effect site,
// integrated exactly for piecewise-constant input.
//
// THIS MODEL EXISTS TO TEST THE CONTROLLER, NOT TO PREDICT PATIENTS. It gives the simulated oximeter a
// plausible, reproducible drug-driven signal; it is not validated for, and must never be used for,
// dosing a real patient.

/// The parameters of a three-compartment mammillary pharmacokinetic model with an effect-site
/// compartment: volumes in litres, clearances in litres per minute, `ke0` per minute.
///
/// Compartment 1 is the central (plasma) compartment into which the drug is infused and from which it is
/// eliminated; compartments 2 and 3 exchange with it. The micro rate constants follow from the volumes
/// and clearances: k10 = CL/V1, k12 = Q2/V1, k21 = Q2/V2, k13 = Q3/V1, k31 = Q3/V3.
///
/// A plain value; any thread.
public struct ThreeCompartmentParameters: Hashable, Sendable, CustomStringConvertible {
    /// Central volume V1 (L).
    public var centralVolume: Double
    /// Rapidly equilibrating peripheral volume V2 (L).
    public var fastPeripheralVolume: Double
    /// Slowly equilibrating peripheral volume V3 (L).
    public var slowPeripheralVolume: Double
    /// Elimination clearance CL = k10·V1 (L/min).
    public var clearance: Double
    /// Inter-compartmental clearance Q2 = k12·V1 = k21·V2 (L/min).
    public var fastDistributionClearance: Double
    /// Inter-compartmental clearance Q3 = k13·V1 = k31·V3 (L/min).
    public var slowDistributionClearance: Double
    /// Plasma–effect-site equilibration rate constant ke0 (1/min).
    public var ke0: Double
    /// Where the numbers come from, for logs and reports.
    public var citation: String

    /// Parameters from volumes (L), clearances (L/min) and ke0 (1/min). Validated when a
    /// `ThreeCompartmentModel` is built from them.
    public init(
        centralVolume: Double, fastPeripheralVolume: Double, slowPeripheralVolume: Double,
        clearance: Double, fastDistributionClearance: Double, slowDistributionClearance: Double,
        ke0: Double, citation: String
    ) {
        self.centralVolume = centralVolume
        self.fastPeripheralVolume = fastPeripheralVolume
        self.slowPeripheralVolume = slowPeripheralVolume
        self.clearance = clearance
        self.fastDistributionClearance = fastDistributionClearance
        self.slowDistributionClearance = slowDistributionClearance
        self.ke0 = ke0
        self.citation = citation
    }

    /// Parameters from the central volume V1 (L) and the micro rate constants (1/min), the form most
    /// published ketamine and TCI models are written in.
    public init(
        centralVolume v1: Double, k10: Double, k12: Double, k21: Double, k13: Double, k31: Double,
        ke0: Double, citation: String
    ) {
        self.init(
            centralVolume: v1, fastPeripheralVolume: v1 * k12 / k21, slowPeripheralVolume: v1 * k13 / k31,
            clearance: k10 * v1, fastDistributionClearance: k12 * v1, slowDistributionClearance: k13 * v1,
            ke0: ke0, citation: citation)
    }

    /// Elimination rate constant k10 = CL/V1 (1/min).
    public var k10: Double { clearance / centralVolume }
    /// k12 = Q2/V1 (1/min).
    public var k12: Double { fastDistributionClearance / centralVolume }
    /// k21 = Q2/V2 (1/min).
    public var k21: Double { fastDistributionClearance / fastPeripheralVolume }
    /// k13 = Q3/V1 (1/min).
    public var k13: Double { slowDistributionClearance / centralVolume }
    /// k31 = Q3/V3 (1/min).
    public var k31: Double { slowDistributionClearance / slowPeripheralVolume }
    /// Volume of distribution at steady state V1 + V2 + V3 (L).
    public var steadyStateVolume: Double { centralVolume + fastPeripheralVolume + slowPeripheralVolume }

    /// The parameters in litres and litres per minute, with the citation.
    public var description: String {
        func f(_ x: Double) -> String { NumberText.format(x, fractionDigits: 4) }
        return "V1 \(f(centralVolume)) L, V2 \(f(fastPeripheralVolume)) L, V3 \(f(slowPeripheralVolume)) L, "
            + "CL \(f(clearance)) L/min, Q2 \(f(fastDistributionClearance)) L/min, Q3 \(f(slowDistributionClearance)) L/min, "
            + "ke0 \(f(ke0))/min (\(citation))"
    }

    // MARK: Published ketamine model

    /// Domino model, central volume per kilogram of body weight: V1 = 0.063 L/kg.
    public static let dominoCentralVolumePerKilogram = 0.063
    /// Domino model micro rate constants (1/min).
    public static let dominoRateConstants = (k10: 0.4381, k12: 0.5921, k21: 0.2470, k13: 0.5900, k31: 0.0146)
    /// Effect-site rate constant used with the Domino model (1/min); see `domino1982(weight:)`.
    public static let dominoKe0 = 0.652

    /// Racemic ketamine, three-compartment model of Domino et al.:
    ///
    /// Domino EF, Zsigmond EK, Domino LE, Domino KE, Kothary SP, Domino SE. *Plasma levels of ketamine and
    /// two of its metabolites in surgical patients using a gas chromatographic mass fragmentographic
    /// assay.* Anesth Analg 1982;61(2):87–92. PMID 7198883.
    ///
    /// Parameters (adults, all linear in total body weight, no other covariates):
    /// - V1 = 0.063 L/kg
    /// - k10 = 0.4381, k12 = 0.5921, k21 = 0.2470, k13 = 0.5900, k31 = 0.0146 (all 1/min)
    ///
    /// For 70 kg this gives V1 4.41 L, CL 1.93 L/min (116 L/h), Vss 193 L, and a terminal half-life of
    /// about 1.9 h (115 min). These are the values distributed as the "Domino" ketamine model with open target-
    /// controlled-infusion software (e.g. the `opentiva` package, which cites the same PMID); they were not
    /// re-checked against the tables of the 1982 paper itself, so treat the paper, not this comment, as the
    /// authority, and change `dominoRateConstants` if a check finds a difference.
    ///
    /// ke0 = 0.652/min is NOT published for this model: it is the value that puts the effect-site peak
    /// about 1 min after a bolus (the time-to-peak method; the same value `opentiva` uses). It only
    /// shapes the lag of the simulated pulse-rate and SpO2 response; it is invented for testing.
    public static func domino1982(weight: BodyWeight) -> ThreeCompartmentParameters {
        let k = dominoRateConstants
        return ThreeCompartmentParameters(
            centralVolume: dominoCentralVolumePerKilogram * weight.kilograms,
            k10: k.k10, k12: k.k12, k21: k.k21, k13: k.k13, k31: k.k31, ke0: dominoKe0,
            citation: "Domino et al., Anesth Analg 1982;61:87-92 (PMID 7198883); ke0 from a 1-min time to peak")
    }
}

/// Why pharmacokinetic parameters were refused: which parameter, and what a valid one looks like.
public struct PharmacokineticParameterError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The parameter's name ("V1", "CL", ...).
    public let parameter: String
    /// The refused value.
    public let value: Double

    /// What was refused and what to check.
    public var description: String {
        "pharmacokinetic parameter \(parameter) = \(value) is not usable: volumes, clearances and ke0 must be "
            + "finite and greater than zero (check the body weight and the model's constants)"
    }
}

/// The amounts of drug in the three compartments (mg).
public struct CompartmentAmounts: Hashable, Sendable {
    /// Drug in the central compartment (mg).
    public var central: Mass
    /// Drug in the fast peripheral compartment (mg).
    public var fastPeripheral: Mass
    /// Drug in the slow peripheral compartment (mg).
    public var slowPeripheral: Mass
    /// Total drug in the body (mg).
    public var total: Mass { central + fastPeripheral + slowPeripheral }
}

/// The state of one patient's drug disposition, in the model's modal coordinates.
///
/// Value semantics, no references; any thread. Read it through `ThreeCompartmentModel`
/// (concentrations, amounts) or through `Pharmacokinetics`.
public struct PharmacokineticState: Hashable, Sendable {
    /// Modal amplitudes z_i (mg/L): the plasma concentration is Σ w_i z_i.
    var modes: SIMD3<Double> = .zero
    /// Effect-site concentration (mg/L).
    var effectSite: Double = 0
    /// Drug that has entered the body (mg).
    public internal(set) var delivered: Double = 0
    /// Drug eliminated from the body (mg), integrated exactly.
    public internal(set) var eliminated: Double = 0
    /// Time since the state was created (drug-free at time zero).
    public internal(set) var elapsed: Duration = .zero

    /// A drug-free patient at time zero.
    public init() {}
}

/// The exact one-step map of the linear model for a fixed step length and a constant input rate:
/// `z' = decay·z + inputGain·u`, and the matching effect-site and elimination updates.
/// Computed by `ThreeCompartmentModel.step(for:)`; cheap to reuse for equal steps.
public struct PharmacokineticStep: Hashable, Sendable {
    /// The step length.
    public let duration: Duration
    let minutes: Double
    let decay: SIMD3<Double>
    let inputGain: SIMD3<Double>
    let effectDecay: Double
    let effectFromModes: SIMD3<Double>
    let effectFromInput: Double
    let eliminationFromModes: SIMD3<Double>
    let eliminationFromInput: Double
}

/// A validated three-compartment model with its eigen-decomposition: the pure mathematics of the
/// virtual patient's pharmacokinetics.
///
/// The linear system for the amounts x (mg) is made symmetric by the volumes (y_i = x_i/√V_i), which
/// always has real, non-positive eigenvalues and an orthonormal eigenbasis (found by Jacobi rotations).
/// In that basis each mode obeys dz_i/dt = −λ_i z_i + w_i u, and the plasma concentration is
/// C = Σ w_i z_i, so a step with constant input u has the exact solution
/// z_i(t+h) = z_i e^{−λ_i h} + w_i u (1 − e^{−λ_i h})/λ_i. The effect site (dCe/dt = ke0 (C − Ce)) and
/// the eliminated amount (∫ CL·C dt) are integrated in closed form over the same step. There is no
/// truncation error: results differ from the analytic solution only by floating-point rounding,
/// whatever the step length.
///
/// Immutable value; any thread. All functions are pure.
public struct ThreeCompartmentModel: Hashable, Sendable {
    /// The parameters the model was built from.
    public let parameters: ThreeCompartmentParameters
    /// The disposition rate constants λ_i (1/min), ascending: the unit-bolus plasma response is
    /// Σ w_i² e^{−λ_i t}.
    public let dispositionRates: SIMD3<Double>
    /// The modal input/output weights w_i (1/√L); w_i² are the coefficients (1/L) of the unit-bolus
    /// plasma response.
    public let modalWeights: SIMD3<Double>
    /// Amount in compartment j per unit of mode i: x_j = Σ_i amountBasis[j][i] · z_i.
    private let amountBasis: [SIMD3<Double>]

    /// Builds and decomposes the model. Throws when a volume, clearance or ke0 is not finite and positive.
    public init(_ parameters: ThreeCompartmentParameters) throws(PharmacokineticParameterError) {
        let p = parameters
        for (name, value) in [("V1", p.centralVolume), ("V2", p.fastPeripheralVolume), ("V3", p.slowPeripheralVolume),
                              ("CL", p.clearance), ("Q2", p.fastDistributionClearance),
                              ("Q3", p.slowDistributionClearance), ("ke0", p.ke0)]
        where !(value.isFinite && value > 0) {
            throw PharmacokineticParameterError(parameter: name, value: value)
        }
        self.parameters = p
        let v = [p.centralVolume, p.fastPeripheralVolume, p.slowPeripheralVolume]
        // Symmetric form of the rate matrix: S_ii = −(outflow clearances)/V_i, S_ij = Q_ij/√(V_i V_j).
        let q2 = p.fastDistributionClearance, q3 = p.slowDistributionClearance
        var s: [[Double]] = [
            [-(p.clearance + q2 + q3) / v[0], q2 / (v[0] * v[1]).squareRoot(), q3 / (v[0] * v[2]).squareRoot()],
            [q2 / (v[0] * v[1]).squareRoot(), -q2 / v[1], 0],
            [q3 / (v[0] * v[2]).squareRoot(), 0, -q3 / v[2]],
        ]
        let vectors = Self.jacobiEigen(&s)
        // Sort modes by ascending λ = −eigenvalue.
        let order = [0, 1, 2].sorted { -s[$0][$0] < -s[$1][$1] }
        var rates = SIMD3<Double>.zero, weights = SIMD3<Double>.zero
        var basis = [SIMD3<Double>](repeating: .zero, count: 3)
        for (mode, column) in order.enumerated() {
            rates[mode] = -s[column][column]
            // Fix the sign so that w_i ≥ 0 (purely cosmetic: the model is invariant to it).
            let sign: Double = vectors[0][column] < 0 ? -1 : 1
            weights[mode] = sign * vectors[0][column] / v[0].squareRoot()
            for j in 0..<3 { basis[j][mode] = sign * vectors[j][column] * v[j].squareRoot() }
        }
        dispositionRates = rates
        modalWeights = weights
        amountBasis = basis
    }

    /// Jacobi eigenvalue iteration for a symmetric 3×3 matrix: leaves the eigenvalues on the diagonal of
    /// `a` and returns the eigenvectors as columns. Converges quadratically; a fixed cap keeps it bounded.
    private static func jacobiEigen(_ a: inout [[Double]]) -> [[Double]] {
        var vectors: [[Double]] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        for _ in 0..<50 {
            let offDiagonal = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2]
            let scale = a[0][0] * a[0][0] + a[1][1] * a[1][1] + a[2][2] * a[2][2]
            if offDiagonal <= 1e-36 * scale { break }
            for (p, q) in [(0, 1), (0, 2), (1, 2)] where a[p][q] != 0 {
                let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), sn = t * c
                for k in 0..<3 { // A ← A·J
                    let akp = a[k][p], akq = a[k][q]
                    a[k][p] = c * akp - sn * akq
                    a[k][q] = sn * akp + c * akq
                }
                for k in 0..<3 { // A ← Jᵀ·A
                    let apk = a[p][k], aqk = a[q][k]
                    a[p][k] = c * apk - sn * aqk
                    a[q][k] = sn * apk + c * aqk
                }
                for k in 0..<3 {
                    let vkp = vectors[k][p], vkq = vectors[k][q]
                    vectors[k][p] = c * vkp - sn * vkq
                    vectors[k][q] = sn * vkp + c * vkq
                }
            }
        }
        return vectors
    }

    // MARK: Stepping

    /// The exact one-step map for a step of `duration` (non-positive durations give the identity).
    /// Costs four exponentials; reuse it for equal steps (as `Pharmacokinetics` does).
    public func step(for duration: Duration) -> PharmacokineticStep {
        let h = max(duration.seconds / 60, 0)
        let k = parameters.ke0
        var decay = SIMD3<Double>.zero, phi = SIMD3<Double>.zero
        var effectFromModes = SIMD3<Double>.zero, effectFromInput = 0.0, eliminationFromInput = 0.0
        let effectDecay = Foundation.exp(-k * h)
        let effectPhi = Self.phi(k, h)
        for i in 0..<3 {
            let lambda = dispositionRates[i], w = modalWeights[i]
            decay[i] = Foundation.exp(-lambda * h)
            phi[i] = Self.phi(lambda, h)
            let overlap = Self.convolution(lambda, k, h) // ∫₀ʰ e^{−k(h−s)} e^{−λs} ds
            effectFromModes[i] = k * w * overlap
            effectFromInput += k * w * w * (effectPhi - overlap) / lambda
            eliminationFromInput += parameters.clearance * w * w * Self.phiIntegral(lambda, h)
        }
        return PharmacokineticStep(
            duration: max(duration, .zero), minutes: h, decay: decay, inputGain: modalWeights * phi,
            effectDecay: effectDecay, effectFromModes: effectFromModes, effectFromInput: effectFromInput,
            eliminationFromModes: parameters.clearance * modalWeights * phi, eliminationFromInput: eliminationFromInput)
    }

    /// The state after `step` with the infusion held at `rate` throughout (exact). Negative or non-finite
    /// rates are treated as zero (a pump cannot withdraw drug from the patient). Pure; allocation-free.
    public func advance(_ state: PharmacokineticState, by step: PharmacokineticStep, infusionRate rate: DoseRate)
        -> PharmacokineticState
    {
        var next = state
        next.apply(step, milligramsPerMinute: Self.milligramsPerMinute(rate))
        return next
    }

    /// The state after `duration` with the infusion held at `rate` throughout (exact). Negative or
    /// non-finite rates are treated as zero.
    public func advance(_ state: PharmacokineticState, by duration: Duration, infusionRate rate: DoseRate)
        -> PharmacokineticState
    {
        advance(state, by: step(for: duration), infusionRate: rate)
    }

    /// The state after an instantaneous bolus of `dose` into the central compartment. Negative or
    /// non-finite doses are ignored.
    public func bolus(_ state: PharmacokineticState, _ dose: Mass) -> PharmacokineticState {
        guard dose.canonicalValue.isFinite, dose.canonicalValue > 0 else { return state }
        var next = state
        next.modes += modalWeights * dose.milligrams
        next.delivered += dose.milligrams
        return next
    }

    /// Plasma (central-compartment) concentration.
    public func plasmaConcentration(_ state: PharmacokineticState) -> Concentration {
        .milligramsPerMillilitre((modalWeights * state.modes).sum() / 1000)
    }

    /// Effect-site concentration.
    public func effectSiteConcentration(_ state: PharmacokineticState) -> Concentration {
        .milligramsPerMillilitre(state.effectSite / 1000)
    }

    /// Amounts of drug in each compartment.
    public func amounts(_ state: PharmacokineticState) -> CompartmentAmounts {
        CompartmentAmounts(
            central: .milligrams((amountBasis[0] * state.modes).sum()),
            fastPeripheral: .milligrams((amountBasis[1] * state.modes).sum()),
            slowPeripheral: .milligrams((amountBasis[2] * state.modes).sum()))
    }

    /// The plasma concentration a constant rate approaches: rate ÷ CL.
    public func steadyStatePlasmaConcentration(rate: DoseRate) -> Concentration {
        .milligramsPerMillilitre(Self.milligramsPerMinute(rate) / parameters.clearance / 1000)
    }

    /// A dose rate in mg/min, with negative and non-finite rates as zero.
    static func milligramsPerMinute(_ rate: DoseRate) -> Double {
        let u = rate.milligramsPerHour / 60
        return u.isFinite && u > 0 ? u : 0
    }

    // MARK: Closed-form kernels

    /// (1 − e^{−a h}) / a, accurate for small a·h.
    static func phi(_ a: Double, _ h: Double) -> Double {
        let x = a * h
        return abs(x) < 1e-8 ? h * (1 - x / 2) : -Foundation.expm1(-x) / a
    }

    /// ∫₀ʰ (1 − e^{−a s})/a ds = (h − phi(a, h)) / a, accurate for small a·h.
    static func phiIntegral(_ a: Double, _ h: Double) -> Double {
        let x = a * h
        if abs(x) < 1e-3 { return h * h * (0.5 - x / 6 + x * x / 24 - x * x * x / 120) }
        return (h - phi(a, h)) / a
    }

    /// ∫₀ʰ e^{−b(h−s)} e^{−a s} ds = (e^{−a h} − e^{−b h}) / (b − a), stable when a ≈ b.
    static func convolution(_ a: Double, _ b: Double, _ h: Double) -> Double {
        let x = (b - a) * h / 2
        if abs(x) > 0.5 { return (Foundation.exp(-a * h) - Foundation.exp(-b * h)) / (b - a) }
        let sinhc = abs(x) < 1e-4 ? 1 + x * x / 6 : Foundation.sinh(x) / x
        return h * Foundation.exp(-(a + b) * h / 2) * sinhc
    }
}

extension PharmacokineticState {
    mutating func apply(_ step: PharmacokineticStep, milligramsPerMinute u: Double) {
        effectSite = effectSite * step.effectDecay + (step.effectFromModes * modes).sum() + step.effectFromInput * u
        eliminated += (step.eliminationFromModes * modes).sum() + step.eliminationFromInput * u
        modes = modes * step.decay + step.inputGain * u
        delivered += u * step.minutes
        elapsed += step.duration
    }
}

/// One patient's ketamine pharmacokinetics over a session: a `ThreeCompartmentModel`, its state, and
/// the exact step map for the last step length (so stepping at a fixed rate costs a few multiply-adds).
///
/// Driven by the drug the simulated pump actually delivers: call `advance(by:infusionRate:)` with the
/// rate that held over each interval (piecewise-constant input) and `giveBolus(_:)` for an instantaneous
/// dose. A value type with no clock and no threads: the caller owns time. Not shared between threads
/// while mutating (it is `Sendable`, so a copy may be handed over).
public struct Pharmacokinetics: Sendable {
    /// The model.
    public let model: ThreeCompartmentModel
    /// The current state.
    public private(set) var state = PharmacokineticState()
    private var cachedStep: PharmacokineticStep

    /// A drug-free patient described by `model`, at time zero.
    public init(model: ThreeCompartmentModel) {
        self.model = model
        cachedStep = model.step(for: .zero)
    }

    /// The Domino et al. (1982) ketamine model for a patient of `weight`; see
    /// `ThreeCompartmentParameters.domino1982(weight:)`. Throws for a non-positive weight.
    public static func ketamine(weight: BodyWeight) throws(PharmacokineticParameterError) -> Pharmacokinetics {
        Pharmacokinetics(model: try ThreeCompartmentModel(.domino1982(weight: weight)))
    }

    /// Advances by `duration` with the infusion held at `infusionRate` for the whole interval (exact for
    /// that piecewise-constant input). Non-positive durations change nothing; negative or non-finite rates
    /// count as zero. Allocation-free; reuses the step map while the step length stays the same.
    public mutating func advance(by duration: Duration, infusionRate: DoseRate) {
        guard duration > .zero else { return }
        if cachedStep.duration != duration { cachedStep = model.step(for: duration) }
        state.apply(cachedStep, milligramsPerMinute: ThreeCompartmentModel.milligramsPerMinute(infusionRate))
    }

    /// Gives `dose` as an instantaneous bolus into plasma (negative or non-finite doses are ignored).
    public mutating func giveBolus(_ dose: Mass) {
        state = model.bolus(state, dose)
    }

    /// Plasma concentration now.
    public var plasmaConcentration: Concentration { model.plasmaConcentration(state) }
    /// Effect-site concentration now.
    public var effectSiteConcentration: Concentration { model.effectSiteConcentration(state) }
    /// Drug in each compartment now.
    public var amounts: CompartmentAmounts { model.amounts(state) }
    /// Drug delivered into the patient so far.
    public var delivered: Mass { .milligrams(state.delivered) }
    /// Drug eliminated so far.
    public var eliminated: Mass { .milligrams(state.eliminated) }
    /// Time since the start.
    public var elapsed: Duration { state.elapsed }
}

extension Concentration {
    /// The concentration in ng/mL (= µg/L), the unit plasma drug levels are reported in.
    public var nanogramsPerMillilitre: Double { canonicalValue * 1_000_000 }

    /// A concentration of `value` ng/mL (= µg/L).
    public static func nanogramsPerMillilitre(_ value: Double) -> Concentration {
        Concentration(canonicalValue: value / 1_000_000)
    }
}
