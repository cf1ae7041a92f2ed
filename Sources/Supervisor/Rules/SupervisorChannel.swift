import InfusionCore

/// How a channel is set up: its number, its limits (from a validated program) and whether its pump's
/// family has its own communication watchdog that must be armed before a start.
public struct ChannelConfiguration: Hashable, Sendable {
    /// The channel's number, carried on every decision event.
    public var channel: UInt16
    /// The limits from the validated program and its profile.
    public var limits: SupervisorLimits
    /// True when the pump family has a communication watchdog (New Era safe mode, Alaris lease,
    /// Fresenius keep-alive): the start checks then require `ChannelInputs.pumpWatchdogArmed`.
    public var pumpHasWatchdog: Bool

    /// A configuration from a validated program. Allocates (call outside the tick).
    public init(channel: UInt16 = 0, program: ValidatedProgram, pumpHasWatchdog: Bool) {
        self.init(channel: channel, limits: SupervisorLimits(program: program), pumpHasWatchdog: pumpHasWatchdog)
    }

    /// A configuration from limits already taken from a validated program.
    public init(channel: UInt16 = 0, limits: SupervisorLimits, pumpHasWatchdog: Bool) {
        self.channel = channel
        self.limits = limits
        self.pumpHasWatchdog = pumpHasWatchdog
    }
}

/// The safety supervisor's rule engine for one channel (one pump, its oximeter, one validated program):
/// a pure state machine. `step(inputs:now:into:)` takes the latest inputs and the time and produces pump
/// commands, alarm changes and decision events; it does no I/O, reads no clock, takes no lock and
/// does not allocate (its buffers are allocated by `init` and `StepOutput.init`).
///
/// Every threshold comes from `configuration.limits` (the library profile). Rules, in the order a step
/// applies them: R-MON-08 sample freshness and order; R-MON-01..03 SpO2 and pulse bands; R-MON-06 loss
/// of monitoring; pump alarms, status staleness, unexpected delivery, rate and volume agreement;
/// R-DL-08 cumulative dose; R-MON-09 stop confirmation; the schedule; then the operator action; then the
/// alarm system's timers. Only an operator's start or resume ever starts delivery (R-MON-07).
///
/// A value type with one thread at a time: the runner's thread in production, the test's in tests.
public struct SupervisorChannel: Sendable {
    /// The configuration; `limits` changes only through an accepted titration.
    public private(set) var configuration: ChannelConfiguration
    /// The state machine and trackers.
    public private(set) var state: ChannelState
    /// The alarm system.
    public private(set) var alarms: AlarmManager

    // Per-step scratch (not state): the view of the inputs after freshness rules.
    private var snapshot = InputSnapshot.empty
    private var pumpFresh = false

    /// A channel in `idle`, with every alarm inactive. Allocates its alarm table (call outside the tick).
    public init(configuration: ChannelConfiguration, now: MonotonicInstant) {
        self.configuration = configuration
        state = ChannelState(limits: configuration.limits)
        alarms = AlarmManager(audioPauseMax: configuration.limits.audioPauseMax,
                              escalateMediumAfter: configuration.limits.escalateMediumAfter, now: now)
    }

    /// The limits in force (the program's, or the last accepted titration's).
    public var limits: SupervisorLimits { configuration.limits }

    /// The pure form of `step`: returns the next channel and what the step produced. Allocates a new
    /// output each call; for tests and tools, not the real-time tick.
    public func stepped(inputs: ChannelInputs, now: MonotonicInstant) -> (SupervisorChannel, StepOutput) {
        var next = self
        var output = StepOutput()
        next.step(inputs: inputs, now: now, into: &output)
        return (next, output)
    }

    /// Applies one step at `now` (monotonic; an earlier `now` than the last step's counts as no time
    /// passing). Empties `output` first, then fills it. No allocation, no lock, no I/O.
    public mutating func step(inputs: borrowing ChannelInputs, now: MonotonicInstant, into output: inout StepOutput) {
        output.reset()
        let elapsed: Duration
        if let last = state.lastStepAt, now > last { elapsed = now - last } else { elapsed = .zero }
        if state.lastStepAt.map({ now > $0 }) ?? true { state.lastStepAt = now }

        let rateDuringInterval = state.commandedRate
        let deliveringDuringInterval = state.mode.commandsDelivery
        snapshot.oximeter = inputs.oximeter
        snapshot.pumpLink = inputs.pumpLink
        ingestVitals(inputs.vitals, now: now, into: &output)
        ingestPump(inputs.pump, link: inputs.pumpLink, now: now, into: &output)
        accumulate(elapsed, rate: rateDuringInterval, delivering: deliveringDuringInterval)

        evaluateVitalSigns(now: now, into: &output)
        evaluateMonitoringLoss(now: now, into: &output)
        evaluatePump(watchdogArmed: inputs.pumpWatchdogArmed, now: now, into: &output)
        evaluateDose(now: now, into: &output)
        evaluateStopConfirmation(now: now, into: &output)
        evaluateSchedule(now: now, into: &output)
        if let action = inputs.action {
            apply(action, watchdogArmed: inputs.pumpWatchdogArmed, now: now, into: &output)
        }
        alarms.tick(now: now, into: &output)
        recordAlarmDecisions(now: now, into: &output)
    }

    // MARK: Time

    /// The schedule position and the volumes for the interval since the last step, at the rate that was
    /// commanded during it. The expected volume counts only while the pump reports delivery (its latest
    /// status, which covers the interval), so it is comparable with the pump's own counter.
    private mutating func accumulate(_ elapsed: Duration, rate: VolumeRate, delivering: Bool) {
        guard elapsed > .zero, delivering else { return }
        state.deliveryElapsed += elapsed
        let volume = Volume(canonicalValue: rate.millilitresPerHour * elapsed.hours)
        state.commandedVolume = state.commandedVolume + volume
        if pumpFresh, snapshot.pumpState == .infusing {
            state.expectedVolume = state.expectedVolume + volume
        }
    }

    // MARK: Inputs (R-MON-08)

    private mutating func ingestVitals(_ sample: VitalSample?, now: MonotonicInstant, into output: inout StepOutput) {
        let limits = configuration.limits
        // A sample is new when it differs from the last one judged, not merely when its time does: two
        // samples decoded from one read carry the same arrival (and, without a device clock, the same
        // measurement) time, and the later one (perhaps the stop-worthy one) must not pass as a repeat.
        if let s = sample, s != state.lastAcceptedVitals, s != state.lastRejectedVitals {
            var rejection: SampleRejection?
            if let last = state.lastAcceptedVitals, s.measuredAt < last.measuredAt {
                rejection = .outOfOrder
            } else if s.measuredAt > now {
                rejection = .fromTheFuture
            } else if now - s.measuredAt > limits.sampleMaxAge {
                rejection = .stale
            }
            if let rejection {
                state.lastRejectedVitals = s
                record(.sampleFreshness, .sampleIgnored(rejection), now: now, into: &output)
            } else {
                accept(s)
            }
        }
        let latest = state.lastAcceptedVitals
        snapshot.vitalsMeasuredAt = latest?.measuredAt
        snapshot.spo2 = latest?.spo2
        snapshot.pulseRate = latest?.pulseRate
        snapshot.quality = latest?.quality ?? []
    }

    /// A new, in-order, fresh sample: moves the band trackers. Only a valid sample can start or end a
    /// band condition; an invalid one starts the invalid-signal tracker and leaves the bands as they
    /// were (no evidence of recovery).
    private mutating func accept(_ s: VitalSample) {
        let limits = configuration.limits
        state.lastAcceptedVitals = s
        guard s.isValid, let spo2 = s.spo2, let pulse = s.pulseRate else {
            if state.invalidSince == nil { state.invalidSince = s.measuredAt }
            return
        }
        let t = s.measuredAt
        state.invalidSince = nil
        state.lastValidVitals = s
        Self.track(&state.spo2CriticalSince, spo2 < limits.spo2ImmediatePauseBelow, at: t)
        Self.track(&state.spo2LowSince, spo2 < limits.spo2PauseBelow, at: t)
        Self.track(&state.spo2WarningSince, spo2 <= limits.spo2WarningAtOrBelow, at: t)
        Self.track(&state.pulseHighSince, pulse > limits.pulsePauseAbove, at: t)
        Self.track(&state.pulseLowSince, pulse < limits.pulsePauseBelow, at: t)
        Self.track(&state.pulseWarningSince, pulse > limits.pulseWarningAbove, at: t)
    }

    private static func track(_ since: inout MonotonicInstant?, _ condition: Bool, at t: MonotonicInstant) {
        if condition {
            if since == nil { since = t }
        } else {
            since = nil
        }
    }

    private mutating func ingestPump(_ status: PumpStatus?, link: DeviceConnection, now: MonotonicInstant, into output: inout StepOutput) {
        // As for vitals: a status that differs from the last one and is not older is new, even with the
        // same receive time (two replies read at once).
        if let p = status, p.receivedAt <= now, state.lastPumpStatus.map({ p != $0 && p.receivedAt >= $0.receivedAt }) ?? true {
            state.lastPumpStatus = p
            if let v = p.volumeInfused { countVolume(v, now: now, into: &output) }
        }
        let latest = state.lastPumpStatus
        pumpFresh = link == .connected && latest.map { now - $0.receivedAt <= configuration.limits.sampleMaxAge } == true
        snapshot.pumpReceivedAt = latest?.receivedAt
        snapshot.pumpState = pumpFresh ? (latest?.state ?? .unknown) : .unknown
        snapshot.pumpRate = pumpFresh ? latest?.rate : nil
        snapshot.pumpVolume = latest?.volumeInfused
        snapshot.pumpAlarms = pumpFresh ? (latest?.alarms ?? []) : []
    }

    /// The pump's counter: a decrease is a reset or clear; what was counted before it is carried over,
    /// and counting restarts from zero (so everything the counter shows after a reset is counted: fail safe).
    private mutating func countVolume(_ v: Volume, now: MonotonicInstant, into output: inout StepOutput) {
        defer { state.counterLast = v }
        guard let last = state.counterLast, v < last else { return }
        guard let base = state.counterBase else { return } // not started yet: nothing counted
        state.counterCarried = state.counterCarried + (last - base)
        state.counterBase = .zero
        record(.volumeAgreement, .counterReset(before: last, after: v), now: now, into: &output)
        alarms.raiseEvent(.volumeCounterReset, trigger: .counterReset(before: last, after: v), now: now, into: &output)
    }

    // MARK: Vital-sign rules (R-MON-01 to R-MON-03)

    private mutating func evaluateVitalSigns(now: MonotonicInstant, into output: inout StepOutput) {
        let limits = configuration.limits
        let active = state.mode.isSessionActive
        let spo2 = state.lastValidVitals?.spo2 ?? .zero
        let pulse = state.lastValidVitals?.pulseRate ?? .zero

        // R-MON-01: immediate stop.
        let critical = active && state.spo2CriticalSince != nil
        alarms.set(.spo2CriticallyLow, present: critical,
                   trigger: .spo2(spo2, limit: limits.spo2ImmediatePauseBelow, lasted: lasted(state.spo2CriticalSince, now)),
                   now: now, into: &output)
        if critical { supervisorStop(.spo2ImmediatePause, now: now, into: &output) }

        // R-MON-01: stop after the hold time.
        let low = active && held(state.spo2LowSince, limits.spo2PauseHold, now)
        alarms.set(.spo2Low, present: low,
                   trigger: .spo2(spo2, limit: limits.spo2PauseBelow, lasted: lasted(state.spo2LowSince, now)),
                   now: now, into: &output)
        if low { supervisorStop(.spo2Pause, now: now, into: &output) }

        // R-MON-02: warning band, no stop (not repeated while a stop alarm for SpO2 is present).
        alarms.set(.spo2Warning, present: active && !low && !critical && held(state.spo2WarningSince, limits.spo2WarningHold, now),
                   trigger: .spo2(spo2, limit: limits.spo2WarningAtOrBelow, lasted: lasted(state.spo2WarningSince, now)),
                   now: now, into: &output)

        // R-MON-03: pulse-rate stops and warning.
        let high = active && held(state.pulseHighSince, limits.pulsePauseHold, now)
        alarms.set(.pulseHigh, present: high,
                   trigger: .pulse(pulse, limit: limits.pulsePauseAbove, lasted: lasted(state.pulseHighSince, now)),
                   now: now, into: &output)
        let slow = active && held(state.pulseLowSince, limits.pulsePauseHold, now)
        alarms.set(.pulseLow, present: slow,
                   trigger: .pulse(pulse, limit: limits.pulsePauseBelow, lasted: lasted(state.pulseLowSince, now)),
                   now: now, into: &output)
        if high || slow { supervisorStop(.pulsePause, now: now, into: &output) }
        alarms.set(.pulseWarning, present: active && !high && held(state.pulseWarningSince, limits.pulseWarningHold, now),
                   trigger: .pulse(pulse, limit: limits.pulseWarningAbove, lasted: lasted(state.pulseWarningSince, now)),
                   now: now, into: &output)
    }

    // MARK: Loss of monitoring (R-MON-06)

    private mutating func evaluateMonitoringLoss(now: MonotonicInstant, into output: inout StepOutput) {
        let limits = configuration.limits
        let active = state.mode.isSessionActive
        let invalid = active && held(state.invalidSince, limits.invalidSignalAlarmAfter, now)
        alarms.set(.invalidSignal, present: invalid,
                   trigger: .signal(state.lastAcceptedVitals?.quality ?? [], lasted: lasted(state.invalidSince, now)),
                   now: now, into: &output)

        // How long no valid sample has been measured (by the samples' own measurement times, so a sample
        // that arrives late or stale counts as none; a sample refused as stale or out of order never
        // becomes the last valid one). Counted from the session's first start at the earliest.
        let lastValid = state.lastValidVitals?.measuredAt ?? state.monitoringSince
        let lost = now - max(lastValid, state.monitoringSince)
        let warn = active && lost > limits.monitoringLossAlarmAfter
        alarms.set(.monitoringLost, present: warn,
                   trigger: .noValidData(lasted: lost, window: limits.monitoringLossAlarmAfter), now: now, into: &output)
        if active && lost > limits.monitoringLossPauseAfter {
            alarms.escalate(.monitoringLost, trigger: .noValidData(lasted: lost, window: limits.monitoringLossPauseAfter),
                            now: now, into: &output)
            supervisorStop(.monitoringLoss, now: now, into: &output)
        }
    }

    // MARK: Pump rules

    private mutating func evaluatePump(watchdogArmed: Bool, now: MonotonicInstant, into output: inout StepOutput) {
        let limits = configuration.limits
        let mode = state.mode
        let active = mode.isSessionActive

        // Alarms the pump reports (R-ALM-01).
        let reported = snapshot.pumpAlarms
        let high = reported.intersection(Self.highPriorityPumpAlarms)
        alarms.set(.pumpAlarm, present: active && !high.isEmpty, trigger: .pumpAlarms(reported), now: now, into: &output)
        alarms.set(.pumpBatteryLow, present: active && reported.contains(.lowBattery), trigger: .pumpAlarms(reported), now: now, into: &output)
        alarms.set(.pumpNearEmpty, present: active && reported.contains(.nearEmpty), trigger: .pumpAlarms(reported), now: now, into: &output)
        if !high.isEmpty { supervisorStop(.pumpAlarm, now: now, into: &output) }

        // Unknown pump state (stale status, link down, or a state the driver could not read) moves
        // toward safe at once.
        let silent = active && snapshot.pumpState == .unknown
        alarms.set(.pumpCommunicationLost, present: silent,
                   trigger: .pumpSilent(age: state.lastPumpStatus.map { now - $0.receivedAt }, link: snapshot.pumpLink),
                   now: now, into: &output)
        if silent { supervisorStop(.pumpCommunication, now: now, into: &output) }

        // The pump's own watchdog (the second, independent stop).
        alarms.set(.pumpWatchdogDisarmed, present: configuration.pumpHasWatchdog && mode.commandsDelivery && !watchdogArmed,
                   trigger: .none, now: now, into: &output)

        // Delivery the supervisor did not command.
        let delivering = pumpFresh && Self.reportsDelivery(state: snapshot.pumpState, rate: snapshot.pumpRate)
        let unexpected = active && delivering && !state.stopPending
            && (!mode.commandsDelivery || snapshot.pumpState != .infusing)
        alarms.set(.unexpectedDelivery, present: unexpected, trigger: .delivery(snapshot.pumpState, rate: snapshot.pumpRate),
                   now: now, into: &output)
        if unexpected {
            // Always a fresh stop (an earlier one was confirmed, so the pump restarted by itself), and a
            // latched supervisor stop from any mode that could lead back to delivery.
            sendStop(.unexpectedDelivery, now: now, into: &output)
            switch state.mode {
            case .checked, .infusing, .pausedByOperator, .acknowledged: latch(.unexpectedDelivery, now: now, into: &output)
            case .idle, .stoppedBySupervisor, .complete, .stoppedByOperator, .fault: break
            }
        }

        // Commanded against reported rate, while delivery is commanded.
        if state.mode.commandsDelivery, pumpFresh, let status = state.lastPumpStatus {
            let commanded = state.commandedRate
            let reportedRate: VolumeRate? = switch snapshot.pumpState {
            case .infusing: status.rate
            case .stopped, .paused: .zero
            case .withdrawing, .purging, .unknown: nil
            }
            let tolerance = commanded.millilitresPerHour * limits.rateTolerance.percent / 100
            let agrees = reportedRate.map { abs($0.millilitresPerHour - commanded.millilitresPerHour) <= tolerance } ?? false
            if agrees {
                state.rateMismatchSince = nil
                if state.mode == .checked, snapshot.pumpState == .infusing, status.receivedAt >= state.rateCommandedAt {
                    let before = state.mode
                    state.mode = .infusing
                    record(.rateAgreement, .deliveryConfirmed, before: before, now: now, into: &output)
                }
            } else if state.rateMismatchSince == nil {
                state.rateMismatchSince = max(status.receivedAt, state.rateCommandedAt)
            }
            let mismatch = state.rateMismatchSince.map { now - $0 > limits.rateMismatchHold } ?? false
            alarms.set(.rateMismatch, present: mismatch,
                       trigger: .rate(commanded: commanded, reported: reportedRate, lasted: lasted(state.rateMismatchSince, now)),
                       now: now, into: &output)
            if mismatch { supervisorStop(.rateAgreement, now: now, into: &output) }
        } else if !state.mode.commandsDelivery {
            state.rateMismatchSince = nil
            alarms.set(.rateMismatch, present: false, trigger: .none, now: now, into: &output)
        }

        // Commanded against counted volume.
        if state.started, let counted = state.counterDelivered {
            let difference = abs(counted.millilitres - state.expectedVolume.millilitres)
            let disagrees = active && difference > limits.volumeTolerance.millilitres
            alarms.set(.volumeMismatch, present: disagrees, trigger: .volume(expected: state.expectedVolume, reported: counted),
                       now: now, into: &output)
            if disagrees { supervisorStop(.volumeAgreement, now: now, into: &output) }
        }
    }

    /// Pump alarms that stop the infusion (high priority, R-ALM-01).
    static let highPriorityPumpAlarms: PumpAlarms = [
        .occlusion, .empty, .communicationTimeout, .powerReset, .programError, .outOfRange, .airInLine, .doorOpen,
        .deviceFault, .remoteControlLost,
    ]

    /// True when a reported state means fluid may be moving.
    static func reportsDelivery(state: PumpRunState, rate: VolumeRate?) -> Bool {
        switch state {
        case .infusing: rate.map { $0 > .zero } ?? true
        case .purging, .withdrawing: true
        case .stopped, .paused, .unknown: false
        }
    }

    /// True when a status confirms a stop: the pump reports itself stopped or paused, or infusing at zero.
    static func confirmsStop(_ status: PumpStatus) -> Bool {
        status.state.isKnownStopped || (status.state == .infusing && status.rate == .zero)
    }

    // MARK: Cumulative dose (R-DL-08)

    private mutating func evaluateDose(now: MonotonicInstant, into output: inout StepOutput) {
        let limits = configuration.limits
        let delivered = state.deliveredVolume
        let reached = state.started && delivered >= limits.cumulativeHardLimitVolume
        alarms.set(.cumulativeDoseLimit, present: reached && state.mode.isSessionActive,
                   trigger: .dose(delivered: delivered, limit: limits.cumulativeHardLimitVolume), now: now, into: &output)
        if reached { supervisorStop(.cumulativeDose, now: now, into: &output) }
    }

    // MARK: Stop confirmation (R-MON-09)

    private mutating func evaluateStopConfirmation(now: MonotonicInstant, into output: inout StepOutput) {
        guard state.stopPending else {
            alarms.set(.stopNotConfirmed, present: false, trigger: .none, now: now, into: &output)
            return
        }
        let limits = configuration.limits
        // Confirm, don't assume: only a status that arrived after the stop was sent can confirm it.
        if pumpFresh, let status = state.lastPumpStatus, status.receivedAt > state.stopFirstSentAt, Self.confirmsStop(status) {
            state.stopPending = false
            record(.stopConfirmation, .stopConfirmed(after: now - state.stopFirstSentAt), now: now, into: &output)
            alarms.set(.stopNotConfirmed, present: false, trigger: .none, now: now, into: &output)
            return
        }
        guard now - state.stopDeadlineBase > limits.stopConfirmationDeadline else { return }
        // Missed: alarm, repeat the stop; from the second miss on, the secondary stop and `fault`.
        state.stopAttempts += 1
        state.stopDeadlineBase = now
        alarms.set(.stopNotConfirmed, present: true,
                   trigger: .stopUnconfirmed(elapsed: now - state.stopFirstSentAt, attempts: state.stopAttempts),
                   now: now, into: &output)
        output.command(.stop)
        record(.stopConfirmation, .stopRepeated(attempt: state.stopAttempts), command: .stop, now: now, into: &output)
        if state.stopAttempts == 3 {
            let before = state.mode
            output.command(.secondaryStop)
            state.mode = .fault
            record(.stopConfirmation, .secondaryStopEngaged, command: .secondaryStop, before: before, now: now, into: &output)
        }
    }

    // MARK: Schedule

    private mutating func evaluateSchedule(now: MonotonicInstant, into output: inout StepOutput) {
        guard state.mode.commandsDelivery else { return }
        let limits = configuration.limits
        if state.phase == .loading, state.deliveryElapsed >= limits.loadingDuration {
            state.phase = .maintenance
            record(.schedule, .phaseChanged(.maintenance), now: now, into: &output)
            commandRate(limits.maintenanceRate, start: false, rule: .schedule, now: now, into: &output)
        }
        if state.phase != .finished, state.deliveryElapsed >= state.programEndsAfter {
            state.phase = .finished
            let before = state.mode
            sendStop(.schedule, now: now, into: &output)
            state.mode = .complete
            record(.schedule, .phaseChanged(.finished), before: before, now: now, into: &output)
            alarms.raiseEvent(.infusionComplete, trigger: .completed(delivered: state.deliveredVolume), now: now, into: &output)
        }
    }

    // MARK: Operator actions

    private mutating func apply(_ action: OperatorAction, watchdogArmed: Bool, now: MonotonicInstant, into output: inout StepOutput) {
        let mode = state.mode
        switch action {
        case .start, .resume:
            if case .resume = action, mode != .pausedByOperator {
                refuse(action, .notPaused, now: now, into: &output)
                return
            }
            if let refusal = startRefusal(watchdogArmed: watchdogArmed, now: now) {
                output.actionOutcome = .startRefused(refusal)
                record(.startChecks, .startRefused(refusal), now: now, into: &output)
                return
            }
            startDelivery(now: now, into: &output)
            output.actionOutcome = .applied(action)
        case .pause:
            guard mode.commandsDelivery else { return refuse(action, .notDelivering, now: now, into: &output) }
            sendStop(.operatorAction, now: now, into: &output)
            state.mode = .pausedByOperator
            record(.operatorAction, .actionApplied(action), before: mode, now: now, into: &output)
            output.actionOutcome = .applied(action)
        case .stop:
            guard mode != .complete, mode != .stoppedByOperator else {
                return refuse(action, .sessionEnded, now: now, into: &output)
            }
            if !state.stopPending, mode.commandsDelivery || !pumpFresh || !snapshot.pumpState.isKnownStopped {
                sendStop(.operatorAction, now: now, into: &output)
            }
            if mode != .fault { state.mode = .stoppedByOperator }
            record(.operatorAction, .actionApplied(action), before: mode, now: now, into: &output)
            output.actionOutcome = .applied(action)
        case .acknowledge:
            alarms.acknowledgeAll(now: now, into: &output)
            if mode == .stoppedBySupervisor { state.mode = .acknowledged }
            record(.noAutomaticResume, .actionApplied(action), before: mode, now: now, into: &output)
            output.actionOutcome = .applied(action)
        case .audioPause:
            alarms.pauseAudio(now: now, into: &output)
            record(.alarmSystem, .actionApplied(action), now: now, into: &output)
            output.actionOutcome = .applied(action)
        case let .titrate(order):
            titrate(order, action: action, now: now, into: &output)
        }
    }

    private mutating func refuse(_ action: OperatorAction, _ refusal: ActionRefusal, now: MonotonicInstant, into output: inout StepOutput) {
        output.actionOutcome = .refused(action, refusal)
        record(.operatorAction, .actionRefused(action, refusal), now: now, into: &output)
    }

    /// The start interlocks (R-ST-01, §6.2, R-MON-07): the first that fails, or nil when all pass.
    func startRefusal(watchdogArmed: Bool, now: MonotonicInstant) -> StartRefusal? {
        let limits = configuration.limits
        switch state.mode {
        case .idle, .acknowledged, .pausedByOperator: break
        case .stoppedBySupervisor: return .notAcknowledged
        case .checked, .infusing: return .alreadyDelivering
        case .complete, .stoppedByOperator, .fault: return .sessionEnded
        }
        guard snapshot.oximeter == .connected else { return .monitorNotConnected }
        guard let sample = state.lastAcceptedVitals else { return .noVitals }
        guard now - sample.measuredAt <= limits.startVitalsMaxAge, now - sample.measuredAt <= limits.sampleMaxAge else {
            return .vitalsStale
        }
        guard sample.isValid, let spo2 = sample.spo2, let pulse = sample.pulseRate else { return .vitalsInvalid }
        guard spo2 >= limits.startSpO2Minimum else { return .spo2TooLow }
        guard pulse >= limits.startPulseMinimum else { return .pulseTooLow }
        guard pulse <= limits.startPulseMaximum else { return .pulseTooHigh }
        guard pumpFresh, state.lastPumpStatus != nil else { return .pumpNotConnected }
        guard snapshot.pumpState.isKnownStopped else { return .pumpNotStopped }
        guard snapshot.pumpAlarms.isDisjoint(with: Self.highPriorityPumpAlarms) else { return .pumpAlarm }
        guard !configuration.pumpHasWatchdog || watchdogArmed else { return .pumpWatchdogNotArmed }
        guard !state.stopPending else { return .stopNotConfirmed }
        guard state.deliveredVolume < limits.cumulativeHardLimitVolume else { return .cumulativeLimitReached }
        guard state.phase != .finished, state.deliveryElapsed < state.programEndsAfter else { return .programFinished }
        return nil
    }

    private mutating func startDelivery(now: MonotonicInstant, into output: inout StepOutput) {
        let limits = configuration.limits
        if !state.started {
            state.started = true
            state.counterBase = state.counterLast ?? .zero
            state.monitoringSince = now
        }
        let rate = state.phase == .loading ? limits.loadingRate : limits.maintenanceRate
        commandRate(rate, start: true, rule: .startChecks, now: now, into: &output)
    }

    private mutating func titrate(_ order: TitrationOrder, action: OperatorAction, now: MonotonicInstant, into output: inout StepOutput) {
        let limits = configuration.limits
        guard state.mode.commandsDelivery || state.mode == .pausedByOperator, state.phase == .maintenance else {
            return refuse(action, .titrationNotAllowedNow, now: now, into: &output)
        }
        guard order.programIdentity == limits.programIdentity else {
            return refuse(action, .titrationForAnotherProgram, now: now, into: &output)
        }
        guard order.maintenanceRate > .zero, order.maintenanceRate <= order.maximumRate,
              order.maximumRate <= limits.rateCeiling, order.maintenanceRate.millilitresPerHour.isFinite
        else { return refuse(action, .titrationAboveLimit, now: now, into: &output) }
        configuration.limits = limits.titrated(to: order)
        // A titration changes the rate, never the validated session length: the new maintenance time counts
        // from now, and the program still ends no later than it would have.
        state.programEndsAfter = min(state.programEndsAfter, state.deliveryElapsed + order.maintenanceDuration)
        record(.titration, .actionApplied(action), now: now, into: &output)
        output.actionOutcome = .applied(action)
        if state.mode.commandsDelivery {
            commandRate(order.maintenanceRate, start: false, rule: .titration, now: now, into: &output)
        }
    }

    // MARK: Commands

    /// Commands delivery at `rate` (a start, or a rate change), behind the last-resort guard: a rate above
    /// the validated maximum or the drug's ceiling, or not positive, is never sent; the channel stops
    /// and goes to `fault` instead.
    private mutating func commandRate(_ rate: VolumeRate, start: Bool, rule: SupervisorRule, now: MonotonicInstant, into output: inout StepOutput) {
        let limits = configuration.limits
        // The loading dose is a bolus, validated against its own limits (R-DL-07): its rate may exceed the
        // continuous ceiling. Every maintenance rate (titrations too) is held under both.
        let allowed = state.phase == .loading ? limits.maximumRate : min(limits.maximumRate, limits.rateCeiling)
        guard rate > .zero, rate <= allowed, rate.millilitresPerHour.isFinite else {
            let before = state.mode
            record(.rateGuard, .rateRefused(rate), before: before, now: now, into: &output)
            alarms.raiseEvent(.internalLimitGuard, trigger: .refusedRate(rate, limit: allowed), now: now, into: &output)
            if before.commandsDelivery { sendStop(.rateGuard, now: now, into: &output) }
            state.mode = .fault
            return
        }
        let before = state.mode
        state.commandedRate = rate
        state.rateCommandedAt = now
        state.rateMismatchSince = nil
        let command: PumpCommand
        if start {
            let remaining = max(limits.cumulativeHardLimitVolume - state.deliveredVolume, .zero)
            command = .start(rate: rate, volumeLimit: remaining)
            state.mode = .checked
        } else {
            command = .setRate(rate)
        }
        output.command(command)
        record(rule, start ? .startCommanded : .rateChanged, command: command, before: before, now: now, into: &output)
    }

    /// A rule's stop: from delivery, send the stop and latch `stoppedBySupervisor`; from an operator pause,
    /// latch `stoppedBySupervisor` (the stop is already out), so that resuming needs an acknowledgement.
    /// Other modes are already stopped: the rule's alarm is all there is to do.
    private mutating func supervisorStop(_ rule: SupervisorRule, now: MonotonicInstant, into output: inout StepOutput) {
        switch state.mode {
        case .checked, .infusing:
            sendStop(rule, now: now, into: &output)
            latch(rule, now: now, into: &output)
        case .pausedByOperator:
            latch(rule, now: now, into: &output)
        case .idle, .stoppedBySupervisor, .acknowledged, .complete, .stoppedByOperator, .fault:
            break
        }
    }

    private mutating func latch(_ rule: SupervisorRule, now: MonotonicInstant, into output: inout StepOutput) {
        let before = state.mode
        state.mode = .stoppedBySupervisor
        record(rule, .modeChanged, before: before, now: now, into: &output)
    }

    /// Sends a stop (urgent) and starts the confirmation deadline; no effect while one is pending.
    private mutating func sendStop(_ rule: SupervisorRule, now: MonotonicInstant, into output: inout StepOutput) {
        state.commandedRate = .zero
        state.rateMismatchSince = nil
        guard !state.stopPending else { return }
        state.stopPending = true
        state.stopAttempts = 1
        state.stopFirstSentAt = now
        state.stopDeadlineBase = now
        output.command(.stop)
        record(rule, .stopCommanded, command: .stop, now: now, into: &output)
    }

    // MARK: Records

    private func lasted(_ since: MonotonicInstant?, _ now: MonotonicInstant) -> Duration {
        since.map { now - $0 } ?? .zero
    }

    private func held(_ since: MonotonicInstant?, _ hold: Duration, _ now: MonotonicInstant) -> Bool {
        since.map { now - $0 >= hold } ?? false
    }

    private mutating func record(_ rule: SupervisorRule, _ kind: DecisionKind, command: PumpCommand? = nil,
                                 before: ChannelMode? = nil, now: MonotonicInstant, into output: inout StepOutput) {
        snapshot.commandedRate = state.commandedRate
        snapshot.deliveredVolume = state.deliveredVolume
        output.decisions.append(DecisionEvent(at: now, channel: configuration.channel, rule: rule, kind: kind, command: command,
                                              modeBefore: before ?? state.mode, modeAfter: state.mode, inputs: snapshot))
    }

    private mutating func recordAlarmDecisions(now: MonotonicInstant, into output: inout StepOutput) {
        for event in output.alarmEvents {
            record(SupervisorRule(cause: event.cause), .alarm(event), now: now, into: &output)
        }
        if let audio = output.audio { record(.alarmSystem, .audio(audio), now: now, into: &output) }
    }
}
