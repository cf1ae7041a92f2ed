import InfusionCore

/// The `INF` status line of an Asena pump, by field position as OpenICE's `Asena.java` reads it:
/// `INF^<f0>^<alarm>^<mode>^<rate>^<rate unit>^<f5>^<volume infused>^<volume unit>^<pressure>^<pressure unit>^<time remaining>^<log type>^<log id>`.
///
/// The positions come from that one source; the words inside the alarm and mode fields are NOT
/// public **[unverified]**. This type keeps them verbatim and offers a best-effort reading
/// (`runState`, `alarmWords`) that treats anything it does not recognise as unknown (never as
/// stopped). The simulator writes the words listed in `Mode` and `Alarm`.
///
/// Pure value; any thread.
public struct AlarisInfusionStatus: Hashable, Sendable {
    /// Mode words the simulator writes (and this reader recognises) **[unverified]**.
    public enum Mode {
        /// Delivering.
        public static let infusing = "INFUSING"
        /// Not delivering, program kept.
        public static let stopped = "STOPPED"
    }

    /// Alarm words the simulator writes (and this reader recognises) **[unverified]**.
    public enum Alarm {
        /// No alarm.
        public static let none = "NONE"
        /// Occlusion (downstream pressure) or drive stall.
        public static let occlusion = "OCCLUSION"
        /// Syringe empty / end of travel.
        public static let empty = "EMPTY"
    }

    /// The alarm field, verbatim.
    public var alarm: String
    /// The mode field, verbatim.
    public var mode: String
    /// The rate, when the rate fields parse.
    public var rate: VolumeRate?
    /// The volume infused, when the volume fields parse.
    public var volumeInfused: Volume?
    /// The fields of the line after the keyword, verbatim (for records).
    public var fields: [String]

    /// What the mode field says, best effort: `INFUSING` → infusing, `STOPPED` → stopped, anything else unknown.
    public var runState: PumpRunState {
        switch mode {
        case Mode.infusing: return .infusing
        case Mode.stopped: return .stopped
        default: return .unknown
        }
    }

    /// Reads an `INF` reply. Nil when the message is not an `INF` line with at least the alarm and mode
    /// fields. Rate and volume are nil when their fields are absent or do not parse.
    public init?(message: AlarisMessage) {
        guard message.keyword == AlarisKeyword.infusionStatus, message.arguments.count >= 3 else { return nil }
        let args = message.arguments
        fields = args
        alarm = args[1]
        mode = args[2]
        if args.count > 4 { rate = try? AlarisQuantityText.rate(keyword: message.keyword, number: args[3], unit: args[4]) }
        if args.count > 7 { volumeInfused = try? AlarisQuantityText.volume(keyword: message.keyword, number: args[6], unit: args[7]) }
    }

    /// A line for a simulator to send.
    public init(alarm: String, mode: String, rate: VolumeRate, volumeInfused: Volume) {
        self.alarm = alarm
        self.mode = mode
        self.rate = rate
        self.volumeInfused = volumeInfused
        fields = []
    }

    /// The message a simulator sends: the fields in OpenICE's positions, with pressure `0^mmHg`,
    /// time remaining `0`, log type `NONE` and log id `0` (their meaning is not public).
    public func message() throws(AlarisMessageError) -> AlarisMessage {
        let rateText = try AlarisRate(roundingDown: rate ?? .zero).text
        let volumeText = try AlarisVolume(roundingDown: volumeInfused ?? .zero).text
        return try AlarisMessage(keyword: AlarisKeyword.infusionStatus, arguments: [
            "0", alarm, mode, rateText, AlarisRate.unitText, "", volumeText, AlarisVolume.unitText,
            "0", "mmHg", "0", "NONE", "0",
        ])
    }
}
