import InfusionCore

extension NewEra {
    /// The pump's rate units (`RAT <float> <UM|MM|UH|MH>`).
    public enum RateUnit: String, CaseIterable, Hashable, Sendable {
        /// µL/min.
        case microlitresPerMinute = "UM"
        /// mL/min.
        case millilitresPerMinute = "MM"
        /// µL/h.
        case microlitresPerHour = "UH"
        /// mL/h.
        case millilitresPerHour = "MH"

        /// The matching InfusionCore unit.
        public var volumeRateUnit: VolumeRateUnit {
            switch self {
            case .microlitresPerMinute: .microlitresPerMinute
            case .millilitresPerMinute: .millilitresPerMinute
            case .microlitresPerHour: .microlitresPerHour
            case .millilitresPerHour: .millilitresPerHour
            }
        }
    }

    /// The pump's volume units (`VOL <UL|ML>`, and the unit of DIS and VOL replies).
    public enum VolumeUnit: String, CaseIterable, Hashable, Sendable {
        /// µL.
        case microlitres = "UL"
        /// mL.
        case millilitres = "ML"

        /// The matching InfusionCore unit.
        public var volumeUnit: InfusionCore.VolumeUnit {
            switch self {
            case .microlitres: .microlitres
            case .millilitres: .millilitres
            }
        }
    }

    /// Pumping direction (`DIR`).
    public enum Direction: String, CaseIterable, Hashable, Sendable {
        /// Infuse (push the plunger).
        case infuse = "INF"
        /// Withdraw (pull the plunger).
        case withdraw = "WDR"
        /// Reverse the current direction (set only; listed in the manual **[unverified]**).
        case reverse = "REV"
    }

    /// Which dispensed-volume counter `CLD` clears.
    public enum Counter: String, CaseIterable, Hashable, Sendable {
        /// The infused-volume counter.
        case infused = "INF"
        /// The withdrawn-volume counter.
        case withdrawn = "WDR"
    }

    /// A pump rate exactly as sent or reported: a 4-digit number and one of the pump's units.
    public struct RateSetting: Hashable, Sendable, CustomStringConvertible {
        /// The number (exact).
        public var number: Number
        /// The unit the number is in.
        public var unit: RateUnit

        /// A rate of `number` in `unit`.
        public init(_ number: Number, _ unit: RateUnit) {
            self.number = number
            self.unit = unit
        }

        /// The rate as a typed quantity (exact in decimal).
        public var volumeRate: VolumeRate { VolumeRate(number.value, unit.volumeRateUnit) }

        /// The `RAT` argument/reply text: "1.5MH" (as stored). The pump's own replies pad to 4 digits;
        /// see `replyText`.
        public var text: String { number.text + unit.rawValue }

        /// The text the pump replies to a `RAT` query: "1.500MM".
        public var replyText: String { number.fourDigitText + unit.rawValue }

        /// Human-readable text for logs and error messages.
        public var description: String { text }

        /// Parses a `RAT` query reply such as "1.500MM".
        public init(parsing text: some StringProtocol) throws(ParseError) {
            let utf8 = Array(text.utf8)
            guard utf8.count > 2,
                  let unit = RateUnit(rawValue: NewEra.text(utf8[(utf8.count - 2)...])),
                  let number = Number(text: NewEra.text(utf8[..<(utf8.count - 2)]))
            else {
                throw ParseError(what: "rate", text: text,
                                 reason: "expected a number of up to 4 digits followed by UM, MM, UH or MH, like 1.500MM")
            }
            self.init(number, unit)
        }

        /// The setting that delivers the most of `rate` without exceeding it, and what will actually be
        /// delivered.
        ///
        /// Tries every unit the pump knows (mL/h, µL/h, mL/min, µL/min), rounds the rate DOWN in each
        /// with `rate.roundedDown(significantDigits: 4, maxFractionDigits: 3, in:)`, drops units where
        /// the number would need more than 4 digits, and keeps the unit whose rounded rate is largest
        /// (closest to the request; on a tie the first in the order above). The returned
        /// `Rounded.actual` is exactly the rate the encoded setting means and is never above
        /// `Rounded.requested`.
        ///
        /// Throws when the rate is negative or not finite, positive but below 0.001 µL/h, or above
        /// 9999 mL/min. A rate of 0 encodes as "0MH".
        public static func roundingDown(_ rate: VolumeRate) throws(EncodingError)
            -> (setting: RateSetting, rounded: Rounded<VolumeRate>)
        {
            guard rate.canonicalValue.isFinite, rate.canonicalValue >= 0 else { throw .invalidRate(rate) }
            let preference: [RateUnit] = [.millilitresPerHour, .microlitresPerHour, .millilitresPerMinute, .microlitresPerMinute]
            var best: (setting: RateSetting, actual: VolumeRate)?
            for unit in preference {
                let rounded = rate.roundedDown(significantDigits: Number.maxDigits,
                                               maxFractionDigits: Number.maxFractionDigits,
                                               in: unit.volumeRateUnit)
                guard let number = Number.roundingDown(rounded.actual.value(in: unit.volumeRateUnit)) else { continue }
                let setting = RateSetting(number, unit)
                let actual = setting.volumeRate
                // Both roundings go down, so this only skips a binary round-off artefact.
                guard actual <= rate else { continue }
                if let current = best, current.actual >= actual { continue }
                best = (setting, actual)
            }
            guard let best else { throw .rateTooLarge(rate) }
            if rate.canonicalValue > 0 && best.setting.number.scaledValue == 0 { throw .rateTooSmall(rate) }
            return (best.setting, Rounded(requested: rate, actual: best.actual))
        }
    }

    /// The volume to dispense as sent or reported by `VOL`: a number and the pump's volume unit.
    public struct VolumeSetting: Hashable, Sendable, CustomStringConvertible {
        /// The number (exact).
        public var number: Number
        /// The unit it is in (set separately with `VOL UL`/`VOL ML`).
        public var unit: VolumeUnit

        /// A volume of `number` in `unit`.
        public init(_ number: Number, _ unit: VolumeUnit) {
            self.number = number
            self.unit = unit
        }

        /// The volume as a typed quantity.
        public var volume: Volume { Volume(number.value, unit.volumeUnit) }

        /// The pump's reply text to a `VOL` query: "5.000ML".
        public var replyText: String { number.fourDigitText + unit.rawValue }

        /// Human-readable text for logs and error messages.
        public var description: String { number.text + unit.rawValue }

        /// Parses a `VOL` query reply such as "5.000ML".
        public init(parsing text: some StringProtocol) throws(ParseError) {
            let utf8 = Array(text.utf8)
            guard utf8.count > 2,
                  let unit = VolumeUnit(rawValue: NewEra.text(utf8[(utf8.count - 2)...])),
                  let number = Number(text: NewEra.text(utf8[..<(utf8.count - 2)]))
            else {
                throw ParseError(what: "volume", text: text,
                                 reason: "expected a number of up to 4 digits followed by UL or ML, like 5.000ML")
            }
            self.init(number, unit)
        }
    }

    /// The dispensed-volume counters reported by `DIS`: `I<float>W<float><UL|ML>`, e.g. "I0.250W0.000ML".
    public struct Dispensed: Hashable, Sendable, CustomStringConvertible {
        /// Volume infused since the counter was last cleared, in `unit`.
        public var infused: Number
        /// Volume withdrawn since the counter was last cleared, in `unit`.
        public var withdrawn: Number
        /// The unit of both counters.
        public var unit: VolumeUnit

        /// Counters of `infused` and `withdrawn` in `unit`.
        public init(infused: Number, withdrawn: Number, unit: VolumeUnit) {
            self.infused = infused
            self.withdrawn = withdrawn
            self.unit = unit
        }

        /// The infused volume as a typed quantity.
        public var infusedVolume: Volume { Volume(infused.value, unit.volumeUnit) }
        /// The withdrawn volume as a typed quantity.
        public var withdrawnVolume: Volume { Volume(withdrawn.value, unit.volumeUnit) }

        /// The reply data as the pump writes it: "I0.250W0.000ML".
        public var replyText: String {
            "I" + infused.fourDigitText + "W" + withdrawn.fourDigitText + unit.rawValue
        }

        /// Human-readable text for logs and error messages.
        public var description: String { replyText }

        /// Parses `DIS` reply data.
        public init(parsing text: some StringProtocol) throws(ParseError) {
            let utf8 = Array(text.utf8)
            let fail = ParseError(what: "DIS data", text: text,
                                  reason: "expected I<number>W<number> then UL or ML, like I0.250W0.000ML")
            guard utf8.count > 5, utf8.first == UInt8(ascii: "I"),
                  let w = utf8.firstIndex(of: UInt8(ascii: "W")),
                  let unit = VolumeUnit(rawValue: NewEra.text(utf8[(utf8.count - 2)...])),
                  w + 1 <= utf8.count - 2,
                  let infused = Number(text: NewEra.text(utf8[1..<w])),
                  let withdrawn = Number(text: NewEra.text(utf8[(w + 1)..<(utf8.count - 2)]))
            else { throw fail }
            self.init(infused: infused, withdrawn: withdrawn, unit: unit)
        }
    }

    /// Model and firmware reported by `VER`: `NE<model>[X[<n>]]V<major>.<minor>`, e.g. "NE1000V3.928"
    /// or "NE1000X2V3.928" (X = firmware upgrade, optionally numbered).
    public struct Version: Hashable, Sendable, CustomStringConvertible {
        /// The model number: 300, 500, 1000, 1600, 4000…
        public var model: Int
        /// True when the firmware carries the X upgrade.
        public var isUpgrade: Bool
        /// The upgrade number after X, if one is given.
        public var upgradeNumber: Int?
        /// Firmware major version ("3" in V3.928).
        public var major: Int
        /// Firmware minor version digits as written ("928" in V3.928; leading zeros kept).
        public var minor: String

        /// A version value; `minor` must be decimal digits for `replyText` to parse back.
        public init(model: Int, isUpgrade: Bool = false, upgradeNumber: Int? = nil, major: Int, minor: String) {
            self.model = model
            self.isUpgrade = isUpgrade || upgradeNumber != nil
            self.upgradeNumber = upgradeNumber
            self.major = major
            self.minor = minor
        }

        /// The firmware version text, "3.928".
        public var firmware: String { "\(major).\(minor)" }

        /// The reply data as the pump writes it: "NE1000V3.928".
        public var replyText: String {
            "NE\(model)" + (isUpgrade ? "X" + (upgradeNumber.map(String.init) ?? "") : "") + "V\(major).\(minor)"
        }

        /// Human-readable text for logs and error messages.
        public var description: String { replyText }

        /// Parses `VER` reply data.
        public init(parsing text: some StringProtocol) throws(ParseError) {
            let fail = ParseError(what: "VER data", text: text,
                                  reason: "expected NE<model>[X[n]]V<major>.<minor>, like NE1000V3.928")
            var rest = Substring(text)
            guard rest.hasPrefix("NE") else { throw fail }
            rest = rest.dropFirst(2)
            func digits() -> Substring {
                let run = rest.prefix { $0.isASCII && $0.isNumber }
                rest = rest.dropFirst(run.count)
                return run
            }
            let modelDigits = digits()
            guard !modelDigits.isEmpty, modelDigits.count <= 6, let model = Int(modelDigits) else { throw fail }
            var isUpgrade = false
            var upgradeNumber: Int?
            if rest.first == "X" {
                isUpgrade = true
                rest = rest.dropFirst()
                let n = digits()
                if !n.isEmpty {
                    guard n.count <= 6, let value = Int(n) else { throw fail }
                    upgradeNumber = value
                }
            }
            guard rest.first == "V" else { throw fail }
            rest = rest.dropFirst()
            let majorDigits = digits()
            guard !majorDigits.isEmpty, majorDigits.count <= 6, let major = Int(majorDigits), rest.first == "." else { throw fail }
            rest = rest.dropFirst()
            let minor = digits()
            guard !minor.isEmpty, minor.count <= 6, rest.isEmpty else { throw fail }
            self.init(model: model, isUpgrade: isUpgrade, upgradeNumber: upgradeNumber, major: major, minor: String(minor))
        }
    }
}
