import DeviceSimulators
import InfusionCore
import Testing

@Suite("Oximeter simulators: an SpO2 simulator on the probe, and an oximeter bias")
struct SpO2SimulatorControlTests {
    static func observation(spo2: Double) -> PatientObservation {
        PatientObservation(time: .zero, vitals: TrueVitals(spo2: .percent(spo2), pulseRate: .beatsPerMinute(72), perfusionIndex: .percent(3)),
                           conditions: [.motionArtifact])
    }

    @Test("spo2-sim replaces the patient's SpO2, pulse and conditions until spo2-sim off")
    func simulatorSetting() throws {
        var patient = ObservedPatient()
        patient.observe(Self.observation(spo2: 97), at: .origin)
        #expect(try patient.control(FaultCommand(name: "spo2-sim", arguments: ["85", "120"])) != nil)
        #expect(patient.observation.spo2 == .percent(85) && patient.observation.pulseRate == .beatsPerMinute(120))
        #expect(patient.observation.conditions.isEmpty)
        patient.observe(Self.observation(spo2: 96), at: .origin + .seconds(1))  // the world keeps feeding the patient
        #expect(patient.observation.spo2 == .percent(85))
        _ = try patient.control(FaultCommand(name: "spo2-sim", arguments: ["off"]))
        #expect(patient.observation.spo2 == .percent(96) && patient.observation.conditions == [.motionArtifact])
    }

    @Test("bias adds to every SpO2 reading, clamped to 100 %")
    func bias() throws {
        var patient = ObservedPatient()
        patient.observe(Self.observation(spo2: 90), at: .origin)
        _ = try patient.control(FaultCommand(name: "bias", arguments: ["5"]))
        #expect(patient.observation.spo2 == .percent(95))
        _ = try patient.control(FaultCommand(name: "spo2-sim", arguments: ["97"]))
        #expect(patient.observation.spo2 == .percent(100) && patient.observation.pulseRate == .beatsPerMinute(75))
    }

    @Test("Unreadable arguments are refused with what to type; other names are left to the faults")
    func refusals() throws {
        var patient = ObservedPatient()
        for arguments in [[], ["abc"], ["101"], ["90", "400"], ["90", "75", "1"]] {
            #expect(throws: FaultError.self) { _ = try patient.control(FaultCommand(name: "spo2-sim", arguments: arguments)) }
        }
        #expect(throws: FaultError.self) { _ = try patient.control(FaultCommand(name: "bias", arguments: ["99"])) }
        #expect(try patient.control(FaultCommand(name: "probe-off")) == nil)
        var nonin = SimulatedNonin<NoninDF2Kind>()
        #expect(try nonin.inject(FaultCommand(name: "bias", arguments: ["-3"]), at: .origin).contains("-3"))
    }
}
