import DeviceSimulators
import Foundation
import InfusionCore
import Session
import Supervisor
import Records
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

/// A short ketamine program (80 kg, 0.35 mg/kg/h of 1 mg/mL) lasting `minutes`, validated against the
/// shipped library.
func shortProgram(minutes: Int) throws -> ValidatedProgram {
    let text = try String(contentsOf: Programs.libraryURL, encoding: .utf8)
    let library = try DrugLibrary.load(text: text, source: "default-library.toml")
    let request = ProgramRequest(
        profile: "ketamine-chronic-pain", drug: "Ketamine", concentration: .milligramsPerMillilitre(1),
        weight: .kilograms(80), dose: .weightBased(.milligramsPerKilogramPerHour(0.35), .milligramsPerKilogramPerHour),
        duration: .seconds(minutes * 60), loading: nil)
    let result = ProgramValidator.validate(request, library: library)
    return try #require(result.acceptedProgram, "program should be accepted: \(result.findings.map(\.message))")
}

/// A simulated bedside over REAL pseudo-terminals on one `ScaledClock`: a New Era pump and a Nonin DF8
/// oximeter (one frame a second, light at high speed) in one simulated world with a virtual patient.
final class SimulatedBedside: @unchecked Sendable {
    let clock: ScaledClock
    let world: SimulatedWorld
    let pump: PTYHostedDevice<NewEraSimulatedPump>
    let oximeter: PTYHostedDevice<SimulatedNoninDF8>

    /// Starts the world; `scenario` is a scenario file's text (patient and events).
    init(speed: Double, scenario: String = SimulatedBedside.calmScenario) throws {
        clock = ScaledClock(speed: speed)
        let patient = try VirtualPatient(scenario: Scenario.load(text: scenario, source: "session-test"))
        world = SimulatedWorld(model: WorldModel(patient: patient, concentration: .milligramsPerMillilitre(1)), clock: clock)
        pump = PTYHostedDevice(device: NewEraSimulatedPump(), role: .pump, setup: HostedDeviceSetup(name: "pump0", clock: clock))
        oximeter = PTYHostedDevice(device: SimulatedNoninDF8(), role: .oximeter, setup: HostedDeviceSetup(name: "oximeter0", clock: clock))
        world.add(pump)
        world.add(oximeter)
        world.start()
    }

    /// The two pty paths, once both exist.
    func paths() throws -> (pump: String, oximeter: String) {
        _ = waitUntil(.seconds(2)) { self.pump.devicePath != nil && self.oximeter.devicePath != nil }
        return (try #require(pump.devicePath), try #require(oximeter.devicePath))
    }

    func stop() { world.stop() }

    /// A steady patient: SpO2 97 %, pulse 76.
    static let calmScenario = """
        format = 1

        [scenario]
        name = "Session test: calm"

        [patient]
        weight = "80 kg"
        spo2 = "97 %"
        pulse_rate = "76 bpm"
        noise_seed = 3
        """
}
