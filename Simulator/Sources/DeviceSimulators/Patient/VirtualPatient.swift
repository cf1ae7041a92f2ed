import Foundation
import InfusionCore

/// Who the virtual patient is: body weight, drug-free vital signs, and the physiology-noise settings.
/// A value; any thread.
public struct PatientProfile: Hashable, Sendable {
    /// Body weight (scales the pharmacokinetic volumes and clearances).
    public var weight: BodyWeight
    /// Drug-free SpO2.
    public var baselineSpO2: Percentage
    /// Drug-free pulse rate.
    public var baselinePulseRate: PulseRate
    /// Drug-free perfusion index.
    public var baselinePerfusionIndex: Percentage
    /// The physiology-noise seed, or nil for none (vitals then follow the models exactly).
    public var noiseSeed: UInt64?

    /// A patient profile. `baselinePerfusionIndex` defaults to 3 % (a typical finger value, invented for
    /// testing); `noiseSeed` defaults to 1.
    public init(
        weight: BodyWeight, baselineSpO2: Percentage, baselinePulseRate: PulseRate,
        baselinePerfusionIndex: Percentage = .percent(3), noiseSeed: UInt64? = 1
    ) {
        self.weight = weight
        self.baselineSpO2 = baselineSpO2
        self.baselinePulseRate = baselinePulseRate
        self.baselinePerfusionIndex = baselinePerfusionIndex
        self.noiseSeed = noiseSeed
    }
}

/// What the virtual patient looks like at one instant: the "true" vital signs a perfect oximeter would
/// report, the measurement conditions a simulated oximeter must encode (it reports no SpO2 while the
/// probe is off, sets its artifact bit during motion, ...), and the drug levels behind them.
public struct PatientObservation: Hashable, Sendable {
    /// Time since the session started.
    public var time: Duration
    /// The vital signs (after scripted events).
    public var vitals: TrueVitals
    /// The measurement conditions active now.
    public var conditions: MeasurementConditions
    /// Plasma ketamine concentration.
    public var plasmaConcentration: Concentration
    /// Effect-site ketamine concentration (drives the response).
    public var effectSiteConcentration: Concentration
    /// Heart beats since the start (fractional): the integral of the pulse rate. The fractional part is
    /// the phase within the current beat; a beat starts whenever the integer part increases.
    public var cardiacCycles: Double
    /// The synthetic plethysmogram at this instant, 0...1 (`syntheticPlethysmogram`).
    public var plethysmogram: Double

    /// An observation from its parts (for tests and for feeding a simulated oximeter known values);
    /// `plethysmogram` defaults to `syntheticPlethysmogram(phase: cardiacCycles)`.
    public init(
        time: Duration, vitals: TrueVitals, conditions: MeasurementConditions = [],
        plasmaConcentration: Concentration = .nanogramsPerMillilitre(0),
        effectSiteConcentration: Concentration = .nanogramsPerMillilitre(0), cardiacCycles: Double = 0,
        plethysmogram: Double? = nil
    ) {
        self.time = time
        self.vitals = vitals
        self.conditions = conditions
        self.plasmaConcentration = plasmaConcentration
        self.effectSiteConcentration = effectSiteConcentration
        self.cardiacCycles = cardiacCycles
        self.plethysmogram = plethysmogram ?? syntheticPlethysmogram(phase: cardiacCycles)
    }

    /// SpO2 (shortcut for `vitals.spo2`).
    public var spo2: Percentage { vitals.spo2 }
    /// Pulse rate (shortcut for `vitals.pulseRate`).
    public var pulseRate: PulseRate { vitals.pulseRate }
    /// Perfusion index (shortcut for `vitals.perfusionIndex`).
    public var perfusionIndex: Percentage { vitals.perfusionIndex }
}

/// The virtual patient: ketamine pharmacokinetics (Domino et al. 1982, see
/// `ThreeCompartmentParameters.domino1982`) driven by the drug the simulated pump actually delivers, a
/// response model for pulse rate and SpO2 (`ResponseModel`), smooth physiology noise
/// (`PhysiologyNoise`), and the scenario's scripted events (`ScenarioTimeline`).
///
/// IT EXISTS TO TEST THE CONTROLLER, NOT TO PREDICT PATIENTS: it produces plausible, reproducible vital
/// signs with known, scriptable changes so that the supervisor, drivers and oximeter simulators can be
/// tested end to end. Nothing it computes is a prediction about a real person.
///
/// Pure: state + input + time in, new state out. The caller owns time (virtual or scaled) and calls
/// `advance(by:infusionRate:)` with the rate that held over each interval; there is no clock and no thread.
/// Equal inputs give equal outputs. Not for concurrent mutation; being `Sendable`, a copy may cross threads.
public struct VirtualPatient: Sendable {
    /// Who the patient is.
    public let profile: PatientProfile
    /// The scripted events.
    public let timeline: ScenarioTimeline
    /// How the vitals respond to the drug.
    public let response: ResponseModel
    /// The pharmacokinetics (model and state).
    public private(set) var pharmacokinetics: Pharmacokinetics
    /// Heart beats since the start (see `PatientObservation.cardiacCycles`).
    public private(set) var cardiacCycles: Double = 0
    private let noise: PhysiologyNoise?
    private var noiseCache = PhysiologyNoise.Cache()
    /// The vitals and conditions at `elapsed`, recomputed after every change of time or drug.
    private var current: (vitals: TrueVitals, conditions: MeasurementConditions)

    /// A drug-free patient at time zero with the Domino ketamine model scaled to the profile's weight.
    /// Throws when the weight gives unusable pharmacokinetic parameters (zero, negative, not finite).
    public init(
        profile: PatientProfile, timeline: ScenarioTimeline = ScenarioTimeline(),
        response: ResponseModel = .ketamineDefault
    ) throws(PharmacokineticParameterError) {
        try self.init(profile: profile, timeline: timeline, response: response,
                      pharmacokinetics: .domino1982(weight: profile.weight))
    }

    /// A drug-free patient at time zero with explicit pharmacokinetic parameters (for other published
    /// models, sensitivity tests, or a one-compartment reduction in tests).
    public init(
        profile: PatientProfile, timeline: ScenarioTimeline, response: ResponseModel,
        pharmacokinetics parameters: ThreeCompartmentParameters
    ) throws(PharmacokineticParameterError) {
        self.profile = profile
        self.timeline = timeline
        self.response = response
        self.pharmacokinetics = Pharmacokinetics(model: try ThreeCompartmentModel(parameters))
        self.noise = profile.noiseSeed.map(PhysiologyNoise.init(seed:))
        self.current = (TrueVitals(spo2: profile.baselineSpO2, pulseRate: profile.baselinePulseRate,
                                   perfusionIndex: profile.baselinePerfusionIndex), [])
        refresh()
    }

    /// A patient for a loaded scenario (its profile and timeline).
    public init(scenario: Scenario, response: ResponseModel = .ketamineDefault) throws(PharmacokineticParameterError) {
        try self.init(profile: scenario.patient, timeline: scenario.timeline, response: response)
    }

    /// Time since the session started.
    public var elapsed: Duration { pharmacokinetics.elapsed }

    /// Advances by `duration` with the pump delivering `infusionRate` throughout (the rate actually
    /// delivered, not the one programmed). Pharmacokinetics are exact for this piecewise-constant input;
    /// the cardiac phase advances at the pulse rate at the start of the step. Non-positive durations change
    /// nothing; negative or non-finite rates count as zero. Allocation-free.
    public mutating func advance(by duration: Duration, infusionRate: DoseRate) {
        guard duration > .zero else { return }
        let pulse = current.vitals.pulseRate.beatsPerMinute
        pharmacokinetics.advance(by: duration, infusionRate: infusionRate)
        if pulse.isFinite, pulse > 0 { cardiacCycles += pulse * duration.seconds / 60 }
        refresh()
    }

    /// Gives `dose` as an instantaneous bolus (negative or non-finite doses are ignored).
    public mutating func giveBolus(_ dose: Mass) {
        pharmacokinetics.giveBolus(dose)
        refresh()
    }

    /// The patient now. Cheap: the vitals were computed when time last advanced.
    public var observation: PatientObservation {
        PatientObservation(
            time: elapsed, vitals: current.vitals, conditions: current.conditions,
            plasmaConcentration: pharmacokinetics.plasmaConcentration,
            effectSiteConcentration: pharmacokinetics.effectSiteConcentration,
            cardiacCycles: cardiacCycles, plethysmogram: syntheticPlethysmogram(phase: cardiacCycles))
    }

    /// Recomputes the vitals and conditions for the current time and drug level: response, then noise,
    /// then scripted events.
    private mutating func refresh() {
        let t = elapsed
        let ce = pharmacokinetics.effectSiteConcentration
        var pulse = response.pulseRate(baseline: profile.baselinePulseRate, effectSite: ce)
        var spo2 = response.spo2(baseline: profile.baselineSpO2, effectSite: ce)
        var pi = profile.baselinePerfusionIndex
        if let noise {
            let n = noise.sample(at: t, cache: &noiseCache)
            pulse = .beatsPerMinute(max(1, pulse.beatsPerMinute + n.pulseRate))
            spo2 = .percent(min(100, max(0, spo2.percent + n.spo2)))
            pi = pi * n.perfusionFactor
        }
        current = timeline.apply(to: TrueVitals(spo2: spo2, pulseRate: pulse, perfusionIndex: pi), at: t)
    }
}
