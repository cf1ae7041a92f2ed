import Foundation
import InfusionCore

/// A rate as the Fresenius protocol carries it: upper-case hex in units of 0.1 mL/h (`64` = 10.0 mL/h).
/// Used by the `d` variable and the `PR` command (§A5).
///
/// Built from a requested rate, it rounds **down** to 0.1 mL/h (toward less drug) and keeps both values.
public struct FreseniusRate: Hashable, Sendable, CustomStringConvertible {
    /// The step of the field: 0.1 mL/h.
    public static let resolution = VolumeRate.millilitresPerHour(0.1)

    /// What was asked for and what is carried (`actual ≤ requested`). For a decoded value both are the
    /// decoded rate.
    public let rounded: Rounded<VolumeRate>
    /// Tenths of a mL/h, the number on the wire.
    public let tenths: UInt32

    /// The rate carried.
    public var value: VolumeRate { rounded.actual }

    /// Rounds `requested` down to 0.1 mL/h. Throws when it is negative, not finite, or beyond eight hex
    /// digits.
    public init(roundingDown requested: VolumeRate) throws(FreseniusEncodingError) {
        let rounded = requested.roundedDown(toMultipleOf: Self.resolution)
        let units = (rounded.actual / Self.resolution).rounded()
        guard requested.millilitresPerHour.isFinite, requested.millilitresPerHour >= 0,
              units >= 0, units <= Double(UInt32.max) else {
            throw .valueOutOfRange(what: "rate", value: requested.formatted(fractionDigits: 3),
                                   allowed: "0 mL/h or more, in 0.1 mL/h steps")
        }
        self.rounded = rounded
        tenths = UInt32(units)
    }

    /// A rate of `tenths` × 0.1 mL/h (exact).
    public init(tenths: UInt32) {
        self.tenths = tenths
        let rate = VolumeRate(exactCanonicalValue: Decimal(tenths) / 10)
        rounded = Rounded(requested: rate, actual: rate)
    }

    /// Parses 1...8 hex digits (either case); nil for anything else.
    public init?(hex: some StringProtocol) {
        guard let units = FreseniusHex.parse(hex) else { return nil }
        self.init(tenths: units)
    }

    /// The upper-case hex field (`64`).
    public var hex: String { FreseniusHex.text(tenths) }

    /// A short human-readable form, for logs.
    public var description: String { value.formatted(fractionDigits: 1) }
}

/// A volume as the Fresenius protocol carries it: upper-case hex in units of 0.001 mL (`3E8` = 1.000
/// mL). Used by the `r` (volume infused) variable. Rounds **down** when built from a requested volume.
public struct FreseniusVolume: Hashable, Sendable, CustomStringConvertible {
    /// The step of the field: 0.001 mL.
    public static let resolution = Volume.millilitres(0.001)

    /// What was asked for and what is carried (`actual ≤ requested`).
    public let rounded: Rounded<Volume>
    /// Thousandths of a mL, the number on the wire.
    public let thousandths: UInt32

    /// The volume carried.
    public var value: Volume { rounded.actual }

    /// Rounds `requested` down to 0.001 mL. Throws when negative, not finite or beyond 8 hex digits.
    public init(roundingDown requested: Volume) throws(FreseniusEncodingError) {
        let rounded = requested.roundedDown(toMultipleOf: Self.resolution)
        let units = (rounded.actual / Self.resolution).rounded()
        guard requested.millilitres.isFinite, requested.millilitres >= 0,
              units >= 0, units <= Double(UInt32.max) else {
            throw .valueOutOfRange(what: "volume", value: requested.formatted(fractionDigits: 4),
                                   allowed: "0 mL or more, in 0.001 mL steps")
        }
        self.rounded = rounded
        thousandths = UInt32(units)
    }

    /// A volume of `thousandths` × 0.001 mL (exact).
    public init(thousandths: UInt32) {
        self.thousandths = thousandths
        let volume = Volume(exactCanonicalValue: Decimal(thousandths) / 1000)
        rounded = Rounded(requested: volume, actual: volume)
    }

    /// Parses 1...8 hex digits (either case); nil for anything else.
    public init?(hex: some StringProtocol) {
        guard let units = FreseniusHex.parse(hex) else { return nil }
        self.init(thousandths: units)
    }

    /// The upper-case hex field (`3E8`).
    public var hex: String { FreseniusHex.text(thousandths) }

    /// A short human-readable form, for logs.
    public var description: String { value.formatted(fractionDigits: 3) }
}

/// The occupied slots of a rack base (`b` variable): bit i set = slot i+1 occupied.
public struct FreseniusModuleSet: OptionSet, Hashable, Sendable {
    /// The bitmap as carried on the wire.
    public let rawValue: UInt8
    /// Creates a set from its bitmap.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The set holding the modules in `slots` (numbers outside 1...5 are ignored).
    public init(slots: some Sequence<Int>) {
        var raw: UInt8 = 0
        for slot in slots where (1...5).contains(slot) { raw |= 1 << UInt8(slot - 1) }
        rawValue = raw
    }

    /// True when slot `slot` (1...5) is occupied.
    public func contains(slot: Int) -> Bool {
        (1...5).contains(slot) && rawValue & (1 << UInt8(slot - 1)) != 0
    }

    /// The occupied slots, ascending (only 1...5).
    public var slots: [Int] { (1...5).filter { contains(slot: $0) } }
}

/// The one-letter variable identifiers (§A5). Used as flags in `LE`/`DE` and as prefixes in replies.
public enum FreseniusVariableID: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// `a`: alarm.
    case alarm = 0x61
    /// `e`: error.
    case error = 0x65
    /// `m`: mode.
    case mode = 0x6D
    /// `d`: rate, hex 0.1 mL/h.
    case rate = 0x64
    /// `r`: volume infused, hex 0.001 mL.
    case volumeInfused = 0x72
    /// `k`: bolus rate.
    case bolusRate = 0x6B
    /// `s`: bolus volume.
    case bolusVolume = 0x73
    /// `i`: number of modules (base).
    case moduleCount = 0x69
    /// `b`: module bitmap (base).
    case modules = 0x62

    /// The letter on the wire.
    public var letter: Character { Character(Unicode.Scalar(rawValue)) }

    /// A short human-readable form, for logs.
    public var description: String { String(letter) }
}

/// One variable of a reply or spontaneous event: a letter and its value.
///
/// `d`, `r`, `i` and `b` are typed. For `a`, `e`, `m`, `k` and `s` the reference gives no format, so
/// the value text is kept verbatim; `FreseniusVariables.hexValue(of:)` reads it as hex when needed.
public enum FreseniusVariable: Hashable, Sendable {
    /// `a<text>`: alarm state (format not documented publicly).
    case alarm(String)
    /// `e<text>`: error state (format not documented publicly).
    case error(String)
    /// `m<text>`: mode (format not documented publicly).
    case mode(String)
    /// `d<hex>`: the infusion rate.
    case rate(FreseniusRate)
    /// `r<hex>`: the volume infused.
    case volumeInfused(FreseniusVolume)
    /// `k<text>`: bolus rate (units not documented publicly).
    case bolusRate(String)
    /// `s<text>`: bolus volume (units not documented publicly).
    case bolusVolume(String)
    /// `i<hex>`: number of modules in the rack.
    case moduleCount(Int)
    /// `b<hex>`: occupied slots of the rack.
    case modules(FreseniusModuleSet)

    /// The identifier of this variable.
    public var id: FreseniusVariableID {
        switch self {
        case .alarm: return .alarm
        case .error: return .error
        case .mode: return .mode
        case .rate: return .rate
        case .volumeInfused: return .volumeInfused
        case .bolusRate: return .bolusRate
        case .bolusVolume: return .bolusVolume
        case .moduleCount: return .moduleCount
        case .modules: return .modules
        }
    }

    /// The wire text: letter then value (`d64`, `r3E8`, `b3`).
    public var text: String {
        let value: String
        switch self {
        case let .alarm(text), let .error(text), let .mode(text), let .bolusRate(text), let .bolusVolume(text):
            value = text
        case let .rate(rate): value = rate.hex
        case let .volumeInfused(volume): value = volume.hex
        case let .moduleCount(count): value = FreseniusHex.text(UInt32(clamping: max(0, count)))
        case let .modules(set): value = FreseniusHex.text(UInt32(set.rawValue))
        }
        return String(id.letter) + value
    }

    /// Parses one `;`-separated item (`d64`). Throws `FreseniusMessageError` for an unknown letter or a
    /// typed value that is not hex.
    public init(text: some StringProtocol) throws(FreseniusMessageError) {
        guard let first = text.utf8.first, let id = FreseniusVariableID(rawValue: first) else {
            throw .unknownVariable(text: String(text))
        }
        let value = text.dropFirst()
        func hex() throws(FreseniusMessageError) -> UInt32 {
            guard let parsed = FreseniusHex.parse(value) else { throw .badVariableValue(id: id, text: String(value)) }
            return parsed
        }
        switch id {
        case .alarm: self = .alarm(String(value))
        case .error: self = .error(String(value))
        case .mode: self = .mode(String(value))
        case .rate: self = .rate(FreseniusRate(tenths: try hex()))
        case .volumeInfused: self = .volumeInfused(FreseniusVolume(thousandths: try hex()))
        case .bolusRate: self = .bolusRate(String(value))
        case .bolusVolume: self = .bolusVolume(String(value))
        case .moduleCount: self = .moduleCount(Int(try hex()))
        case .modules:
            let raw = try hex()
            guard raw <= 0xFF else { throw .badVariableValue(id: id, text: String(value)) }
            self = .modules(FreseniusModuleSet(rawValue: UInt8(raw)))
        }
    }
}

/// The variables carried by a reply or spontaneous event, in wire order (`d64;r3E8`).
public struct FreseniusVariables: Hashable, Sendable {
    /// The variables in the order they appeared (or will be sent).
    public var entries: [FreseniusVariable]

    /// Creates a list of variables.
    public init(_ entries: [FreseniusVariable] = []) { self.entries = entries }

    /// Parses the data part of a reply (`d64;r3E8`). Empty items are skipped. Throws on an unknown
    /// letter or a malformed typed value.
    public init(parsing data: some StringProtocol) throws(FreseniusMessageError) {
        var entries: [FreseniusVariable] = []
        for item in data.split(separator: ";", omittingEmptySubsequences: true) {
            entries.append(try FreseniusVariable(text: item))
        }
        self.entries = entries
    }

    /// The wire text (`d64;r3E8`).
    public var text: String { entries.map(\.text).joined(separator: ";") }

    /// The first variable with identifier `id`.
    public subscript(id: FreseniusVariableID) -> FreseniusVariable? { entries.first { $0.id == id } }

    /// `d`: the infusion rate.
    public var rate: VolumeRate? {
        if case let .rate(rate)? = self[.rate] { return rate.value }
        return nil
    }

    /// `r`: the volume infused.
    public var volumeInfused: Volume? {
        if case let .volumeInfused(volume)? = self[.volumeInfused] { return volume.value }
        return nil
    }

    /// `i`: the number of modules.
    public var moduleCount: Int? {
        if case let .moduleCount(count)? = self[.moduleCount] { return count }
        return nil
    }

    /// `b`: the occupied slots.
    public var modules: FreseniusModuleSet? {
        if case let .modules(set)? = self[.modules] { return set }
        return nil
    }

    /// The raw value text of `id` (`64` for `d64`).
    public func rawValue(of id: FreseniusVariableID) -> String? {
        self[id].map { String($0.text.dropFirst()) }
    }

    /// The value of `id` read as hex (for `a`, `e`, `m`, `k`, `s`, whose formats are undocumented), or nil.
    public func hexValue(of id: FreseniusVariableID) -> UInt32? {
        rawValue(of: id).flatMap { FreseniusHex.parse($0) }
    }
}
