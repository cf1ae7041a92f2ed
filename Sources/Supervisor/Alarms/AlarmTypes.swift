import InfusionCore

/// Why an alarm is raised: one case per alarm condition the supervisor knows (clinical.md §6.3, §6.4).
/// Each has a fixed category, base priority and latching behaviour (`AlarmCause.properties`); its text
/// is rendered outside the tick (`AlarmText`).
public enum AlarmCause: UInt8, CaseIterable, Hashable, Sendable {
    /// R-MON-01: SpO2 below the pause threshold for the hold time. Physiological, high, latching; stops.
    case spo2Low
    /// R-MON-01: SpO2 below the immediate-stop threshold. Physiological, high, latching; stops at once.
    case spo2CriticallyLow
    /// R-MON-02: SpO2 in the warning band for the hold time. Physiological, medium; no stop.
    case spo2Warning
    /// R-MON-03: pulse rate above the pause threshold for the hold time. Physiological, high, latching; stops.
    case pulseHigh
    /// R-MON-03: pulse rate below the pause threshold for the hold time. Physiological, high, latching; stops.
    case pulseLow
    /// R-MON-03: pulse rate above the warning threshold for the hold time. Physiological, medium; no stop.
    case pulseWarning
    /// R-MON-06: the oximeter reports an invalid signal (probe off, no pulse, low quality). Technical, medium.
    case invalidSignal
    /// R-MON-06: no valid sample for the alarm window (medium), escalated to high with a stop after the
    /// pause window. Technical, latching.
    case monitoringLost
    /// The pump reports a high-priority alarm (occlusion, empty, air, door, fault, its watchdog, reset).
    /// Technical, high, latching; stops.
    case pumpAlarm
    /// The pump reports low battery. Technical, medium.
    case pumpBatteryLow
    /// The pump reports near empty. Technical, low (advisory).
    case pumpNearEmpty
    /// The pump's status is stale or its link is down: its state is unknown. Technical, high, latching; stops.
    case pumpCommunicationLost
    /// The pump's own watchdog is not armed although its family has one: one of the two independent
    /// stops is missing. Technical, medium.
    case pumpWatchdogDisarmed
    /// Commanded and reported rate disagree beyond tolerance for longer than the hold (or the pump did
    /// not start). Technical, high, latching; stops.
    case rateMismatch
    /// The pump's volume counter disagrees with the commanded rates beyond tolerance. Technical, high,
    /// latching; stops.
    case volumeMismatch
    /// The pump's volume counter went backwards (reset or cleared); the delivered dose was carried over.
    /// Technical, medium, latching.
    case volumeCounterReset
    /// R-MON-09: a stop was not confirmed by the pump within the deadline. Technical, high, latching;
    /// the stop is repeated and the secondary stop engaged.
    case stopNotConfirmed
    /// R-DL-08: the delivered dose reached the session's hard cumulative limit. Technical, high, latching; stops.
    case cumulativeDoseLimit
    /// The pump reports delivery that the supervisor did not command. Technical, high, latching; stops.
    case unexpectedDelivery
    /// The program is complete; delivery stopped. Technical, low (advisory), latching.
    case infusionComplete
    /// The supervisor refused a rate command that would have broken a validated limit (an internal
    /// fault; never expected). Technical, high, latching; stops.
    case internalLimitGuard

    /// Number of causes (the alarm table's size).
    public static let count = allCases.count

    /// Category, base priority and latching of this cause.
    public var properties: AlarmProperties {
        switch self {
        case .spo2Low, .spo2CriticallyLow, .pulseHigh, .pulseLow:
            AlarmProperties(category: .physiological, priority: .high, latching: true)
        case .spo2Warning, .pulseWarning:
            AlarmProperties(category: .physiological, priority: .medium, latching: false)
        case .invalidSignal, .pumpBatteryLow, .pumpWatchdogDisarmed:
            AlarmProperties(category: .technical, priority: .medium, latching: false)
        case .monitoringLost, .volumeCounterReset:
            AlarmProperties(category: .technical, priority: .medium, latching: true)
        case .pumpNearEmpty:
            AlarmProperties(category: .technical, priority: .low, latching: false)
        case .infusionComplete:
            AlarmProperties(category: .technical, priority: .low, latching: true)
        case .pumpAlarm, .pumpCommunicationLost, .rateMismatch, .volumeMismatch, .stopNotConfirmed,
             .cumulativeDoseLimit, .unexpectedDelivery, .internalLimitGuard:
            AlarmProperties(category: .technical, priority: .high, latching: true)
        }
    }
}

/// Fixed properties of an alarm cause (IEC 60601-1-8 vocabulary).
public struct AlarmProperties: Hashable, Sendable {
    /// Physiological (about the patient) or technical (about the equipment or the program).
    public let category: AlarmCategory
    /// Priority when raised (medium alarms may escalate).
    public let priority: AlarmPriority
    /// A latching alarm persists after its condition ends, until acknowledged.
    public let latching: Bool
}

/// The alarm condition state (IEC 60601-1-8, IHE PCD Table B.8.5-3).
public enum AlarmConditionState: UInt8, Hashable, Sendable, CustomStringConvertible {
    /// Not present.
    case inactive
    /// The condition is present now.
    case active
    /// The condition has ended, but the alarm persists until acknowledged.
    case latched

    public var description: String {
        switch self { case .inactive: "inactive"; case .active: "active"; case .latched: "latched" }
    }
}

/// What happened to an alarm (IHE event phases).
public enum AlarmEventPhase: UInt8, Hashable, Sendable, CustomStringConvertible {
    /// The condition started: the alarm is active.
    case start
    /// The trigger values changed materially while active (a new monitoring-loss duration is not one).
    case update
    /// The priority rose (medium → high).
    case escalate
    /// The condition ended; the alarm persists (latched) until acknowledged.
    case latch
    /// The alarm became inactive (condition ended, non-latching; or acknowledged after it ended).
    case end
    /// The operator acknowledged it.
    case acknowledged

    public var description: String {
        switch self {
        case .start: "start"; case .update: "update"; case .escalate: "escalate"; case .latch: "latch"
        case .end: "end"; case .acknowledged: "acknowledged"
        }
    }
}

/// The values that raised an alarm, as numbers with their units (never text). Rendered for people by
/// `AlarmText` outside the tick.
public enum AlarmTrigger: Hashable, Sendable {
    /// No values (for example, an acknowledged advisory).
    case none
    /// An SpO2 reading against its limit, and how long the condition had lasted.
    case spo2(Percentage, limit: Percentage, lasted: Duration)
    /// A pulse-rate reading against its limit, and how long the condition had lasted.
    case pulse(PulseRate, limit: PulseRate, lasted: Duration)
    /// The quality flags of an invalid sample, and how long the signal had been invalid.
    case signal(OximetryQuality, lasted: Duration)
    /// How long there had been no valid sample, against the window that raised the alarm.
    case noValidData(lasted: Duration, window: Duration)
    /// The alarms a pump reported.
    case pumpAlarms(PumpAlarms)
    /// How old the pump's last status was (nil when it never reported) and its link state.
    case pumpSilent(age: Duration?, link: DeviceConnection)
    /// Commanded against reported rate (nil: not reported) and how long they had disagreed.
    case rate(commanded: VolumeRate, reported: VolumeRate?, lasted: Duration)
    /// The volume the commanded rates imply against the pump's counter.
    case volume(expected: Volume, reported: Volume)
    /// The counter before and after it went backwards.
    case counterReset(before: Volume, after: Volume)
    /// How long since the first stop command, and how many stops have been sent.
    case stopUnconfirmed(elapsed: Duration, attempts: Int)
    /// Delivered volume against the hard cumulative limit volume.
    case dose(delivered: Volume, limit: Volume)
    /// The state and rate the pump reported when it was not meant to deliver.
    case delivery(PumpRunState, rate: VolumeRate?)
    /// The rate that was refused and the limit it would have broken.
    case refusedRate(VolumeRate, limit: VolumeRate)
    /// The volume the completed program delivered.
    case completed(delivered: Volume)
}

/// One change to one alarm, as the alarm manager emits it. A plain value.
public struct AlarmEvent: Hashable, Sendable {
    /// Which alarm.
    public let cause: AlarmCause
    /// What happened to it.
    public let phase: AlarmEventPhase
    /// Its priority after the change.
    public let priority: AlarmPriority
    /// Physiological or technical.
    public let category: AlarmCategory
    /// Its condition state after the change.
    public let state: AlarmConditionState
    /// The values that raised (or last updated) it.
    public let trigger: AlarmTrigger
    /// When (the step's `now`).
    public let at: MonotonicInstant
}

/// The full status of one alarm, as the alarm manager holds it. A plain value.
public struct AlarmStatus: Hashable, Sendable {
    /// Which alarm.
    public let cause: AlarmCause
    /// Inactive, active or latched.
    public internal(set) var state: AlarmConditionState
    /// Current priority (the base priority, or high after escalation).
    public internal(set) var priority: AlarmPriority
    /// True once the operator has acknowledged it (cleared when it escalates or starts again).
    public internal(set) var acknowledged: Bool
    /// When the current condition started.
    public internal(set) var since: MonotonicInstant
    /// The values that raised it, or last updated it.
    public internal(set) var trigger: AlarmTrigger

    /// Physiological or technical.
    public var category: AlarmCategory { cause.properties.category }
    /// True when the alarm is active or latched.
    public var isPresent: Bool { state != .inactive }
}
