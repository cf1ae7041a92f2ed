import Foundation
import InfusionCore
import Testing
@testable import DeviceSimulators

@Suite("Virtual patient and scripted events")
struct VirtualPatientTests {
    /// A patient with no noise and no drug response, so every vital is exactly its baseline unless an
    /// event changes it.
    func flatPatient(_ events: [ScriptedEvent], spo2: Double = 97, pulse: Double = 60) throws -> VirtualPatient {
        try VirtualPatient(
            profile: PatientProfile(weight: .kilograms(80), baselineSpO2: .percent(spo2), baselinePulseRate: .beatsPerMinute(pulse),
                                    baselinePerfusionIndex: .percent(3), noiseSeed: nil),
            timeline: ScenarioTimeline(events), response: .none)
    }

    /// Steps `patient` at 75 Hz until the last step before `t` and returns the observations just before and
    /// just after `t` (one frame under and one frame over).
    func aroundInstant(_ patient: inout VirtualPatient, _ t: Duration) -> (before: PatientObservation, after: PatientObservation) {
        var before = patient.observation
        while patient.elapsed + frame75Hz < t {
            patient.advance(by: frame75Hz, infusionRate: .zero)
            before = patient.observation
        }
        patient.advance(by: frame75Hz, infusionRate: .zero)
        return (before, patient.observation)
    }

    @Test("the example desaturation: starts exactly at 12 min, reaches 86 % at 12 min 40 s, recovers after the hold")
    func desaturationTiming() throws {
        let at = Duration.seconds(12 * 60)
        let excursion = VitalExcursion(target: Percentage.percent(86), onset: .seconds(40), hold: .seconds(180), recovery: .seconds(30))
        var patient = try flatPatient([ScriptedEvent(at: at, .desaturation(excursion))])
        let (before, after) = aroundInstant(&patient, at)
        #expect(before.time < at && after.time > at)
        #expect(before.spo2 == .percent(97))
        #expect(after.spo2 < .percent(97))
        // Exact instants in virtual time.
        let timeline = patient.timeline
        let base = TrueVitals(spo2: .percent(97), pulseRate: .beatsPerMinute(60), perfusionIndex: .percent(3))
        func spo2(_ t: Duration) -> Double { timeline.apply(to: base, at: t).vitals.spo2.percent }
        #expect(spo2(at - .nanoseconds(1)) == 97)
        #expect(spo2(at) == 97)
        #expect(spo2(at + .nanoseconds(1)) < 97)
        #expect(abs(spo2(at + .seconds(20)) - 91.5) < 1e-9) // halfway down the linear onset
        #expect(spo2(at + .seconds(40)) == 86)
        #expect(spo2(at + .seconds(220) - .nanoseconds(1)) == 86)
        #expect(spo2(at + .seconds(220)) == 86)
        #expect(abs(spo2(at + .seconds(235)) - 91.5) < 1e-9)
        #expect(spo2(at + .seconds(250) - .nanoseconds(1)) < 97)
        #expect(spo2(at + .seconds(250)) == 97)
    }

    @Test("flag events start and end exactly on time, one 75 Hz frame under and over each edge",
          arguments: [ScriptedEventKind.probeOff(.seconds(45)), .motionArtifact(.seconds(20)), .outOfTrack(.seconds(15)),
                      .lowPerfusion(.seconds(60), perfusionIndex: .percent(0.2))])
    func flagTiming(kind: ScriptedEventKind) throws {
        let at = Duration.seconds(90)
        let flag: MeasurementConditions = switch kind {
        case .probeOff: .probeOff
        case .motionArtifact: .motionArtifact
        case .outOfTrack: .outOfTrack
        default: .lowPerfusion
        }
        var patient = try flatPatient([ScriptedEvent(at: at, kind)])
        let start = aroundInstant(&patient, at)
        #expect(!start.before.conditions.contains(flag))
        #expect(start.after.conditions == flag)
        let end = aroundInstant(&patient, at + kind.duration)
        #expect(end.before.conditions == flag)
        #expect(end.after.conditions.isEmpty)
        if case .lowPerfusion(_, let pi) = kind {
            #expect(start.before.perfusionIndex == .percent(3))
            #expect(start.after.perfusionIndex == pi)
            #expect(end.after.perfusionIndex == .percent(3))
        }
        // Landing exactly on the edges: active at `at`, inactive at `at + duration`.
        var exact = try flatPatient([ScriptedEvent(at: at, kind)])
        exact.advance(by: at - .nanoseconds(1), infusionRate: .zero)
        #expect(exact.observation.conditions.isEmpty)
        exact.advance(by: .nanoseconds(1), infusionRate: .zero)
        #expect(exact.observation.conditions == flag)
        exact.advance(by: kind.duration - .nanoseconds(1), infusionRate: .zero)
        #expect(exact.observation.conditions == flag)
        exact.advance(by: .nanoseconds(1), infusionRate: .zero)
        #expect(exact.observation.conditions.isEmpty)
    }

    @Test("a pulse-rate excursion reaches its target and returns; conditions are untouched")
    func pulseExcursion() throws {
        let at = Duration.seconds(20 * 60)
        let e = VitalExcursion(target: PulseRate.beatsPerMinute(135), onset: .seconds(20), hold: .seconds(60), recovery: .seconds(40))
        var patient = try flatPatient([ScriptedEvent(at: at, .pulseRateExcursion(e))], pulse: 75)
        let (before, after) = aroundInstant(&patient, at)
        #expect(before.pulseRate == .beatsPerMinute(75))
        #expect(after.pulseRate > .beatsPerMinute(75))
        patient.advance(by: at + .seconds(20) - patient.elapsed, infusionRate: .zero)
        #expect(patient.observation.pulseRate == .beatsPerMinute(135))
        #expect(patient.observation.conditions.isEmpty)
        patient.advance(by: .seconds(100), infusionRate: .zero)
        #expect(patient.observation.pulseRate == .beatsPerMinute(75))
    }

    @Test("overlapping events compose: flags combine, later excursions act on earlier ones")
    func overlapping() {
        let timeline = ScenarioTimeline([
            ScriptedEvent(at: .seconds(10), .probeOff(.seconds(30))),
            ScriptedEvent(at: .seconds(0), .desaturation(VitalExcursion(target: .percent(90), onset: .zero, hold: .seconds(60), recovery: .zero))),
            ScriptedEvent(at: .seconds(20), .motionArtifact(.seconds(5))),
            ScriptedEvent(at: .seconds(5), .desaturation(VitalExcursion(target: .percent(80), onset: .seconds(10), hold: .seconds(10), recovery: .zero))),
        ])
        #expect(timeline.events.map(\.at) == [.seconds(0), .seconds(5), .seconds(10), .seconds(20)])
        let base = TrueVitals(spo2: .percent(98), pulseRate: .beatsPerMinute(70), perfusionIndex: .percent(2))
        let at22 = timeline.apply(to: base, at: .seconds(22))
        #expect(at22.conditions == [.probeOff, .motionArtifact])
        #expect(at22.vitals.spo2 == .percent(80))
        // Halfway through the second onset: halfway from 90 (first event) to 80.
        #expect(abs(timeline.apply(to: base, at: .seconds(10)).vitals.spo2.percent - 85) < 1e-9)
        #expect(timeline.apply(to: base, at: .seconds(40)).vitals.spo2 == .percent(90))
        #expect(timeline.apply(to: base, at: .seconds(60)).vitals.spo2 == .percent(98))
        #expect(timeline.nextEdge(after: .seconds(10)) == .seconds(15))
        #expect(timeline.nextEdge(after: .seconds(60)) == nil)
    }

    @Test("the timeline round-trips through JSON")
    func codable() throws {
        let scenario = try Scenario.load(contentsOfFile: ScenarioFiles.path("desaturation.toml"))
        let data = try JSONEncoder().encode(scenario.timeline)
        let decoded = try JSONDecoder().decode(ScenarioTimeline.self, from: data)
        #expect(decoded == scenario.timeline)
        let bad = Data(#"[{"at": 1, "kind": "sneeze", "duration": 3}]"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ScenarioTimeline.self, from: bad) }
        let negative = Data(#"[{"at": -1, "kind": "probe_off", "duration": 3}]"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ScenarioTimeline.self, from: negative) }
    }

    @Test("the drug delivered by the pump raises the pulse rate through the PK model, as documented")
    func drugDrivesVitals() throws {
        let profile = PatientProfile(weight: .kilograms(80), baselineSpO2: .percent(97), baselinePulseRate: .beatsPerMinute(70), noiseSeed: nil)
        var treated = try VirtualPatient(profile: profile)
        var control = try VirtualPatient(profile: profile)
        treated.giveBolus(.milligrams(40))
        for _ in 0..<(75 * 300) {
            treated.advance(by: frame75Hz, infusionRate: .milligramsPerHour(28))
            control.advance(by: frame75Hz, infusionRate: .zero)
        }
        let t = treated.observation, c = control.observation
        #expect(t.time == c.time)
        #expect(t.plasmaConcentration > .zero && t.effectSiteConcentration > .zero)
        #expect(c.plasmaConcentration == .zero)
        #expect(t.pulseRate > c.pulseRate)
        #expect(t.spo2 <= c.spo2)
        #expect(c.pulseRate == .beatsPerMinute(70) && c.spo2 == .percent(97))
        #expect(treated.pharmacokinetics.delivered.milligrams > 40)
    }

    @Test("vitals at an instant do not depend on how the session was stepped")
    func steppingIndependence() throws {
        let scenario = try Scenario.load(contentsOfFile: ScenarioFiles.path("desaturation.toml"))
        var fine = try VirtualPatient(scenario: scenario)
        var coarse = try VirtualPatient(scenario: scenario)
        let end = Duration.seconds(13 * 60)
        while fine.elapsed < end { fine.advance(by: .milliseconds(20), infusionRate: .milligramsPerHour(21)) }
        while coarse.elapsed < end { coarse.advance(by: .seconds(3), infusionRate: .milligramsPerHour(21)) }
        #expect(fine.elapsed == coarse.elapsed)
        let a = fine.observation, b = coarse.observation
        #expect(relativeError(a.plasmaConcentration.canonicalValue, b.plasmaConcentration.canonicalValue) < 1e-10)
        #expect(abs(a.spo2.percent - b.spo2.percent) < 1e-9)
        #expect(abs(a.pulseRate.beatsPerMinute - b.pulseRate.beatsPerMinute) < 1e-9)
        #expect(a.spo2 < .percent(90)) // inside the scripted desaturation
    }

    @Test("the cardiac phase integrates the pulse rate; the plethysmogram follows it")
    func cardiacCycles() throws {
        var patient = try flatPatient([], pulse: 60)
        for _ in 0..<750 { patient.advance(by: frame75Hz, infusionRate: .zero) } // 10 s minus 250 ns
        #expect(abs(patient.observation.cardiacCycles - 10) < 1e-5)
        #expect(patient.observation.plethysmogram == syntheticPlethysmogram(phase: patient.cardiacCycles))
    }
}

/// Paths of the example scenario files in the source tree.
enum ScenarioFiles {
    static func path(_ name: String, file: String = #filePath) -> String {
        URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Simulator/Scenarios/\(name)").path
    }
}
