import DeviceSimulators
import Foundation
import InfusionCore
import Session
import Supervisor
import Testing

/// The shipped library and the ketamine program of issue 6's acceptance test, validated for real.
enum Programs {
    static let libraryURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/infusionctl/Resources/default-library.toml")

    /// 80 kg, 0.35 mg/kg/h, 1 mg/mL, 40 min, validated against the shipped library.
    static func ketamine() throws -> ValidatedProgram {
        let text = try String(contentsOf: libraryURL, encoding: .utf8)
        let library = try DrugLibrary.load(text: text, source: "default-library.toml")
        let request = ProgramRequest(
            profile: "ketamine-chronic-pain", drug: "Ketamine", concentration: .milligramsPerMillilitre(1),
            weight: .kilograms(80), dose: .weightBased(.milligramsPerKilogramPerHour(0.35), .milligramsPerKilogramPerHour),
            duration: .seconds(40 * 60), loading: nil)
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

/// Polls `condition` every `interval` (real time) until it holds or `timeout` (real time) passes.
func waitUntil(_ timeout: Duration, interval: Duration = .milliseconds(2), _ condition: () -> Bool) -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: Double(interval.components.attoseconds) / 1e18 + Double(interval.components.seconds))
    }
    return condition()
}
