import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Session
import Supervisor
import Testing

/// Issue 8: the Fresenius Base A/Agilia family has no documented remote start (reference/protocols.md §A5),
/// so the driver refuses `start` and says what to do. Over REAL ptys (rack simulator + simulated Nonin DF2,
/// the real drivers, `ChannelWiring`, the supervisor runner, one `ScaledClock` at 5×), the session handles
/// that outcome: the wiring keeps the refusal for the operator, the channel stays `checked` with the rate
/// set at the pump, and the supervisor judges delivery from the pump's reported state only: started at the
/// keypad in time, the channel infuses; never started, the rate-mismatch rule stops it with an alarm.
@Suite("Session: a pump without a remote start (Fresenius) over ptys", .serialized)
struct RemoteStartRefusedTests {
    static let speed = 5.0

    final class Bedside {
        let clock: ScaledClock
        let rackSimulator: PTYHostedDevice<FreseniusSimulator>
        let oximeterSimulator: PTYHostedDevice<SimulatedNoninDF2>
        let rack: FreseniusRack
        let pump: FreseniusPump
        let oximeter: any PulseOximeter
        let wiring: ChannelWiring
        let runner: SupervisorRunner
        let decisions: DecisionRing
        let limits: SupervisorLimits

        init() throws {
            let clock = ScaledClock(speed: RemoteStartRefusedTests.speed)
            let limits = SupervisorLimits(program: try Programs.ketamine())
            let rackSimulator = PTYHostedDevice(device: FreseniusSimulator(configuration: .init(modules: 1)), role: .pump,
                                                setup: HostedDeviceSetup(name: "pump0", clock: clock))
            let oximeterSimulator = PTYHostedDevice(device: SimulatedNoninDF2(), role: .oximeter,
                                                    setup: HostedDeviceSetup(name: "oximeter0", clock: clock))
            rackSimulator.start()
            oximeterSimulator.start()
            oximeterSimulator.observe(PatientObservation(
                time: .seconds(1), vitals: TrueVitals(spo2: .percent(97), pulseRate: .beatsPerMinute(72), perfusionIndex: .percent(3))))
            _ = waitUntil(.seconds(2)) { rackSimulator.devicePath != nil && oximeterSimulator.devicePath != nil }
            let rackPath = try #require(rackSimulator.devicePath)
            let oximeterPath = try #require(oximeterSimulator.devicePath)
            let rack = FreseniusRack(name: "rack0", path: rackPath, configuration: FreseniusSessionConfiguration(modules: [1]), clock: clock)
            let pump = try #require(rack.pump(slot: 1))
            let oximeter = makePulseOximeter(protocol: .noninDF2, path: oximeterPath, clock: clock)
            let wiring = try ChannelWiring(pump: pump, oximeter: oximeter, statusInterval: .milliseconds(200))  // 1 s of pump time
            let decisions = DecisionRing(capacity: 8192)
            let configuration = ChannelConfiguration(channel: 0, limits: limits, pumpHasWatchdog: pump.safety.stopsWhenControllerSilent)
            let runner = try SupervisorRunner(configuration: .init(period: .milliseconds(10), realTimePriority: nil, lockMemory: false),
                                              channels: [wiring.channelSetup(configuration: configuration)], decisions: decisions, clock: clock)
            wiring.connect(to: runner.channels[0])
            try runner.start()
            self.clock = clock
            self.limits = limits
            self.rackSimulator = rackSimulator
            self.oximeterSimulator = oximeterSimulator
            self.rack = rack
            self.pump = pump
            self.oximeter = oximeter
            self.wiring = wiring
            self.decisions = decisions
            self.runner = runner
        }

        var channel: RunnerChannel { runner.channels[0] }

        /// The operator presses start until the start checks pass; true when the channel is `checked`.
        func pressStart() -> Bool {
            waitUntil(.seconds(5), interval: .milliseconds(20)) {
                if channel.mode == .idle { _ = channel.submit(.start) }
                return channel.mode != .idle
            } && channel.mode == .checked
        }

        func close() {
            runner.stop()
            wiring.close()
            rack.close()
            oximeter.close()
            rackSimulator.stop()
            oximeterSimulator.stop()
        }
    }

    @Test("start is refused with what to do; the rate is set at the pump, and a start at the keypad is confirmed from the pump's reported state")
    func keypadStartConfirmed() throws {
        let bedside = try Bedside()
        defer { bedside.close() }
        #expect(bedside.pump.safety.stopsWhenControllerSilent == false)
        #expect(bedside.pressStart(), "the start checks should pass (mode \(bedside.channel.mode))")
        #expect(waitUntil(.seconds(3)) { bedside.wiring.lastRefusal?.command == .start }, "the wiring should keep the refused start")
        let refusal = try #require(bedside.wiring.lastRefusal)
        #expect(refusal.refusal.code == "no-start-command")
        #expect(refusal.refusal.isNoRemoteStart)
        #expect(refusal.refusal.description.contains("keypad"), "the refusal should say to start at the pump: \(refusal.refusal.description)")
        // The rate is set (PR) before the start was refused; nothing infuses yet, and the channel waits.
        let commanded = bedside.limits.maintenanceRate.millilitresPerHour
        #expect(waitUntil(.seconds(2)) { abs((bedside.rackSimulator.inspect { $0.module(1)?.rate.millilitresPerHour } ?? 0) - commanded) < 0.1 })
        #expect(bedside.rackSimulator.inspect { $0.module(1)?.isInfusing } == false)
        #expect(bedside.channel.mode == .checked)

        // The operator starts the module at its keypad, within the rate-mismatch hold.
        let started = bedside.rackSimulator.inject(FaultCommand(name: "keypad-start", arguments: ["1"]))
        #expect((try? started.get()) != nil, "keypad start: \(started)")
        #expect(waitUntil(.seconds(3)) { bedside.channel.mode == .infusing }, "delivery should be confirmed (mode \(bedside.channel.mode))")
        #expect(bedside.wiring.stopPath.stopsSent == 0)
    }

    @Test("never started at the pump: after the rate-mismatch hold the supervisor stops the channel with an alarm (fail safe)")
    func neverStartedStopsSafely() throws {
        let bedside = try Bedside()
        defer { bedside.close() }
        #expect(bedside.pressStart(), "the start checks should pass (mode \(bedside.channel.mode))")
        #expect(waitUntil(.seconds(3)) { bedside.wiring.lastRefusal?.command == .start })
        let hold = bedside.limits.rateMismatchHold
        #expect(waitUntil(.seconds(hold.seconds / RemoteStartRefusedTests.speed + 3)) { bedside.channel.mode == .stoppedBySupervisor },
                "the supervisor should stop a channel whose pump never delivers (mode \(bedside.channel.mode))")
        var rules: [SupervisorRule] = []
        _ = bedside.decisions.drain { event in
            if event.modeAfter == .stoppedBySupervisor, event.modeBefore != .stoppedBySupervisor { rules.append(event.rule) }
        }
        #expect(rules == [.rateAgreement], "stopped by \(rules)")
        #expect(bedside.channel.highestAlarmPriority != nil, "an alarm should be raised")
        #expect(bedside.wiring.stopPath.stopsSent >= 1, "the stop (PO) goes out anyway")
        #expect(bedside.rackSimulator.inspect { $0.module(1)?.isInfusing } == false)
    }
}
