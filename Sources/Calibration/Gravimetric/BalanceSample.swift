import DeviceProtocols
import Foundation

/// Why a scheduled balance sample has no usable weight.
///
/// Pure value; any thread.
public enum BalanceProblem: Hashable, Sendable, Codable, CustomStringConvertible {
    /// No reply within the reading time-out.
    case noReply
    /// The sample's time passed without a request (the workflow was not ticked in time).
    case notRequested
    /// `S I`: the balance could not weigh now (unstable at its time-out).
    case notExecutable
    /// `S +`: the load exceeds the balance's capacity. Ends the run.
    case overload
    /// `S -`: below zero: the vessel was removed or the balance was not zeroed. Ends the run.
    case underload
    /// A weight in a unit that is not g, mg or kg.
    case unsupportedUnit(String)
    /// `ES`, `ET`, `EL`, or a reply that is not a weight.
    case protocolError(String)
    /// The link to the balance failed (the driver's message).
    case communication(String)

    /// True for problems that make continuing pointless: the run is aborted and kept as incomplete.
    public var endsRun: Bool {
        switch self {
        case .overload, .underload: true
        default: false
        }
    }

    /// What happened and what to do next.
    public var description: String {
        switch self {
        case .noReply:
            "no reply from the balance within the reading time-out: check the cable and that the balance is in MT-SICS mode at 9600 8N1"
        case .notRequested:
            "the sample was not requested at its time (the workflow was not ticked): keep the calibration loop running"
        case .notExecutable:
            "the balance could not weigh now (S I, still unstable): shield the balance from drafts and vibration"
        case .overload:
            "balance overload (S +): the load exceeds the balance's capacity: use a lighter collection vessel or a balance with more capacity, then repeat the run"
        case .underload:
            "balance underload (S -): the reading is below the zero range (collection vessel removed?): put the vessel back, zero the balance and repeat the run"
        case let .unsupportedUnit(unit):
            "the balance reports weight in \"\(unit)\": set its display unit to grams and repeat"
        case let .protocolError(detail):
            "the balance refused or garbled the request (\(detail)): check the serial settings (9600 8N1) and the MT-SICS mode"
        case let .communication(detail):
            "communication with the balance failed (\(detail)): check the cable and the port"
        }
    }

    private enum CodingKeys: String, CodingKey { case kind, detail }

    /// Encodes the value in the record's JSON form (see the type's documentation).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        let (kind, detail): (String, String?) = switch self {
        case .noReply: ("no-reply", nil)
        case .notRequested: ("not-requested", nil)
        case .notExecutable: ("not-executable", nil)
        case .overload: ("overload", nil)
        case .underload: ("underload", nil)
        case let .unsupportedUnit(unit): ("unsupported-unit", unit)
        case let .protocolError(text): ("protocol-error", text)
        case let .communication(text): ("communication", text)
        }
        try container.encode(kind, forKey: .kind)
        try container.encodeIfPresent(detail, forKey: .detail)
    }

    /// Decodes the value from the record's JSON form; throws `DecodingError` for malformed or out-of-range data.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try container.decode(String.self, forKey: .kind)
        let detail = try container.decodeIfPresent(String.self, forKey: .detail) ?? ""
        switch kind {
        case "no-reply": self = .noReply
        case "not-requested": self = .notRequested
        case "not-executable": self = .notExecutable
        case "overload": self = .overload
        case "underload": self = .underload
        case "unsupported-unit": self = .unsupportedUnit(detail)
        case "protocol-error": self = .protocolError(detail)
        case "communication": self = .communication(detail)
        default:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: container, debugDescription: "unknown balance problem \"\(kind)\"")
        }
    }

    /// A short label for tables and CSV ("overload", "no reply").
    public var label: String {
        switch self {
        case .noReply: "no reply"
        case .notRequested: "not requested"
        case .notExecutable: "not executable"
        case .overload: "overload"
        case .underload: "underload"
        case let .unsupportedUnit(unit): "unit \(unit)"
        case let .protocolError(text): "protocol error \(text)"
        case let .communication(text): "communication: \(text)"
        }
    }
}

/// What a balance answered to one weighing request, independent of its protocol. Drivers for other
/// balance families map their replies onto this; `init(mtsics:)` maps an MT-SICS reply.
///
/// Pure value; any thread.
public enum BalanceReading: Hashable, Sendable {
    /// A weight in grams; `stable` is false for a dynamic (still moving) reading.
    case weight(grams: Double, stable: Bool)
    /// No usable weight, and why.
    case problem(BalanceProblem)

    /// Maps an MT-SICS reply to a weighing command (`S` or `SI`, reference/protocols.md §A7): `S S`/`S D`
    /// to a weight in grams (mg and kg converted), `S I` to not-executable, `S +`/`S -` to overload and
    /// underload, a non-mass unit to `.unsupportedUnit`, and anything else to `.protocolError`.
    public init(mtsics response: MTSICSResponse) {
        switch response {
        case let .weight(weight):
            if let grams = weight.grams, grams.isFinite {
                self = .weight(grams: grams, stable: weight.isStable)
            } else {
                self = .problem(.unsupportedUnit(weight.unit))
            }
        case .weightNotExecutable: self = .problem(.notExecutable)
        case .weightOverload: self = .problem(.overload)
        case .weightUnderload: self = .problem(.underload)
        case .syntaxError: self = .problem(.protocolError("ES syntax error"))
        case .transmissionError: self = .problem(.protocolError("ET transmission error"))
        case .logicalError: self = .problem(.protocolError("EL logical error"))
        default: self = .problem(.protocolError("unexpected reply \"\(response.line)\""))
        }
    }
}

/// One scheduled balance sample of a gravimetric run: the k-th sample is due k × Δt after the pump
/// started (t = 0). A sample without a usable weight stays in the record with its `problem`: missing data
/// is explicit, never a zero and never a repeated value.
///
/// Pure value; any thread. JSON: `index`, `elapsed_s` (seconds since t = 0), `grams` (or null), `stable`,
/// `problem` (or null).
public struct BalanceSample: Hashable, Sendable, Codable {
    /// The sample's place on the sampling grid (0 at t = 0).
    public var index: Int
    /// When the reading was taken, since the pump started.
    @CodedSeconds public var elapsed: Duration
    /// The net weight in grams, or nil when there is no usable weight.
    public var grams: Double?
    /// False for a dynamic reading (`S D`).
    public var isStable: Bool
    /// Why there is no usable weight (nil when `grams` is present).
    public var problem: BalanceProblem?

    /// A sample with a weight.
    public init(index: Int, elapsed: Duration, grams: Double, stable: Bool = true) {
        self.index = index
        self.elapsed = elapsed
        self.grams = grams.isFinite ? grams : nil
        self.isStable = stable
        self.problem = grams.isFinite ? nil : .protocolError("non-finite weight")
    }

    /// A sample without a usable weight.
    public init(index: Int, elapsed: Duration, problem: BalanceProblem) {
        self.index = index
        self.elapsed = elapsed
        self.grams = nil
        self.isStable = false
        self.problem = problem
    }

    /// A sample from a balance reading.
    public init(index: Int, elapsed: Duration, reading: BalanceReading) {
        switch reading {
        case let .weight(grams, stable): self.init(index: index, elapsed: elapsed, grams: grams, stable: stable)
        case let .problem(problem): self.init(index: index, elapsed: elapsed, problem: problem)
        }
    }

    private enum CodingKeys: String, CodingKey {
        case index, elapsed = "elapsed_s", grams, isStable = "stable", problem
    }
}
