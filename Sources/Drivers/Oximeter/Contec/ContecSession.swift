import DeviceIO
import DeviceProtocols
import InfusionCore

/// The Contec driver's session rules as a pure endpoint (reference/protocols.md §B4a, protocol V7.0).
///
/// * At link-up: send "start real-time" (`7D 81 A1 80…`); it is answered when real-time packets (or
///   command feedback for it) arrive within `answerTimeout` (1 s, the V7.0 rule "drop the connection if
///   there is no reply within 1 s").
/// * Keep-alive: `7D 81 AF 80…` every `keepAliveInterval` (5 s) while the link is up. V7.0 defines no
///   answer to it, so it has no deadline of its own; the data stream is what shows the device alive.
/// * Staleness: no real-time packet within `staleAfter` (default 0.5 s = 30 packets) → `.silent` and
///   `.noData`, and "start real-time" is sent again (the device may have stopped streaming).
/// * No answer within 1 s to a command that expects one → a notice, the connection is dropped
///   (`.disconnected` published, decoder and state reset, bytes ignored) and after `reconnectDelay`
///   (1 s) the session starts over as at link-up. (An `EndpointHost` keeps the port open across this
///   protocol-level reconnect; a real unplug closes and reopens it.)
/// * One sample per real-time packet (60 a second), read with `Contec.DeviceStreamDecoder` (which is
///   back in step at the next type byte). No device clock: `measuredAt` = arrival. Truncated packets
///   and unknown types count as framing errors (no checksum in V7.0).
///
/// Flag mapping (to `OximetryQuality`):
///
/// | Contec bit | quality |
/// |---|---|
/// | byte 2 bit 7 probe error ("finger out") | `probeOff` |
/// | byte 3 bit 7 searching pulse (also what motion shows as) | `searching` |
/// | byte 2 bit 4 searching too long | `outOfTrack` |
/// | signal strength (byte 2 bits 0–3) ≤ 1 of 8, probe on, not searching | `lowPerfusion` (the format has no perfusion bit: the driver's inference) |
/// | byte 2 bit 5 low SpO2, bit 6 pulse beep | nothing (a physiological alarm and a beat marker) |
///
/// Invalid markers (PR 0xFF, SpO2 0x7F or > 100, PI 0xFFFF or byte 4 bit 4) are `nil`. One owner at a
/// time; any thread.
public struct ContecSession: OximeterSession {
    /// Timing rules; the defaults are the protocol's.
    public struct Configuration: Hashable, Sendable {
        /// How long without a real-time packet before `.silent`.
        public var staleAfter: Duration
        /// How long to wait for the answer to a command that expects one.
        public var answerTimeout: Duration
        /// How often to send the keep-alive.
        public var keepAliveInterval: Duration
        /// How long after dropping the connection to start over.
        public var reconnectDelay: Duration

        /// A configuration; see each property.
        public init(staleAfter: Duration = .milliseconds(500), answerTimeout: Duration = .seconds(1),
                    keepAliveInterval: Duration = .seconds(5), reconnectDelay: Duration = .seconds(1)) {
            self.staleAfter = staleAfter
            self.answerTimeout = answerTimeout
            self.keepAliveInterval = keepAliveInterval
            self.reconnectDelay = reconnectDelay
        }
    }

    /// The rules in force.
    public let configuration: Configuration
    private var decoder = Contec.DeviceStreamDecoder()
    private var staleness: StalenessMonitor
    private var linkIsUp = false
    private var awaiting: (code: Contec.ControlCode, deadline: MonotonicInstant)?
    private var keepAliveAt: MonotonicInstant?
    private var restartAt: MonotonicInstant?
    private var counterBase = OximeterCounters()
    private var published = 0
    private var drops = 0

    /// The pre-encoded commands (never re-encoded on the link thread).
    private static let startRealTime = Contec.ControlCommand.startRealTime.encoded()
    private static let keepAlive = Contec.ControlCommand.keepAlive.encoded()

    /// A session; nothing happens until `linkUp`.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        staleness = StalenessMonitor(staleAfter: configuration.staleAfter)
    }

    /// See `OximeterSession.staleAfter`.
    public var staleAfter: Duration { staleness.staleAfter }

    /// Times the session dropped the connection for want of an answer.
    public var connectionsDropped: Int { drops }

    /// See `OximeterSession.counters`: packets; truncated packets and unknown types as framing errors.
    public var counters: OximeterCounters {
        var c = counterBase
        let s = decoder.statistics
        c.framesDecoded += s.packetsDecoded
        c.framingErrors += s.truncatedPackets + s.unknownTypes
        c.bytesDiscarded += s.bytesDiscarded
        c.samplesPublished = published
        c.staleEpisodes = staleness.staleEpisodes
        return c
    }

    /// See `LinkEndpoint.nextDeadline`: staleness, the answer deadline, the keep-alive, the restart.
    public var nextDeadline: MonotonicInstant? {
        [staleness.deadline, awaiting?.deadline, keepAliveAt, restartAt].compactMap { $0 }.min()
    }

    /// See `LinkEndpoint.linkUp(at:effects:)`: sends "start real-time".
    public mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        linkIsUp = true
        begin(at: now, effects: &effects)
    }

    /// See `LinkEndpoint.linkDown(at:effects:)`.
    public mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        linkIsUp = false
        awaiting = nil
        keepAliveAt = nil
        restartAt = nil
        resetDecoder()
        staleness.linkDown(at: now, effects: &effects)
    }

    /// See `LinkEndpoint.receive(_:at:effects:)`.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        guard linkIsUp, restartAt == nil else { return }  // dropped: ignore until the restart
        for byte in bytes {
            guard let message = decoder.push(byte) else { continue }
            switch message {
            case .realTime(let data):
                if awaiting?.code == .startRealTime { awaiting = nil }
                staleness.sampleArrived(at: now, effects: &effects)
                published += 1
                effects.emit(.sample(Self.sample(data, at: now)))
            case .commandFeedback(let feedback):
                if awaiting?.code == feedback.command { awaiting = nil }
                effects.emit(.notice(.commandFeedback(command: feedback.command.description, reason: feedback.reason.description)))
            case .deviceIdentifier:
                if awaiting?.code == .queryDeviceIdentifier { awaiting = nil }
            case .disconnectNotice(let reason):
                effects.emit(.notice(.deviceDisconnecting(reason: reason.description)))
            case .freeFeedback, .other:
                break
            }
        }
    }

    /// See `LinkEndpoint.tick(at:effects:)`.
    public mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        guard linkIsUp else { return }
        if let due = restartAt {
            if now >= due { begin(at: now, effects: &effects) }
            return
        }
        if let pending = awaiting, now >= pending.deadline {
            effects.emit(.notice(.noAnswer(command: "Contec command \(pending.code)", after: configuration.answerTimeout)))
            drop(at: now, effects: &effects)
            return
        }
        if let due = keepAliveAt, now >= due {
            effects.send(Self.keepAlive)
            keepAliveAt = now + configuration.keepAliveInterval
        }
        if staleness.tick(at: now, effects: &effects), awaiting == nil {
            effects.send(Self.startRealTime)
            awaiting = (.startRealTime, now + configuration.answerTimeout)
        }
    }

    /// The sample for one real-time packet (the table above).
    public static func sample(_ data: Contec.RealTimeData, at now: MonotonicInstant) -> VitalSample {
        var quality: OximetryQuality = []
        if data.probeError { quality.insert(.probeOff) }
        if data.searchingPulse { quality.insert(.searching) }
        if data.searchingTooLong { quality.insert(.outOfTrack) }
        if !data.probeError, !data.searchingPulse, data.signalStrength <= 1 { quality.insert(.lowPerfusion) }
        return VitalSample(arrivedAt: now, spo2: data.spo2, pulseRate: data.pulseRate,
                           perfusionIndex: data.usablePerfusionIndex, quality: quality)
    }

    // MARK: Internals

    private mutating func begin(at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        restartAt = nil
        resetDecoder()
        staleness.linkUp(at: now, watchFromNow: false)  // the answer deadline covers the start
        effects.send(Self.startRealTime)
        awaiting = (.startRealTime, now + configuration.answerTimeout)
        keepAliveAt = now + configuration.keepAliveInterval
    }

    private mutating func drop(at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        drops += 1
        awaiting = nil
        keepAliveAt = nil
        resetDecoder()
        staleness.linkDown(at: now, effects: &effects)
        restartAt = now + configuration.reconnectDelay
    }

    private mutating func resetDecoder() {
        let current = counters
        counterBase.framesDecoded = current.framesDecoded
        counterBase.framingErrors = current.framingErrors
        counterBase.bytesDiscarded = current.bytesDiscarded
        decoder = Contec.DeviceStreamDecoder()
    }
}

/// A Contec CMS50D+/E/F or CMS60C (protocol V7.0) on a serial port, 115200 8N1 (reference/protocols.md
/// §B4a). Never enable XON/XOFF on this link. See `ContecSession` for the rules and flag mapping;
/// `OximeterDriver` for threads and ownership.
public final class ContecOximeter: OximeterDriver<ContecSession>, @unchecked Sendable {
    /// Opens `path` (retrying every `reconnectInterval` until it can) and starts the real-time stream.
    public init(path: String, configuration: ContecSession.Configuration = .init(), name: String? = nil,
                clock: any MonotonicClock = SystemMonotonicClock(), reconnectInterval: Duration = .milliseconds(500)) {
        super.init(session: ContecSession(configuration: configuration), path: path, settings: .contec115200,
                   name: name ?? "contec \(path)", clock: clock, reconnectInterval: reconnectInterval)
    }
}
