import DeviceIO
import DeviceProtocols
import InfusionCore

/// The Masimo driver's session rules as a pure endpoint (reference/protocols.md §B3, "ASCII 1", output
/// only: the driver never sends anything).
///
/// * One sample per line (one a second), read with `Masimo.StreamDecoder`: lines are split at CR/LF
///   (bounded at 256 bytes), so garbage costs at most the line it lands in; fields are read by tag and
///   dashes are `nil`. An unreadable line counts as a framing error (the format has no checksum).
/// * Staleness: no sample within `staleAfter` (default 2.5 s = two lines + 0.5 s) → `.silent` and
///   `.noData`.
/// * `measuredAt`: the line's device clock (MM/DD/YY HH:MM:SS, 1-s resolution) mapped onto the host
///   clock by `DeviceClockMapper` (the clock is set by hand, so only its progression is used).
///
/// Flag mapping (to `OximetryQuality`):
///
/// | Masimo bit | quality |
/// |---|---|
/// | EXC 0x000001 no sensor, 0x000020 sensor off | `probeOff` |
/// | EXC 0x000002 defective sensor, 0x80 unrecognised, 0x100 incompatible sensor, 0x1000 no cable, 0x2000 cable life expired, 0x4000 incompatible cable, 0x8000 unrecognised cable, 0x10000 defective cable, 0x40000 sensor life expired, 0x80000 emitter temperature, 0x100000 sensor current limit | `sensorFault` |
/// | EXC 0x000004 low perfusion | `lowPerfusion` |
/// | EXC 0x000008 pulse search, 0x020000 sensor calibrating | `searching` |
/// | EXC 0x000010 interference, 0x000040 ambient light | `interference` |
/// | EXC 0x000400 low signal IQ (what motion shows as) | `lowSignalQuality` |
/// | ALARM 0x0040 low battery | `lowBattery` |
/// | EXC 0x000800 Masimo SET (normal), SpCO/SpMet low confidence, other ALARM bits (physiological alarms) | nothing |
///
/// The format has no artifact or out-of-track bit: motion shows as low signal IQ, loss of pulse as
/// pulse search with dashes. One owner at a time; any thread.
public struct MasimoSession: OximeterSession {
    private var decoder = Masimo.StreamDecoder()
    private var staleness: StalenessMonitor
    private var clockMapper = DeviceClockMapper()
    private var published = 0

    /// A session; `staleAfter` is the staleness limit (default 2.5 s).
    public init(staleAfter: Duration = .milliseconds(2_500)) {
        staleness = StalenessMonitor(staleAfter: staleAfter)
    }

    /// See `OximeterSession.staleAfter`.
    public var staleAfter: Duration { staleness.staleAfter }

    /// See `OximeterSession.counters`: lines decoded; unreadable and over-long lines as framing errors.
    public var counters: OximeterCounters {
        var c = OximeterCounters()
        c.framesDecoded = decoder.recordsDecoded
        c.framingErrors = decoder.parseErrors + decoder.overlongLines
        c.samplesPublished = published
        c.staleEpisodes = staleness.staleEpisodes
        return c
    }

    /// See `LinkEndpoint.nextDeadline`.
    public var nextDeadline: MonotonicInstant? { staleness.deadline }

    /// See `LinkEndpoint.linkUp(at:effects:)`.
    public mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        clockMapper.reset()
        staleness.linkUp(at: now)
    }

    /// See `LinkEndpoint.linkDown(at:effects:)`.
    public mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        staleness.linkDown(at: now, effects: &effects)
    }

    /// See `LinkEndpoint.receive(_:at:effects:)`.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        for byte in bytes {
            guard case .success(let record)? = decoder.push(byte) else { continue }
            let measuredAt = Self.seconds(of: record.deviceTime).map { clockMapper.measuredAt(deviceTime: $0, arrivedAt: now) }
            let sample = VitalSample(arrivedAt: now, measuredAt: measuredAt, spo2: record.spo2, pulseRate: record.pulseRate,
                                     perfusionIndex: record.perfusionIndex,
                                     quality: Self.quality(exceptions: record.exceptions ?? [], alarms: record.alarms ?? []))
            staleness.sampleArrived(at: now, effects: &effects)
            published += 1
            effects.emit(.sample(sample))
        }
    }

    /// See `LinkEndpoint.tick(at:effects:)`.
    public mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        staleness.tick(at: now, effects: &effects)
    }

    /// The quality flags for a line's EXC and ALARM bits (the table above).
    public static func quality(exceptions: Masimo.ExceptionFlags, alarms: Masimo.AlarmFlags) -> OximetryQuality {
        var quality: OximetryQuality = []
        if !exceptions.isDisjoint(with: [.noSensor, .sensorOff]) { quality.insert(.probeOff) }
        let faults: Masimo.ExceptionFlags = [
            .defectiveSensor, .unrecognizedSensor, .incompatibleSensor, .noCable, .cableLifeExpired, .incompatibleCable,
            .unrecognizedCable, .defectiveCable, .sensorLifeExpired, .emitterTemperatureOutOfRange, .sensorCurrentLimit,
        ]
        if !exceptions.isDisjoint(with: faults) { quality.insert(.sensorFault) }
        if exceptions.contains(.lowPerfusion) { quality.insert(.lowPerfusion) }
        if !exceptions.isDisjoint(with: [.pulseSearch, .sensorCalibrating]) { quality.insert(.searching) }
        if !exceptions.isDisjoint(with: [.interference, .ambientLight]) { quality.insert(.interference) }
        if exceptions.contains(.lowSignalIQ) { quality.insert(.lowSignalQuality) }
        if alarms.contains(.lowBattery) { quality.insert(.lowBattery) }
        return quality
    }

    /// The device time as a duration since 2000-01-01 00:00:00 (device local time), or nil when the
    /// text was not all digits or out of range.
    static func seconds(of time: Masimo.DeviceTime) -> Duration? {
        guard let c = time.components, (1...12).contains(c.month), (1...31).contains(c.day), c.hour < 24, c.minute < 60,
              c.second < 60 else { return nil }
        let days = daysFromCivil(year: 2000 + c.year, month: c.month, day: c.day) - daysFromCivil(year: 2000, month: 1, day: 1)
        return .seconds(Int64(days) * 86_400 + Int64(c.hour * 3600 + c.minute * 60 + c.second))
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

/// A Masimo Radical-5/7 or Rad-8 in ASCII 1 mode on a serial port, 9600 8N1 (reference/protocols.md §B3).
/// See `MasimoSession` for the rules and flag mapping; `OximeterDriver` for threads and ownership.
public final class MasimoOximeter: OximeterDriver<MasimoSession>, @unchecked Sendable {
    /// Opens `path` (retrying every `reconnectInterval` until it can) and starts reading.
    public init(path: String, staleAfter: Duration = .milliseconds(2_500), name: String? = nil,
                clock: any MonotonicClock = SystemMonotonicClock(), reconnectInterval: Duration = .milliseconds(500)) {
        super.init(session: MasimoSession(staleAfter: staleAfter), path: path, settings: .masimo9600,
                   name: name ?? "masimo \(path)", clock: clock, reconnectInterval: reconnectInterval)
    }
}
