extension NewEra {
    /// The pump's state when it is not in alarm (the `<prompt>` character of a reply).
    public enum Prompt: String, CaseIterable, Hashable, Sendable {
        /// `I`: infusing.
        case infusing = "I"
        /// `W`: withdrawing.
        case withdrawing = "W"
        /// `S`: pumping program stopped.
        case stopped = "S"
        /// `P`: pumping program paused.
        case paused = "P"
        /// `T`: timed pause phase.
        case timedPause = "T"
        /// `U`: waiting for an operational trigger (user wait).
        case userWait = "U"
        /// `X`: purging.
        case purging = "X"

        /// True when the motor is (or may be) moving liquid: infusing, withdrawing or purging.
        public var isPumping: Bool { self == .infusing || self == .withdrawing || self == .purging }
    }

    /// A pump alarm (`A?<type>` in place of the prompt). Alarms must be acknowledged: any valid
    /// command that gets an alarm reply acknowledges it.
    public enum Alarm: String, CaseIterable, Hashable, Sendable {
        /// `A?R`: the pump was reset (power was interrupted). Reported after every power-up.
        case reset = "R"
        /// `A?S`: the motor stalled (occlusion, end of travel).
        case stalled = "S"
        /// `A?T`: safe-mode communications time-out: the pump stopped because the host went silent.
        case safeModeTimeout = "T"
        /// `A?E`: pumping program error.
        case programError = "E"
        /// `A?O`: pumping program phase out of range.
        case phaseOutOfRange = "O"
    }

    /// The status field of a reply: a prompt or an alarm.
    public enum Status: Hashable, Sendable, CustomStringConvertible {
        /// Normal operation.
        case prompt(Prompt)
        /// An alarm, which replaces the prompt.
        case alarm(Alarm)

        /// The status as written: "S", "A?R".
        public var text: String {
            switch self {
            case .prompt(let prompt): prompt.rawValue
            case .alarm(let alarm): "A?" + alarm.rawValue
            }
        }

        /// Human-readable text for logs and error messages.
        public var description: String { text }
    }

    /// Why the pump refused a command (`?<error>` after the status).
    public enum CommandError: Hashable, Sendable, CustomStringConvertible {
        /// Bare `?`: the command was not recognised.
        case notRecognised
        /// `?NA`: the command is not applicable now (e.g. a setting while pumping).
        case notApplicable
        /// `?OOR`: data out of range (e.g. a rate beyond the syringe's limits).
        case outOfRange
        /// `?COM`: invalid communications packet (bad safe-mode CRC or framing).
        case invalidPacket
        /// `?IGN`: ignored because a new phase started at the same time.
        case ignored
        /// Any other text after `?`, kept as written.
        case other(String)

        /// The error as written after the status: "?", "?OOR".
        public var text: String {
            switch self {
            case .notRecognised: "?"
            case .notApplicable: "?NA"
            case .outOfRange: "?OOR"
            case .invalidPacket: "?COM"
            case .ignored: "?IGN"
            case .other(let code): "?" + code
            }
        }

        /// Human-readable text for logs and error messages.
        public var description: String {
            switch self {
            case .notRecognised: "the pump did not recognise the command (?)"
            case .notApplicable: "the command is not applicable in the pump's current state (?NA)"
            case .outOfRange: "a value was out of range for the pump and syringe (?OOR)"
            case .invalidPacket: "the pump rejected the packet as corrupt (?COM)"
            case .ignored: "the pump ignored the command because a new phase started (?IGN)"
            case .other(let code): "the pump reported error ?\(code)"
            }
        }

        init(code: Substring) {
            switch code {
            case "": self = .notRecognised
            case "NA": self = .notApplicable
            case "OOR": self = .outOfRange
            case "COM": self = .invalidPacket
            case "IGN": self = .ignored
            default: self = .other(String(code))
            }
        }
    }

    /// What the pump sends back: `<address> <status> [<data> | <command error>]`, e.g. "00S26.59",
    /// "01I", "00A?R", "00S?OOR".
    public struct Reply: Hashable, Sendable, CustomStringConvertible {
        /// What follows the status.
        public enum Body: Hashable, Sendable {
            /// Status only: a status query, or a set command that succeeded.
            case none
            /// Query data, raw ("26.59", "I0.250W0.000ML"); decode it with the typed `init(parsing:)`s.
            case data(String)
            /// The command was refused.
            case error(CommandError)
        }

        /// The replying pump's address.
        public var address: Address
        /// Its status.
        public var status: Status
        /// Data, error or nothing.
        public var body: Body

        /// A reply from `address` with `status` and `body`.
        public init(address: Address, status: Status, body: Body = .none) {
            self.address = address
            self.status = status
            self.body = body
        }

        /// The query data, if the reply carries data.
        public var data: String? {
            if case .data(let text) = body { return text }
            return nil
        }

        /// The command error, if the pump refused the command.
        public var error: CommandError? {
            if case .error(let error) = body { return error }
            return nil
        }

        /// The alarm, if the status is one.
        public var alarm: Alarm? {
            if case .alarm(let alarm) = status { return alarm }
            return nil
        }

        /// The reply as the pump writes it, without framing: "00S26.59".
        public var text: String {
            let tail: String
            switch body {
            case .none: tail = ""
            case .data(let data): tail = data
            case .error(let error): tail = error.text
            }
            return address.replyText + status.text + tail
        }

        /// The reply as ASCII bytes, without framing.
        public var bytes: [UInt8] { Array(text.utf8) }

        /// Human-readable text for logs and error messages.
        public var description: String { text }

        /// Parses a reply (the text between the framing). The address must be 2 digits; the status a
        /// prompt letter or `A?` plus an alarm letter; the rest, if any, is `?<error>` or printable data.
        public init(parsing text: some StringProtocol) throws(ParseError) {
            let chars = Substring(text)
            guard chars.utf8.count >= 3 else {
                throw ParseError(what: "reply", text: text, reason: "too short: a reply is at least a 2-digit address and a status, like 00S")
            }
            let addressText = chars.prefix(2)
            guard addressText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  let value = Int(addressText), let address = Address(value)
            else {
                throw ParseError(what: "reply", text: text, reason: "it does not start with a 2-digit address 00…99")
            }
            var rest = chars.dropFirst(2)
            let status: Status
            if rest.hasPrefix("A?") {
                rest = rest.dropFirst(2)
                guard let letter = rest.first, let alarm = Alarm(rawValue: String(letter)) else {
                    throw ParseError(what: "reply", text: text, reason: "unknown alarm type after A? (expected R, S, T, E or O)")
                }
                status = .alarm(alarm)
                rest = rest.dropFirst()
            } else {
                guard let letter = rest.first, let prompt = Prompt(rawValue: String(letter)) else {
                    throw ParseError(what: "reply", text: text, reason: "unknown status (expected I, W, S, P, T, U, X or A?)")
                }
                status = .prompt(prompt)
                rest = rest.dropFirst()
            }
            guard rest.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
                throw ParseError(what: "reply", text: text, reason: "it contains non-printable characters")
            }
            let body: Body
            if rest.isEmpty {
                body = .none
            } else if rest.first == "?" {
                body = .error(CommandError(code: rest.dropFirst()))
            } else {
                body = .data(String(rest))
            }
            self.init(address: address, status: status, body: body)
        }
    }
}
