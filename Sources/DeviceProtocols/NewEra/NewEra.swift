import InfusionCore

/// New Era Pump Systems syringe pumps (NE-300/500/1000/1600/4000, and the OEM pumps sold as WPI
/// Aladdin, Braintree BS-8000/9000, Next Advance SP500, Landgraf LA): the RS-232 protocol of
/// reference/protocols.md §A1, in both directions.
///
/// * Host → pump: `NewEra.CommandPacket` (destination + `NewEra.Command`), framed by
///   `NewEra.Framing.basicCommand` (`cmd\r`) or `NewEra.Framing.safePacket`
///   (`STX len data CRC16hi CRC16lo ETX`); parsed back by `NewEra.CommandDecoder` (for simulators).
/// * Pump → host: `NewEra.Reply` (address, status, data or command error), framed by
///   `NewEra.Framing.basicReply` (`STX resp ETX`) or `safePacket`; parsed by `NewEra.ReplyDecoder`
///   (for drivers). Typed reply data: `NewEra.Dispensed`, `NewEra.Version`, `NewEra.RateSetting`,
///   `NewEra.VolumeSetting`, `NewEra.Number` (diameter).
/// * Rates: `NewEra.RateSetting.roundingDown(_:)` picks the unit that keeps the most resolution and
///   rounds toward less drug, returning what will actually be delivered.
///
/// Everything here is pure: no I/O, no clock (arrival times are passed in), any thread.
public enum NewEra {}

extension NewEra {
    /// A pump's network address, 0…99. Addresses are written with 1–2 digits in commands
    /// (`0RUN`) and always 2 digits in replies (`00S`).
    public struct Address: Hashable, Comparable, Sendable, CustomStringConvertible {
        /// The address, 0…99.
        public let value: UInt8

        /// The address `value`, or nil when it is outside 0…99.
        public init?(_ value: Int) {
            guard (0...99).contains(value) else { return nil }
            self.value = UInt8(value)
        }

        /// Address 0, the factory default.
        public static let zero = Address(unchecked: 0)

        init(unchecked value: UInt8) { self.value = value }

        /// The address as sent in a command: "0", "12".
        public var description: String { String(value) }

        /// The address as the pump writes it in a reply: always two digits, "00", "12".
        public var replyText: String { value < 10 ? "0\(value)" : String(value) }

        /// Orders by numeric value.
        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }
    }

    /// Whom a command packet is for.
    public enum Destination: Hashable, Sendable {
        /// No address: the command goes to the pump on a point-to-point link (any address).
        case unaddressed
        /// The pump with this network address.
        case pump(Address)
        /// `*`: a system command that overrides the address (every pump on the network acts).
        case system

        /// The destination as it is written before the command: "", "0", "*".
        public var text: String {
            switch self {
            case .unaddressed: ""
            case .pump(let address): address.description
            case .system: "*"
            }
        }
    }

    /// Why a piece of New Era text could not be read: what it was, the text, and what was expected.
    /// The usual causes are a wrong baud rate, a pump in the other framing mode (basic vs safe), or
    /// line noise; the message says so.
    public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        /// What was being read ("reply", "DIS data", "rate").
        public let what: String
        /// The offending text (non-printable characters escaped).
        public let text: String
        /// What was wrong and what was expected.
        public let reason: String

        /// Creates an error; `text` is escaped for printing.
        public init(what: String, text: some StringProtocol, reason: String) {
            self.what = what
            self.text = NewEra.escaped(text)
            self.reason = reason
        }

        /// Human-readable text for logs and error messages.
        public var description: String {
            "cannot read the New Era \(what) \"\(text)\": \(reason) "
                + "(check the pump's baud rate, address and basic/safe mode)"
        }
    }

    /// Why a value cannot be encoded for the pump; says what the pump accepts.
    public enum EncodingError: Error, Hashable, Sendable, CustomStringConvertible {
        /// The rate is negative, NaN or infinite.
        case invalidRate(VolumeRate)
        /// The rate is positive but rounds down to 0 in every unit the pump knows (below 0.001 µL/h).
        case rateTooSmall(VolumeRate)
        /// The rate does not fit in 4 digits in any unit (above 9999 mL/min).
        case rateTooLarge(VolumeRate)
        /// A number is negative, not finite, or above 9999 (the pump's 4-digit limit).
        case numberOutOfRange(Double)
        /// The safe-mode data is longer than a safe packet can carry (251 bytes).
        case packetTooLong(Int)

        /// Human-readable text for logs and error messages.
        public var description: String {
            switch self {
            case .invalidRate(let rate):
                "rate \(rate) cannot be sent to a New Era pump: it must be a finite number ≥ 0"
            case .rateTooSmall(let rate):
                "rate \(rate) is below the smallest rate a New Era pump can be set to (0.001 µL/h): "
                    + "use a more dilute concentration or a larger rate"
            case .rateTooLarge(let rate):
                "rate \(rate) is above the largest rate a New Era pump can be set to (9999 mL/min)"
            case .numberOutOfRange(let value):
                "\(value) cannot be sent to a New Era pump: numbers must be 0…9999 with at most 3 decimals"
            case .packetTooLong(let count):
                "\(count) bytes do not fit in one New Era safe-mode packet (at most 251 data bytes)"
            }
        }
    }

    /// Prints bytes/text for an error message: printable ASCII as is, the rest as <XX>.
    static func escaped(_ text: some StringProtocol) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value >= 0x20 && scalar.value < 0x7F {
                out.unicodeScalars.append(scalar)
            } else {
                out += "<" + hex2(UInt8(truncatingIfNeeded: scalar.value)) + ">"
            }
        }
        return out
    }

    /// Text from ASCII bytes (non-ASCII bytes become U+FFFD, which no parser accepts).
    static func text<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}

/// Two uppercase hex digits.
func hex2(_ byte: UInt8) -> String {
    let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"]
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
}
