import DeviceIO
import InfusionCore
import Logging
import Synchronization

/// The serial formats the oximeter drivers read, by their command-line names.
public enum OximeterProtocol: String, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    /// Nonin DF2: 5-byte frames, 75/s, 25-frame packets, 8-bit pleth (9600 8N1).
    case noninDF2 = "nonin-df2"
    /// Nonin DF7: as DF2 with a 16-bit pleth (9600 8N1).
    case noninDF7 = "nonin-df7"
    /// Nonin DF8: 4 bytes once a second (9600 8N1).
    case noninDF8 = "nonin-df8"
    /// Masimo Radical-5/7, Rad-8 "ASCII 1": one line a second (9600 8N1).
    case masimo
    /// Contec CMS50D+/E/F, CMS60C, protocol V7.0: 60 packets/s after a start command (115200 8N1).
    case contec

    /// The serial settings the device uses.
    public var serialSettings: SerialSettings {
        switch self {
        case .noninDF2, .noninDF7, .noninDF8: .nonin9600
        case .masimo: .masimo9600
        case .contec: .contec115200
        }
    }

    /// The command-line name ("nonin-df2").
    public var description: String { rawValue }
}

/// Counters a driver keeps about what it read. All only increase (over the driver's life, across
/// reconnects). A plain value.
public struct OximeterCounters: Hashable, Sendable {
    /// Frames, records, lines or packets decoded.
    public var framesDecoded = 0
    /// Framing errors: lost alignment, bytes that could not start a frame, truncated packets, unknown
    /// types, unreadable Masimo lines (Masimo and Contec have no checksum, so their errors count here).
    public var framingErrors = 0
    /// Frames whose checksum was wrong (Nonin DF2/DF7 only; the other formats have no checksum).
    public var checksumErrors = 0
    /// Bytes skipped while hunting for a frame.
    public var bytesDiscarded = 0
    /// Samples published.
    public var samplesPublished = 0
    /// Times the data stopped for longer than the staleness limit (connection went `.silent`).
    public var staleEpisodes = 0

    /// All zero.
    public init() {}
}

/// Something a driver reports that is neither a sample nor a connection change: the answers to its
/// own commands. For logs and the operator.
public enum OximeterNotice: Hashable, Sendable, CustomStringConvertible {
    /// Nonin accepted the set-format command (ACK).
    case dataFormatAccepted(String)
    /// Nonin refused the set-format command (NAK): the 9560 accepts it only in the first 5 s.
    case dataFormatRefused(String)
    /// A command expecting an answer got none in time.
    case noAnswer(command: String, after: Duration)
    /// Contec command feedback (0x0B): which command and why.
    case commandFeedback(command: String, reason: String)
    /// The device said it is disconnecting (Contec 0x0D).
    case deviceDisconnecting(reason: String)

    /// Human-readable text for logs and error messages.
    public var description: String {
        switch self {
        case .dataFormatAccepted(let format): "the oximeter accepted data format \(format)"
        case .dataFormatRefused(let format):
            "the oximeter refused data format \(format) (NAK): a Nonin 9560 accepts it only in the first 5 s after connecting; reconnect and retry, or set the format on the device"
        case let .noAnswer(command, after): "no answer to \(command) within \(after.humanReadable)"
        case let .commandFeedback(command, reason): "command \(command): \(reason)"
        case .deviceDisconnecting(let reason): "the oximeter is disconnecting (\(reason))"
        }
    }
}

/// What an oximeter session endpoint publishes, in order.
public enum OximeterOutput: Hashable, Sendable {
    /// A sample (values and quality flags).
    case sample(VitalSample)
    /// The connection state changed: `.connected` at the first valid sample after a link-up or a
    /// silence, `.silent` when no valid sample came within the staleness limit, `.disconnected` when
    /// the link went down (or the driver dropped it).
    case connection(DeviceConnection, at: MonotonicInstant)
    /// The explicit "no data" publication, with `.connection(.silent)`: no valid sample since
    /// `lastSampleAt` (nil: none since the link came up); the consumer must not use older samples.
    case noData(lastSampleAt: MonotonicInstant?, at: MonotonicInstant)
    /// Answers to the driver's own commands.
    case notice(OximeterNotice)
}

/// A pure oximeter session: a `LinkEndpoint` publishing `OximeterOutput`s, with read counters.
public protocol OximeterSession: LinkEndpoint where Output == OximeterOutput {
    /// What the session has read so far.
    var counters: OximeterCounters { get }
    /// How long without a valid sample before the connection is reported `.silent`.
    var staleAfter: Duration { get }
}

/// The interface every pulse-oximeter driver offers (issue 5). Drivers implement it over an
/// `EndpointHost` running the family's pure session endpoint.
///
/// Threads: every member may be called from any thread or task. Samples reach consumers two ways:
/// the `samples` stream (for tasks), and `setSampleHandler` (called synchronously on the driver's
/// link thread, no `AsyncStream` in between: the safety supervisor publishes into a lock-free cell
/// from there).
public protocol PulseOximeter: AnyObject, Sendable {
    /// A name for logs and the operator ("oximeter0 nonin-df2 on /dev/infusion/oximeter0").
    var name: String { get }
    /// Every sample, in arrival order. One consumer; created once (read it once and keep it). Keeps
    /// the newest 256 if the consumer falls behind.
    var samples: AsyncStream<VitalSample> { get }
    /// Connection changes, "no data" publications and notices, in order. One consumer; created once.
    var events: AsyncStream<OximeterOutput> { get }
    /// The current connection state, without I/O.
    var connection: DeviceConnection { get }
    /// The read counters (framing and checksum errors…), without I/O.
    var counters: OximeterCounters { get }
    /// The latest sample, without I/O (nil before the first, and after a "no data" publication or a
    /// disconnection: a stale sample is never offered as the latest).
    var latestSample: VitalSample? { get }
    /// Installs (or removes, with nil) the consumer called with each sample on the driver's link thread,
    /// before the sample is put on `samples`. It must return quickly and must not call `close()`.
    func setSampleHandler(_ handler: (@Sendable (VitalSample) -> Void)?)
    /// Closes the link and stops the driver's threads. Idempotent; ends both streams.
    func close()
}

/// The common public driver class: runs an `OximeterSession` in an `EndpointHost` on a serial port
/// (or pty slave) at `path`, reopening it every `reconnectInterval` after an unplug.
///
/// The host owns the port's file descriptor. Use the family subclasses (`NoninOximeter`,
/// `MasimoOximeter`, `ContecOximeter`) or `makePulseOximeter(protocol:path:)`.
public class OximeterDriver<Session: OximeterSession>: PulseOximeter, @unchecked Sendable {
    /// See `PulseOximeter.name`.
    public let name: String
    /// See `PulseOximeter.samples`.
    public let samples: AsyncStream<VitalSample>
    /// See `PulseOximeter.events`.
    public let events: AsyncStream<OximeterOutput>

    private let sampleContinuation: AsyncStream<VitalSample>.Continuation
    private let eventContinuation: AsyncStream<OximeterOutput>.Continuation
    private let state = Mutex<(connection: DeviceConnection, latest: VitalSample?)>((.disconnected, nil))
    private let handler = Mutex<(@Sendable (VitalSample) -> Void)?>(nil)
    private let host: EndpointHost<Session>
    private let logger: Logger

    /// A driver for `session` on the serial device at `path` (opened with `settings`), started at once.
    /// `clock` times everything (inject a `ScaledClock` for scaled simulation).
    public init(session: Session, path: String, settings: SerialSettings, name: String,
                clock: any MonotonicClock = SystemMonotonicClock(), reconnectInterval: Duration = .milliseconds(500)) {
        self.name = name
        var logger = Logger(label: "infusion.oximeter")
        logger[metadataKey: "device"] = "\(name)"
        self.logger = logger
        (samples, sampleContinuation) = AsyncStream.makeStream(of: VitalSample.self, bufferingPolicy: .bufferingNewest(256))
        (events, eventContinuation) = AsyncStream.makeStream(of: OximeterOutput.self, bufferingPolicy: .bufferingNewest(256))
        let relay = OutputRelay()
        host = EndpointHost(
            endpoint: session, name: name, clock: clock, reconnectInterval: reconnectInterval,
            open: { () throws(DeviceIOError) -> any ByteLink in
                DescriptorLink(port: try SerialPort(path: path, settings: settings), clock: clock)
            },
            onOutput: { output in relay.target?(output) })
        relay.target = { [weak self] output in self?.handle(output) }
        host.start()
    }

    private func handle(_ output: OximeterOutput) {
        switch output {
        case .sample(let sample):
            state.withLock { $0.latest = sample }
            let consumer = handler.withLock { $0 }
            consumer?(sample)
            sampleContinuation.yield(sample)
            return
        case let .connection(connection, _):
            state.withLock {
                $0.connection = connection
                if connection != .connected { $0.latest = nil }
            }
            logger.info("connection \(connection)")
        case .noData:
            state.withLock { $0.latest = nil }
        case .notice(let notice):
            logger.notice("\(notice)")
        }
        eventContinuation.yield(output)
    }

    /// See `PulseOximeter.connection`.
    public var connection: DeviceConnection { state.withLock { $0.connection } }
    /// See `PulseOximeter.latestSample`.
    public var latestSample: VitalSample? { state.withLock { $0.latest } }
    /// See `PulseOximeter.counters` (read under the host's lock; no I/O).
    public var counters: OximeterCounters { host.perform { session, _, _ in session.counters } }
    /// See `PulseOximeter.setSampleHandler(_:)`.
    public func setSampleHandler(_ handler: (@Sendable (VitalSample) -> Void)?) { self.handler.withLock { $0 = handler } }

    /// See `PulseOximeter.close()`. Call it when done: the link thread runs until then.
    public func close() {
        host.stop()
        sampleContinuation.finish()
        eventContinuation.finish()
    }

    deinit {
        sampleContinuation.finish()
        eventContinuation.finish()
    }
}

/// Hands the host's outputs to the driver once it exists (the host is created in the driver's init).
private final class OutputRelay: @unchecked Sendable {
    // Written once, in the driver's init, before the host starts; read only afterwards.
    var target: (@Sendable (OximeterOutput) -> Void)?
}

/// Opens the right driver for `protocol` on `path` and starts it. `name` defaults to "oximeter <path>".
public func makePulseOximeter(protocol format: OximeterProtocol, path: String, name: String? = nil,
                              clock: any MonotonicClock = SystemMonotonicClock()) -> any PulseOximeter {
    let label = name ?? "oximeter \(path)"
    switch format {
    case .noninDF2: return NoninOximeter(path: path, configuration: .init(format: .df2), name: label, clock: clock)
    case .noninDF7: return NoninOximeter(path: path, configuration: .init(format: .df7), name: label, clock: clock)
    case .noninDF8: return NoninOximeter(path: path, configuration: .init(format: .df8), name: label, clock: clock)
    case .masimo: return MasimoOximeter(path: path, name: label, clock: clock)
    case .contec: return ContecOximeter(path: path, name: label, clock: clock)
    }
}

// MARK: - Shared session parts

/// Connection state and staleness shared by the sessions: `.connected` at the first sample after
/// link-up or silence; `.silent` + `noData` when no sample arrives within `staleAfter` (counted from
/// the last sample, or from link-up); `.disconnected` at link-down. Pure.
struct StalenessMonitor: Sendable {
    let staleAfter: Duration
    private(set) var published: DeviceConnection = .disconnected
    private(set) var linkUp = false
    private(set) var lastSampleAt: MonotonicInstant?
    private var watchFrom: MonotonicInstant?
    private(set) var staleEpisodes = 0

    init(staleAfter: Duration) { self.staleAfter = staleAfter }

    /// When the silence rule fires next (nil while silent, or with the link down).
    var deadline: MonotonicInstant? {
        guard linkUp, published != .silent, let from = lastSampleAt ?? watchFrom else { return nil }
        return from + staleAfter
    }

    /// The link is up. `watchFromNow`: count the silence from now (false: only from the first sample,
    /// when another rule, such as an answer deadline, covers the start).
    mutating func linkUp(at now: MonotonicInstant, watchFromNow: Bool = true) {
        linkUp = true
        lastSampleAt = nil
        watchFrom = watchFromNow ? now : nil
    }

    mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        linkUp = false
        lastSampleAt = nil
        watchFrom = nil
        if published != .disconnected {
            published = .disconnected
            effects.emit(.connection(.disconnected, at: now))
        }
    }

    /// A valid sample arrived: publishes `.connected` first when needed.
    mutating func sampleArrived(at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) {
        lastSampleAt = now
        if published != .connected {
            published = .connected
            effects.emit(.connection(.connected, at: now))
        }
    }

    /// Fires the silence rule when due. Returns true when it did.
    @discardableResult
    mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<OximeterOutput>) -> Bool {
        guard let due = deadline, now >= due else { return false }
        published = .silent
        staleEpisodes += 1
        effects.emit(.connection(.silent, at: now))
        effects.emit(.noData(lastSampleAt: lastSampleAt, at: now))
        return true
    }
}

/// Maps a device's own time line (a timer or clock, as a duration from its origin) onto the host's
/// monotonic clock: offset = the smallest (arrival − device time) seen, i.e. the sample that travelled
/// fastest; `measuredAt` = device time + offset, never later than arrival. A jump of more than
/// `tolerance` against the estimate (device clock set, timer wrapped oddly, device reset) starts over.
/// Pure.
struct DeviceClockMapper: Sendable {
    var tolerance: Duration = .seconds(3)
    private var offset: Duration?

    mutating func reset() { offset = nil }

    mutating func measuredAt(deviceTime: Duration, arrivedAt: MonotonicInstant) -> MonotonicInstant {
        let candidate = Duration.nanoseconds(arrivedAt.nanoseconds) - deviceTime
        if let current = offset, abs((candidate - current).nanoseconds) <= tolerance.nanoseconds {
            offset = min(current, candidate)
        } else {
            offset = candidate
        }
        let mapped = MonotonicInstant(nanoseconds: (deviceTime + (offset ?? candidate)).nanoseconds)
        return min(mapped, arrivedAt)
    }
}
