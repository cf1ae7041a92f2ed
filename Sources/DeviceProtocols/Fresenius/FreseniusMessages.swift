import InfusionCore

/// The operating mode set with `MO` (§A5).
public enum FreseniusOperatingMode: UInt8, Hashable, Sendable, CaseIterable {
    /// `MO;1`: local (manual) control from the pump's keypad.
    case local = 1
    /// `MO;2`: remote (PC) control.
    case remote = 2
}

/// Fixed variables read with `LF` (§A5).
public enum FreseniusFixedVariableID: UInt8, Hashable, Sendable, CaseIterable {
    /// `b`: device type.
    case deviceType = 0x62
}

/// A command the host sends to a Fresenius pump or base (§A5): two upper-case letters, then
/// `;`-separated arguments. `message()` encodes it; `init(message:)` parses one (a simulator's side).
///
/// Commands whose argument format the public source does not give (`PB`, `PF`, `PV`, `PP`, `PS` and
/// the drug/identifier commands) carry their arguments as text, verbatim.
///
/// Pure value; any thread.
public enum FreseniusCommand: Hashable, Sendable {
    /// `DC`: open the remote session (connect).
    case connect
    /// `FC`: close the remote session.
    case disconnect
    /// `MO;1` / `MO;2`: switch to local or remote control.
    case mode(FreseniusOperatingMode)
    /// `RZ`: reset.
    case reset
    /// `OF`: power off.
    case powerOff
    /// `SI`: silence the alarm.
    case silenceAlarm
    /// `LE;<flags>`: read variables (`LE;dr` reads rate and volume infused).
    case readVariables([FreseniusVariableID])
    /// `DE;<flags>`: enable spontaneous reporting of variables.
    case enableSpontaneousVariables([FreseniusVariableID])
    /// `AE`: disable spontaneous variables.
    case disableSpontaneousVariables
    /// `LF;<flag>`: read a fixed variable (`LF;b` device type).
    case readFixedVariable(FreseniusFixedVariableID)
    /// `PR;<hex>`: set the rate, hex in 0.1 mL/h, rounded down when the `FreseniusRate` was made
    /// (the argument format is inferred from the `d` variable **[unverified]**).
    case setRate(FreseniusRate)
    /// `PO`: pause (stop the infusion).
    case pause
    /// `PB[;args]`: bolus.
    case bolus(arguments: [String])
    /// `PF[;args]`: empty-syringe mode.
    case emptySyringeMode(arguments: [String])
    /// `PV[;args]`: limit volume.
    case limitVolume(arguments: [String])
    /// `RV`: reset the volume infused.
    case resetVolumeInfused
    /// `PP[;args]`: pressure limit.
    case pressureLimit(arguments: [String])
    /// `PS[;args]`: dynamic pressure.
    case dynamicPressure(arguments: [String])
    /// Any other two-letter command (`EP`, `LP`, `AP`, `EN`, `LN`, `DM`, `AM`, `LM`, ...) with its
    /// arguments verbatim.
    case other(code: String, arguments: [String])

    /// The two-letter command code.
    public var code: String {
        switch self {
        case .connect: return "DC"
        case .disconnect: return "FC"
        case .mode: return "MO"
        case .reset: return "RZ"
        case .powerOff: return "OF"
        case .silenceAlarm: return "SI"
        case .readVariables: return "LE"
        case .enableSpontaneousVariables: return "DE"
        case .disableSpontaneousVariables: return "AE"
        case .readFixedVariable: return "LF"
        case .setRate: return "PR"
        case .pause: return "PO"
        case .bolus: return "PB"
        case .emptySyringeMode: return "PF"
        case .limitVolume: return "PV"
        case .resetVolumeInfused: return "RV"
        case .pressureLimit: return "PP"
        case .dynamicPressure: return "PS"
        case let .other(code, _): return code
        }
    }

    /// The arguments after the code, as sent.
    public var arguments: [String] {
        switch self {
        case .connect, .disconnect, .reset, .powerOff, .silenceAlarm, .disableSpontaneousVariables,
             .pause, .resetVolumeInfused:
            return []
        case let .mode(mode): return [String(mode.rawValue)]
        case let .readVariables(ids), let .enableSpontaneousVariables(ids):
            return [String(ids.map(\.letter))]
        case let .readFixedVariable(id): return [String(Character(Unicode.Scalar(id.rawValue)))]
        case let .setRate(rate): return [rate.hex]
        case let .bolus(arguments), let .emptySyringeMode(arguments), let .limitVolume(arguments),
             let .pressureLimit(arguments), let .dynamicPressure(arguments), let .other(_, arguments):
            return arguments
        }
    }

    /// The message text (`DC`, `MO;2`, `LE;dr`, `PR;64`). Throws `FreseniusEncodingError` when a
    /// verbatim argument contains `;`, when the code is not two upper-case letters, when `LE`/`DE` has
    /// no variable letters, or when the whole
    /// message would exceed 80 characters or contain a byte outside 0x20...0x7D.
    public func message() throws(FreseniusEncodingError) -> String {
        let code = self.code
        guard code.utf8.count == 2, code.utf8.allSatisfy({ (0x41...0x5A).contains($0) }) else {
            throw .invalidCharacter(message: code, byte: code.utf8.first { !(0x41...0x5A).contains($0) } ?? 0)
        }
        switch self {
        case let .readVariables(ids), let .enableSpontaneousVariables(ids):
            guard !ids.isEmpty else {
                throw .valueOutOfRange(what: "\(code) variable list", value: "(empty)", allowed: "at least one of a e m d r k s i b")
            }
        default: break
        }
        let arguments = self.arguments
        if let bad = arguments.first(where: { $0.contains(";") }) { throw .argumentContainsSeparator(argument: bad) }
        let text = ([code] + arguments).joined(separator: ";")
        _ = try FreseniusFrame(address: .standalone, message: text)  // length and character checks
        return text
    }

    /// The frame carrying this command to `address`.
    public func frame(to address: FreseniusAddress) throws(FreseniusEncodingError) -> FreseniusFrame {
        try FreseniusFrame(address: address, message: message())
    }

    /// `PR;<hex>` for `requested`, rounded down to 0.1 mL/h, with the rounding for the caller to report.
    public static func setRate(roundingDown requested: VolumeRate) throws(FreseniusEncodingError) -> (command: FreseniusCommand, rate: Rounded<VolumeRate>) {
        let rate = try FreseniusRate(roundingDown: requested)
        return (.setRate(rate), rate.rounded)
    }

    /// Parses a host message (what a simulator does). Unknown two-letter codes become `.other`.
    /// Throws `FreseniusMessageError`; its `applicationError` is the `I` code to answer with
    /// (`0C` for a message over 80 characters, `01` unknown command, `04` syntax).
    public init(message: String) throws(FreseniusMessageError) {
        guard message.utf8.count <= FreseniusLink.maximumMessageLength else {
            throw .messageTooLong(length: message.utf8.count)
        }
        let parts = message.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
        let code = parts[0]
        let args = Array(parts.dropFirst())
        guard code.utf8.count == 2, code.utf8.allSatisfy({ (0x41...0x5A).contains($0) }) else {
            throw .unknownCommand(text: message)
        }
        func noArguments(_ command: FreseniusCommand) throws(FreseniusMessageError) -> FreseniusCommand {
            guard args.isEmpty else { throw .syntax(text: message, expected: "\(code) takes no arguments") }
            return command
        }
        func flags() throws(FreseniusMessageError) -> [FreseniusVariableID] {
            guard args.count == 1, !args[0].isEmpty else {
                throw .syntax(text: message, expected: "\(code);<variable letters>")
            }
            var ids: [FreseniusVariableID] = []
            for byte in args[0].utf8 {
                guard let id = FreseniusVariableID(rawValue: byte) else {
                    throw .syntax(text: message, expected: "variable letters from aemdrksib")
                }
                ids.append(id)
            }
            return ids
        }
        switch code {
        case "DC": self = try noArguments(.connect)
        case "FC": self = try noArguments(.disconnect)
        case "RZ": self = try noArguments(.reset)
        case "OF": self = try noArguments(.powerOff)
        case "SI": self = try noArguments(.silenceAlarm)
        case "AE": self = try noArguments(.disableSpontaneousVariables)
        case "PO": self = try noArguments(.pause)
        case "RV": self = try noArguments(.resetVolumeInfused)
        case "MO":
            guard args.count == 1, let digit = UInt8(args[0]), let mode = FreseniusOperatingMode(rawValue: digit) else {
                throw .syntax(text: message, expected: "MO;1 or MO;2")
            }
            self = .mode(mode)
        case "LE": self = .readVariables(try flags())
        case "DE": self = .enableSpontaneousVariables(try flags())
        case "LF":
            guard args.count == 1, args[0].utf8.count == 1, let byte = args[0].utf8.first,
                  let id = FreseniusFixedVariableID(rawValue: byte) else {
                throw .syntax(text: message, expected: "LF;b")
            }
            self = .readFixedVariable(id)
        case "PR":
            guard args.count == 1, let rate = FreseniusRate(hex: args[0]) else {
                throw .syntax(text: message, expected: "PR;<rate in 0.1 mL/h, hex>")
            }
            self = .setRate(rate)
        case "PB": self = .bolus(arguments: args)
        case "PF": self = .emptySyringeMode(arguments: args)
        case "PV": self = .limitVolume(arguments: args)
        case "PP": self = .pressureLimit(arguments: args)
        case "PS": self = .dynamicPressure(arguments: args)
        default: self = .other(code: code, arguments: args)
        }
    }
}

/// The status letter of a reply (§A5).
public enum FreseniusReplyStatus: UInt8, Hashable, Sendable, CaseIterable {
    /// `C`: correct, the reply to a command.
    case correct = 0x43
    /// `I`: incorrect, the command was refused; data is a 2-hex-digit application error code.
    case incorrect = 0x49
    /// `E`: spontaneous event; the host must acknowledge it.
    case event = 0x45
    /// `M`: spontaneous "adjusted" event; the host must acknowledge it.
    case adjustedEvent = 0x4D

    /// The letter on the wire.
    public var letter: Character { Character(Unicode.Scalar(rawValue)) }

    /// True for `E` and `M`, which the host must acknowledge.
    public var isSpontaneous: Bool { self == .event || self == .adjustedEvent }
}

/// A reply or spontaneous message from a Fresenius pump or base: `[<origin>]<status>[;<data>]`.
/// The origin digit is the frame's address. A driver builds one with `init(frame:)`; a simulator
/// builds one and sends `frame()`.
///
/// Pure value; any thread.
public struct FreseniusReply: Hashable, Sendable {
    /// What the reply says.
    public enum Body: Hashable, Sendable {
        /// `C[;data]`: the command succeeded; data holds variables when it read some.
        case correct(data: String?)
        /// `I;<code>`: the command was refused.
        case incorrect(FreseniusApplicationError)
        /// `E[;data]`: spontaneous event (acknowledge it with `acknowledgement`).
        case event(data: String?)
        /// `M[;data]`: spontaneous adjusted event (acknowledge it with `acknowledgement`).
        case adjustedEvent(data: String?)
    }

    /// The module the reply comes from (`standalone` when the frame has no address digit).
    public var origin: FreseniusAddress
    /// The status and data.
    public var body: Body

    /// Creates a reply.
    public init(origin: FreseniusAddress = .standalone, body: Body) {
        self.origin = origin
        self.body = body
    }

    /// The status letter.
    public var status: FreseniusReplyStatus {
        switch body {
        case .correct: return .correct
        case .incorrect: return .incorrect
        case .event: return .event
        case .adjustedEvent: return .adjustedEvent
        }
    }

    /// The data after `;` for `C`, `E` and `M` replies.
    public var data: String? {
        switch body {
        case let .correct(data), let .event(data), let .adjustedEvent(data): return data
        case .incorrect: return nil
        }
    }

    /// The variables in the data (empty when there is no data). Throws on malformed variables.
    public func variables() throws(FreseniusMessageError) -> FreseniusVariables {
        guard let data else { return FreseniusVariables() }
        return try FreseniusVariables(parsing: data)
    }

    /// For a spontaneous message (`E`/`M`), the frame the host must send back: origin digit + status
    /// letter (`1E`). Nil for `C` and `I`, which are not acknowledged at the application level.
    public var acknowledgement: FreseniusFrame? {
        guard status.isSpontaneous else { return nil }
        return FreseniusFrame(received: origin, message: String(status.letter))
    }

    /// The acknowledgement frame for a spontaneous message with `status` from `origin`.
    /// Returns nil when `status` is not `E` or `M`.
    public static func acknowledgement(origin: FreseniusAddress, status: FreseniusReplyStatus) -> FreseniusFrame? {
        guard status.isSpontaneous else { return nil }
        return FreseniusFrame(received: origin, message: String(status.letter))
    }

    /// Interprets a received frame. Throws `FreseniusMessageError` when the message does not follow
    /// `<status>[;<data>]` or an `I` reply's code is not two hex digits.
    public init(frame: FreseniusFrame) throws(FreseniusMessageError) {
        let utf8 = Array(frame.message.utf8)
        guard let first = utf8.first, let status = FreseniusReplyStatus(rawValue: first) else {
            throw .badReply(text: frame.message)
        }
        var data: String?
        if utf8.count > 1 {
            guard utf8[1] == 0x3B else { throw .badReply(text: frame.message) }  // ';'
            data = String(decoding: utf8[2...], as: UTF8.self)
        }
        origin = frame.address
        switch status {
        case .correct: body = .correct(data: data)
        case .event: body = .event(data: data)
        case .adjustedEvent: body = .adjustedEvent(data: data)
        case .incorrect:
            guard let text = data, text.utf8.count == 2, let code = FreseniusHex.parse(text) else {
                throw .badErrorCode(text: data ?? "")
            }
            body = .incorrect(FreseniusApplicationError(code: UInt8(code)))
        }
    }

    /// The message text (`C;d64`, `I;0C`, `E;a1`).
    public var message: String {
        var text = String(status.letter)
        switch body {
        case let .incorrect(error): text += ";" + FreseniusHex.text(UInt32(error.code), minimumDigits: 2)
        case let .correct(data?), let .event(data?), let .adjustedEvent(data?): text += ";" + data
        default: break
        }
        return text
    }

    /// The frame a pump (simulator) sends for this reply. Throws when the data makes the message
    /// longer than 80 characters or holds a byte that cannot be framed.
    public func frame() throws(FreseniusEncodingError) -> FreseniusFrame {
        try FreseniusFrame(address: origin, message: message)
    }
}

/// What a host sends at the application level, as a simulator sees it: a command, or the
/// acknowledgement of a spontaneous message (the origin digit + `E`/`M`).
public enum FreseniusHostMessage: Hashable, Sendable {
    /// A command for the addressed module.
    case command(FreseniusCommand)
    /// The host acknowledged a spontaneous message with this status.
    case spontaneousAcknowledgement(FreseniusReplyStatus)

    /// Interprets a frame received from the host. Throws `FreseniusMessageError` (with the application
    /// error to answer) when it is neither an acknowledgement nor a valid command.
    public init(frame: FreseniusFrame) throws(FreseniusMessageError) {
        let utf8 = Array(frame.message.utf8)
        if utf8.count == 1, let status = FreseniusReplyStatus(rawValue: utf8[0]), status.isSpontaneous {
            self = .spontaneousAcknowledgement(status)
        } else {
            self = .command(try FreseniusCommand(message: frame.message))
        }
    }
}

/// Why a Fresenius message could not be interpreted. `applicationError` is the `I` code a pump
/// (simulator) answers with, when one applies.
public enum FreseniusMessageError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The message exceeds 80 characters.
    case messageTooLong(length: Int)
    /// The command code is not two upper-case letters.
    case unknownCommand(text: String)
    /// A known command has malformed arguments.
    case syntax(text: String, expected: String)
    /// A reply does not start with a status letter `C`, `I`, `E` or `M` (then `;` and data).
    case badReply(text: String)
    /// An `I` reply's code is not two hex digits.
    case badErrorCode(text: String)
    /// A variable letter is not one of `aemdrksib`.
    case unknownVariable(text: String)
    /// A typed variable's value is not hex in range.
    case badVariableValue(id: FreseniusVariableID, text: String)

    /// The application error a pump answers this with (`I;<code>`), or nil for errors in replies.
    public var applicationError: FreseniusApplicationError? {
        switch self {
        case .messageTooLong: return .messageTooLong
        case .unknownCommand: return .unknownCommand
        case .syntax: return .syntaxError
        case .unknownVariable, .badVariableValue: return .identifierIncorrect
        case .badReply, .badErrorCode: return nil
        }
    }

    /// What went wrong and what to do next, for logs and operator messages.
    public var description: String {
        switch self {
        case let .messageTooLong(length):
            return "Fresenius message of \(length) characters exceeds the maximum of \(FreseniusLink.maximumMessageLength) (error 0C)"
        case let .unknownCommand(text):
            return "Fresenius command \"\(text)\" does not start with a two-letter code (error 01)"
        case let .syntax(text, expected):
            return "Fresenius command \"\(text)\" is malformed: expected \(expected) (error 04)"
        case let .badReply(text):
            return "Fresenius reply \"\(text)\" does not start with C, I, E or M: the pump's firmware may differ from the documented grammar"
        case let .badErrorCode(text):
            return "Fresenius error reply carries \"\(text)\" instead of a two-hex-digit code"
        case let .unknownVariable(text):
            return "Fresenius variable \"\(text)\" has an unknown letter (known: a e m d r k s i b)"
        case let .badVariableValue(id, text):
            return "Fresenius variable \(id) has value \"\(text)\", which is not hex in range"
        }
    }
}

/// The application error codes of an `I` reply (§A5), each with its meaning and what to do.
/// Codes not in the reference decode as `.unlisted(code)`.
public enum FreseniusApplicationError: Hashable, Sendable, CustomStringConvertible {
    /// `01` unknown command.
    case unknownCommand
    /// `02` command disabled in this mode.
    case disabledInThisMode
    /// `03` command disabled in this status.
    case disabledInThisStatus
    /// `04` syntax error.
    case syntaxError
    /// `05` mode not authorised.
    case modeNotAuthorised
    /// `06` mode already active.
    case modeAlreadyActive
    /// `07` new mode disabled in this mode.
    case newModeDisabledInThisMode
    /// `08` parameter out of limit.
    case parameterOutOfLimit
    /// `09` mode disabled in this status.
    case modeDisabledInThisStatus
    /// `0A` identifier not used.
    case identifierNotUsed
    /// `0B` identifier incorrect.
    case identifierIncorrect
    /// `0C` message too long (max 80).
    case messageTooLong
    /// `0D` session with the base not open.
    case baseSessionNotOpen
    /// `0E` module unreachable.
    case moduleUnreachable
    /// `12` alarm present.
    case alarmPresent
    /// `14` start before a rate was set.
    case startBeforeRateSet
    /// `15` not enough volume for the bolus.
    case insufficientVolumeForBolus
    /// `16` empty-syringe mode impossible.
    case emptySyringeModeImpossible
    /// `1A` event number incorrect.
    case eventNumberIncorrect
    /// `1E` session with the module not open.
    case moduleSessionNotOpen
    /// `1F` a module is not in manual mode.
    case moduleNotInManualMode
    /// `20` not authorised on this port.
    case notAuthorisedOnThisPort
    /// `22` new mode unauthorised.
    case newModeUnauthorised
    /// `24` connection mode incorrect.
    case connectionModeIncorrect
    /// `25` drug number incorrect.
    case drugNumberIncorrect
    /// A code the reference does not list.
    case unlisted(UInt8)

    /// Every code listed in §A5, in code order.
    public static let listed: [FreseniusApplicationError] = [
        .unknownCommand, .disabledInThisMode, .disabledInThisStatus, .syntaxError, .modeNotAuthorised,
        .modeAlreadyActive, .newModeDisabledInThisMode, .parameterOutOfLimit, .modeDisabledInThisStatus,
        .identifierNotUsed, .identifierIncorrect, .messageTooLong, .baseSessionNotOpen, .moduleUnreachable,
        .alarmPresent, .startBeforeRateSet, .insufficientVolumeForBolus, .emptySyringeModeImpossible,
        .eventNumberIncorrect, .moduleSessionNotOpen, .moduleNotInManualMode, .notAuthorisedOnThisPort,
        .newModeUnauthorised, .connectionModeIncorrect, .drugNumberIncorrect,
    ]

    /// The error for `code`: a listed case when the reference lists it, else `.unlisted(code)`.
    public init(code: UInt8) {
        self = Self.listed.first { $0.code == code } ?? .unlisted(code)
    }

    /// The code on the wire.
    public var code: UInt8 {
        switch self {
        case .unknownCommand: return 0x01
        case .disabledInThisMode: return 0x02
        case .disabledInThisStatus: return 0x03
        case .syntaxError: return 0x04
        case .modeNotAuthorised: return 0x05
        case .modeAlreadyActive: return 0x06
        case .newModeDisabledInThisMode: return 0x07
        case .parameterOutOfLimit: return 0x08
        case .modeDisabledInThisStatus: return 0x09
        case .identifierNotUsed: return 0x0A
        case .identifierIncorrect: return 0x0B
        case .messageTooLong: return 0x0C
        case .baseSessionNotOpen: return 0x0D
        case .moduleUnreachable: return 0x0E
        case .alarmPresent: return 0x12
        case .startBeforeRateSet: return 0x14
        case .insufficientVolumeForBolus: return 0x15
        case .emptySyringeModeImpossible: return 0x16
        case .eventNumberIncorrect: return 0x1A
        case .moduleSessionNotOpen: return 0x1E
        case .moduleNotInManualMode: return 0x1F
        case .notAuthorisedOnThisPort: return 0x20
        case .newModeUnauthorised: return 0x22
        case .connectionModeIncorrect: return 0x24
        case .drugNumberIncorrect: return 0x25
        case let .unlisted(code): return code
        }
    }

    /// The meaning given in the reference.
    public var meaning: String {
        switch self {
        case .unknownCommand: return "unknown command"
        case .disabledInThisMode: return "command disabled in this mode"
        case .disabledInThisStatus: return "command disabled in this status"
        case .syntaxError: return "syntax error"
        case .modeNotAuthorised: return "mode not authorised"
        case .modeAlreadyActive: return "mode already active"
        case .newModeDisabledInThisMode: return "new mode disabled in this mode"
        case .parameterOutOfLimit: return "parameter out of limit"
        case .modeDisabledInThisStatus: return "mode disabled in this status"
        case .identifierNotUsed: return "identifier not used"
        case .identifierIncorrect: return "identifier incorrect"
        case .messageTooLong: return "message too long (max 80)"
        case .baseSessionNotOpen: return "session with the base not open"
        case .moduleUnreachable: return "module unreachable"
        case .alarmPresent: return "alarm present"
        case .startBeforeRateSet: return "start before a rate was set"
        case .insufficientVolumeForBolus: return "not enough volume for the bolus"
        case .emptySyringeModeImpossible: return "empty-syringe mode impossible"
        case .eventNumberIncorrect: return "event number incorrect"
        case .moduleSessionNotOpen: return "session with the module not open"
        case .moduleNotInManualMode: return "a module is not in manual mode"
        case .notAuthorisedOnThisPort: return "not authorised on this port"
        case .newModeUnauthorised: return "new mode unauthorised"
        case .connectionModeIncorrect: return "connection mode incorrect"
        case .drugNumberIncorrect: return "drug number incorrect"
        case let .unlisted(code): return "error code \(FreseniusHex.text(UInt32(code), minimumDigits: 2)), not listed in the public reference"
        }
    }

    /// What the host should do next.
    public var advice: String {
        switch self {
        case .baseSessionNotOpen, .moduleSessionNotOpen:
            return "reconnect (DC) and retry"
        case .alarmPresent:
            return "attend to the alarm at the pump, silence it (SI), then retry"
        case .startBeforeRateSet:
            return "set the rate (PR) before starting"
        case .parameterOutOfLimit:
            return "check the value against the pump's limits"
        case .disabledInThisMode, .modeNotAuthorised, .newModeDisabledInThisMode, .modeDisabledInThisStatus,
             .moduleNotInManualMode, .newModeUnauthorised, .connectionModeIncorrect:
            return "check the pump is in remote mode (MO;2) and in a state that accepts the command"
        case .moduleUnreachable:
            return "check the module is seated in the rack"
        case .messageTooLong:
            return "send a shorter message (at most 80 characters)"
        default:
            return "check the command against the protocol reference; do not retry blindly"
        }
    }

    /// The code, its meaning and what to do next, for logs and operator messages.
    public var description: String {
        "Fresenius error \(FreseniusHex.text(UInt32(code), minimumDigits: 2)): \(meaning); \(advice)"
    }
}
