import InfusionCore

/// The remote-control code of an Alaris Asena pump: CRC-16/CCITT-FALSE of the pump's serial-number
/// string (as returned by `INST_SERIALNO`), written as four upper-case hex digits.
/// Example: serial `8002-51740` → `3CC1` (§A4).
///
/// Pure value; any thread.
public struct AlarisRemoteCode: Hashable, Sendable, CustomStringConvertible {
    /// The 16-bit code.
    public let value: UInt16

    /// The code for the pump whose serial number is `serialNumber` (exactly as the pump reports it).
    public init(serialNumber: String) {
        value = Checksums.crc16CCITTFalse(Array(serialNumber.utf8))
    }

    /// A code read from a message: four hex digits (either case). Nil for anything else.
    public init?(text: String) {
        guard let parsed = AlarisHex.parseWord(Array(text.utf8)) else { return nil }
        value = parsed
    }

    /// A code from its 16-bit value.
    public init(value: UInt16) { self.value = value }

    /// The four upper-case hex digits sent on the wire.
    public var text: String { AlarisHex.word(value) }

    /// A short human-readable form, for logs.
    public var description: String { text }
}

/// An infusion rate as the Asena takes it: mL/h with exactly two decimals (`3.50`).
///
/// The only way to build one from a requested rate rounds **down** to 0.01 mL/h (toward less drug)
/// and keeps both values, so a driver can report what was actually set. Equality compares both the
/// request and the result; compare `value` (or `text`) to ask whether two rates send the same thing.
public struct AlarisRate: Hashable, Sendable, CustomStringConvertible {
    /// The step of the rate field: 0.01 mL/h.
    public static let resolution = VolumeRate.millilitresPerHour(0.01)
    /// The largest rate the codec will format (a field-width guard, not a clinical limit; the pump
    /// enforces its own maximum, 1200 mL/h on the GH according to the OpenICE driver [unverified]).
    public static let maximum = VolumeRate.millilitresPerHour(99_999.99)
    /// The unit text that follows the number on the wire.
    public static let unitText = "ml/h"

    /// What was asked for and what will be sent (`actual ≤ requested`).
    public let rounded: Rounded<VolumeRate>
    /// The rate that will be sent.
    public var value: VolumeRate { rounded.actual }
    /// Hundredths of a mL/h in `value`.
    public let hundredths: Int64

    /// Rounds `requested` down to 0.01 mL/h. Throws when the rate is negative, not finite, or above
    /// `maximum`.
    public init(roundingDown requested: VolumeRate) throws(AlarisMessageError) {
        let mlPerHour = requested.millilitresPerHour
        guard mlPerHour.isFinite, mlPerHour >= 0, requested <= Self.maximum else {
            throw .valueOutOfRange(what: "rate", value: requested.formatted(fractionDigits: 4),
                                   allowed: "0 to \(Self.maximum.formatted(fractionDigits: 2))")
        }
        let rounded = requested.roundedDown(toMultipleOf: Self.resolution)
        self.rounded = rounded
        hundredths = Int64((rounded.actual / Self.resolution).rounded())
    }

    /// The number field: `3.50`, `0.10`, `1200.00`.
    public var text: String { AlarisDecimal.text(units: hundredths, fractionDigits: 2) }

    /// A short human-readable form, for logs.
    public var description: String { "\(text) \(Self.unitText)" }
}

/// A volume as the Asena takes it: mL with exactly three decimals (`11.000`), rounded **down** to
/// 0.001 mL when built from a requested volume.
public struct AlarisVolume: Hashable, Sendable, CustomStringConvertible {
    /// The step of the volume field: 0.001 mL.
    public static let resolution = Volume.millilitres(0.001)
    /// The largest volume the codec will format (a field-width guard, not a clinical limit).
    public static let maximum = Volume.millilitres(99_999.999)
    /// The unit text that follows the number on the wire.
    public static let unitText = "ml"

    /// What was asked for and what will be sent (`actual ≤ requested`).
    public let rounded: Rounded<Volume>
    /// The volume that will be sent.
    public var value: Volume { rounded.actual }
    /// Thousandths of a mL in `value`.
    public let thousandths: Int64

    /// Rounds `requested` down to 0.001 mL. Throws when it is negative, not finite or above `maximum`.
    public init(roundingDown requested: Volume) throws(AlarisMessageError) {
        let ml = requested.millilitres
        guard ml.isFinite, ml >= 0, requested <= Self.maximum else {
            throw .valueOutOfRange(what: "volume", value: requested.formatted(fractionDigits: 4),
                                   allowed: "0 to \(Self.maximum.formatted(fractionDigits: 3))")
        }
        let rounded = requested.roundedDown(toMultipleOf: Self.resolution)
        self.rounded = rounded
        thousandths = Int64((rounded.actual / Self.resolution).rounded())
    }

    /// The number field: `11.000`.
    public var text: String { AlarisDecimal.text(units: thousandths, fractionDigits: 3) }

    /// A short human-readable form, for logs.
    public var description: String { "\(text) \(Self.unitText)" }
}

/// What the pump does when the volume to be infused has been delivered (the last `INF_VTBI` field).
public enum AlarisVTBIEndAction: String, Hashable, Sendable, CaseIterable {
    /// Stop the infusion (`STOP`, the only action seen in the public sources).
    case stop = "STOP"
}

/// A command the host sends to an Asena pump (§A4, §A6). `message` gives its wire form;
/// `init(message:)` parses one (what a simulator does with the host's frames).
///
/// Pure value; any thread.
public enum AlarisCommand: Hashable, Sendable {
    /// `INST_SERIALNO`: ask for the serial number (needed for the remote-control code).
    case querySerialNumber
    /// `COMMS_PROTOCOL`: ask for the protocol version text.
    case queryCommsProtocol
    /// `COMMS_RESPONSE_MAX`: ask for the pump's maximum response time.
    case queryResponseTimeMaximum
    /// `INF`: ask for the infusion status (a long `^`-separated reply; decoded generically).
    case queryInfusionStatus
    /// `REMOTE_CTRL^ENABLED^<code>`: take or renew the remote-control lease. Must be re-sent about
    /// once a second; the pump drops remote control when it stops (§A6).
    case enableRemoteControl(AlarisRemoteCode)
    /// `REMOTE_CTRL^DISABLED`: end remote control explicitly.
    case disableRemoteControl
    /// `REMOTE_CFG^ENABLED^<code>`: take or renew the remote-configuration lease (sent with
    /// `enableRemoteControl`).
    case enableRemoteConfiguration(AlarisRemoteCode)
    /// `REMOTE_CFG^DISABLED`: end remote configuration.
    case disableRemoteConfiguration
    /// `INF_RATE`: ask for the programmed rate.
    case queryRate
    /// `INF_RATE^<rate>^ml/h`: set the rate (two decimals, rounded down when the `AlarisRate` was made).
    case setRate(AlarisRate)
    /// `INF_VI`: ask for the volume infused.
    case queryVolumeInfused
    /// `INF_START`: start (or resume) the infusion.
    case start
    /// `INF_STOP`: stop (pause) the infusion.
    case stop
    /// `INF_VTBI`: ask for the volume-to-be-infused setting.
    case queryVTBI
    /// `INF_VTBI^ACTIV^<volume>^ml^<action>`: activate a volume to be infused.
    case activateVTBI(AlarisVolume, then: AlarisVTBIEndAction)
    /// `INF_VTBI^DEACT`: deactivate the volume to be infused.
    case deactivateVTBI
    /// `INF_BOLUS^ENABLED`: enable the bolus function.
    case enableBolus
    /// `REMQUERY^DEACT`: deactivate the pump's remote query.
    case deactivateRemoteQuery
    /// Any other well-formed message (a simulator answers it generically or ignores it).
    case unrecognized(AlarisMessage)

    /// The keyword a reply to this command echoes.
    public var keyword: String { message.keyword }

    /// The message sent for this command.
    public var message: AlarisMessage {
        switch self {
        case .querySerialNumber: return AlarisMessage(unchecked: AlarisKeyword.serialNumber)
        case .queryCommsProtocol: return AlarisMessage(unchecked: AlarisKeyword.commsProtocol)
        case .queryResponseTimeMaximum: return AlarisMessage(unchecked: AlarisKeyword.responseTimeMaximum)
        case .queryInfusionStatus: return AlarisMessage(unchecked: AlarisKeyword.infusionStatus)
        case let .enableRemoteControl(code):
            return AlarisMessage(unchecked: AlarisKeyword.remoteControl, [AlarisWord.enabled, code.text])
        case .disableRemoteControl:
            return AlarisMessage(unchecked: AlarisKeyword.remoteControl, [AlarisWord.disabled])
        case let .enableRemoteConfiguration(code):
            return AlarisMessage(unchecked: AlarisKeyword.remoteConfiguration, [AlarisWord.enabled, code.text])
        case .disableRemoteConfiguration:
            return AlarisMessage(unchecked: AlarisKeyword.remoteConfiguration, [AlarisWord.disabled])
        case .queryRate: return AlarisMessage(unchecked: AlarisKeyword.rate)
        case let .setRate(rate): return AlarisMessage(unchecked: AlarisKeyword.rate, [rate.text, AlarisRate.unitText])
        case .queryVolumeInfused: return AlarisMessage(unchecked: AlarisKeyword.volumeInfused)
        case .start: return AlarisMessage(unchecked: AlarisKeyword.start)
        case .stop: return AlarisMessage(unchecked: AlarisKeyword.stop)
        case .queryVTBI: return AlarisMessage(unchecked: AlarisKeyword.vtbi)
        case let .activateVTBI(volume, action):
            return AlarisMessage(unchecked: AlarisKeyword.vtbi,
                                 [AlarisWord.active, volume.text, AlarisVolume.unitText, action.rawValue])
        case .deactivateVTBI: return AlarisMessage(unchecked: AlarisKeyword.vtbi, [AlarisWord.deactivated])
        case .enableBolus: return AlarisMessage(unchecked: AlarisKeyword.bolus, [AlarisWord.enabled])
        case .deactivateRemoteQuery: return AlarisMessage(unchecked: AlarisKeyword.remoteQuery, [AlarisWord.deactivated])
        case let .unrecognized(message): return message
        }
    }

    /// The complete frame for this command (`!INF_START|38F3\r`).
    public var frame: [UInt8] { AlarisFrame.encode(message) }

    /// The commands to send once a second to keep remote control: `REMOTE_CTRL^ENABLED^<code>` and
    /// `REMOTE_CFG^ENABLED^<code>` (§A6).
    public static func remoteLease(serialNumber: String) -> [AlarisCommand] {
        let code = AlarisRemoteCode(serialNumber: serialNumber)
        return [.enableRemoteControl(code), .enableRemoteConfiguration(code)]
    }

    /// `INF_RATE^<rate>^ml/h` for `requested`, rounded down to 0.01 mL/h; also returns the rounding
    /// so the caller can report what was actually set. Throws for a negative or non-finite rate.
    public static func setRate(roundingDown requested: VolumeRate) throws(AlarisMessageError) -> (command: AlarisCommand, rate: Rounded<VolumeRate>) {
        let rate = try AlarisRate(roundingDown: requested)
        return (.setRate(rate), rate.rounded)
    }

    /// Interprets a host message (what a simulator does). Known keywords with the expected fields
    /// become typed commands; unknown keywords become `.unrecognized`. Throws `AlarisMessageError` when
    /// a known keyword carries fields that do not parse (a bad rate, an unknown state word, a bad code).
    public init(message: AlarisMessage) throws(AlarisMessageError) {
        let keyword = message.keyword
        let args = message.arguments
        switch keyword {
        case AlarisKeyword.serialNumber where args.isEmpty: self = .querySerialNumber
        case AlarisKeyword.commsProtocol where args.isEmpty: self = .queryCommsProtocol
        case AlarisKeyword.responseTimeMaximum where args.isEmpty: self = .queryResponseTimeMaximum
        case AlarisKeyword.infusionStatus where args.isEmpty: self = .queryInfusionStatus
        case AlarisKeyword.remoteControl, AlarisKeyword.remoteConfiguration:
            let control = keyword == AlarisKeyword.remoteControl
            switch args.first {
            case AlarisWord.enabled?:
                guard let text = message.argument(1) else {
                    throw .missingField(keyword: keyword, position: 2, meaning: "remote-control code")
                }
                guard let code = AlarisRemoteCode(text: text) else {
                    throw .unknownWord(keyword: keyword, text: text, expected: "a four-digit hex remote-control code")
                }
                self = control ? .enableRemoteControl(code) : .enableRemoteConfiguration(code)
            case AlarisWord.disabled?:
                self = control ? .disableRemoteControl : .disableRemoteConfiguration
            case let other?:
                throw .unknownWord(keyword: keyword, text: other, expected: "ENABLED or DISABLED")
            case nil:
                throw .missingField(keyword: keyword, position: 1, meaning: "ENABLED or DISABLED")
            }
        case AlarisKeyword.rate:
            if args.isEmpty {
                self = .queryRate
            } else {
                let rate = try AlarisQuantityText.rate(keyword: keyword, number: args[0], unit: message.argument(1))
                self = .setRate(try AlarisRate(roundingDown: rate))
            }
        case AlarisKeyword.volumeInfused where args.isEmpty: self = .queryVolumeInfused
        case AlarisKeyword.start where args.isEmpty: self = .start
        case AlarisKeyword.stop where args.isEmpty: self = .stop
        case AlarisKeyword.vtbi:
            switch args.first {
            case nil: self = .queryVTBI
            case AlarisWord.deactivated?: self = .deactivateVTBI
            case AlarisWord.active?:
                guard let number = message.argument(1) else {
                    throw .missingField(keyword: keyword, position: 2, meaning: "volume")
                }
                let volume = try AlarisQuantityText.volume(keyword: keyword, number: number, unit: message.argument(2))
                guard let actionText = message.argument(3) else {
                    throw .missingField(keyword: keyword, position: 4, meaning: "end action")
                }
                guard let action = AlarisVTBIEndAction(rawValue: actionText) else {
                    throw .unknownWord(keyword: keyword, text: actionText, expected: "STOP")
                }
                self = .activateVTBI(try AlarisVolume(roundingDown: volume), then: action)
            case let other?:
                throw .unknownWord(keyword: keyword, text: other, expected: "ACTIV or DEACT")
            }
        case AlarisKeyword.bolus where args == [AlarisWord.enabled]: self = .enableBolus
        case AlarisKeyword.remoteQuery where args == [AlarisWord.deactivated]: self = .deactivateRemoteQuery
        default: self = .unrecognized(message)
        }
    }
}

/// Keywords of the Asena messages this codec knows.
public enum AlarisKeyword {
    /// `INST_SERIALNO`
    public static let serialNumber = "INST_SERIALNO"
    /// `COMMS_PROTOCOL`
    public static let commsProtocol = "COMMS_PROTOCOL"
    /// `COMMS_RESPONSE_MAX`
    public static let responseTimeMaximum = "COMMS_RESPONSE_MAX"
    /// `INF` (infusion status)
    public static let infusionStatus = "INF"
    /// `REMOTE_CTRL`
    public static let remoteControl = "REMOTE_CTRL"
    /// `REMOTE_CFG`
    public static let remoteConfiguration = "REMOTE_CFG"
    /// `INF_RATE`
    public static let rate = "INF_RATE"
    /// `INF_VI` (volume infused)
    public static let volumeInfused = "INF_VI"
    /// `INF_START`
    public static let start = "INF_START"
    /// `INF_STOP`
    public static let stop = "INF_STOP"
    /// `INF_VTBI`
    public static let vtbi = "INF_VTBI"
    /// `INF_BOLUS`
    public static let bolus = "INF_BOLUS"
    /// `REMQUERY`
    public static let remoteQuery = "REMQUERY"
}

/// State words used in Asena fields.
enum AlarisWord {
    static let enabled = "ENABLED"
    static let disabled = "DISABLED"
    static let active = "ACTIV"
    static let deactivated = "DEACT"
}

/// Fixed-point decimal text for the Asena number fields.
enum AlarisDecimal {
    /// `units` / 10^fractionDigits written with exactly `fractionDigits` decimals (units ≥ 0).
    static func text(units: Int64, fractionDigits: Int) -> String {
        var scale: Int64 = 1
        for _ in 0..<fractionDigits { scale *= 10 }
        let whole = units / scale
        let fraction = String(units % scale)
        let padding = String(repeating: "0", count: max(0, fractionDigits - fraction.count))
        return "\(whole).\(padding)\(fraction)"
    }
}

/// Parsing of the `<number>^<unit>` field pairs.
enum AlarisQuantityText {
    static func rate(keyword: String, number: String, unit: String?) throws(AlarisMessageError) -> VolumeRate {
        guard let unit else { throw .missingField(keyword: keyword, position: 2, meaning: "rate unit") }
        guard let parsedUnit = VolumeRateUnit.unit(named: unit) else {
            throw .badUnit(keyword: keyword, text: unit, expected: AlarisRate.unitText)
        }
        guard let value = plainDecimal(number) else { throw .badNumber(keyword: keyword, text: number) }
        return VolumeRate(value, parsedUnit)
    }

    static func volume(keyword: String, number: String, unit: String?) throws(AlarisMessageError) -> Volume {
        guard let unit else { throw .missingField(keyword: keyword, position: 2, meaning: "volume unit") }
        guard let parsedUnit = VolumeUnit.unit(named: unit) else {
            throw .badUnit(keyword: keyword, text: unit, expected: AlarisVolume.unitText)
        }
        guard let value = plainDecimal(number) else { throw .badNumber(keyword: keyword, text: number) }
        return Volume(value, parsedUnit)
    }

    /// A non-negative decimal written with digits and at most one point (leading spaces allowed):
    /// `3.50`, ` 50`, `0`. Nil for anything else (signs, exponents, `nan`).
    static func plainDecimal(_ text: String) -> Double? {
        let trimmed = text.drop { $0 == " " }
        var digits = 0
        var points = 0
        for character in trimmed.utf8 {
            switch character {
            case 0x30...0x39: digits += 1
            case 0x2E: points += 1
            default: return nil
            }
        }
        guard digits > 0, digits <= 15, points <= 1 else { return nil }
        return Double(String(trimmed))
    }
}
