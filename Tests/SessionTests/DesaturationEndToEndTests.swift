import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Session
import Supervisor
import Testing

/// Issue 6 acceptance, over REAL pseudo-terminals: the simulated New Era pump and a simulated Nonin DF2
/// oximeter share one simulated world with a scripted desaturation; the real drivers run on the pty
/// slaves; the supervisor runner drives the validated ketamine program through `ChannelWiring`. After
/// the operator's start the pump infuses; when SpO2 falls, the SIMULATED pump must report itself stopped
/// within the profile's hold time plus one second of scenario time after the true SpO2 crosses the
/// pause threshold.
///
/// The whole system (simulators, world, drivers, runner) runs on one `ScaledClock` at 10× so the test
/// takes a few real seconds.
@Suite("Session: desaturation end to end over ptys", .serialized)
struct DesaturationEndToEndTests {
    static let speed = 10.0

    /// SpO2 97 %, falling at 40 s to 84 % over 10 s (crosses 90 % about 5.4 s into the fall).
    static let scenario = """
        format = 1

        [scenario]
        name = "Session test: desaturation to 84 %"
        duration = "5 min"

        [patient]
        weight = "80 kg"
        spo2 = "97 %"
        pulse_rate = "76 bpm"
        noise_seed = 3

        [[event]]
        at = "40 s"
        kind = "desaturation"
        to = "84 %"
        onset = "10 s"
        hold = "3 min"
        recovery = "30 s"
        """

    @Test("a scripted desaturation ends with the simulated pump stopped inside the hold time plus 1 s")
    func desaturationStopsThePump() throws {
        let clock = ScaledClock(speed: Self.speed)
        let program = try Programs.ketamine()
        let limits = SupervisorLimits(program: program)
        let patient = try VirtualPatient(scenario: Scenario.load(text: Self.scenario, source: "session-test"))
        let world = SimulatedWorld(model: WorldModel(patient: patient, concentration: .milligramsPerMillilitre(1)), clock: clock)
        let simulatedPump = PTYHostedDevice(device: NewEraSimulatedPump(), role: .pump,
                                            setup: HostedDeviceSetup(name: "pump0", clock: clock))
        let simulatedOximeter = PTYHostedDevice(device: SimulatedNoninDF2(), role: .oximeter,
                                                setup: HostedDeviceSetup(name: "oximeter0", clock: clock))
        world.add(simulatedPump)
        world.add(simulatedOximeter)
        world.start()
        defer { world.stop() }
        #expect(waitUntil(.seconds(2)) { simulatedPump.devicePath != nil && simulatedOximeter.devicePath != nil })
        let pumpPath = try #require(simulatedPump.devicePath, "the simulated pump should have a pty")
        let oximeterPath = try #require(simulatedOximeter.devicePath, "the simulated oximeter should have a pty")

        // Scaled time: 10 s of safe-mode time-out is 1 s of real time; replies get 2 s (0.2 s real).
        let pump = NewEraPump(path: pumpPath, configuration: .init(safeModeTimeoutSeconds: 10, replyTimeout: .seconds(2)),
                              clock: clock)
        let oximeter = makePulseOximeter(protocol: .noninDF2, path: oximeterPath, clock: clock)
        defer {
            pump.close()
            oximeter.close()
        }
        let wiring = try ChannelWiring(pump: pump, oximeter: oximeter, watchdogTimeout: .seconds(10),
                                       statusInterval: .milliseconds(100))  // 1 s of scenario time
        defer { wiring.close() }
        let decisions = DecisionRing(capacity: 8192)
        var log: [String] = []
        /// The decisions so far, for failure messages.
        func history() -> String {
            decisions.drain { event in
                if event.modeBefore != event.modeAfter || event.command != nil {
                    log.append("\(event.at) \(event.rule) \(event.kind) \(event.modeBefore)->\(event.modeAfter) \(event.command.map { "\($0)" } ?? "")")
                }
            }
            return log.joined(separator: "\n")
        }
        let configuration = ChannelConfiguration(channel: 0, limits: limits, pumpHasWatchdog: pump.safety.stopsWhenControllerSilent)
        let runner = try SupervisorRunner(
            configuration: .init(period: .milliseconds(10), realTimePriority: nil, lockMemory: false),
            channels: [wiring.channelSetup(configuration: configuration)], decisions: decisions, clock: clock)
        let channel = runner.channels[0]
        wiring.connect(to: channel)
        try runner.start()
        defer { runner.stop() }

        // The operator presses start until the start checks pass (devices connected, watchdog armed,
        // fresh valid vitals); then the pump must confirm delivery by its reported status.
        let started = waitUntil(.seconds(3), interval: .milliseconds(50)) {
            if channel.mode == .idle { _ = channel.submit(.start) }
            return channel.mode == .checked || channel.mode == .infusing
        }
        #expect(started, "the start checks should pass once both devices are up (mode \(channel.mode))")
        #expect(waitUntil(.seconds(2)) { channel.mode == .infusing }, "the pump should confirm delivery (mode \(channel.mode))\n\(history())\nsim \(simulatedPump.inspect { ($0.prompt, $0.rate, $0.volumeTarget, $0.diameter) }) last \(String(describing: pump.lastStatus))")
        #expect(pump.lastStatus?.state == .infusing)
        #expect(simulatedPump.inspect { $0.prompt } == .infusing)
        #expect(world.latestObservation.spo2 > limits.spo2PauseBelow, "the desaturation must begin after the start")

        // Desaturation: note (in scenario time) when the patient's true SpO2 crosses the pause threshold,
        // then when the simulated pump itself reports that it no longer infuses.
        var crossedAt: MonotonicInstant?
        #expect(waitUntil(.seconds(8), interval: .milliseconds(1)) {
            if world.latestObservation.spo2 < limits.spo2PauseBelow { crossedAt = clock.now() }
            return crossedAt != nil
        }, "the scripted desaturation should bring SpO2 below \(limits.spo2PauseBelow)")
        let crossed = try #require(crossedAt)
        #expect(simulatedPump.inspect { $0.prompt } == .infusing, "the pump should still infuse when SpO2 crosses")
        let budget = limits.spo2PauseHold + .seconds(1)
        var stoppedAt: MonotonicInstant?
        let realBudget = Duration.seconds(budget.seconds / Self.speed + 1)
        _ = waitUntil(realBudget, interval: .milliseconds(1)) {
            if simulatedPump.inspect({ $0.prompt }) != .infusing { stoppedAt = clock.now() }
            return stoppedAt != nil
        }
        let stopped = try #require(stoppedAt, "the simulated pump should stop after the desaturation")
        let elapsed = stopped - crossed
        #expect(elapsed <= budget, "stopped \(elapsed) after SpO2 crossed \(limits.spo2PauseBelow); budget \(budget)")
        #expect(channel.mode == .stoppedBySupervisor || waitUntil(.seconds(1)) { channel.mode == .stoppedBySupervisor })
        #expect(wiring.stopPath.stopsSent >= 1)
        #expect(wiring.stopPath.secondaryStopsEngaged == 0)
    }
}
