import InfusionCore

/// The rule behind a decision, with its requirement id in clinical.md (`requirement`).
public enum SupervisorRule: UInt8, Hashable, Sendable, CaseIterable {
    /// R-ST-01 / §6.2: start interlocks.
    case startChecks
    /// R-MON-01: SpO2 below the pause threshold for the hold time.
    case spo2Pause
    /// R-MON-01: SpO2 below the immediate-stop threshold.
    case spo2ImmediatePause
    /// R-MON-02: SpO2 warning band.
    case spo2Warning
    /// R-MON-03: pulse rate outside the pause band for the hold time.
    case pulsePause
    /// R-MON-03: pulse rate above the warning threshold.
    case pulseWarning
    /// R-MON-06: invalid signal.
    case invalidSignal
    /// R-MON-06: loss of monitoring (warning, then stop).
    case monitoringLoss
    /// R-MON-07: no automatic resume.
    case noAutomaticResume
    /// R-MON-08: stale or out-of-order data counts as no data.
    case sampleFreshness
    /// R-MON-09: stop confirmation deadline.
    case stopConfirmation
    /// R-ALM-01: pump alarms and faults.
    case pumpAlarm
    /// Pump status stale or link down.
    case pumpCommunication
    /// DESIGN.md principle 2: the pump's own watchdog.
    case pumpWatchdog
    /// Commanded against reported rate.
    case rateAgreement
    /// Commanded against reported volume; counter resets.
    case volumeAgreement
    /// R-DL-08: hard cumulative dose while running.
    case cumulativeDose
    /// Delivery the supervisor did not command.
    case unexpectedDelivery
    /// The program's schedule: loading, maintenance, end.
    case schedule
    /// An operator action (pause, stop, acknowledge, audio pause).
    case operatorAction
    /// R-DL-04 via re-validation: titration within the validated limits.
    case titration
    /// R-ALM-02/03: alarm states, escalation, audio pause.
    case alarmSystem
    /// The last-resort rate guard (never exceed the validated maximum).
    case rateGuard

    /// The requirement id in clinical.md, or the DESIGN.md section, this rule implements.
    public var requirement: StaticString {
        switch self {
        case .startChecks: "R-ST-01"
        case .spo2Pause, .spo2ImmediatePause: "R-MON-01"
        case .spo2Warning: "R-MON-02"
        case .pulsePause, .pulseWarning: "R-MON-03"
        case .invalidSignal, .monitoringLoss: "R-MON-06"
        case .noAutomaticResume: "R-MON-07"
        case .sampleFreshness: "R-MON-08"
        case .stopConfirmation: "R-MON-09"
        case .pumpAlarm: "R-ALM-01"
        case .pumpCommunication, .unexpectedDelivery: "DESIGN fail-safe"
        case .pumpWatchdog: "DESIGN two independent stops"
        case .rateAgreement, .volumeAgreement: "DESIGN confirm, don't assume"
        case .cumulativeDose: "R-DL-08"
        case .schedule: "program schedule"
        case .operatorAction: "operator action"
        case .titration: "R-DL-04"
        case .alarmSystem: "R-ALM-03"
        case .rateGuard: "R-DL-04"
        }
    }

    /// The rule that raises an alarm cause.
    public init(cause: AlarmCause) {
        switch cause {
        case .spo2Low: self = .spo2Pause
        case .spo2CriticallyLow: self = .spo2ImmediatePause
        case .spo2Warning: self = .spo2Warning
        case .pulseHigh, .pulseLow: self = .pulsePause
        case .pulseWarning: self = .pulseWarning
        case .invalidSignal: self = .invalidSignal
        case .monitoringLost: self = .monitoringLoss
        case .pumpAlarm, .pumpBatteryLow, .pumpNearEmpty: self = .pumpAlarm
        case .pumpCommunicationLost: self = .pumpCommunication
        case .pumpWatchdogDisarmed: self = .pumpWatchdog
        case .rateMismatch: self = .rateAgreement
        case .volumeMismatch, .volumeCounterReset: self = .volumeAgreement
        case .stopNotConfirmed: self = .stopConfirmation
        case .cumulativeDoseLimit: self = .cumulativeDose
        case .unexpectedDelivery: self = .unexpectedDelivery
        case .infusionComplete: self = .schedule
        case .internalLimitGuard: self = .rateGuard
        }
    }
}

/// Why a published sample was not used (R-MON-08).
public enum SampleRejection: UInt8, Hashable, Sendable {
    /// Measured before a sample already accepted.
    case outOfOrder
    /// Older than `sampleMaxAge` when first seen.
    case stale
    /// Measured after the step's `now` (a clock mapping error): not trusted.
    case fromTheFuture
}

/// What a decision did.
public enum DecisionKind: Hashable, Sendable {
    /// A stop was commanded because of the decision's rule.
    case stopCommanded
    /// An unconfirmed stop was sent again (R-MON-09).
    case stopRepeated(attempt: Int)
    /// The secondary stop path was engaged (R-MON-09 escalation).
    case secondaryStopEngaged
    /// The pump confirmed a stop.
    case stopConfirmed(after: Duration)
    /// Delivery was started at the command's rate (after the start checks passed).
    case startCommanded
    /// The pump confirmed it is delivering at the commanded rate.
    case deliveryConfirmed
    /// The rate was changed (phase change or titration).
    case rateChanged
    /// The channel changed mode.
    case modeChanged
    /// The program moved to a new phase.
    case phaseChanged(ProgramPhase)
    /// An alarm changed.
    case alarm(AlarmEvent)
    /// Alarm audio changed.
    case audio(AudioChange)
    /// A published sample was ignored and counts as no data.
    case sampleIgnored(SampleRejection)
    /// The pump's volume counter went backwards; delivered volume carried over.
    case counterReset(before: Volume, after: Volume)
    /// An operator action was applied.
    case actionApplied(OperatorAction)
    /// A start or resume was refused.
    case startRefused(StartRefusal)
    /// Another operator action was refused.
    case actionRefused(OperatorAction, ActionRefusal)
    /// A rate command was refused by the last-resort guard (never expected).
    case rateRefused(VolumeRate)
}

/// The inputs a decision was made on: a copy of the step's view of the devices. A plain value.
public struct InputSnapshot: Hashable, Sendable {
    /// The latest sample's measurement time, if any.
    public var vitalsMeasuredAt: MonotonicInstant?
    /// SpO2 of the latest sample.
    public var spo2: Percentage?
    /// Pulse rate of the latest sample.
    public var pulseRate: PulseRate?
    /// Quality flags of the latest sample.
    public var quality: OximetryQuality
    /// The oximeter link.
    public var oximeter: DeviceConnection
    /// When the latest pump status arrived, if any.
    public var pumpReceivedAt: MonotonicInstant?
    /// The pump's reported state (`.unknown` when stale, absent or its link is down).
    public var pumpState: PumpRunState
    /// The pump's reported rate.
    public var pumpRate: VolumeRate?
    /// The pump's reported volume counter.
    public var pumpVolume: Volume?
    /// The pump's reported alarms.
    public var pumpAlarms: PumpAlarms
    /// The pump link.
    public var pumpLink: DeviceConnection
    /// The rate the supervisor is commanding (zero when it is not commanding delivery).
    public var commandedRate: VolumeRate
    /// The session's delivered volume as the supervisor accounts it (conservative).
    public var deliveredVolume: Volume

    /// An empty snapshot.
    public static let empty = InputSnapshot(
        vitalsMeasuredAt: nil, spo2: nil, pulseRate: nil, quality: [], oximeter: .disconnected, pumpReceivedAt: nil,
        pumpState: .unknown, pumpRate: nil, pumpVolume: nil, pumpAlarms: [], pumpLink: .disconnected,
        commandedRate: .zero, deliveredVolume: .zero)
}

/// One supervisor decision: which rule, what it did, the command it sent (if any), the mode before
/// and after, the inputs it saw and when. Every decision becomes one of these and goes to a
/// `DecisionSink` (the durable record consumes them). A plain value (no references): it can be copied
/// into a preallocated ring on the real-time thread.
public struct DecisionEvent: Hashable, Sendable {
    /// The step's time.
    public var at: MonotonicInstant
    /// The channel (as configured).
    public var channel: UInt16
    /// The rule that decided.
    public var rule: SupervisorRule
    /// What the decision did.
    public var kind: DecisionKind
    /// The pump command it sent, if any.
    public var command: PumpCommand?
    /// The channel's mode when the decision was taken.
    public var modeBefore: ChannelMode
    /// The channel's mode once the decision took effect (the same for decisions that change no mode).
    public var modeAfter: ChannelMode
    /// What the step saw.
    public var inputs: InputSnapshot
}
