import DeviceSimulators
import Foundation
import InfusionCore
import SessionSimulation
import Supervisor
import Testing

/// The shipped drug library's ketamine programs, validated for real (as Tests/SessionTests/Support.swift).
enum Programs {
    static let libraryURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/infusionctl/Resources/default-library.toml")

    /// 80 kg, `dose` mg/kg/h (default 0.35) of 1 mg/mL for `duration` (default 40 min).
    static func ketamine(dose: Double = 0.35, duration: Duration = .seconds(40 * 60)) throws -> ValidatedProgram {
        let text = try String(contentsOf: libraryURL, encoding: .utf8)
        let library = try DrugLibrary.load(text: text, source: "default-library.toml")
        let request = ProgramRequest(
            profile: "ketamine-chronic-pain", drug: "Ketamine", concentration: .milligramsPerMillilitre(1),
            weight: .kilograms(80), dose: .weightBased(.milligramsPerKilogramPerHour(dose), .milligramsPerKilogramPerHour),
            duration: duration, loading: nil)
        let result = ProgramValidator.validate(request, library: library)
        switch result.status {
        case .accepted: return try #require(result.acceptedProgram)
        case .needsConfirmation: return try result.confirm(SoftLimitConfirmation(reason: "test"))
        case .rejected:
            Issue.record("program rejected: \(result.findings.map(\.message))")
            throw ProgramRejected()
        }
    }

    struct ProgramRejected: Error {}
}

/// A scenario from TOML: 80 kg, SpO2 97 %, pulse 76 bpm, `events` (TOML `[[event]]` tables), physiology
/// noise off unless `noise` (so that thresholds are crossed exactly once).
func scenario(_ events: String = "", noise: Bool = false, duration: String = "6 h") throws -> Scenario {
    try Scenario.load(text: """
        format = 1

        [scenario]
        name = "virtual session test"
        duration = "\(duration)"

        [patient]
        weight = "80 kg"
        spo2 = "97 %"
        pulse_rate = "76 bpm"
        noise = \(noise)
        \(noise ? "noise_seed = 7" : "")

        \(events)
        """, source: "virtual-session-test")
}

extension VirtualSessionSummary {
    /// The first decision of `rule` whose kind matches, or nil.
    func firstDecision(_ rule: SupervisorRule, where matches: (DecisionKind) -> Bool = { _ in true }) -> DecisionEvent? {
        decisions.first { $0.rule == rule && matches($0.kind) }
    }

    /// The first alarm event of `cause` in `phase`, or nil.
    func firstAlarm(_ cause: AlarmCause, _ phase: AlarmEventPhase = .start) -> AlarmEvent? {
        alarms.first { $0.cause == cause && $0.phase == phase }
    }
}

/// Wall time of `body`, in seconds.
func wallTime<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let clock = ContinuousClock()
    let start = clock.now
    let value = try body()
    let elapsed = clock.now - start
    return (value, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}
