import DeviceProtocols
import InfusionCore

/// Why an MT-SICS command did not give what was asked: every error reply of the protocol typed, plus
/// the link failures. The description says what happened, on which balance, and what to do next.
///
/// Pure value; any thread.
public struct MTSICSBalanceError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Hashable, Sendable {
        /// `ES`: the balance did not recognise the command.
        case syntaxError
        /// `ET`: the balance received a garbled command (parity, framing), also after the retry.
        case transmissionError
        /// `EL`: the balance cannot execute the command (logical error).
        case logicalError
        /// `S I`, `Z I` or `In I`: understood but not executable now (for `S`/`Z`: not stable at its time-out).
        case notExecutable
        /// `S +`: overload, the load exceeds the capacity.
        case overload
        /// `S -`: underload, below the zero range (pan or vessel removed?).
        case underload
        /// `Z +` / `ZI +`: the load is above the zero range.
        case zeroAboveRange
        /// `Z -` / `ZI -`: the load is below the zero range.
        case zeroBelowRange
        /// A reply that belongs to the command but is not the kind expected (for example a weight in a
        /// unit that is not a mass).
        case unexpectedReply(String)
        /// Sent, but not answered within the deadline.
        case noReply(after: Duration)
        /// Could not be sent: the port is not open (after waiting this long).
        case notConnected(waited: Duration)
        /// The link went down during the exchange.
        case linkLost
        /// Too many requests waiting.
        case queueFull

        /// Types an error reply; nil for a reply that is not an error (a weight, `Z A`, `I4 A …`).
        public init?(response: MTSICSResponse) {
            switch response {
            case .syntaxError: self = .syntaxError
            case .transmissionError: self = .transmissionError
            case .logicalError: self = .logicalError
            case .weightNotExecutable, .informationNotExecutable, .zero(_, .notExecutable): self = .notExecutable
            case .weightOverload: self = .overload
            case .weightUnderload: self = .underload
            case .zero(_, .aboveRange): self = .zeroAboveRange
            case .zero(_, .belowRange): self = .zeroBelowRange
            case .weight, .zero, .serialNumber, .information: return nil
            }
        }

        /// The kind for a failed exchange; nil for a response (see `init?(response:)`).
        public init?(outcome: MTSICSOutcome) {
            switch outcome {
            case let .response(response): self.init(response: response)
            case let .noReply(after): self = .noReply(after: after)
            case let .notConnected(waited): self = .notConnected(waited: waited)
            case .linkLost: self = .linkLost
            case .queueFull: self = .queueFull
            }
        }
    }

    /// The balance's name (its port).
    public var device: String
    /// The command that failed.
    public var command: MTSICSCommand
    /// What went wrong.
    public var kind: Kind

    /// An error; see each property.
    public init(device: String, command: MTSICSCommand, kind: Kind) {
        self.device = device
        self.command = command
        self.kind = kind
    }

    /// What happened and what to do next.
    public var description: String {
        let cmd = command.rawValue
        switch kind {
        case .syntaxError:
            return "the balance on \(device) did not recognise \(cmd) (ES): check it is in MT-SICS mode (host interface setting) and supports level 0"
        case .transmissionError:
            return "the balance on \(device) received \(cmd) garbled (ET): check the serial settings are 9600 8N1 on both sides and the cable"
        case .logicalError:
            return "the balance on \(device) cannot execute \(cmd) now (EL): check the balance's display for a menu or error, then repeat"
        case .notExecutable:
            switch command {
            case .weighStable: return "the balance on \(device) found no stable weight before its time-out (S I): shield it from drafts and vibration, or weigh immediately (SI)"
            case .zero: return "the balance on \(device) could not zero (Z I): the reading is not stable; shield it from drafts and vibration and repeat"
            default: return "the balance on \(device) cannot execute \(cmd) now (\(cmd) I): wait for it to finish what it is doing and repeat"
            }
        case .overload:
            return "balance overload on \(device) (S +): the load exceeds the capacity; use a lighter vessel or a balance with more capacity"
        case .underload:
            return "balance underload on \(device) (S -): the reading is below the zero range; put the pan and vessel back, zero and repeat"
        case .zeroAboveRange:
            return "the balance on \(device) cannot zero (\(cmd) +): the load is above the zero range; remove it (zero with the empty vessel only) or tare instead"
        case .zeroBelowRange:
            return "the balance on \(device) cannot zero (\(cmd) -): the load is below the zero range; put the pan and vessel back and repeat"
        case let .unexpectedReply(line):
            return "the balance on \(device) answered \(cmd) with \"\(line)\", which is not what was asked: set the display unit to grams and check it speaks MT-SICS"
        case let .noReply(after):
            return "no reply from the balance on \(device) to \(cmd) within \(after.humanReadable): check the cable, that the balance is on, and that it speaks MT-SICS at 9600 8N1"
        case let .notConnected(waited):
            return "the balance port \(device) is not open (waited \(waited.humanReadable)): check the balance is plugged in and the path (ls -l \(device))"
        case .linkLost:
            return "the link to the balance on \(device) was lost during \(cmd): check the cable; the driver reconnects when it comes back"
        case .queueFull:
            return "too many requests waiting for the balance on \(device): the caller is asking faster than the balance answers; slow down"
        }
    }
}
