import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Session
import Supervisor
import Synchronization
import Testing

/// The session's stop path, noting (in the test's clock) when the first stop frame was written and when
/// the secondary stop was engaged.
final class RecordingStopPath: PumpStopPath {
    let inner: DriverStopPath
    let clock: any MonotonicClock
    let firstStopAt = Mutex<MonotonicInstant?>(nil)
    let secondaryAt = Mutex<MonotonicInstant?>(nil)

    init(_ inner: DriverStopPath, clock: any MonotonicClock) {
        self.inner = inner
        self.clock = clock
    }

    func sendStop() -> StopWriteResult {
        let result = inner.sendStop()
        let now = clock.now()
        firstStopAt.withLock { if $0 == nil { $0 = now } }
        return result
    }

    func engageSecondaryStop() {
        let now = clock.now()
        secondaryAt.withLock { if $0 == nil { $0 = now } }
        inner.engageSecondaryStop()
    }
}

/// Issue 6, the second of the two independent stops (DESIGN.md principle 2), over REAL pseudo-terminals:
/// the simulated New Era pump loses every STP (its `ignore-stop` fault: the frames are lost as if garbled,
/// so they neither stop it nor feed its watchdog), so the supervisor's stop after a desaturation is never
/// confirmed. The supervisor repeats the stop, then engages the secondary stop; `ChannelWiring` closes the
/// pump driver, the keep-alives end, and the pump's OWN safe-mode watchdog stops it (alarm T).
///
/// Bound (scenario time, from the first stop frame written): two missed stop-confirmation deadlines (the
/// third attempt engages the secondary stop) + the safe-mode time-out (counted from the last packet the
/// pump heard, which is no later than the driver's close) + 1 s margin (supervisor ticks, the drain
/// thread, closing the driver, the simulator's own tick). Everything runs on one `ScaledClock` at 10×.
@Suite("Session: secondary stop over ptys", .serialized)
struct SecondaryStopEndToEndTests {
    static let speed = 10.0

    @Test("an unconfirmed stop escalates to the secondary stop: the driver is closed and the pump's own safe-mode watchdog stops it in time")
    func unconfirmedStopEngagesThePumpsWatchdog() throws {
        let clock = ScaledClock(speed: Self.speed)
        let program = try Programs.ketamine()
        let limits = SupervisorLimits(program: program)
        let safeModeTimeout = Duration.seconds(10)
        let simulatedPump = PTYHostedDevice(device: NewEraSimulatedPump(), role: .pump, setup: HostedDeviceSetup(name: "pump0", clock: clock))
        let simulatedOximeter = PTYHostedDevice(device: SimulatedNoninDF2(), role: .oximeter,
                                                setup: HostedDeviceSetup(name: "oximeter0", clock: clock))
        simulatedPump.start()
        simulatedOximeter.start()
        defer {
            simulatedPump.stop()
            simulatedOximeter.stop()
        }
        var observations = 0.0
        func observe(spo2: Double) {
            observations += 1
            simulatedOximeter.observe(PatientObservation(
                time: .seconds(observations),
                vitals: TrueVitals(spo2: .percent(spo2), pulseRate: .beatsPerMinute(72), perfusionIndex: .percent(3))))
        }
        observe(spo2: 97)
        #expect(waitUntil(.seconds(2)) { simulatedPump.devicePath != nil && simulatedOximeter.devicePath != nil })
        let pumpPath = try #require(simulatedPump.devicePath, "the simulated pump should have a pty")
        let oximeterPath = try #require(simulatedOximeter.devicePath, "the simulated oximeter should have a pty")

        let pump = NewEraPump(path: pumpPath, configuration: .init(safeModeTimeoutSeconds: 10, replyTimeout: .seconds(2)), clock: clock)
        let oximeter = makePulseOximeter(protocol: .noninDF2, path: oximeterPath, clock: clock)
        defer {
            pump.close()
            oximeter.close()
        }
        let wiring = try ChannelWiring(pump: pump, oximeter: oximeter, watchdogTimeout: safeModeTimeout,
                                       statusInterval: .milliseconds(100))  // 1 s of scenario time
        defer { wiring.close() }
        let stopPath = RecordingStopPath(wiring.stopPath, clock: clock)
        let decisions = DecisionRing(capacity: 8192)
        var log: [String] = []
        /// The decisions so far (mode changes, commands, refusals), for failure messages.
        func history() -> String {
            decisions.drain { event in
                if event.modeBefore != event.modeAfter || event.command != nil || "\(event.kind)".contains("efused") {
                    log.append("\(event.at) \(event.rule) \(event.kind) \(event.modeBefore)->\(event.modeAfter) \(event.command.map { "\($0)" } ?? "")")
                }
            }
            return log.suffix(30).joined(separator: "\n")
        }
        let configuration = ChannelConfiguration(channel: 0, limits: limits, pumpHasWatchdog: pump.safety.stopsWhenControllerSilent)
        let runner = try SupervisorRunner(
            configuration: .init(period: .milliseconds(10), realTimePriority: nil, lockMemory: false),
            channels: [ChannelSetup(configuration: configuration, stopPath: stopPath, commands: wiring.commands)],
            decisions: decisions, clock: clock)
        let channel = runner.channels[0]
        wiring.connect(to: channel)
        try runner.start()
        defer { runner.stop() }

        // The patient's vitals keep coming (normal), and the operator presses start until the checks pass.
        let started = waitUntil(.seconds(5), interval: .milliseconds(50)) {
            observe(spo2: 97)
            if channel.mode == .idle { _ = channel.submit(.start) }
            return channel.mode == .checked || channel.mode == .infusing
        }
        #expect(started, "the start checks should pass once both devices are up (mode \(channel.mode))\n\(history())")
        #expect(waitUntil(.seconds(3)) { channel.mode == .infusing }, "the pump should confirm delivery (mode \(channel.mode))\n\(history())")
        #expect(simulatedPump.inspect { $0.prompt } == .infusing)

        // Every STP from now on is lost on the way to the pump.
        let injected = simulatedPump.inject(FaultCommand(name: "ignore-stop", arguments: ["600s"]))
        #expect((try? injected.get()) != nil, "ignore-stop should be accepted: \(injected)")
        observe(spo2: 80)  // below the immediate-stop threshold (85 %)

        #expect(waitUntil(.seconds(3)) { stopPath.firstStopAt.withLock { $0 } != nil }, "the supervisor should send a stop")
        let firstStop = try #require(stopPath.firstStopAt.withLock { $0 })
        let budget = limits.stopConfirmationDeadline * 2 + safeModeTimeout + .seconds(1)
        var stoppedAt: MonotonicInstant?
        _ = waitUntil(.seconds(budget.seconds / Self.speed + 2), interval: .milliseconds(1)) {
            if simulatedPump.inspect({ $0.prompt }) != .infusing { stoppedAt = clock.now() }
            return stoppedAt != nil
        }
        let stopped = try #require(stoppedAt, "the pump's own watchdog should stop it after the secondary stop")
        let elapsed = stopped - firstStop
        #expect(elapsed <= budget, "stopped \(elapsed) after the first stop frame; budget \(budget)")
        // Not stopped by a command: only the lapse of its watchdog could stop it, so not before the time-out.
        #expect(elapsed >= safeModeTimeout, "stopped after \(elapsed): an STP got through")
        #expect(simulatedPump.inspect { $0.alarm } == .safeModeTimeout, "the pump should raise alarm T (safe-mode time-out)")

        let secondary = try #require(stopPath.secondaryAt.withLock { $0 }, "the supervisor should engage the secondary stop")
        #expect(secondary - firstStop >= limits.stopConfirmationDeadline * 2)
        #expect(secondary < stopped)
        #expect(channel.mode == .fault)
        #expect(wiring.stopPath.secondaryStopsEngaged == 1)
        #expect(wiring.stopPath.stopsSent >= 3, "the stop is repeated before the secondary stop")
    }
}
