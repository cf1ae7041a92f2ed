import PropertyBased
import Testing
@testable import InfusionCore
@testable import Supervisor

/// Properties over random sequences of vital signs, pump states, faults, operator actions and tick
/// lengths (DESIGN.md "Testing", issue 6 acceptance). At every step the supervisor:
/// (a) never commands a rate above the validated program's maximum;
/// (b) never starts delivery without an operator start (and never from a latched supervisor stop);
/// (c) stops within one tick of a stop condition's hold time running out;
/// (d) always has a high-priority alarm present when a stop is not confirmed in time.
/// The oracles for (c) and (d) are written here from clinical.md, independently of the engine.
@Suite("Supervisor properties")
struct SupervisorPropertyTests {
    static let spo2Values: [Double?] = [99, 98, 97, 97, 96, 95, 95, 93, 92, 91, 90, 89.9, 88, 86, 85, 84.9, 80, nil]
    static let pulseValues: [Double?] = [72, 72, 80, 90, 100, 40, 44.9, 45, 50, 120, 120.1, 125, 130, 130.1, 150, nil]
    static let tickLengths: [Duration] = [.milliseconds(100), .milliseconds(100), .milliseconds(100), .milliseconds(500),
                                          .seconds(1), .seconds(2), .seconds(3), .seconds(7)]
    static let delays: [Duration] = [.zero, .zero, .seconds(2), .seconds(5), .seconds(5) + .milliseconds(100), .seconds(8)]

    @Test("random sequences: no rate above the validated maximum, no start without an operator, stops within one tick, unconfirmed stops alarm")
    func invariants() async throws {
        let plain = try Programs.program()
        let loading = try Programs.program(loading: (0.2, 10))
        let plainOrders = [try TitrationOrder.make(current: plain, new: try Programs.program(dose: 0.5, minutes: 30)),
                           try TitrationOrder.make(current: plain, new: try Programs.program(dose: 0.2, minutes: 20))]
        let loadingOrders = [try TitrationOrder.make(current: loading, new: try Programs.program(dose: 0.7, minutes: 30)),
                             try TitrationOrder.make(current: loading, new: try Programs.program(dose: 0.25, minutes: 20))]
        var coverage = Coverage()
        await propertyCheck(count: 200, input: Gen.bool(), Gen.int(in: 0...Int(Int32.max)).array(of: 100...400)) { withLoading, codes in
            let program = withLoading ? loading : plain
            coverage.add(try Self.run(program: program, orders: withLoading ? loadingOrders : plainOrders, codes: codes))
        }
        // The sequences must actually exercise what the properties are about (not pass vacuously).
        #expect(coverage.infusing > 40, "\(coverage)")
        #expect(coverage.holdStops > 5, "\(coverage)")
        #expect(coverage.supervisorStops > 40, "\(coverage)")
        #expect(coverage.unconfirmedStops > 30, "\(coverage)")
        #expect(coverage.titrations > 5, "\(coverage)")
        #expect(coverage.refusedStarts > 50, "\(coverage)")
    }

    /// How many sequences reached each situation.
    struct Coverage {
        var infusing = 0, holdStops = 0, supervisorStops = 0, unconfirmedStops = 0, titrations = 0, refusedStarts = 0
        mutating func add(_ o: Coverage) {
            infusing += o.infusing; holdStops += o.holdStops; supervisorStops += o.supervisorStops
            unconfirmedStops += o.unconfirmedStops; titrations += o.titrations; refusedStarts += o.refusedStarts
        }
    }

    /// The oracle's view of the hold-time rules (clinical.md §6.3), from the samples the test publishes.
    struct Oracle {
        var lastAccepted: MonotonicInstant?
        var lastValid: MonotonicInstant?
        var lowSince: MonotonicInstant?
        var critical = false
        var pulseHighSince: MonotonicInstant?
        var pulseLowSince: MonotonicInstant?
        var firstStart: MonotonicInstant?
        var stopSince: MonotonicInstant?

        mutating func see(_ s: VitalSample, now: MonotonicInstant, limits: SupervisorLimits) {
            if let last = lastAccepted, s.measuredAt <= last { return } // out of order or the same sample
            guard s.measuredAt <= now, now - s.measuredAt <= limits.sampleMaxAge else { return } // stale: no data
            lastAccepted = s.measuredAt
            guard s.isValid, let spo2 = s.spo2, let pulse = s.pulseRate else { return }
            lastValid = s.measuredAt
            critical = spo2 < limits.spo2ImmediatePauseBelow
            lowSince = spo2 < limits.spo2PauseBelow ? (lowSince ?? s.measuredAt) : nil
            pulseHighSince = pulse > limits.pulsePauseAbove ? (pulseHighSince ?? s.measuredAt) : nil
            pulseLowSince = pulse < limits.pulsePauseBelow ? (pulseLowSince ?? s.measuredAt) : nil
        }

        /// A stop condition whose hold has run out at `now`, if any.
        func due(now: MonotonicInstant, limits: SupervisorLimits) -> String? {
            if critical { return "SpO2 below the immediate threshold" }
            if let t = lowSince, now - t >= limits.spo2PauseHold { return "SpO2 low for the hold" }
            if let t = pulseHighSince, now - t >= limits.pulsePauseHold { return "pulse high for the hold" }
            if let t = pulseLowSince, now - t >= limits.pulsePauseHold { return "pulse low for the hold" }
            if let start = firstStart {
                let reference = max(lastValid ?? start, start)
                if now - reference > limits.monitoringLossPauseAfter { return "monitoring lost past the pause window" }
            }
            return nil
        }
    }

    static func run(program: ValidatedProgram, orders: [TitrationOrder], codes: [Int]) throws -> Coverage {
        var seen = Coverage()
        let limits = SupervisorLimits(program: program)
        var now = MonotonicInstant(nanoseconds: 5_000_000_000_000)
        var channel = SupervisorChannel(configuration: ChannelConfiguration(channel: 0, limits: limits, pumpHasWatchdog: true), now: now)
        var output = StepOutput()
        var pump = FakePump()
        pump.lastAdvance = now
        var oximeter = FakeOximeter()
        var pumpReporting = true
        var link = DeviceConnection.connected
        var inputs = ChannelInputs(pumpWatchdogArmed: true)
        var oracle = Oracle()
        var validatedMaximum = program.maximumPumpRate
        let forged = TitrationOrder(maintenanceRate: limits.rateCeiling + .millilitresPerHour(1),
                                    maximumRate: limits.rateCeiling + .millilitresPerHour(1),
                                    maintenanceDuration: .seconds(600), programIdentity: limits.programIdentity)

        for (index, code) in codes.enumerated() {
            let kind = code % 100
            let arg = (code / 100) % 1000
            var action: OperatorAction?
            var injected: VitalSample?
            switch kind {
            case 40..<46: oximeter.spo2 = spo2Values[arg % spo2Values.count]
            case 46..<50: oximeter.pulse = pulseValues[arg % pulseValues.count]
            case 50..<52: oximeter.quality = [[], [], [], [], .probeOff, .lowPerfusion, .artifact, .searching][arg % 8]
            case 52: oximeter.publishing.toggle()
            case 53: oximeter.connection = oximeter.connection == .connected ? .disconnected : .connected
            case 54: oximeter.delay = delays[arg % delays.count]
            case 55: injected = VitalSample(arrivedAt: now, measuredAt: now - .seconds(Double(1 + arg % 20)), spo2: .percent(99), pulseRate: .beatsPerMinute(70))
            case 56..<58: pump.alarms = [[], [], [], .occlusion, .lowBattery, .nearEmpty, .doorOpen][arg % 7]
            case 58: pump.ignoresStops.toggle()
            case 59: pump.ignoresStarts.toggle()
            case 60: pump.state = .stopped
            case 61: pump.state = .infusing; pump.rate = .millilitresPerHour(Double(arg % 200))
            case 62: pumpReporting.toggle()
            case 63: link = link == .connected ? .disconnected : .connected
            case 64: pump.state = .unknown
            case 65: pump.volume = .zero
            case 66: pump.counterOffset = .millilitres(Double(arg % 10) / 10)
            case 67: pump.reportedRate = arg % 2 == 0 ? nil : .millilitresPerHour(Double(arg % 150))
            case 68..<80, 96..<100: action = arg % 4 == 0 ? .resume : .start
            case 80..<84: action = arg % 2 == 0 ? .pause : .resume
            case 84: action = arg % 5 == 0 ? .stop : .acknowledge
            case 85..<90: action = .acknowledge
            case 90: action = .audioPause
            case 91..<95: action = .titrate(orders[arg % orders.count])
            case 95: action = .titrate(forged)
            default: break
            }

            now = now + tickLengths[(code / 100_000) % tickLengths.count]
            pump.advance(to: now)
            if let injected {
                inputs.vitals = injected
            } else if oximeter.publishing {
                inputs.vitals = VitalSample(arrivedAt: now, measuredAt: now - oximeter.delay, spo2: oximeter.spo2.map { .percent($0) },
                                            pulseRate: oximeter.pulse.map { .beatsPerMinute($0) }, quality: oximeter.quality)
            }
            inputs.oximeter = oximeter.connection
            let published = pumpReporting ? pump.status(at: now) : nil
            if let published { inputs.pump = published }
            inputs.pumpLink = link
            inputs.action = action
            if let v = inputs.vitals { oracle.see(v, now: now, limits: limits) }

            let modeBefore = channel.state.mode
            channel.step(inputs: inputs, now: now, into: &output)
            let modeAfter = channel.state.mode
            let step = "step \(index) at \(now), action \(action.map { "\($0)" } ?? "none"), \(modeBefore) → \(modeAfter)"

            // (a) No rate above the validated program's maximum (and no maintenance rate above the drug's ceiling).
            if case .applied(.titrate(let order))? = output.actionOutcome { validatedMaximum = order.maximumRate }
            for command in output.commands {
                if let rate = command.commandedRate {
                    #expect(rate <= validatedMaximum, "(a) \(command) above the validated maximum \(validatedMaximum): \(step)")
                    #expect(rate > .zero, "(a) \(command): \(step)")
                    if channel.state.phase != .loading {
                        #expect(rate <= limits.rateCeiling, "(a) \(command) above the drug's ceiling: \(step)")
                    }
                }
            }

            // (b) Delivery starts only on an operator start or resume that the start checks accepted.
            let operatorStarted: Bool = switch output.actionOutcome {
            case .applied(.start)?, .applied(.resume)?: true
            default: false
            }
            for command in output.commands {
                if case .start = command { #expect(operatorStarted, "(b) start without an operator start: \(step)") }
                if case .setRate = command {
                    #expect(modeBefore.commandsDelivery, "(b) rate change while not delivering: \(step)")
                }
            }
            if modeAfter.commandsDelivery && !modeBefore.commandsDelivery {
                #expect(operatorStarted, "(b) delivery resumed without an operator start: \(step)")
            }
            if modeBefore == .stoppedBySupervisor { #expect(!modeAfter.commandsDelivery, "(b) R-MON-07: \(step)") }
            if operatorStarted, oracle.firstStart == nil { oracle.firstStart = now }

            // (c) A stop condition whose hold has run out stops delivery in this very step.
            if modeBefore.commandsDelivery, let why = oracle.due(now: now, limits: limits) {
                #expect(!modeAfter.commandsDelivery, "(c) \(why) but still delivering: \(step)")
                #expect(output.commands.contains(.stop) || channel.state.stopPending, "(c) no stop for \(why): \(step)")
            }

            // (d) A stop not confirmed within the deadline has the high-priority alarm present. The oracle
            // counts a stop as confirmed once the latest published status arrived after it, is fresh (no
            // older than sampleMaxAge, link up) and reports the pump stopped, paused or at rate zero (R-MON-09).
            if let since = oracle.stopSince, let latest = inputs.pump, link == .connected, latest.receivedAt > since,
               now - latest.receivedAt <= limits.sampleMaxAge, SupervisorChannel.confirmsStop(latest) {
                oracle.stopSince = nil
            }
            if oracle.stopSince == nil, output.commands.contains(.stop) { oracle.stopSince = now }
            if let since = oracle.stopSince, now - since > limits.stopConfirmationDeadline {
                let alarm = channel.alarms[.stopNotConfirmed]
                #expect(alarm.isPresent && alarm.priority == .high,
                        "(d) stop unconfirmed for \(now - since): \(step); engine: pending \(channel.state.stopPending) since \(channel.state.stopFirstSentAt), last status \(String(describing: channel.state.lastPumpStatus)); link \(link)")
            }

            pump.apply(output.commands)
            if modeAfter == .infusing { seen.infusing = 1 }
            if modeAfter == .stoppedBySupervisor && modeBefore != .stoppedBySupervisor { seen.supervisorStops = 1 }
            if modeBefore.commandsDelivery && oracle.due(now: now, limits: limits) != nil { seen.holdStops = 1 }
            if channel.alarms[.stopNotConfirmed].isPresent { seen.unconfirmedStops = 1 }
            if case .applied(.titrate)? = output.actionOutcome { seen.titrations = 1 }
            if case .startRefused? = output.actionOutcome { seen.refusedStarts = 1 }
        }
        return seen
    }
}
