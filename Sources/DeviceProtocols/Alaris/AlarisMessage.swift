/// Alaris (CareFusion/BD) Asena GH/CC syringe pumps: message layer (reference/protocols.md §A4, §A6).
///
/// A message is the text between the `!` and the `|` of a frame: a keyword followed by fields, all
/// separated by `^` (HL7 style), for example `INF_RATE^3.50^ml/h`. Host commands and pump replies share
/// this grammar; a pump reply echoes the keyword of the command it answers
/// (`INST_SERIALNO` → `INST_SERIALNO^8002-51740`).
///
/// Values are immutable and `Sendable`; any thread may use them.
public struct AlarisMessage: Hashable, Sendable, CustomStringConvertible {
    /// The first field, naming the command or the reply (`INF_RATE`, `INST_SERIALNO`).
    public let keyword: String
    /// The fields after the keyword, in order, without the `^` separators. May contain empty fields
    /// (`REMQUERY^DEACT^^^^` has four empty fields after `DEACT`).
    public let arguments: [String]

    /// The field separator, `^`.
    public static let fieldSeparator: UInt8 = 0x5E

    /// Creates a message after checking that it can be framed: the keyword is not empty, and every
    /// field holds only printable ASCII (0x20...0x7E) other than the framing characters `!`, `^` and `|`.
    /// Throws `AlarisMessageError` naming the offending field otherwise.
    public init(keyword: String, arguments: [String] = []) throws(AlarisMessageError) {
        guard !keyword.isEmpty else { throw .emptyKeyword }
        try Self.validate(field: keyword)
        for argument in arguments { try Self.validate(field: argument) }
        self.keyword = keyword
        self.arguments = arguments
    }

    /// Parses the text between `!` and `|` (for example `INF_RATE^3.50^ml/h`). The same checks as
    /// `init(keyword:arguments:)` apply.
    public init(text: String) throws(AlarisMessageError) {
        try self.init(bytes: Array(text.utf8))
    }

    /// Parses message bytes (the frame content before `|`, without `!`). Throws on an empty keyword or
    /// a byte outside printable ASCII, or on a framing character inside the message.
    public init(bytes: some Collection<UInt8>) throws(AlarisMessageError) {
        var fields: [String] = []
        var current: [UInt8] = []
        current.reserveCapacity(bytes.count)
        for byte in bytes {
            if byte == Self.fieldSeparator {
                fields.append(String(decoding: current, as: UTF8.self))
                current.removeAll(keepingCapacity: true)
            } else {
                guard Self.isAllowed(byte) else {
                    throw .invalidCharacter(field: String(decoding: current, as: UTF8.self), byte: byte)
                }
                current.append(byte)
            }
        }
        fields.append(String(decoding: current, as: UTF8.self))
        guard let first = fields.first, !first.isEmpty else { throw .emptyKeyword }
        self.keyword = first
        self.arguments = Array(fields.dropFirst())
    }

    /// Builds a message from fields already known to be valid (fixed keywords, formatted numbers, hex).
    init(unchecked keyword: String, _ arguments: [String] = []) {
        self.keyword = keyword
        self.arguments = arguments
    }

    /// The message text: the keyword and the arguments joined by `^`.
    public var text: String { ([keyword] + arguments).joined(separator: "^") }

    /// The message text as ASCII bytes (what the CRC is computed over).
    public var bytes: [UInt8] { Array(text.utf8) }

    /// The argument at `index` (0 = the first field after the keyword), or nil when absent.
    public func argument(_ index: Int) -> String? {
        arguments.indices.contains(index) ? arguments[index] : nil
    }

    /// A short human-readable form, for logs.
    public var description: String { text }

    /// True for a byte that may appear inside a field: printable ASCII except `!`, `^` and `|`.
    static func isAllowed(_ byte: UInt8) -> Bool {
        (0x20...0x7E).contains(byte) && byte != 0x21 && byte != 0x5E && byte != 0x7C
    }

    static func validate(field: String) throws(AlarisMessageError) {
        for byte in field.utf8 where !isAllowed(byte) {
            throw .invalidCharacter(field: field, byte: byte)
        }
    }
}

/// Why an Alaris message could not be built or interpreted. Each case says what was wrong and what
/// to do about it.
public enum AlarisMessageError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The message has no keyword (the frame was `!|FFFF` or started with `^`).
    case emptyKeyword
    /// A field contains a byte that cannot be sent inside an Alaris frame.
    case invalidCharacter(field: String, byte: UInt8)
    /// A typed decoder was given a message with another keyword.
    case unexpectedKeyword(expected: String, found: String)
    /// A required field is missing.
    case missingField(keyword: String, position: Int, meaning: String)
    /// A field that must be a decimal number is not one.
    case badNumber(keyword: String, text: String)
    /// A unit field names a unit this codec does not know for the quantity.
    case badUnit(keyword: String, text: String, expected: String)
    /// A state field holds a word this codec does not know (`ENABLED`, `DISABLED`, `ACTIV`, `DEACT`...).
    case unknownWord(keyword: String, text: String, expected: String)
    /// A value cannot be encoded: negative, not finite, or beyond what the field can carry.
    case valueOutOfRange(what: String, value: String, allowed: String)

    /// What went wrong and what to do next, for logs and operator messages.
    public var description: String {
        switch self {
        case .emptyKeyword:
            return "Alaris message has no keyword: a message must start with a command name such as INF_RATE"
        case let .invalidCharacter(field, byte):
            return "Alaris field \"\(field)\" contains byte 0x\(AlarisHex.byte(byte)), which cannot be sent inside a frame: use printable ASCII without '!', '^' or '|'"
        case let .unexpectedKeyword(expected, found):
            return "expected an Alaris \(expected) message but got \(found): the reply does not answer the command that was sent"
        case let .missingField(keyword, position, meaning):
            return "Alaris \(keyword) message has no field \(position) (\(meaning)): the pump's reply is shorter than this codec expects"
        case let .badNumber(keyword, text):
            return "Alaris \(keyword) field \"\(text)\" is not a decimal number: the reply is corrupt or the firmware uses another format"
        case let .badUnit(keyword, text, expected):
            return "Alaris \(keyword) unit \"\(text)\" is not understood (expected \(expected)): check the pump's unit configuration"
        case let .unknownWord(keyword, text, expected):
            return "Alaris \(keyword) field \"\(text)\" is not one of \(expected)"
        case let .valueOutOfRange(what, value, allowed):
            return "cannot encode Alaris \(what) \(value): allowed \(allowed)"
        }
    }
}

/// Upper-case hexadecimal text helpers shared by the Alaris codec.
enum AlarisHex {
    static let digits: [UInt8] = Array("0123456789ABCDEF".utf8)

    static func byte(_ value: UInt8) -> String {
        String(decoding: [digits[Int(value >> 4)], digits[Int(value & 0x0F)]], as: UTF8.self)
    }

    /// `value` as exactly four upper-case hex digits.
    static func word(_ value: UInt16) -> String {
        String(decoding: wordBytes(value), as: UTF8.self)
    }

    static func wordBytes(_ value: UInt16) -> [UInt8] {
        [digits[Int(value >> 12 & 0xF)], digits[Int(value >> 8 & 0xF)],
         digits[Int(value >> 4 & 0xF)], digits[Int(value & 0xF)]]
    }

    /// The value of one hex digit (either case), or nil.
    static func nibble(_ byte: UInt8) -> UInt16? {
        switch byte {
        case 0x30...0x39: return UInt16(byte - 0x30)
        case 0x41...0x46: return UInt16(byte - 0x41 + 10)
        case 0x61...0x66: return UInt16(byte - 0x61 + 10)
        default: return nil
        }
    }

    /// Parses exactly four hex digits (either case), or returns nil.
    static func parseWord<C: Collection<UInt8>>(_ bytes: C) -> UInt16? {
        guard bytes.count == 4 else { return nil }
        var value: UInt16 = 0
        for byte in bytes {
            guard let digit = nibble(byte) else { return nil }
            value = value << 4 | digit
        }
        return value
    }
}
