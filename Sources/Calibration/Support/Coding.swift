import Foundation
import InfusionCore

// Calibration records are storage-agnostic `Codable` values (the `Records` target persists them). These
// wrappers keep the Swift API typed (`Duration`, `VolumeRate`, `Percentage`) while the JSON holds plain
// numbers in the unit named by the coding key (`elapsed_s`, `set_rate_mL_h`), readable by any tool.

/// Encodes a `Duration` as a number of seconds (a JSON number), and decodes it back with nanosecond
/// resolution. Pure value; any thread.
@propertyWrapper
public struct CodedSeconds: Hashable, Sendable, Codable {
    /// The duration.
    public var wrappedValue: Duration

    /// Wraps `wrappedValue`.
    public init(wrappedValue: Duration) { self.wrappedValue = wrappedValue }

    /// Decodes seconds (a finite number) into a duration.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let seconds = try container.decode(Double.self)
        guard seconds.isFinite, abs(seconds) < 9e9 else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "duration \(seconds) s is not a finite number of seconds")
        }
        wrappedValue = Duration.secondsValue(seconds)
    }

    /// Encodes the duration in seconds.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue.seconds)
    }
}

/// Encodes an optional `Duration` as seconds or `null`. Pure value; any thread.
@propertyWrapper
public struct CodedOptionalSeconds: Hashable, Sendable, Codable {
    /// The duration, if any.
    public var wrappedValue: Duration?

    /// Wraps `wrappedValue`.
    public init(wrappedValue: Duration?) { self.wrappedValue = wrappedValue }

    /// Decodes seconds or `null`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            wrappedValue = nil
        } else {
            wrappedValue = try CodedSeconds(from: decoder).wrappedValue
        }
    }

    /// Encodes seconds or `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue.seconds) } else { try container.encodeNil() }
    }
}

/// Encodes a physical quantity as its magnitude in the dimension's canonical unit (mL/h for
/// `VolumeRate`, % for `Percentage`, bpm for `PulseRate`, mL for `Volume`). Pure value; any thread.
@propertyWrapper
public struct CodedQuantity<Q: PhysicalQuantity>: Hashable, Sendable, Codable {
    /// The quantity.
    public var wrappedValue: Q

    /// Wraps `wrappedValue`.
    public init(wrappedValue: Q) { self.wrappedValue = wrappedValue }

    /// Decodes a finite number in the canonical unit.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let value = try container.decode(Double.self)
        guard value.isFinite else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(Q.Unit.dimensionName) is not a finite number")
        }
        wrappedValue = Q(canonicalValue: value)
    }

    /// Encodes the magnitude in the canonical unit.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue.canonicalValue)
    }
}

/// Encodes an optional physical quantity as its canonical magnitude or `null`. Pure value; any thread.
@propertyWrapper
public struct CodedOptionalQuantity<Q: PhysicalQuantity>: Hashable, Sendable, Codable {
    /// The quantity, if any.
    public var wrappedValue: Q?

    /// Wraps `wrappedValue`.
    public init(wrappedValue: Q?) { self.wrappedValue = wrappedValue }

    /// Decodes a number or `null`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            wrappedValue = nil
        } else {
            wrappedValue = try CodedQuantity<Q>(from: decoder).wrappedValue
        }
    }

    /// Encodes the canonical magnitude or `null`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue.canonicalValue) } else { try container.encodeNil() }
    }
}

extension Duration {
    /// A duration of `seconds` (rounded to the nearest nanosecond; saturating).
    static func secondsValue(_ seconds: Double) -> Duration {
        let nanos = (seconds * 1e9).rounded()
        guard nanos.isFinite else { return .zero }
        if nanos >= Double(Int64.max) { return .nanoseconds(Int64.max) }
        if nanos <= Double(Int64.min) { return .nanoseconds(Int64.min) }
        return .nanoseconds(Int64(nanos))
    }

    /// The duration in minutes, as a `Double`.
    var minutes: Double { seconds / 60 }
}

/// Fixed-point number text independent of the process locale ("12.35", "-0.80").
enum Fixed {
    static func text(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return value.isNaN ? "NaN" : (value > 0 ? "inf" : "-inf") }
        let text = String(format: "%.\(max(0, digits))f", locale: Locale(identifier: "en_US_POSIX"), value)
        // Avoid "-0.00".
        if text.hasPrefix("-"), text.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) { return String(text.dropFirst()) }
        return text
    }

    /// A signed text ("+1.20", "-0.80", "0.00").
    static func signed(_ value: Double, _ digits: Int) -> String {
        let body = text(value, digits)
        if body.hasPrefix("-") || body.allSatisfy({ $0 == "0" || $0 == "." }) { return body }
        return "+" + body
    }
}
