import Foundation
import InfusionCore

/// Mettler Toledo MT-SICS level-0 commands (reference/protocols.md §A7), used for gravimetric
/// calibration of pumps. The link is 9600 baud 8N1, no handshake (a note for driver authors); every
/// command and response is one ASCII line ending in CR LF.
///
/// Pure value; any thread.
public enum MTSICSCommand: String, Hashable, Sendable, CaseIterable {
    /// `I1`: MT-SICS level and versions.
    case level = "I1"
    /// `I2`: balance data (model, capacity).
    case balanceData = "I2"
    /// `I3`: software version.
    case softwareVersion = "I3"
    /// `I4`: serial number (reply `I4 A "<serial>"`).
    case serialNumber = "I4"
    /// `I5`: software identification.
    case softwareIdentification = "I5"
    /// `S`: send the next **stable** net weight.
    case weighStable = "S"
    /// `SI`: send the weight **immediately**, stable or not.
    case weighImmediately = "SI"
    /// `Z`: zero when stable.
    case zero = "Z"
    /// `ZI`: zero immediately.
    case zeroImmediately = "ZI"
    /// `@`: reset; the reply carries the serial number like `I4`.
    case reset = "@"

    /// The line terminator, CR LF.
    public static let terminator: [UInt8] = [0x0D, 0x0A]

    /// The bytes to send: the command then CR LF (`S\r\n`).
    public var bytes: [UInt8] { Array(rawValue.utf8) + Self.terminator }

    /// Parses a command line received by a balance (simulator), without its terminator. Surrounding
    /// spaces are ignored. Nil for anything else: a balance answers that with `ES` (syntax error).
    public init?(line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        self.init(rawValue: trimmed)
    }
}

/// A weight reported by the balance: the number and unit exactly as displayed, and its stability.
public struct MTSICSWeight: Hashable, Sendable, CustomStringConvertible {
    /// Whether the reading had settled.
    public enum Stability: Hashable, Sendable {
        /// `S S`: stable.
        case stable
        /// `S D`: dynamic (still moving; only `SI` returns these).
        case dynamic
    }

    /// The value in `unit`, as displayed (may be negative after taring).
    public var value: Double
    /// The unit text as sent by the balance (`g`, `mg`, `kg`, or a custom unit).
    public var unit: String
    /// How many decimals the balance displays (2 for `100.00`), used when formatting.
    public var fractionDigits: Int
    /// Stable or dynamic.
    public var stability: Stability

    /// Creates a weight.
    public init(value: Double, unit: String = "g", fractionDigits: Int = 2, stability: Stability = .stable) {
        self.value = value
        self.unit = unit
        self.fractionDigits = max(0, fractionDigits)
        self.stability = stability
    }

    /// The weight in grams, when `unit` is `g`, `mg` or `kg`; nil for other units.
    public var grams: Double? {
        switch unit {
        case "g": return value
        case "mg": return value / 1000
        case "kg": return value * 1000
        default: return nil
        }
    }

    /// The weight as an InfusionCore `Mass` (exact decimal conversion), when the unit is `g`, `mg`
    /// or `kg`.
    public var mass: Mass? {
        switch unit {
        case "g": return Mass(value, .grams)
        case "mg": return Mass(value, .milligrams)
        case "kg": return Mass(value * 1000, .grams)
        default: return nil
        }
    }

    /// True for a stable reading.
    public var isStable: Bool { stability == .stable }

    /// The number as displayed, with `fractionDigits` decimals (`100.00`, `-0.02`).
    public var valueText: String {
        String(format: "%.\(fractionDigits)f", locale: Locale(identifier: "en_US_POSIX"), value)
    }

    /// A short human-readable form, for logs.
    public var description: String { "\(valueText) \(unit)\(isStable ? "" : " (dynamic)")" }
}

/// The outcome of a zero command (`Z` or `ZI`).
public enum MTSICSZeroOutcome: Hashable, Sendable {
    /// `Z A`: zeroed.
    case done
    /// `ZI D`: zeroed immediately while the reading was dynamic (MT-SICS manual; not in §A7).
    case doneWhileDynamic
    /// `ZI S`: zeroed immediately while the reading was stable (MT-SICS manual; not in §A7).
    case doneWhileStable
    /// `Z I`: understood but not executable now (for example unstable at time-out).
    case notExecutable
    /// `Z +`: upper limit of the zero range exceeded.
    case aboveRange
    /// `Z -`: lower limit of the zero range exceeded.
    case belowRange
}

/// A response line from an MT-SICS balance. A driver parses each line with `init(line:)`; a simulator
/// builds a case and sends `bytes` (or `line`).
///
/// Pure value; any thread.
public enum MTSICSResponse: Hashable, Sendable {
    /// `S S <value> <unit>` or `S D <value> <unit>`.
    case weight(MTSICSWeight)
    /// `S I`: weighing command understood but not executable now (still unstable at time-out).
    case weightNotExecutable
    /// `S +`: overload.
    case weightOverload
    /// `S -`: underload.
    case weightUnderload
    /// A reply to `Z` (`immediate` false) or `ZI` (`immediate` true).
    case zero(immediate: Bool, MTSICSZeroOutcome)
    /// `I4 A "<serial>"`: the serial number (also the reply to `@`).
    case serialNumber(String)
    /// `I1`, `I2`, `I3` or `I5` `A` followed by quoted values (`I2 A "XS204" "220.0000 g"`).
    case information(MTSICSCommand, [String])
    /// `<I-command> I`: an information command that cannot be executed now.
    case informationNotExecutable(MTSICSCommand)
    /// `ES`: syntax error, the balance did not recognise the command.
    case syntaxError
    /// `ET`: transmission error (parity, framing): check the serial settings (9600 8N1).
    case transmissionError
    /// `EL`: logical error, the command cannot be executed.
    case logicalError

    /// Width of the right-aligned value field in weight responses (`S S     100.00 g`).
    public static let weightFieldWidth = 10

    /// The response text without the terminator (`S S     100.00 g`, `I4 A "B123456789"`).
    public var line: String {
        switch self {
        case let .weight(weight):
            let status = weight.isStable ? "S" : "D"
            let text = weight.valueText
            let padding = String(repeating: " ", count: max(0, Self.weightFieldWidth - text.count))
            return "S \(status) \(padding)\(text) \(weight.unit)"
        case .weightNotExecutable: return "S I"
        case .weightOverload: return "S +"
        case .weightUnderload: return "S -"
        case let .zero(immediate, outcome):
            let identifier = immediate ? "ZI" : "Z"
            let status: String
            switch outcome {
            case .done: status = "A"
            case .doneWhileDynamic: status = "D"
            case .doneWhileStable: status = "S"
            case .notExecutable: status = "I"
            case .aboveRange: status = "+"
            case .belowRange: status = "-"
            }
            return "\(identifier) \(status)"
        case let .serialNumber(serial): return "I4 A \(Self.quoted(serial))"
        case let .information(command, values):
            return ([command.rawValue, "A"] + values.map(Self.quoted)).joined(separator: " ")
        case let .informationNotExecutable(command): return "\(command.rawValue) I"
        case .syntaxError: return "ES"
        case .transmissionError: return "ET"
        case .logicalError: return "EL"
        }
    }

    /// The bytes to send: `line` then CR LF.
    public var bytes: [UInt8] { Array(line.utf8) + MTSICSCommand.terminator }

    /// Parses one response line (without CR LF; a trailing CR or LF is tolerated). Throws
    /// `MTSICSParseError` for a line that is not one of the responses above.
    public init(line rawLine: String) throws(MTSICSParseError) {
        let line = rawLine.trimmingCharacters(in: CharacterSet(charactersIn: "\r\n"))
        let tokens = try Self.tokens(line)
        guard let identifier = tokens.first else { throw .empty }
        let status = tokens.count > 1 ? tokens[1].text : nil
        let rest = Array(tokens.dropFirst(2))
        switch (identifier.text, status) {
        case ("ES", nil): self = .syntaxError
        case ("ET", nil): self = .transmissionError
        case ("EL", nil): self = .logicalError
        case ("S", "S"?), ("S", "D"?):
            guard rest.count == 2, !rest[0].quoted, !rest[1].quoted,
                  let value = Self.decimal(rest[0].text) else {
                throw .badWeight(line: line)
            }
            let digits = rest[0].text.split(separator: ".", omittingEmptySubsequences: false)
            let fractionDigits = digits.count == 2 ? digits[1].count : 0
            self = .weight(MTSICSWeight(value: value, unit: rest[1].text, fractionDigits: fractionDigits,
                                        stability: status == "S" ? .stable : .dynamic))
        case ("S", "I"?) where rest.isEmpty: self = .weightNotExecutable
        case ("S", "+"?) where rest.isEmpty: self = .weightOverload
        case ("S", "-"?) where rest.isEmpty: self = .weightUnderload
        case ("Z", let status?) where rest.isEmpty:
            switch status {
            case "A": self = .zero(immediate: false, .done)
            case "I": self = .zero(immediate: false, .notExecutable)
            case "+": self = .zero(immediate: false, .aboveRange)
            case "-": self = .zero(immediate: false, .belowRange)
            default: throw .unrecognized(line: line)
            }
        case ("ZI", let status?) where rest.isEmpty:
            switch status {
            case "D": self = .zero(immediate: true, .doneWhileDynamic)
            case "S": self = .zero(immediate: true, .doneWhileStable)
            case "A": self = .zero(immediate: true, .done)
            case "I": self = .zero(immediate: true, .notExecutable)
            case "+": self = .zero(immediate: true, .aboveRange)
            case "-": self = .zero(immediate: true, .belowRange)
            default: throw .unrecognized(line: line)
            }
        case ("I4", "A"?):
            guard rest.count == 1 else { throw .unrecognized(line: line) }
            self = .serialNumber(rest[0].text)
        case (let id, "A"?) where ["I1", "I2", "I3", "I5"].contains(id):
            guard let command = MTSICSCommand(rawValue: id) else { throw .unrecognized(line: line) }
            self = .information(command, rest.map(\.text))
        case (let id, "I"?) where ["I1", "I2", "I3", "I4", "I5"].contains(id) && rest.isEmpty:
            guard let command = MTSICSCommand(rawValue: id) else { throw .unrecognized(line: line) }
            self = .informationNotExecutable(command)
        default:
            throw .unrecognized(line: line)
        }
    }

    private static func quoted(_ text: String) -> String { "\"\(text)\"" }

    /// A decimal number as the balance writes it: optional `-`/`+`, digits, at most one point.
    private static func decimal(_ text: String) -> Double? {
        var body = Substring(text)
        if body.first == "-" || body.first == "+" { body = body.dropFirst() }
        guard !body.isEmpty, body.utf8.count <= 15,
              body.utf8.allSatisfy({ (0x30...0x39).contains($0) || $0 == 0x2E }),
              body.utf8.filter({ $0 == 0x2E }).count <= 1,
              body.utf8.contains(where: { (0x30...0x39).contains($0) }) else { return nil }
        return Double(text)
    }

    private struct Token {
        var text: String
        var quoted: Bool
    }

    /// Splits a line on runs of spaces; a token starting with `"` runs to the next `"`.
    private static func tokens(_ line: String) throws(MTSICSParseError) -> [Token] {
        var tokens: [Token] = []
        var scalars = line.unicodeScalars[...]
        while let first = scalars.first {
            if first == " " {
                scalars = scalars.dropFirst()
            } else if first == "\"" {
                let body = scalars.dropFirst()
                guard let close = body.firstIndex(of: "\"") else { throw .unterminatedQuote(line: line) }
                tokens.append(Token(text: String(String.UnicodeScalarView(body[..<close])), quoted: true))
                scalars = body[body.index(after: close)...]
            } else {
                let end = scalars.firstIndex(of: " ") ?? scalars.endIndex
                tokens.append(Token(text: String(String.UnicodeScalarView(scalars[..<end])), quoted: false))
                scalars = scalars[end...]
            }
        }
        return tokens
    }
}

/// Why an MT-SICS line could not be parsed.
public enum MTSICSParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The line is empty.
    case empty
    /// A weight response whose value or unit is missing or not a number.
    case badWeight(line: String)
    /// A quoted value has no closing quote.
    case unterminatedQuote(line: String)
    /// The line is not a response this codec knows.
    case unrecognized(line: String)

    /// What went wrong and what to do next, for logs and operator messages.
    public var description: String {
        switch self {
        case .empty:
            return "empty MT-SICS response line"
        case let .badWeight(line):
            return "MT-SICS weight response \"\(line)\" has no valid value and unit: check the balance is in MT-SICS mode"
        case let .unterminatedQuote(line):
            return "MT-SICS response \"\(line)\" has an unterminated quoted value: the line was cut off; repeat the command"
        case let .unrecognized(line):
            return "MT-SICS response \"\(line)\" is not recognised: check the balance speaks MT-SICS at 9600 8N1"
        }
    }
}

/// One thing the MT-SICS line splitter found.
public enum MTSICSLineEvent: Hashable, Sendable {
    /// A complete line, without its terminator (never empty).
    case line(String)
    /// A line longer than `limit` bytes was dropped up to its terminator.
    case lineTooLong(limit: Int)
}

/// Splits an MT-SICS byte stream (either direction) into lines. CR LF is the terminator; a lone CR or
/// a lone LF also ends a line, so the splitter tolerates terminals that send either. Empty lines are
/// skipped.
///
/// Guarantees: never traps; holds at most `maximumLineLength` bytes; an over-long line is reported
/// once and dropped up to its terminator, after which splitting resumes. The buffer is reused.
///
/// A value type: owned by the task that reads the port; not for concurrent use.
public struct MTSICSLineSplitter: Sendable {
    /// Default line bound; the longest MT-SICS level-0 response (I2) is well under 100 bytes.
    public static let defaultMaximumLineLength = 256

    /// The most bytes kept for one line.
    public let maximumLineLength: Int
    /// Lines returned since creation.
    public private(set) var lines = 0
    /// Over-long lines dropped since creation.
    public private(set) var overlongLines = 0

    private var buffer: [UInt8] = []
    private var overflowed = false
    private var lastWasCR = false

    /// Creates a splitter that drops lines longer than `maximumLineLength` bytes (at least 8).
    public init(maximumLineLength: Int = MTSICSLineSplitter.defaultMaximumLineLength) {
        self.maximumLineLength = max(8, maximumLineLength)
        buffer.reserveCapacity(self.maximumLineLength)
    }

    /// Feeds bytes and calls `handle` for every complete line or dropped over-long line.
    public mutating func feed(_ bytes: some Sequence<UInt8>, _ handle: (MTSICSLineEvent) -> Void) {
        for byte in bytes {
            let wasCR = lastWasCR
            lastWasCR = byte == 0x0D
            switch byte {
            case 0x0A where wasCR:
                continue  // the LF of CR LF
            case 0x0D, 0x0A:
                if overflowed {
                    overlongLines += 1
                    handle(.lineTooLong(limit: maximumLineLength))
                } else if !buffer.isEmpty {
                    lines += 1
                    handle(.line(String(decoding: buffer, as: UTF8.self)))
                }
                buffer.removeAll(keepingCapacity: true)
                overflowed = false
            default:
                if buffer.count < maximumLineLength {
                    buffer.append(byte)
                } else {
                    overflowed = true
                }
            }
        }
    }

    /// Feeds bytes and returns the events they complete (convenience over `feed(_:_:)`).
    public mutating func split(_ bytes: some Sequence<UInt8>) -> [MTSICSLineEvent] {
        var events: [MTSICSLineEvent] = []
        feed(bytes) { events.append($0) }
        return events
    }

    /// Bytes of the unfinished line currently held (never more than `maximumLineLength`).
    public var bufferedByteCount: Int { buffer.count }

    /// Drops any partial line.
    public mutating func reset() {
        buffer.removeAll(keepingCapacity: true)
        overflowed = false
        lastWasCR = false
    }
}
