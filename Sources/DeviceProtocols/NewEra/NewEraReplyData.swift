extension NewEra {
    /// Query-reply data with a typed decoder: `Number` (DIA), `RateSetting` (RAT), `VolumeSetting`
    /// (VOL), `Dispensed` (DIS), `Version` (VER), `Direction` (DIR).
    public protocol ReplyData: Hashable, Sendable {
        /// Reads the data part of a reply ("26.59", "1.500MM", "I0.250W0.000ML").
        init(parsing text: some StringProtocol) throws(ParseError)
    }
}

extension NewEra.Number: NewEra.ReplyData {
    /// Reads a number reply (the `DIA` query answers the diameter in mm, e.g. "26.59").
    public init(parsing text: some StringProtocol) throws(NewEra.ParseError) {
        guard let number = NewEra.Number(text: text) else {
            throw NewEra.ParseError(what: "number", text: text,
                                    reason: "expected up to 4 digits with at most 3 after the point, like 26.59")
        }
        self = number
    }
}

extension NewEra.RateSetting: NewEra.ReplyData {}
extension NewEra.VolumeSetting: NewEra.ReplyData {}
extension NewEra.Dispensed: NewEra.ReplyData {}
extension NewEra.Version: NewEra.ReplyData {}

extension NewEra.Direction: NewEra.ReplyData {
    /// Reads a `DIR` query reply: "INF" or "WDR" (or "REV").
    public init(parsing text: some StringProtocol) throws(NewEra.ParseError) {
        guard let direction = NewEra.Direction(rawValue: String(text)) else {
            throw NewEra.ParseError(what: "direction", text: text, reason: "expected INF or WDR")
        }
        self = direction
    }
}

extension NewEra.Reply {
    /// The reply's data decoded as `type`, e.g. `try reply.decode(NewEra.Dispensed.self)`.
    /// Throws when the pump refused the command (the error names its `?` code), sent no data, or
    /// sent data of another shape.
    public func decode<T: NewEra.ReplyData>(_ type: T.Type) throws(NewEra.ParseError) -> T {
        switch body {
        case .data(let text):
            return try T(parsing: text)
        case .error(let error):
            throw NewEra.ParseError(what: "reply", text: self.text, reason: "no data: \(error)")
        case .none:
            throw NewEra.ParseError(what: "reply", text: self.text, reason: "no data where a query answer was expected")
        }
    }
}
