import DeviceIO
import DeviceProtocols
import InfusionCore

/// The Nonin driver's session rules as a pure endpoint (reference/protocols.md §B1).
///
/// * DF2/DF7: frames are read with `Nonin.StreamDecoder` (which resynchronises after garbage and
///   never mixes two packets across lost bytes); one sample per complete 25-frame packet (3 per
///   second). A gap of more than `packetGapLimit` (250 ms) between bytes abandons the packet in
///   progress too, so a packet interrupted by a silence is never completed with a later packet's frames.
/// * DF8: one sample per 4-byte record (1 per second), read with `Nonin.DF8Decoder`.
/// * Optional set-format command at link-up (`02 70 02 02 ZZ 03`); the ACK (06) or NAK (15) is taken
///   only where it cannot be part of a frame of the format the device may still be sending
///   (`FormatShadows`). Until it arrives, or `replyTimeout` passes (a notice is published either way),
///   nothing is decoded, because the stream may still be in the old format.
/// * Staleness: no sample within `staleAfter` (default 1 s for DF2/DF7 = 3 packets, 2.5 s for DF8 =
///   2 records + 0.5 s) → `.connection(.silent)` and `.noData`.
///
/// Values: HR and SpO2 are the "recording" 4-beat values of frames 1–3 (they go missing at once when
/// the finger comes out); DF8 carries only the display values (held for 10 s with SNSA), so a DF8
/// record with SNSA is published with SpO2 and pulse rate nil. Perfusion index: none in these formats
/// (nil). `measuredAt`: DF2/DF7 map the packet's 1/3-s timer (14 bits, wraps every 91 min) onto the host
/// clock (`DeviceClockMapper`); DF8 has no timer, so `measuredAt` = arrival.
///
/// Flag mapping (to `OximetryQuality`):
///
/// | Nonin bit | where | quality |
/// |---|---|---|
/// | SNSD (status bit 6) | DF2/DF7 any frame of the packet | `probeOff` |
/// | SNSA (status bit 3; DF8 byte 4 bit 3) | any frame / record | `probeOff` + `sensorFault` |
/// | ARTF (bit 5; DF8 byte 1 bit 2) | any frame / record | `artifact` |
/// | OOT (bit 4; DF8 byte 1 bit 5) | any frame / record | `outOfTrack` |
/// | RPRF only (red) in a frame of the packet; DF8 LPRF | | `lowPerfusion` |
/// | RPRF+GPRF (yellow); DF8 MPRF | (when no red frame) | `marginalPerfusion` |
/// | GPRF only (green) / none | | nothing |
///
/// (DF2/DF7 set RPRF/GPRF only during the 12 frames of each pulse: a packet without a pulse takes the
/// previous pulse's indication, for at most `perfusionHold`, 2 s.)
/// | STAT2 bit 0 (DF2/DF7 slot 8); DF8 byte 4 bit 0 | | `lowBattery` |
///
/// One owner at a time; any thread.
public struct NoninSession: OximeterSession {
    /// How the session reads the device.
    public struct Configuration: Hashable, Sendable {
        /// The data format the device sends (`.df2`, `.df7` or `.df8`; DF13 is not a streaming format
        /// and is read as DF8 would be, which it is not: do not use it).
        public var format: Nonin.DataFormat
        /// Send the set-format command for `format` at every link-up.
        public var setFormatAtConnect: Bool
        /// The staleness limit; nil for the default (1 s for DF2/DF7, 2.5 s for DF8).
        public var staleAfter: Duration?
        /// How long to wait for the set-format ACK/NAK.
        public var replyTimeout: Duration

        /// A configuration; see each property.
        public init(format: Nonin.DataFormat, setFormatAtConnect: Bool = false, staleAfter: Duration? = nil,
                    replyTimeout: Duration = .seconds(1)) {
            self.format = format
            self.setFormatAtConnect = setFormatAtConnect
            self.staleAfter = staleAfter
            self.replyTimeout = replyTimeout
        }
    }

    /// The configuration in force.
    public let configuration: Configuration
    private var frames: Nonin.StreamDecoder
    private var records = Nonin.DF8Decoder()
    private var staleness: StalenessMonitor
    private var clockMapper = DeviceClockMapper()
    private var replyDeadline: MonotonicInstant?
    private var lastByteAt: MonotonicInstant?
    /// A gap between bytes longer than this abandons the DF2/DF7 packet in progress (250 ms; frames are
    /// 13.3 ms apart, a packet lasts 333 ms).
    public static let packetGapLimit: Duration = .milliseconds(250)
    private var shadows = FormatShadows()
    private var worstPerfusion: Nonin.Perfusion = .none
    private var lastPulse: (perfusion: Nonin.Perfusion, at: MonotonicInstant)?
    /// How long a pulse's perfusion indication holds when no pulse follows (2 s: pulse rates down to 30 bpm).
    public static let perfusionHold: Duration = .seconds(2)
    private var timerBase: (ticks: UInt16, unwrapped: Int64)?
    private var counterBase = OximeterCounters()  // from decoders replaced at a format switch
    private var published = 0

    /// A session; nothing happens until `linkUp`.
    public init(configuration: Configuration) {
        self.configuration = configuration
        frames = Nonin.StreamDecoder(format: configuration.format == .df7 ? .df7 : .df2)
        let defaultStale: Duration = configuration.format == .df8 ? .milliseconds(2_500) : .seconds(1)
        staleness = StalenessMonitor(staleAfter: configuration.staleAfter ?? defaultStale)
    }

    /// See `OximeterSession.staleAfter`.
    public var staleAfter: Duration { staleness.staleAfter }

    private var readsFrames: Bool { configuration.format != .df8 }

    /// See `OximeterSession.counters`.
    public var counters: OximeterCounters {
        var c = counterBase
        let frameStats = frames.statistics, recordStats = records.statistics
        c.framesDecoded += frameStats.framesDecoded + recordStats.framesDecoded
        c.framingErrors += frameStats.framingErrors + recordStats.framingErrors
        c.checksumErrors += frameStats.checksumErrors
        c.bytesDiscarded += frameStats.bytesDiscarded + recordStats.bytesDiscarded
        c.samplesPublished = published
        c.staleEpisodes = staleness.staleEpisodes
        return c
    }

    /// See `LinkEndpoint.nextDeadline`: the staleness rule and the set-format reply.
    public var nextDeadline: MonotonicInstant? {
        [staleness.deadline, replyDeadline].compactMap { $0 }.min()
    }

    /// See `LinkEndpoint.linkUp(at:effects:)`: starts the staleness watch; sends set-format if configured.
    public mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        resetDecoding()
        staleness.linkUp(at: now)
        if configuration.setFormatAtConnect {
            shadows = FormatShadows()
            effects.send(Nonin.HostCommand.setDataFormat(configuration.format).encoded)
            replyDeadline = now + configuration.replyTimeout
        }
    }

    /// See `LinkEndpoint.linkDown(at:effects:)`.
    public mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        replyDeadline = nil
        resetDecoding()
        staleness.linkDown(at: now, effects: &effects)
    }

    /// See `LinkEndpoint.receive(_:at:effects:)`.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        // Frames come every 13.3 ms: after a longer gap the packet in progress must not be completed
        // with frames of a later packet (its FLOAT slots would mix two packets' values).
        if readsFrames, let last = lastByteAt, now - last > Self.packetGapLimit { restartFrameDecoder() }
        lastByteAt = now
        for byte in bytes {
            if replyDeadline != nil {
                let isReply = byte == Nonin.CommandReply.ack.rawValue || byte == Nonin.CommandReply.nak.rawValue
                if !(isReply && shadows.atBoundary) {
                    shadows.push(byte)
                    continue  // before the answer the stream may be in the old format: not decoded
                }
                replyDeadline = nil
                let name = "DF\(configuration.format.rawValue)"
                effects.emit(.notice(byte == Nonin.CommandReply.ack.rawValue ? .dataFormatAccepted(name) : .dataFormatRefused(name)))
                resetDecoding()  // whatever came before the answer may be in the old format
                continue
            }
            if readsFrames {
                if let decoded = frames.push(byte) { handle(decoded, at: now, effects: &effects) }
                while let decoded = frames.nextPending() { handle(decoded, at: now, effects: &effects) }
            } else if let record = records.push(byte) {
                handle(record, at: now, effects: &effects)
            }
        }
    }

    /// See `LinkEndpoint.tick(at:effects:)`.
    public mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        if let due = replyDeadline, now >= due {
            replyDeadline = nil
            effects.emit(.notice(.noAnswer(command: "set data format DF\(configuration.format.rawValue)", after: configuration.replyTimeout)))
        }
        staleness.tick(at: now, effects: &effects)
    }

    // MARK: Internals

    /// While waiting for the set-format answer, the stream is in an unknown format (DF2, DF7, DF8, or
    /// DF13, which is quiet between spot checks). A 06/15 byte is taken as the answer only where it cannot
    /// be inside a frame: on a quiet line, or right after 5 bytes that form a valid DF2 or DF7 frame
    /// (checksum included), or right after 4 bytes that form a DF8 record (a DF8 byte after a complete
    /// record has bit 7 set, so it is never 06 or 15). Bounded: keeps the last 5 bytes.
    struct FormatShadows: Sendable {
        private var recent: [UInt8] = []

        var atBoundary: Bool {
            if recent.isEmpty { return true }
            if recent.count == 5, Nonin.Frame(recent, format: .df2) != nil || Nonin.Frame(recent, format: .df7) != nil { return true }
            return recent.count >= 4 && Nonin.DF8Record(recent.suffix(4)) != nil
        }

        mutating func push(_ byte: UInt8) {
            if recent.count == 5 { recent.removeFirst() }
            recent.append(byte)
        }
    }

    private mutating func restartFrameDecoder() {
        let current = counters
        counterBase.framesDecoded = current.framesDecoded - records.statistics.framesDecoded
        counterBase.framingErrors = current.framingErrors - records.statistics.framingErrors
        counterBase.checksumErrors = current.checksumErrors
        counterBase.bytesDiscarded = current.bytesDiscarded - records.statistics.bytesDiscarded
        frames = Nonin.StreamDecoder(format: configuration.format == .df7 ? .df7 : .df2)
        worstPerfusion = .none
    }

    private mutating func resetDecoding() {
        let current = counters
        counterBase.framesDecoded = current.framesDecoded
        counterBase.framingErrors = current.framingErrors
        counterBase.checksumErrors = current.checksumErrors
        counterBase.bytesDiscarded = current.bytesDiscarded
        frames = Nonin.StreamDecoder(format: configuration.format == .df7 ? .df7 : .df2)
        records = Nonin.DF8Decoder()
        lastByteAt = nil
        worstPerfusion = .none
        lastPulse = nil
        timerBase = nil
        clockMapper.reset()
    }

    private mutating func handle(_ decoded: Nonin.Decoded, at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        if decoded.frameNumber == 1 { worstPerfusion = .none }
        worstPerfusion = Self.worse(worstPerfusion, decoded.frame.status.perfusion)
        guard let packet = decoded.packet else { return }
        defer { worstPerfusion = .none }
        guard replyDeadline == nil else { return }
        let status = packet.combinedStatus
        var quality: OximetryQuality = []
        if status.contains(.sensorDisconnect) { quality.insert(.probeOff) }
        if status.contains(.sensorAlarm) { quality.formUnion([.probeOff, .sensorFault]) }
        if status.contains(.artifact) { quality.insert(.artifact) }
        if status.contains(.outOfTrack) { quality.insert(.outOfTrack) }
        // RPRF/GPRF are set only for the 12 frames of each pulse, so a packet between two pulses has none:
        // the last pulse's perfusion holds until the next pulse, for at most `perfusionHold`.
        var perfusion = worstPerfusion
        if perfusion != .none {
            lastPulse = (perfusion, now)
        } else if let last = lastPulse, now - last.at <= Self.perfusionHold {
            perfusion = last.perfusion
        }
        switch perfusion {
        case .low: quality.insert(.lowPerfusion)
        case .marginal: quality.insert(.marginalPerfusion)
        case .high, .none: break
        }
        if packet.values.status2.contains(.lowBattery) { quality.insert(.lowBattery) }
        let deviceTime = unwrappedTimer(packet.values.timerTicks)
        let measuredAt = clockMapper.measuredAt(deviceTime: deviceTime, arrivedAt: now)
        publish(VitalSample(arrivedAt: now, measuredAt: measuredAt, spo2: packet.values.spo2,
                            pulseRate: packet.values.heartRate, perfusionIndex: nil, quality: quality),
                at: now, effects: &effects)
    }

    private mutating func handle(_ record: Nonin.DF8Record, at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        guard replyDeadline == nil else { return }
        let status = record.status
        var quality: OximetryQuality = []
        if status.contains(.sensorAlarm) { quality.formUnion([.probeOff, .sensorFault]) }
        if status.contains(.artifact) { quality.insert(.artifact) }
        if status.contains(.outOfTrack) { quality.insert(.outOfTrack) }
        if status.contains(.lowPerfusion) {
            quality.insert(.lowPerfusion)
        } else if status.contains(.marginalPerfusion) {
            quality.insert(.marginalPerfusion)
        }
        if status.contains(.lowBattery) { quality.insert(.lowBattery) }
        // DF8 carries display values, which the device holds for 10 s after the finger comes out:
        // never pass a held value on as a measurement.
        let held = status.contains(.sensorAlarm)
        publish(VitalSample(arrivedAt: now, spo2: held ? nil : record.spo2, pulseRate: held ? nil : record.heartRate,
                            perfusionIndex: nil, quality: quality),
                at: now, effects: &effects)
    }

    private mutating func publish(_ sample: VitalSample, at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        staleness.sampleArrived(at: now, effects: &effects)
        published += 1
        effects.emit(.sample(sample))
    }

    /// The 14-bit 1/3-s timer, unwrapped into a duration since the first packet seen on this link.
    private mutating func unwrappedTimer(_ ticks: UInt16) -> Duration {
        let unwrapped: Int64
        if let base = timerBase {
            let step = Int64((Int(ticks) - Int(base.ticks) + 0x4000) & 0x3FFF)
            unwrapped = base.unwrapped + step
        } else {
            unwrapped = 0
        }
        timerBase = (ticks, unwrapped)
        return .nanoseconds(unwrapped * 1_000_000_000 / 3)
    }

    private static func worse(_ a: Nonin.Perfusion, _ b: Nonin.Perfusion) -> Nonin.Perfusion {
        func rank(_ p: Nonin.Perfusion) -> Int {
            switch p { case .none: 0; case .high: 1; case .marginal: 2; case .low: 3 }
        }
        return rank(a) >= rank(b) ? a : b
    }
}

/// A Nonin pulse oximeter (DF2, DF7 or DF8) on a serial port, at 9600 8N1 (reference/protocols.md §B1).
/// See `NoninSession` for the rules and the flag mapping; `OximeterDriver` for threads and ownership.
public final class NoninOximeter: OximeterDriver<NoninSession>, @unchecked Sendable {
    /// Opens `path` (retrying every `reconnectInterval` until it can) and starts reading.
    public init(path: String, configuration: NoninSession.Configuration, name: String? = nil,
                clock: any MonotonicClock = SystemMonotonicClock(), reconnectInterval: Duration = .milliseconds(500)) {
        super.init(session: NoninSession(configuration: configuration), path: path, settings: .nonin9600,
                   name: name ?? "nonin DF\(configuration.format.rawValue) \(path)", clock: clock,
                   reconnectInterval: reconnectInterval)
    }
}
