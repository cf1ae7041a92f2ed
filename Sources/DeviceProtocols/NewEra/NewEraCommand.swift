extension NewEra {
    /// One pump command (the part of a packet after the address). Each case documents its wire form;
    /// `text` gives it, `init(parsing:)` reads it back.
    ///
    /// Commands are written without spaces ("RAT1.5MH"): the pump removes spaces anyway, and fewer
    /// bytes mean less time on the wire for a stop.
    public enum Command: Hashable, Sendable, CustomStringConvertible {
        /// `DIA`: ask for the syringe inside diameter (reply: a `Number` in mm).
        case queryDiameter
        /// `DIA<float>`: set the syringe inside diameter in mm. Changing it may reset VOL units and rate limits.
        case setDiameter(Number)
        /// `RAT`: ask for the rate (reply: a `RateSetting`, e.g. "1.500MM").
        case queryRate
        /// `RAT<float><UM|MM|UH|MH>`: set the rate. Use `RateSetting.roundingDown(_:)` to build one.
        case setRate(RateSetting)
        /// `VOL`: ask for the volume to dispense (reply: a `VolumeSetting`).
        case queryVolume
        /// `VOL<float>`: set the volume to dispense, in the current volume unit.
        case setVolume(Number)
        /// `VOL<UL|ML>`: set the volume unit.
        case setVolumeUnit(VolumeUnit)
        /// `DIR`: ask for the direction (reply: "INF" or "WDR").
        case queryDirection
        /// `DIR<INF|WDR|REV>`: set the pumping direction.
        case setDirection(Direction)
        /// `RUN[phase]`: start the pumping program (at `phase`, 1…340, when given).
        case run(phase: Int?)
        /// `PUR`: purge at the maximum rate until stopped (status `X`).
        case purge
        /// `STP`: stop or pause pumping.
        case stop
        /// `DIS`: ask for the dispensed volumes (reply: `Dispensed`).
        case queryDispensed
        /// `CLD<INF|WDR>`: clear the infused or withdrawn counter.
        case clearDispensed(Counter)
        /// `VER`: ask for model and firmware (reply: `Version`).
        case queryVersion
        /// `SAF`: ask for the safe-mode time-out (reply: seconds).
        case querySafeMode
        /// `SAF<n>`: set the safe-mode time-out to n seconds (1…255) or return to basic mode (0).
        case setSafeMode(timeoutSeconds: UInt8)
        /// `ADR<n>`: set the pump's network address.
        case setAddress(Address)
        /// `ADR<n>B<baud>`: set the network address and the baud rate; the reply and everything after it
        /// is at the new rate. Send it as a system command (`*ADR5B1200`), which every pump accepts
        /// whatever its address (NE-9000 manual §12.4.5 "Set pump network address and baud rate",
        /// same command family as the NE-1000; not in protocols.md's table).
        case setAddressAndBaud(Address, BaudRate)
        /// Any other command (or a known one with an argument this codec does not accept), kept as
        /// written, upper case, without spaces: `name` is the first three letters, `argument` the rest.
        case other(name: String, argument: String)

        /// The command as sent: "RAT1.5MH", "SAF10", "DIS".
        public var text: String {
            switch self {
            case .queryDiameter: "DIA"
            case .setDiameter(let mm): "DIA" + mm.text
            case .queryRate: "RAT"
            case .setRate(let rate): "RAT" + rate.text
            case .queryVolume: "VOL"
            case .setVolume(let volume): "VOL" + volume.text
            case .setVolumeUnit(let unit): "VOL" + unit.rawValue
            case .queryDirection: "DIR"
            case .setDirection(let direction): "DIR" + direction.rawValue
            case .run(let phase): "RUN" + (phase.map(String.init) ?? "")
            case .purge: "PUR"
            case .stop: "STP"
            case .queryDispensed: "DIS"
            case .clearDispensed(let counter): "CLD" + counter.rawValue
            case .queryVersion: "VER"
            case .querySafeMode: "SAF"
            case .setSafeMode(let seconds): "SAF" + String(seconds)
            case .setAddress(let address): "ADR" + address.description
            case let .setAddressAndBaud(address, baud): "ADR" + address.description + "B" + String(baud.rawValue)
            case .other(let name, let argument): name + argument
            }
        }

        /// Human-readable text for logs and error messages.
        public var description: String { text }

        /// Reads a command from text the pump has already cleaned (spaces and control characters
        /// removed, upper case; `CommandDecoder` does that). Never fails: anything unknown becomes
        /// `.other`, which a simulator answers with `?` (unknown name) or `?OOR` (bad argument).
        public init(parsing text: some StringProtocol) {
            let name = String(text.prefix(3))
            let argument = String(text.dropFirst(3))
            self = Self.parse(name: name, argument: argument) ?? .other(name: name, argument: argument)
        }

        private static func parse(name: String, argument: String) -> Command? {
            let empty = argument.isEmpty
            switch name {
            case "DIA":
                if empty { return .queryDiameter }
                return Number(text: argument).map(Command.setDiameter)
            case "RAT":
                if empty { return .queryRate }
                return (try? RateSetting(parsing: argument)).map(Command.setRate)
            case "VOL":
                if empty { return .queryVolume }
                if let unit = VolumeUnit(rawValue: argument) { return .setVolumeUnit(unit) }
                return Number(text: argument).map(Command.setVolume)
            case "DIR":
                if empty { return .queryDirection }
                return Direction(rawValue: argument).map(Command.setDirection)
            case "RUN":
                if empty { return .run(phase: nil) }
                guard let phase = smallInteger(argument), (1...340).contains(phase) else { return nil }
                return .run(phase: phase)
            case "PUR": return empty ? .purge : nil
            case "STP": return empty ? .stop : nil
            case "DIS": return empty ? .queryDispensed : nil
            case "CLD": return Counter(rawValue: argument).map(Command.clearDispensed)
            case "VER": return empty ? .queryVersion : nil
            case "SAF":
                if empty { return .querySafeMode }
                guard let seconds = smallInteger(argument), (0...255).contains(seconds) else { return nil }
                return .setSafeMode(timeoutSeconds: UInt8(seconds))
            case "ADR":
                let parts = argument.split(separator: "B", maxSplits: 1, omittingEmptySubsequences: false)
                guard let value = smallInteger(String(parts[0])), let address = Address(value) else { return nil }
                guard parts.count == 2 else { return .setAddress(address) }
                guard let rate = Int(parts[1]), let baud = BaudRate(rawValue: rate) else { return nil }
                return .setAddressAndBaud(address, baud)
            default:
                return nil
            }
        }

        /// 1–3 decimal digits as an Int, else nil.
        static func smallInteger(_ text: String) -> Int? {
            guard (1...3).contains(text.utf8.count),
                  text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
            else { return nil }
            return Int(text)
        }
    }

    /// The serial rates a New Era pump can be set to (`ADR<n>B<baud>`): 300, 1200, 2400, 9600, 19200 bit/s.
    public enum BaudRate: Int, CaseIterable, Hashable, Sendable, CustomStringConvertible {
        /// 300 bit/s.
        case b300 = 300
        /// 1200 bit/s.
        case b1200 = 1200
        /// 2400 bit/s.
        case b2400 = 2400
        /// 9600 bit/s.
        case b9600 = 9600
        /// 19200 bit/s (the usual factory setting).
        case b19200 = 19200

        /// "19200 baud".
        public var description: String { "\(rawValue) baud" }
    }

    /// What the host sends: `[<address> | '*'] [<command>]`. A packet without a command is a status
    /// query (the reply is the status only, e.g. "00S").
    public struct CommandPacket: Hashable, Sendable, CustomStringConvertible {
        /// Whom the packet is for.
        public var destination: Destination
        /// The command, or nil for a status query.
        public var command: Command?

        /// A packet for `destination` carrying `command` (nil: status query).
        public init(_ destination: Destination, _ command: Command?) {
            self.destination = destination
            self.command = command
        }

        /// A packet for the pump at `address`.
        public init(address: Address, _ command: Command?) {
            self.init(.pump(address), command)
        }

        /// The packet's data as sent, without framing: "0RUN", "0", "*STP".
        public var text: String { destination.text + (command?.text ?? "") }

        /// The packet's data as ASCII bytes, without framing.
        public var bytes: [UInt8] { Array(text.utf8) }

        /// Human-readable text for logs and error messages.
        public var description: String { text }

        /// Reads a packet from cleaned text (no spaces or control characters, upper case): 1–2 leading
        /// digits are the address, a leading `*` marks a system command, the rest is the command.
        /// Never fails (see `Command.init(parsing:)`).
        public init(parsing text: some StringProtocol) {
            var rest = Substring(text)
            if rest.first == "*" {
                destination = .system
                rest = rest.dropFirst()
            } else {
                let digits = rest.prefix(2).prefix { $0.isASCII && $0.isNumber }
                if let value = Int(digits), let address = Address(value) {
                    destination = .pump(address)
                    rest = rest.dropFirst(digits.count)
                } else {
                    destination = .unaddressed
                }
            }
            command = rest.isEmpty ? nil : Command(parsing: rest)
        }
    }
}
