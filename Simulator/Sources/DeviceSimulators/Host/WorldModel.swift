import InfusionCore

/// The shared simulated world of devices started together: the drug the simulated pumps actually
/// deliver drives the virtual patient, whom the simulated oximeters measure and whose infusion the
/// simulated balance weighs. Pure: time and the pumps' delivered volumes go in, the patient's state
/// comes out. Used by `infusion-sim` on real time and by virtual-time scenario tests alike.
public struct WorldModel: Sendable {
    /// The virtual patient.
    public private(set) var patient: VirtualPatient
    /// Concentration of the drug in the simulated syringes.
    public let concentration: Concentration
    private var lastTime: MonotonicInstant?
    private var lastDelivered: Volume = .zero

    /// A world around `patient`, with syringes holding `concentration`.
    public init(patient: VirtualPatient, concentration: Concentration) {
        self.patient = patient
        self.concentration = concentration
    }

    /// Advances the patient to `now`, given the total volume every pump has delivered so far; the
    /// drug delivered since the last call is given at a constant rate over the interval.
    public mutating func advance(to now: MonotonicInstant, totalDelivered: Volume) -> PatientObservation {
        defer {
            lastTime = now
            lastDelivered = max(lastDelivered, totalDelivered)
        }
        guard let last = lastTime, now > last else { return patient.observation }
        let interval = now - last
        let delivered = max(.zero, totalDelivered - lastDelivered)
        // mL × mg/mL in plain floating point: the patient model needs no exact decimals, and the exact
        // product (`Dosing.deliveredDose`) costs microseconds at every coupling step of a long virtual session.
        let milligrams = delivered.millilitres * concentration.milligramsPerMillilitre
        let rate = DoseRate.milligramsPerHour(interval.hours > 0 ? milligrams / interval.hours : 0)
        patient.advance(by: interval, infusionRate: rate)
        return patient.observation
    }
}
