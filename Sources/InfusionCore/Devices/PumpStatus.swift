/// What a pump says it is doing.
public enum PumpRunState: UInt8, Hashable, Sendable, CustomStringConvertible {
    /// Not delivering: stopped, or program finished.
    case stopped
    /// Delivering.
    case infusing
    /// Paused (not delivering) with the program kept.
    case paused
    /// Withdrawing (syringe pumps in laboratory use; never commanded by a clinical session).
    case withdrawing
    /// Purging or priming at maximum rate.
    case purging
    /// Not known: no valid status yet, or the last status was unparseable. Treated as possibly delivering.
    case unknown

    /// True only for states in which the pump is known not to move fluid.
    public var isKnownStopped: Bool { self == .stopped || self == .paused }

    public var description: String {
        switch self {
        case .stopped: "stopped"; case .infusing: "infusing"; case .paused: "paused"
        case .withdrawing: "withdrawing"; case .purging: "purging"; case .unknown: "unknown"
        }
    }
}

/// Alarm conditions a pump reports, as a set (no allocation).
public struct PumpAlarms: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Occlusion or motor stall (New Era `A?S`): high priority (IEC 60601-2-24).
    public static let occlusion = PumpAlarms(rawValue: 1 << 0)
    /// Syringe or reservoir empty, end of plunger travel.
    public static let empty = PumpAlarms(rawValue: 1 << 1)
    /// The pump's own communication watchdog fired (New Era `A?T`): it stopped itself.
    public static let communicationTimeout = PumpAlarms(rawValue: 1 << 2)
    /// The pump was reset or lost power (New Era `A?R`).
    public static let powerReset = PumpAlarms(rawValue: 1 << 3)
    /// The pump's program is in error (New Era `A?E`).
    public static let programError = PumpAlarms(rawValue: 1 << 4)
    /// A program phase is out of range (New Era `A?O`).
    public static let outOfRange = PumpAlarms(rawValue: 1 << 5)
    /// Air in line.
    public static let airInLine = PumpAlarms(rawValue: 1 << 6)
    /// Door or syringe clamp open.
    public static let doorOpen = PumpAlarms(rawValue: 1 << 7)
    /// Low battery.
    public static let lowBattery = PumpAlarms(rawValue: 1 << 8)
    /// Near empty (advisory).
    public static let nearEmpty = PumpAlarms(rawValue: 1 << 9)
    /// Any other device fault.
    public static let deviceFault = PumpAlarms(rawValue: 1 << 10)
    /// The pump left remote control (Alaris lease lapsed, Fresenius session lost).
    public static let remoteControlLost = PumpAlarms(rawValue: 1 << 11)

    /// The highest priority among the set alarms, or nil when none is set.
    public var highestPriority: AlarmPriority? {
        if !isDisjoint(with: [.occlusion, .empty, .communicationTimeout, .powerReset, .programError, .outOfRange, .airInLine, .doorOpen, .deviceFault, .remoteControlLost]) { return .high }
        if contains(.lowBattery) { return .medium }
        if contains(.nearEmpty) { return .low }
        return nil
    }

    /// Names of the set alarms, for messages and records.
    public var names: [String] {
        let all: [(PumpAlarms, String)] = [
            (.occlusion, "occlusion"), (.empty, "syringe empty"), (.communicationTimeout, "communication time-out"),
            (.powerReset, "power reset"), (.programError, "program error"), (.outOfRange, "out of range"),
            (.airInLine, "air in line"), (.doorOpen, "door open"), (.lowBattery, "low battery"), (.nearEmpty, "near empty"),
            (.deviceFault, "device fault"), (.remoteControlLost, "remote control lost"),
        ]
        return all.filter { contains($0.0) }.map(\.1)
    }
}

/// One status snapshot from a pump, as its driver publishes it. A plain value: copying it into the
/// supervisor's input cell never allocates.
public struct PumpStatus: Hashable, Sendable {
    /// When the reply carrying this status arrived (host monotonic clock).
    public var receivedAt: MonotonicInstant
    /// What the pump reports it is doing.
    public var state: PumpRunState
    /// The rate the pump reports, when it reports one.
    public var rate: VolumeRate?
    /// The pump's own infused-volume counter since it was last cleared, when reported.
    public var volumeInfused: Volume?
    /// Active pump alarms.
    public var alarms: PumpAlarms

    /// A status snapshot; see each property.
    public init(receivedAt: MonotonicInstant, state: PumpRunState, rate: VolumeRate? = nil, volumeInfused: Volume? = nil, alarms: PumpAlarms = []) {
        self.receivedAt = receivedAt
        self.state = state
        self.rate = rate
        self.volumeInfused = volumeInfused
        self.alarms = alarms
    }
}

/// The connection state of a device link, as drivers publish it.
public enum DeviceConnection: UInt8, Hashable, Sendable {
    /// Opened and answering.
    case connected
    /// Opened but not answering within its deadline.
    case silent
    /// Unplugged, hung up or closed; the driver is trying to reconnect.
    case disconnected
}
