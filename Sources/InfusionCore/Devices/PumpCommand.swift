/// What the controller asks a pump to do. Drivers translate each case into their family's wire
/// commands; the safety supervisor decides which to send. It lives in InfusionCore because both the
/// supervisor and the drivers (which sit beside it, not below it) speak it.
///
/// A plain value with no references: it can be queued or copied on the supervisor's real-time thread
/// without allocating.
public enum PumpCommand: Hashable, Sendable, CustomStringConvertible {
    /// Stop delivery now. Urgent: the supervisor writes a pre-encoded stop frame itself rather than
    /// queueing this (see `isUrgent`). Done when the pump reports itself stopped.
    case stop
    /// Start delivering at `rate`. `volumeLimit` is a backstop for the pump's own volume-to-be-infused
    /// where the family supports one (the pump stops itself there): the volume left before the session's
    /// hard cumulative dose. Drivers that cannot set it ignore it; the supervisor still stops at the limit.
    case start(rate: VolumeRate, volumeLimit: Volume)
    /// Change the rate of a running infusion (loading to maintenance, titration).
    case setRate(VolumeRate)
    /// Escalation when a stop is not confirmed: the secondary stop path (R-MON-09), such as a hardware
    /// enable line, or going silent so that the pump's own communication watchdog stops it. Urgent.
    case secondaryStop

    /// True for commands that must reach the wire at once, on the supervisor's own thread.
    public var isUrgent: Bool {
        switch self {
        case .stop, .secondaryStop: true
        case .start, .setRate: false
        }
    }

    /// The rate this command asks the pump to deliver at: nil for stop commands.
    public var commandedRate: VolumeRate? {
        switch self {
        case let .start(rate, _), let .setRate(rate): rate
        case .stop, .secondaryStop: nil
        }
    }

    /// "stop", "start 28 mL/h (limit 301.33 mL)", "set rate 28 mL/h", "secondary stop".
    public var description: String {
        switch self {
        case .stop: "stop"
        case let .start(rate, limit): "start \(rate) (limit \(limit))"
        case let .setRate(rate): "set rate \(rate)"
        case .secondaryStop: "secondary stop"
        }
    }
}
