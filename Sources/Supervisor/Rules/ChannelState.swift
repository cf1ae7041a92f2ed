import InfusionCore

/// The supervisor's state machine for one channel (DESIGN.md "Safety supervisor"):
///
///     idle → checked → infusing ⇄ pausedByOperator
///     any → stoppedBySupervisor (latched) → acknowledged → (start, fresh checks) → checked → infusing
///     infusing → complete;  any → stoppedByOperator;  unconfirmed stop after escalation → fault
///
/// Only an operator's start (or resume), after the start checks pass, leads into `checked`; nothing
/// else ever leads into delivery (R-MON-07).
public enum ChannelMode: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Program loaded; nothing started yet.
    case idle
    /// Start checks passed and the start command sent; waiting for the pump to report delivery at
    /// the commanded rate (within `rateMismatchHold`). Delivery is commanded.
    case checked
    /// The pump confirmed delivery at the commanded rate. Delivery is commanded.
    case infusing
    /// The operator paused delivery; `resume` runs fresh start checks.
    case pausedByOperator
    /// A rule stopped delivery. Latched: only an acknowledgement leads on (R-MON-07).
    case stoppedBySupervisor
    /// The operator acknowledged a supervisor stop; a new start with fresh checks is possible.
    case acknowledged
    /// The program ran to its end; delivery stopped. Final.
    case complete
    /// The operator stopped the session. Final.
    case stoppedByOperator
    /// The supervisor could not get a stop confirmed even through its secondary stop, or an internal
    /// guard fired. Final: the operator must secure the pump by hand (clamp the line, power it off).
    case fault

    /// True while the supervisor commands delivery (`checked` or `infusing`).
    public var commandsDelivery: Bool { self == .checked || self == .infusing }

    /// True while a session is under way: monitoring rules raise alarms in these modes.
    public var isSessionActive: Bool {
        switch self {
        case .idle, .complete, .stoppedByOperator: false
        case .checked, .infusing, .pausedByOperator, .stoppedBySupervisor, .acknowledged, .fault: true
        }
    }

    public var description: String {
        switch self {
        case .idle: "idle"; case .checked: "checked"; case .infusing: "infusing"
        case .pausedByOperator: "paused by operator"; case .stoppedBySupervisor: "stopped by supervisor"
        case .acknowledged: "acknowledged"; case .complete: "complete"; case .stoppedByOperator: "stopped by operator"
        case .fault: "fault"
        }
    }
}

/// Where the program is in its schedule.
public enum ProgramPhase: UInt8, Hashable, Sendable, CustomStringConvertible {
    /// The loading dose is being given.
    case loading
    /// The maintenance infusion.
    case maintenance
    /// The program's time is used up.
    case finished

    public var description: String {
        switch self { case .loading: "loading"; case .maintenance: "maintenance"; case .finished: "finished" }
    }
}

/// Everything the supervisor remembers about one channel between steps. A plain value (no references).
/// Read it for display and tests; only `SupervisorChannel.step` changes it.
public struct ChannelState: Hashable, Sendable {
    /// The state-machine mode.
    public internal(set) var mode: ChannelMode = .idle
    /// The program phase.
    public internal(set) var phase: ProgramPhase
    /// The rate the supervisor commands now (zero unless `mode.commandsDelivery`).
    public internal(set) var commandedRate: VolumeRate = .zero
    /// Time spent with delivery commanded: the program's position in its schedule.
    public internal(set) var deliveryElapsed: Duration = .zero
    /// The schedule position at which the maintenance phase (and the program) ends.
    public internal(set) var programEndsAfter: Duration
    /// Volume the commanded rates imply while the pump reported delivery (checked against its counter).
    public internal(set) var expectedVolume: Volume = .zero
    /// Volume the commanded rates imply while delivery was commanded (used, with the counter, for the
    /// conservative delivered dose).
    public internal(set) var commandedVolume: Volume = .zero
    /// True while a stop has been sent and not yet confirmed by the pump (R-MON-09).
    public internal(set) var stopPending = false
    /// How many stop commands have been sent for the pending stop.
    public internal(set) var stopAttempts = 0
    /// When the first stop of the pending stop was sent.
    public internal(set) var stopFirstSentAt: MonotonicInstant = .origin
    /// True once a start has been commanded in this session.
    public internal(set) var started = false

    // Vital signs (R-MON-01 to 08).
    var lastAcceptedVitals: VitalSample?
    var lastRejectedVitals: VitalSample?
    var lastValidVitals: VitalSample?
    var monitoringSince: MonotonicInstant = .origin
    var invalidSince: MonotonicInstant?
    var spo2CriticalSince: MonotonicInstant?
    var spo2LowSince: MonotonicInstant?
    var spo2WarningSince: MonotonicInstant?
    var pulseHighSince: MonotonicInstant?
    var pulseLowSince: MonotonicInstant?
    var pulseWarningSince: MonotonicInstant?

    // Pump.
    var lastPumpStatus: PumpStatus?
    var rateCommandedAt: MonotonicInstant = .origin
    var rateMismatchSince: MonotonicInstant?
    var stopDeadlineBase: MonotonicInstant = .origin

    // The pump's volume counter, with resets carried over.
    var counterLast: Volume?
    var counterBase: Volume?
    var counterCarried: Volume = .zero

    var lastStepAt: MonotonicInstant?

    init(limits: SupervisorLimits) {
        phase = limits.loadingDuration > .zero ? .loading : .maintenance
        programEndsAfter = limits.loadingDuration + limits.maintenanceDuration
    }

    /// Volume delivered according to the pump's own counter since the first start (resets carried
    /// over), or nil when the pump has reported no counter since then.
    public var counterDelivered: Volume? {
        guard let base = counterBase, let last = counterLast else { return nil }
        return counterCarried + (last - base)
    }

    /// The session's delivered volume as the supervisor accounts it for the cumulative limit: the larger
    /// of the pump's counter and the commanded volume (never the smaller: fail safe).
    public var deliveredVolume: Volume {
        guard let counted = counterDelivered else { return commandedVolume }
        return max(counted, commandedVolume)
    }
}
