import Testing
@testable import InfusionCore
@testable import Supervisor

/// R-ST-01 / §6.2: the start interlocks, on both sides of every limit.
@Suite("Start checks (R-ST-01)")
struct StartCheckTests {
    /// Sets up a scenario, adjusts it, ticks once, then asks for a start.
    func attemptStart(_ adjust: (inout Scenario) -> Void, pumpHasWatchdog: Bool = true) throws -> (Scenario, StepOutput) {
        var s = Scenario(program: try Programs.program(), pumpHasWatchdog: pumpHasWatchdog)
        s.tick()
        adjust(&s)
        let out = s.tick(.start)
        return (s, out)
    }

    @Test("a start with valid, fresh, in-range vitals and a stopped pump commands the validated rate")
    func acceptedStart() throws {
        let (s, out) = try attemptStart { _ in }
        #expect(out.actionOutcome == .applied(.start))
        #expect(s.mode == .checked)
        let rate = s.limits.maintenanceRate
        #expect(rate == .millilitresPerHour(28))
        guard case let .start(commanded, volumeLimit)? = out.commandList.first else {
            Issue.record("expected a start command, got \(out.commandList)")
            return
        }
        #expect(commanded == rate)
        #expect(volumeLimit == s.limits.cumulativeHardLimitVolume) // nothing delivered yet: 4 mg/kg × 80 kg at 1 mg/mL
        #expect(volumeLimit == .millilitres(320))
        #expect(out.decisions.contains { $0.rule == .startChecks && $0.kind == .startCommanded && $0.command == out.commandList.first })
        var t = s
        t.tick()
        #expect(t.mode == .infusing, "the pump reporting delivery at the commanded rate confirms the start")
        #expect(t.decisions.contains { $0.kind == .deliveryConfirmed && $0.modeBefore == .checked && $0.modeAfter == .infusing })
    }

    @Test("SpO2 at the start minimum passes; just below is refused", arguments: [(92.0, true), (91.9, false)])
    func spo2Minimum(spo2: Double, passes: Bool) throws {
        let (s, out) = try attemptStart { $0.oximeter.spo2 = spo2 }
        #expect(out.actionOutcome == (passes ? .applied(.start) : .startRefused(.spo2TooLow)))
        #expect(s.mode == (passes ? .checked : .idle))
        #expect(out.commands.isEmpty == !passes)
    }

    @Test("pulse rate at the start limits passes; just outside is refused",
          arguments: [(50.0, nil), (49.9, StartRefusal.pulseTooLow), (120.0, nil), (120.1, StartRefusal.pulseTooHigh)])
    func pulseLimits(pulse: Double, refusal: StartRefusal?) throws {
        let (_, out) = try attemptStart { $0.oximeter.pulse = pulse }
        #expect(out.actionOutcome == (refusal.map { .startRefused($0) } ?? .applied(.start)))
    }

    @Test("vitals as old as the freshness limit pass; one tick older are refused")
    func vitalsFreshness() throws {
        let program = try Programs.program()
        let limits = SupervisorLimits(program: program)
        let freshness = min(limits.startVitalsMaxAge, limits.sampleMaxAge)
        for (age, passes) in [(freshness, true), (freshness + .milliseconds(100), false)] {
            var s = Scenario(program: program)
            s.tick()
            s.oximeter.publishing = false // the last sample ages
            s.run(for: age - .milliseconds(100))
            let out = s.tick(.start)
            #expect(out.actionOutcome == (passes ? .applied(.start) : .startRefused(.vitalsStale)), "age \(age)")
        }
    }

    @Test("each missing interlock refuses the start with its own reason")
    func interlocks() throws {
        let cases: [(String, (inout Scenario) -> Void, StartRefusal)] = [
            ("oximeter disconnected", { $0.oximeter.connection = .disconnected }, .monitorNotConnected),
            ("probe off", { $0.oximeter.quality = .probeOff }, .vitalsInvalid),
            ("no SpO2 value", { $0.oximeter.spo2 = nil }, .vitalsInvalid),
            ("pump link down", { $0.pumpLink = .disconnected }, .pumpNotConnected),
            ("pump infusing", { $0.pump.state = .infusing }, .pumpNotStopped),
            ("pump state unknown", { $0.pump.state = .unknown }, .pumpNotStopped),
            ("pump occlusion", { $0.pump.alarms = .occlusion }, .pumpAlarm),
            ("watchdog not armed", { $0.watchdogArmed = false }, .pumpWatchdogNotArmed),
        ]
        for (name, adjust, refusal) in cases {
            let (s, out) = try attemptStart(adjust)
            #expect(out.actionOutcome == .startRefused(refusal), "\(name)")
            #expect(s.mode == .idle || s.mode == .stoppedBySupervisor, "\(name): \(s.mode)")
            #expect(!out.commandList.contains { $0.commandedRate != nil }, "\(name): no delivery")
            #expect(s.decisions.contains { $0.rule == .startChecks && $0.kind == .startRefused(refusal) }, "\(name)")
        }
    }

    @Test("no vital-sign sample at all refuses the start")
    func noVitals() throws {
        var s = Scenario(program: try Programs.program())
        s.oximeter.publishing = false
        let out = s.tick(.start)
        #expect(out.actionOutcome == .startRefused(.noVitals))
    }

    @Test("a pump family without its own watchdog starts without one")
    func noWatchdogFamily() throws {
        let (_, out) = try attemptStart({ $0.watchdogArmed = false }, pumpHasWatchdog: false)
        #expect(out.actionOutcome == .applied(.start))
    }

    @Test("a pump that does not start within the rate hold is stopped (rate agreement)")
    func pumpDoesNotStart() throws {
        var s = Scenario(program: try Programs.program())
        s.pump.ignoresStarts = true
        s.tick()
        s.tick(.start)
        let hold = s.limits.rateMismatchHold
        s.tick() // the first status after the command shows the pump stopped: the disagreement starts here
        s.run(for: hold) // it has lasted exactly the hold: not yet longer
        #expect(s.mode == .checked)
        #expect(!s.stopSent(since: .origin))
        let out = s.tick()
        #expect(s.mode == .stoppedBySupervisor)
        #expect(out.commandList.first == .stop)
        #expect(out.started(.rateMismatch))
    }
}
