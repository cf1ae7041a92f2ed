import InfusionCore

/// The state a pump reports for a remote lease (`REMOTE_CTRL^ENABLED^****^PERMIT^0^ms`).
public struct AlarisRemoteState: Hashable, Sendable {
    /// True for `ENABLED`, false for `DISABLED`.
    public var enabled: Bool
    /// The fields after the state word, kept verbatim (the OpenICE sources show `****`, `PERMIT`, `0`,
    /// `ms`; their meaning is not public).
    public var detail: [String]

    /// Creates a remote state.
    public init(enabled: Bool, detail: [String] = []) {
        self.enabled = enabled
        self.detail = detail
    }

    /// True when the detail fields carry `PERMIT` (the pump accepted the lease), false when they carry
    /// another word in that position, nil when the reply has no such field.
    public var permitted: Bool? {
        detail.count > 1 ? detail[1] == "PERMIT" : nil
    }
}

/// The volume-to-be-infused setting a pump reports for `INF_VTBI`.
public struct AlarisVTBIStatus: Hashable, Sendable {
    /// True for `ACTIV`, false for `DEACT`.
    public var active: Bool
    /// The volume, when the reply carries one (an empty field reads as nil).
    public var volume: Volume?
    /// The end action, when the reply carries one this codec knows.
    public var endAction: AlarisVTBIEndAction?

    /// Creates a VTBI status.
    public init(active: Bool, volume: Volume? = nil, endAction: AlarisVTBIEndAction? = nil) {
        self.active = active
        self.volume = volume
        self.endAction = endAction
    }
}

/// A reply from an Asena pump. Replies echo the keyword of the command they answer, then carry data
/// fields (`INST_SERIALNO^8002-51740`, `INF_RATE^3.50^ml/h`).
///
/// Both sides use this type: a driver calls `init(message:)` on each decoded frame; a simulator builds
/// a case and sends `frame()`. Replies this codec does not type are kept whole in `.other`, so nothing
/// the pump says is lost.
///
/// Pure value; any thread.
public enum AlarisReply: Hashable, Sendable {
    /// `INST_SERIALNO^<serial>`: the serial number, the input of `AlarisRemoteCode`.
    case serialNumber(String)
    /// `COMMS_PROTOCOL^<text>`: protocol version text such as `Asena Rev 2.1.5`.
    case commsProtocol(String)
    /// `REMOTE_CTRL^ENABLED|DISABLED^...`: the remote-control lease state.
    case remoteControl(AlarisRemoteState)
    /// `REMOTE_CFG^ENABLED|DISABLED^...`: the remote-configuration lease state.
    case remoteConfiguration(AlarisRemoteState)
    /// `INF_RATE^<rate>^ml/h`: the programmed rate (exactly as reported; not rounded).
    case rate(VolumeRate)
    /// `INF_VI^<volume>^ml`: the volume infused.
    case volumeInfused(Volume)
    /// `INF_START`: the start command was accepted.
    case started
    /// `INF_STOP`: the stop command was accepted.
    case stopped
    /// `INF_VTBI^ACTIV|DEACT^...`: the volume-to-be-infused setting.
    case vtbi(AlarisVTBIStatus)
    /// `INF_BOLUS^ENABLED`: the bolus function is enabled.
    case bolusEnabled
    /// `REMQUERY^DEACT...`: remote query is deactivated.
    case remoteQueryDeactivated
    /// Any other reply (the `INF` status line, `COMMS_RESPONSE_MAX^4000^ms`, error replies...), whole.
    case other(AlarisMessage)

    /// The keyword of the reply (the command it answers).
    public var keyword: String {
        switch self {
        case .serialNumber: return AlarisKeyword.serialNumber
        case .commsProtocol: return AlarisKeyword.commsProtocol
        case .remoteControl: return AlarisKeyword.remoteControl
        case .remoteConfiguration: return AlarisKeyword.remoteConfiguration
        case .rate: return AlarisKeyword.rate
        case .volumeInfused: return AlarisKeyword.volumeInfused
        case .started: return AlarisKeyword.start
        case .stopped: return AlarisKeyword.stop
        case .vtbi: return AlarisKeyword.vtbi
        case .bolusEnabled: return AlarisKeyword.bolus
        case .remoteQueryDeactivated: return AlarisKeyword.remoteQuery
        case let .other(message): return message.keyword
        }
    }

    /// True when this reply answers `command` (it echoes the command's keyword).
    public func answers(_ command: AlarisCommand) -> Bool { keyword == command.keyword }

    /// Interprets a pump message. Known keywords become typed replies; anything else becomes `.other`.
    /// Throws `AlarisMessageError` when a known keyword carries fields that do not parse (a rate that
    /// is not a number, an unknown unit), because acting on a half-understood value is unsafe.
    public init(message: AlarisMessage) throws(AlarisMessageError) {
        let keyword = message.keyword
        let args = message.arguments
        switch keyword {
        case AlarisKeyword.serialNumber:
            guard let serial = args.first, !serial.isEmpty else {
                throw .missingField(keyword: keyword, position: 1, meaning: "serial number")
            }
            self = .serialNumber(serial)
        case AlarisKeyword.commsProtocol:
            guard let text = args.first else {
                throw .missingField(keyword: keyword, position: 1, meaning: "protocol version")
            }
            self = .commsProtocol(text)
        case AlarisKeyword.remoteControl, AlarisKeyword.remoteConfiguration:
            let state: AlarisRemoteState
            switch args.first {
            case AlarisWord.enabled?: state = AlarisRemoteState(enabled: true, detail: Array(args.dropFirst()))
            case AlarisWord.disabled?: state = AlarisRemoteState(enabled: false, detail: Array(args.dropFirst()))
            case let other?: throw .unknownWord(keyword: keyword, text: other, expected: "ENABLED or DISABLED")
            case nil: throw .missingField(keyword: keyword, position: 1, meaning: "ENABLED or DISABLED")
            }
            self = keyword == AlarisKeyword.remoteControl ? .remoteControl(state) : .remoteConfiguration(state)
        case AlarisKeyword.rate:
            guard let number = args.first else { throw .missingField(keyword: keyword, position: 1, meaning: "rate") }
            self = .rate(try AlarisQuantityText.rate(keyword: keyword, number: number, unit: message.argument(1)))
        case AlarisKeyword.volumeInfused:
            guard let number = args.first else { throw .missingField(keyword: keyword, position: 1, meaning: "volume") }
            self = .volumeInfused(try AlarisQuantityText.volume(keyword: keyword, number: number, unit: message.argument(1)))
        case AlarisKeyword.start where args.isEmpty: self = .started
        case AlarisKeyword.stop where args.isEmpty: self = .stopped
        case AlarisKeyword.vtbi:
            switch args.first {
            case AlarisWord.active?, AlarisWord.deactivated?:
                var status = AlarisVTBIStatus(active: args.first == AlarisWord.active)
                if let number = message.argument(1), !number.isEmpty {
                    status.volume = try AlarisQuantityText.volume(keyword: keyword, number: number, unit: message.argument(2))
                }
                if let action = message.argument(3), !action.isEmpty {
                    guard let parsed = AlarisVTBIEndAction(rawValue: action) else {
                        throw .unknownWord(keyword: keyword, text: action, expected: "STOP")
                    }
                    status.endAction = parsed
                }
                self = .vtbi(status)
            case let other?: throw .unknownWord(keyword: keyword, text: other, expected: "ACTIV or DEACT")
            case nil: throw .missingField(keyword: keyword, position: 1, meaning: "ACTIV or DEACT")
            }
        case AlarisKeyword.bolus where args == [AlarisWord.enabled]: self = .bolusEnabled
        case AlarisKeyword.remoteQuery where args.first == AlarisWord.deactivated && args.dropFirst().allSatisfy(\.isEmpty):
            self = .remoteQueryDeactivated
        default:
            self = .other(message)
        }
    }

    /// The message a pump (simulator) sends for this reply. Rates are written with two decimals and
    /// volumes with three, rounded down. Throws `AlarisMessageError` when a text field (serial number,
    /// detail fields) holds a character that cannot be framed, or a quantity is out of range.
    public func message() throws(AlarisMessageError) -> AlarisMessage {
        switch self {
        case let .serialNumber(serial):
            return try AlarisMessage(keyword: AlarisKeyword.serialNumber, arguments: [serial])
        case let .commsProtocol(text):
            return try AlarisMessage(keyword: AlarisKeyword.commsProtocol, arguments: [text])
        case let .remoteControl(state):
            return try AlarisMessage(keyword: AlarisKeyword.remoteControl, arguments: Self.fields(state))
        case let .remoteConfiguration(state):
            return try AlarisMessage(keyword: AlarisKeyword.remoteConfiguration, arguments: Self.fields(state))
        case let .rate(rate):
            return AlarisMessage(unchecked: AlarisKeyword.rate, [try AlarisRate(roundingDown: rate).text, AlarisRate.unitText])
        case let .volumeInfused(volume):
            return AlarisMessage(unchecked: AlarisKeyword.volumeInfused,
                                 [try AlarisVolume(roundingDown: volume).text, AlarisVolume.unitText])
        case .started: return AlarisMessage(unchecked: AlarisKeyword.start)
        case .stopped: return AlarisMessage(unchecked: AlarisKeyword.stop)
        case let .vtbi(status):
            var fields = [status.active ? AlarisWord.active : AlarisWord.deactivated]
            if let volume = status.volume {
                fields += [try AlarisVolume(roundingDown: volume).text, AlarisVolume.unitText]
                if let action = status.endAction { fields.append(action.rawValue) }
            }
            return AlarisMessage(unchecked: AlarisKeyword.vtbi, fields)
        case .bolusEnabled: return AlarisMessage(unchecked: AlarisKeyword.bolus, [AlarisWord.enabled])
        case .remoteQueryDeactivated: return AlarisMessage(unchecked: AlarisKeyword.remoteQuery, [AlarisWord.deactivated])
        case let .other(message): return message
        }
    }

    /// The complete frame for this reply (`!INST_SERIALNO^8002-51740|050B\r`).
    public func frame() throws(AlarisMessageError) -> [UInt8] {
        AlarisFrame.encode(try message())
    }

    private static func fields(_ state: AlarisRemoteState) -> [String] {
        [state.enabled ? AlarisWord.enabled : AlarisWord.disabled] + state.detail
    }
}
