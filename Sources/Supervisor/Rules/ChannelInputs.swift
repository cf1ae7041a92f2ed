import InfusionCore

/// Everything one supervisor step looks at for one channel: the latest vital-sign sample and pump
/// status as their drivers last published them, the devices' connection states, whether the pump's
/// own communication watchdog is armed, and at most one operator action.
///
/// A plain value with no references: the runner fills one per tick from its lock-free input cells
/// without allocating. "Latest" means the supervisor sees the same sample again on later ticks until a
/// new one is published. It tells new from old by value: a sample or status that differs from the
/// last one it judged is new, even with the same time stamps (two samples decoded from one read share
/// their arrival time); one stamped earlier than the last accepted one is out of order (R-MON-08).
public struct ChannelInputs: Hashable, Sendable {
    /// The latest sample the oximeter driver published, or nil when it has published none.
    public var vitals: VitalSample?
    /// The oximeter link's state. Anything but `.connected` means no monitoring data (R-MON-06).
    public var oximeter: DeviceConnection
    /// The latest status the pump driver published, or nil when it has published none.
    public var pump: PumpStatus?
    /// The pump link's state. Anything but `.connected` means the pump's state is unknown.
    public var pumpLink: DeviceConnection
    /// True while the pump's own communication watchdog is armed (New Era safe mode, Alaris lease,
    /// Fresenius keep-alive). Only consulted when the channel's pump family has one.
    public var pumpWatchdogArmed: Bool
    /// An operator action to apply in this step, if any.
    public var action: OperatorAction?

    /// Inputs; see each property. The defaults are the fail-safe ones (links down, watchdog not armed).
    public init(vitals: VitalSample? = nil, oximeter: DeviceConnection = .disconnected, pump: PumpStatus? = nil,
                pumpLink: DeviceConnection = .disconnected, pumpWatchdogArmed: Bool = false, action: OperatorAction? = nil) {
        self.vitals = vitals
        self.oximeter = oximeter
        self.pump = pump
        self.pumpLink = pumpLink
        self.pumpWatchdogArmed = pumpWatchdogArmed
        self.action = action
    }
}

/// What an operator can ask of a channel. Every action is answered in `StepOutput.actionOutcome`
/// (applied, or refused with the reason) and recorded as a decision.
public enum OperatorAction: Hashable, Sendable {
    /// Start the program: runs the start checks (R-ST-01, §6.2) and, when they pass, starts the pump.
    /// The only way out of `idle` and `acknowledged` into delivery.
    case start
    /// Pause delivery (keeps the program's position); `resume` continues it.
    case pause
    /// Resume after an operator pause: runs fresh start checks first.
    case resume
    /// Stop and end the session (no resume).
    case stop
    /// Acknowledge every alarm: latched alarms whose condition has ended become inactive; a
    /// supervisor stop becomes `acknowledged`, from which a new start (with fresh checks) is possible.
    case acknowledge
    /// Pause alarm audio for the profile's `audioPauseMax` (visual indication stays).
    case audioPause
    /// Change the maintenance rate to a program that was validated again (see `TitrationOrder`).
    case titrate(TitrationOrder)
}

/// A titration: a new maintenance rate and duration taken from a program that passed validation
/// against the same library, profile, drug, concentration and patient weight as the running one.
///
/// Build one outside the real-time tick with `TitrationOrder.make(current:new:)` (the `ValidatedProgram`
/// it takes can only come from `ProgramValidator`, so validation has been re-run). The supervisor
/// applies it only to the channel whose program identity it carries, and only when its rate is within
/// both the new program's validated maximum and the drug's hard ceiling. A plain value.
public struct TitrationOrder: Hashable, Sendable {
    /// The new maintenance pump rate (validated, rounded down).
    public let maintenanceRate: VolumeRate
    /// The new program's validated maximum rate: the supervisor never commands more after applying it.
    public let maximumRate: VolumeRate
    /// How long the new maintenance phase runs, counted from the moment the titration is applied (the
    /// program never ends later than the running one would have: a titration does not lengthen a session).
    public let maintenanceDuration: Duration
    /// The program identity it must match.
    public let programIdentity: ProgramIdentity

    /// Checks that `new` is a titration of `current` (same library, profile, drug, concentration and
    /// weight; no loading phase) and makes the order. Pure; any thread; not for the real-time tick.
    public static func make(current: ValidatedProgram, new: ValidatedProgram) throws(TitrationError) -> TitrationOrder {
        let identity = ProgramIdentity(program: current)
        guard ProgramIdentity(program: new) == identity,
              current.librarySHA256 == new.librarySHA256, current.profile.id == new.profile.id,
              current.drug.name == new.drug.name, current.concentration == new.concentration,
              current.weight == new.weight
        else { throw .differentProgram }
        guard new.calculation.loading == nil else { throw .hasLoadingPhase }
        return TitrationOrder(maintenanceRate: new.calculation.pumpRate.actual, maximumRate: new.maximumPumpRate,
                              maintenanceDuration: new.calculation.duration, programIdentity: identity)
    }

    init(maintenanceRate: VolumeRate, maximumRate: VolumeRate, maintenanceDuration: Duration, programIdentity: ProgramIdentity) {
        self.maintenanceRate = maintenanceRate
        self.maximumRate = maximumRate
        self.maintenanceDuration = maintenanceDuration
        self.programIdentity = programIdentity
    }
}

/// Why a titration order could not be made.
public enum TitrationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The new program is for another library, profile, drug, concentration or weight.
    case differentProgram
    /// The new program has a loading phase; a titration only changes the maintenance rate.
    case hasLoadingPhase

    public var description: String {
        switch self {
        case .differentProgram:
            "the new program is not a titration of the running one (library, profile, drug, concentration or weight differ): stop this session and start a new one"
        case .hasLoadingPhase:
            "a titration changes the maintenance rate only: validate the new program without a loading dose"
        }
    }
}
