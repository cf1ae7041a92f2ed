/// Fresenius Kabi Base A / Agilia / Injectomat link layer (reference/protocols.md §A5).
///
/// Serial line: 19200 baud, **7 data bits, even parity**, 1 stop bit (7E1). Driver authors must set
/// `CS7 | PARENB` in termios; this codec works on the resulting 7-bit ASCII bytes and rejects bytes
/// with bit 7 set as a reception problem.
///
/// Frame: `STX <address> <message> <checksum> ETX`, where the checksum is two upper-case hex digits of
/// `0xFF - (sum of the address and message bytes mod 256)`. Single control bytes travel between frames:
/// `ACK` (good frame), `NAK` + error digit (bad frame), `ENQ` (pump keep-alive) answered by `DC4`.
///
/// Pure; any thread.
public enum FreseniusLink {
    /// Start of text, 0x02.
    public static let stx: UInt8 = 0x02
    /// End of text, 0x03.
    public static let etx: UInt8 = 0x03
    /// Enquiry (keep-alive from the pump), 0x05.
    public static let enq: UInt8 = 0x05
    /// Acknowledge (frame received with a good checksum), 0x06.
    public static let ack: UInt8 = 0x06
    /// Device control 4 (the host's answer to `ENQ`), 0x14.
    public static let dc4: UInt8 = 0x14
    /// Negative acknowledge, 0x15, followed by one `FreseniusNAKCode` digit.
    public static let nak: UInt8 = 0x15

    /// The longest message (command and arguments, or reply payload) the protocol allows: 80
    /// characters. Longer messages are refused with application error `0C` (`.messageTooLong`).
    public static let maximumMessageLength = 80

    /// The bytes of a positive acknowledgement: `ACK`.
    public static var acknowledgement: [UInt8] { [ack] }
    /// The bytes of a negative acknowledgement: `NAK` then the error digit.
    public static func negativeAcknowledgement(_ code: FreseniusNAKCode) -> [UInt8] { [nak, code.rawValue] }
    /// The keep-alive the pump sends: `ENQ`.
    public static var keepAlive: [UInt8] { [enq] }
    /// The host's answer to a keep-alive: `DC4`. A host that stops answering loses the remote session.
    public static var keepAliveAnswer: [UInt8] { [dc4] }

    /// The checksum of `bytes` (address and message): `0xFF - (sum mod 256)`.
    public static func checksum(_ bytes: some Collection<UInt8>) -> UInt8 {
        0xFF &- Checksums.sum8(bytes)
    }

    /// True for a byte allowed inside a frame: printable ASCII 0x20...0x7D.
    static func isFrameCharacter(_ byte: UInt8) -> Bool { (0x20...0x7D).contains(byte) }
}

/// The error digit sent after `NAK` (§A5). The receiver of a bad frame sends the matching code; the
/// sender of the frame retries once, then reports the failure.
public enum FreseniusNAKCode: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// `1`: character reception problem (parity or framing error, byte outside 7-bit ASCII).
    case receptionProblem = 0x31
    /// `2`: bad checksum.
    case badChecksum = 0x32
    /// `4`: bad address.
    case badAddress = 0x34
    /// `5`: time-out waiting for the ACK.
    case acknowledgementTimeout = 0x35
    /// `6`: receiver not ready (retry after a short pause).
    case receiverNotReady = 0x36
    /// `7`: bad frame length.
    case badFrameLength = 0x37
    /// `8`: control character inside the frame.
    case controlCharacter = 0x38

    /// A short human-readable form, for logs.
    public var description: String {
        switch self {
        case .receptionProblem: return "NAK 1 (character reception problem)"
        case .badChecksum: return "NAK 2 (bad checksum)"
        case .badAddress: return "NAK 4 (bad address)"
        case .acknowledgementTimeout: return "NAK 5 (ACK time-out)"
        case .receiverNotReady: return "NAK 6 (receiver not ready)"
        case .badFrameLength: return "NAK 7 (bad frame length)"
        case .controlCharacter: return "NAK 8 (control character inside the frame)"
        }
    }
}

/// Who a frame is for (host → pump) or from (pump → host): empty for a stand-alone syringe pump,
/// `0` for the base of a rack, `1`...`5` for the syringe modules in the rack slots.
public struct FreseniusAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address digit sent on the wire (`0x30`...`0x35`), or nil for a stand-alone pump.
    public let character: UInt8?

    /// A stand-alone pump: no address character.
    public static let standalone = FreseniusAddress(uncheckedCharacter: nil)
    /// The base (rack) itself: `0`.
    public static let base = FreseniusAddress(uncheckedCharacter: 0x30)

    /// The module in rack slot `slot` (1...5); nil for any other number.
    public static func module(_ slot: Int) -> FreseniusAddress? {
        (1...5).contains(slot) ? FreseniusAddress(uncheckedCharacter: UInt8(0x30 + slot)) : nil
    }

    /// The address for a digit byte `0`...`5`; nil for any other byte.
    public init?(character: UInt8) {
        guard (0x30...0x35).contains(character) else { return nil }
        self.character = character
    }

    private init(uncheckedCharacter: UInt8?) { character = uncheckedCharacter }

    /// The rack slot (1...5) of a module address; nil for the base and a stand-alone pump.
    public var moduleSlot: Int? {
        guard let character, character > 0x30 else { return nil }
        return Int(character - 0x30)
    }

    /// The bytes this address adds to a frame (empty or one digit).
    public var bytes: [UInt8] { character.map { [$0] } ?? [] }

    /// A short human-readable form, for logs.
    public var description: String {
        switch character {
        case nil: return "stand-alone"
        case 0x30?: return "base"
        case let digit?: return "module \(digit - 0x30)"
        }
    }
}

/// One Fresenius frame: an address and a message (`DC`, `LE;dr`, `C;d64;r3E8`, `E`).
///
/// A message never starts with a digit (commands are two letters, replies start with their status
/// letter), so a leading digit in a received frame is always the address; for replies it is the
/// origin of the reply.
///
/// Pure value; any thread.
public struct FreseniusFrame: Hashable, Sendable, CustomStringConvertible {
    /// Who the frame is for or from.
    public let address: FreseniusAddress
    /// The message text (printable ASCII 0x20...0x7D, not starting with a digit, 1...80 characters
    /// when built with `init(address:message:)`).
    public let message: String

    /// Creates a frame after checking the message: not empty, at most
    /// `FreseniusLink.maximumMessageLength` (80) characters, only printable ASCII 0x20...0x7D, and not
    /// starting with a digit. Throws `FreseniusEncodingError` otherwise.
    public init(address: FreseniusAddress, message: String) throws(FreseniusEncodingError) {
        let bytes = Array(message.utf8)
        guard let first = bytes.first else { throw .emptyMessage }
        guard bytes.count <= FreseniusLink.maximumMessageLength else {
            throw .messageTooLong(length: bytes.count, limit: FreseniusLink.maximumMessageLength)
        }
        if let bad = bytes.first(where: { !FreseniusLink.isFrameCharacter($0) }) {
            throw .invalidCharacter(message: message, byte: bad)
        }
        guard !(0x30...0x39).contains(first) else { throw .messageStartsWithDigit(message: message) }
        self.address = address
        self.message = message
    }

    /// A frame as received: the message passed the link checks but may be longer than 80 characters
    /// (the application layer refuses that with error `0C`).
    init(received address: FreseniusAddress, message: String) {
        self.address = address
        self.message = message
    }

    /// The checksum byte over address and message.
    public var checksum: UInt8 { FreseniusLink.checksum(address.bytes + Array(message.utf8)) }

    /// The frame bytes: `STX`, address, message, two hex checksum digits, `ETX`.
    /// Example: message `DC` to module 1 → `02 31 44 43 34 37 03`.
    public var bytes: [UInt8] {
        var frame: [UInt8] = [FreseniusLink.stx]
        frame.reserveCapacity(message.utf8.count + 5)
        frame += address.bytes
        frame += message.utf8
        let sum = checksum
        frame.append(FreseniusHex.digit(sum >> 4))
        frame.append(FreseniusHex.digit(sum & 0x0F))
        frame.append(FreseniusLink.etx)
        return frame
    }

    /// A short human-readable form, for logs.
    public var description: String {
        address.character == nil ? message : "\(address): \(message)"
    }
}

/// Why a Fresenius frame or message could not be encoded. Nothing is sent; fix the input.
public enum FreseniusEncodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The message is empty.
    case emptyMessage
    /// The message is longer than the protocol allows (80 characters, §A5).
    case messageTooLong(length: Int, limit: Int)
    /// The message holds a byte outside printable ASCII 0x20...0x7D.
    case invalidCharacter(message: String, byte: UInt8)
    /// The message starts with a digit, which a receiver would read as the address.
    case messageStartsWithDigit(message: String)
    /// A command argument contains `;`, which would split it.
    case argumentContainsSeparator(argument: String)
    /// A value cannot be encoded: negative, not finite, or too large for its field.
    case valueOutOfRange(what: String, value: String, allowed: String)

    /// What went wrong and what to do next, for logs and operator messages.
    public var description: String {
        switch self {
        case .emptyMessage:
            return "Fresenius message is empty: a frame must carry a command or a status letter"
        case let .messageTooLong(length, limit):
            return "Fresenius message of \(length) characters exceeds the protocol maximum of \(limit): split the request (for example read fewer variables at once)"
        case let .invalidCharacter(message, byte):
            return "Fresenius message \"\(message)\" contains byte 0x\(FreseniusHex.text(UInt32(byte), minimumDigits: 2)): only printable ASCII 0x20...0x7D may be sent"
        case let .messageStartsWithDigit(message):
            return "Fresenius message \"\(message)\" starts with a digit, which the pump would read as the address: put the module in the frame's address instead"
        case let .argumentContainsSeparator(argument):
            return "Fresenius argument \"\(argument)\" contains ';': pass each argument separately"
        case let .valueOutOfRange(what, value, allowed):
            return "cannot encode Fresenius \(what) \(value): allowed \(allowed)"
        }
    }
}

/// Upper-case hexadecimal helpers for the Fresenius codec.
enum FreseniusHex {
    static let digits: [UInt8] = Array("0123456789ABCDEF".utf8)

    static func digit(_ value: UInt8) -> UInt8 { digits[Int(value & 0x0F)] }

    static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x41...0x46: return byte - 0x41 + 10
        case 0x61...0x66: return byte - 0x61 + 10
        default: return nil
        }
    }

    /// `value` in upper-case hex without leading zeros beyond `minimumDigits`.
    static func text(_ value: UInt32, minimumDigits: Int = 1) -> String {
        var bytes: [UInt8] = []
        var rest = value
        repeat {
            bytes.append(digits[Int(rest & 0x0F)])
            rest >>= 4
        } while rest != 0
        while bytes.count < minimumDigits { bytes.append(0x30) }
        return String(decoding: bytes.reversed(), as: UTF8.self)
    }

    /// Parses 1...8 hex digits (either case); nil for anything else.
    static func parse(_ text: some StringProtocol) -> UInt32? {
        let utf8 = text.utf8
        guard (1...8).contains(utf8.count) else { return nil }
        var value: UInt32 = 0
        for byte in utf8 {
            guard let digit = nibble(byte) else { return nil }
            value = value << 4 | UInt32(digit)
        }
        return value
    }
}
