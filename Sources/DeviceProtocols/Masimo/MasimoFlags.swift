/// Masimo Radical-5 / Radical-7 / Rad-8 "ASCII 1" serial output (reference/protocols.md §B3): one
/// line per second, `date time TAG=value … CR LF`, output only.
///
/// * Drivers: `Masimo.StreamDecoder` (bytes → `Result<Masimo.Record, Masimo.ParseError>`), or
///   `Masimo.LineSplitter` + `Masimo.Record(parsing:)`.
/// * Simulators: `Masimo.Record.line(style:)`.
///
/// Fields are found by tag, never by position (models omit SN or PVI). Dashes mean "no value" and
/// decode to `nil`, never 0. Pure; any thread.
public enum Masimo {}

extension Masimo {
    /// The `ALARM=` hex bitmask. Every bit the reference lists is named; unknown bits are kept.
    public struct AlarmFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
        /// The bits or code as on the wire.
        public let rawValue: UInt32
        /// Wraps a wire value (any value is accepted; unknown ones are kept).
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// 0x0001: SpO2 high alarm.
        public static let spo2High = AlarmFlags(rawValue: 0x0001)
        /// 0x0002: SpO2 low alarm.
        public static let spo2Low = AlarmFlags(rawValue: 0x0002)
        /// 0x0004: pulse rate high alarm.
        public static let pulseRateHigh = AlarmFlags(rawValue: 0x0004)
        /// 0x0008: pulse rate low alarm.
        public static let pulseRateLow = AlarmFlags(rawValue: 0x0008)
        /// 0x0010: an alarm is active.
        public static let alarmActive = AlarmFlags(rawValue: 0x0010)
        /// 0x0020: alarms are silenced.
        public static let alarmSilenced = AlarmFlags(rawValue: 0x0020)
        /// 0x0040: low battery.
        public static let lowBattery = AlarmFlags(rawValue: 0x0040)
        /// 0x0100: SpCO high alarm.
        public static let spcoHigh = AlarmFlags(rawValue: 0x0100)
        /// 0x0200: SpCO low alarm.
        public static let spcoLow = AlarmFlags(rawValue: 0x0200)
        /// 0x0400: SpMet high alarm.
        public static let spmetHigh = AlarmFlags(rawValue: 0x0400)
        /// 0x0800: SpMet low alarm.
        public static let spmetLow = AlarmFlags(rawValue: 0x0800)
        /// 0x1000: desaturation index alarm.
        public static let desatIndex = AlarmFlags(rawValue: 0x1000)
        /// 0x2000: PI delta alarm.
        public static let piDelta = AlarmFlags(rawValue: 0x2000)

        /// Every listed bit with its name, lowest bit first.
        public static let listed: [(flag: AlarmFlags, name: String)] = [
            (.spo2High, "SpO2 high"), (.spo2Low, "SpO2 low"), (.pulseRateHigh, "pulse rate high"),
            (.pulseRateLow, "pulse rate low"), (.alarmActive, "alarm active"), (.alarmSilenced, "alarm silenced"),
            (.lowBattery, "low battery"), (.spcoHigh, "SpCO high"), (.spcoLow, "SpCO low"), (.spmetHigh, "SpMet high"),
            (.spmetLow, "SpMet low"), (.desatIndex, "desat index"), (.piDelta, "PI delta"),
        ]

        /// Human-readable text for logs and error messages.
        public var description: String { Masimo.describe(rawValue, Self.listed.map { ($0.flag.rawValue, $0.name) }) }
    }

    /// The `EXC=` (exception) hex bitmask. Every bit the reference lists is named; unknown bits are kept.
    /// `masimoSET` is set in normal operation.
    public struct ExceptionFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
        /// The bits or code as on the wire.
        public let rawValue: UInt32
        /// Wraps a wire value (any value is accepted; unknown ones are kept).
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// 0x000001: no sensor.
        public static let noSensor = ExceptionFlags(rawValue: 0x000001)
        /// 0x000002: defective sensor.
        public static let defectiveSensor = ExceptionFlags(rawValue: 0x000002)
        /// 0x000004: low perfusion.
        public static let lowPerfusion = ExceptionFlags(rawValue: 0x000004)
        /// 0x000008: pulse search.
        public static let pulseSearch = ExceptionFlags(rawValue: 0x000008)
        /// 0x000010: interference.
        public static let interference = ExceptionFlags(rawValue: 0x000010)
        /// 0x000020: sensor off.
        public static let sensorOff = ExceptionFlags(rawValue: 0x000020)
        /// 0x000040: ambient light.
        public static let ambientLight = ExceptionFlags(rawValue: 0x000040)
        /// 0x000080: unrecognised sensor.
        public static let unrecognizedSensor = ExceptionFlags(rawValue: 0x000080)
        /// 0x000100: incompatible sensor.
        public static let incompatibleSensor = ExceptionFlags(rawValue: 0x000100)
        /// 0x000400: low signal IQ.
        public static let lowSignalIQ = ExceptionFlags(rawValue: 0x000400)
        /// 0x000800: "Masimo SET" (set in normal operation).
        public static let masimoSET = ExceptionFlags(rawValue: 0x000800)
        /// 0x001000: no cable.
        public static let noCable = ExceptionFlags(rawValue: 0x001000)
        /// 0x002000: cable life expired.
        public static let cableLifeExpired = ExceptionFlags(rawValue: 0x002000)
        /// 0x004000: incompatible cable.
        public static let incompatibleCable = ExceptionFlags(rawValue: 0x004000)
        /// 0x008000: unrecognised cable.
        public static let unrecognizedCable = ExceptionFlags(rawValue: 0x008000)
        /// 0x010000: defective cable.
        public static let defectiveCable = ExceptionFlags(rawValue: 0x010000)
        /// 0x020000: sensor calibrating.
        public static let sensorCalibrating = ExceptionFlags(rawValue: 0x020000)
        /// 0x040000: sensor life expired.
        public static let sensorLifeExpired = ExceptionFlags(rawValue: 0x040000)
        /// 0x080000: emitter temperature out of range.
        public static let emitterTemperatureOutOfRange = ExceptionFlags(rawValue: 0x080000)
        /// 0x100000: sensor current limit.
        public static let sensorCurrentLimit = ExceptionFlags(rawValue: 0x100000)
        /// 0x200000: SpCO low confidence.
        public static let spcoLowConfidence = ExceptionFlags(rawValue: 0x200000)
        /// 0x400000: SpMet low confidence.
        public static let spmetLowConfidence = ExceptionFlags(rawValue: 0x400000)

        /// Every listed bit with its name, lowest bit first.
        public static let listed: [(flag: ExceptionFlags, name: String)] = [
            (.noSensor, "no sensor"), (.defectiveSensor, "defective sensor"), (.lowPerfusion, "low perfusion"),
            (.pulseSearch, "pulse search"), (.interference, "interference"), (.sensorOff, "sensor off"),
            (.ambientLight, "ambient light"), (.unrecognizedSensor, "unrecognized sensor"),
            (.incompatibleSensor, "incompatible sensor"), (.lowSignalIQ, "low signal IQ"), (.masimoSET, "Masimo SET"),
            (.noCable, "no cable"), (.cableLifeExpired, "cable life expired"), (.incompatibleCable, "incompatible cable"),
            (.unrecognizedCable, "unrecognized cable"), (.defectiveCable, "defective cable"),
            (.sensorCalibrating, "sensor calibrating"), (.sensorLifeExpired, "sensor life expired"),
            (.emitterTemperatureOutOfRange, "emitter temperature out of range"), (.sensorCurrentLimit, "sensor current limit"),
            (.spcoLowConfidence, "SpCO low confidence"), (.spmetLowConfidence, "SpMet low confidence"),
        ]

        /// The exceptions other than the normal-operation `masimoSET` bit: anything here means the
        /// readings may be unreliable or absent.
        public var problems: ExceptionFlags { subtracting(.masimoSET) }

        /// Human-readable text for logs and error messages.
        public var description: String { Masimo.describe(rawValue, Self.listed.map { ($0.flag.rawValue, $0.name) }) }
    }

    static func describe(_ raw: UInt32, _ names: [(UInt32, String)]) -> String {
        var parts = names.filter { raw & $0.0 != 0 }.map(\.1)
        let known = names.reduce(UInt32(0)) { $0 | $1.0 }
        if raw & ~known != 0 { parts.append("unknown bits 0x" + String(raw & ~known, radix: 16, uppercase: true)) }
        return "[" + parts.joined(separator: ", ") + "]"
    }
}
