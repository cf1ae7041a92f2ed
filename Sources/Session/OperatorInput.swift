import Foundation
import Supervisor

/// What an operator can ask of a running session from the command line (docs/run-contract.md "Operator
/// input"): stdin lines with `--json-events`, single keys in a terminal. Pure.
public enum OperatorCommand: String, Hashable, Sendable, CaseIterable {
    /// Start (the initial start, or a new start after an acknowledged supervisor stop).
    case start
    /// Pause delivery.
    case pause
    /// Resume after a pause; after an acknowledged supervisor stop, a new start with fresh checks.
    case resume
    /// Stop delivery and end the session.
    case stop
    /// Acknowledge the alarms (and a supervisor stop).
    case ack
    /// Pause alarm audio.
    case silence
    /// Stop delivery if needed, finish the session, exit.
    case quit

    /// The line words, for messages: "start, pause, resume, stop, ack, silence, quit".
    public static let words = allCases.map(\.rawValue).joined(separator: ", ")

    /// Parses one stdin line: a command word, optionally followed by a space and a reason
    /// ("pause patient asked for a break"). Leading and trailing blanks are ignored; the word is
    /// case-insensitive. Returns nil for an empty line; throws for anything else it does not know.
    public static func parse(line: String) throws(OperatorInputError) -> (command: OperatorCommand, reason: String?)? {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return nil }
        let parts = trimmed.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        let word = String(parts[0]).lowercased()
        let alias = word == "acknowledge" ? "ack" : word
        guard let command = OperatorCommand(rawValue: alias) else {
            throw OperatorInputError(input: trimmed, message: "unknown command \"\(parts[0])\": use one of \(words), optionally followed by a reason")
        }
        let reason = parts.count > 1 ? String(parts[1]).trimmingCharacters(in: .whitespaces) : nil
        return (command, reason?.isEmpty == true ? nil : reason)
    }

    /// The command for a key pressed in the terminal: p pause, r resume, s stop, a acknowledge,
    /// m audio pause (mute), q quit. Nil for any other key.
    public static func key(_ byte: UInt8) -> OperatorCommand? {
        switch byte {
        case UInt8(ascii: "p"), UInt8(ascii: "P"): .pause
        case UInt8(ascii: "r"), UInt8(ascii: "R"): .resume
        case UInt8(ascii: "s"), UInt8(ascii: "S"): .stop
        case UInt8(ascii: "a"), UInt8(ascii: "A"): .ack
        case UInt8(ascii: "m"), UInt8(ascii: "M"): .silence
        case UInt8(ascii: "q"), UInt8(ascii: "Q"): .quit
        default: nil
        }
    }

    /// The supervisor action for this command in `mode` (nil for `quit`, which the session handles):
    /// `resume` is the supervisor's `resume` after an operator pause, and a new `start` (fresh start
    /// checks) once a supervisor stop has been acknowledged.
    public func action(in mode: ChannelMode) -> OperatorAction? {
        switch self {
        case .start: .start
        case .pause: .pause
        case .resume: mode == .acknowledged || mode == .idle ? .start : .resume
        case .stop: .stop
        case .ack: .acknowledge
        case .silence: .audioPause
        case .quit: nil
        }
    }
}

/// An operator input that was not understood; `message` says what is accepted.
public struct OperatorInputError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The input as given (trimmed).
    public let input: String
    /// What was wrong and what is accepted.
    public let message: String
    public var description: String { message }
}
