import DeviceIO
import DeviceProtocols
import Foundation
import InfusionCore
import Logging
import Synchronization

/// A New Era syringe pump (NE-300/500/1000/1600/4000 and OEM versions) as an `InfusionPump`: the pure
/// `NewEraSession` run over a serial port (or any `ByteLink`) by an `EndpointHost`.
///
/// Safe mode is on by default (watchdog 5 s, [P]): the pump stops itself and raises alarm T when this
/// program goes silent; the session keeps it fed with status queries. When the port disappears
/// (unplugged adapter) the host reopens it every `reconnectInterval` and the session re-arms safe mode.
///
/// Threads: every method may be called from any thread or task. The async calls suspend until the
/// session reports the request's outcome. `sendStopNow()` never allocates or blocks on the session: it
/// writes a frame encoded at `init` on the current link. Ownership: the pump owns its link (opened
/// through `open`) and closes it on `close()`.
public final class NewEraPump: InfusionPump {
    /// A name for logs and the operator.
    public let name: String
    /// New Era safe mode stops the pump when the controller goes silent.
    public let safety = PumpSafetyFeatures(
        stopsWhenControllerSilent: true,
        explanation: "New Era safe mode: the pump stops itself and raises alarm T when it receives no valid "
            + "packet within its time-out; the driver sends a status query at least every third of it")
    /// Connection, alarm and status changes, as they happen (buffering the newest 64).
    public let events: AsyncStream<PumpEvent>

    private let host: any EndpointRunner<NewEraSession>
    private let router: Router
    private let safeStopFrame: [UInt8]
    private let basicStopFrame: [UInt8]

    /// A pump on the serial port at `path` (`/dev/infusion/pump0`, a pty), at `baudRate` 8N1.
    /// Starts connecting at once; calls made before the handshake wait for it.
    public convenience init(path: String, baudRate: BaudRate = .b19200, configuration: NewEraSession.Configuration = .init(),
                            clock: any MonotonicClock = SystemMonotonicClock(), reconnectInterval: Duration = .milliseconds(250)) {
        let settings = SerialSettings(baudRate: baudRate)
        self.init(name: "newera \(path)", configuration: configuration, clock: clock, reconnectInterval: reconnectInterval) {
            () throws(DeviceIOError) -> any ByteLink in
            DescriptorLink(port: try SerialPort(path: path, settings: settings), clock: clock)
        }
    }

    /// A pump over links made by `open` (called at start and on every reconnect attempt).
    public convenience init(name: String, configuration: NewEraSession.Configuration = .init(), clock: any MonotonicClock = SystemMonotonicClock(),
                            reconnectInterval: Duration = .milliseconds(250), open: @escaping EndpointHost<NewEraSession>.Opener) {
        self.init(name: name, configuration: configuration) { session, onOutput in
            let host = EndpointHost(endpoint: session, name: name, clock: clock, reconnectInterval: reconnectInterval, open: open,
                                    onOutput: onOutput)
            host.start()
            return host
        }
    }

    /// A pump whose session runs in a `VirtualNetwork` (virtual time): the same driver, for tests and
    /// simulations that must run hours in seconds. Connect `runner.node` to a simulated pump. Each call
    /// runs the network until the session has answered it; call from one task at a time.
    public static func virtual(name: String, configuration: NewEraSession.Configuration = .init(), network: VirtualNetwork)
        -> (pump: NewEraPump, runner: VirtualEndpointRunner<NewEraSession>) {
        var made: VirtualEndpointRunner<NewEraSession>?
        let pump = NewEraPump(name: name, configuration: configuration) { session, onOutput in
            let runner = VirtualEndpointRunner(network: network, endpoint: session, onOutput: onOutput) { !$0.hasPendingRequests }
            made = runner
            return runner
        }
        // `makeRunner` runs synchronously inside `init`, so `made` is set here.
        return (pump, made ?? VirtualEndpointRunner(network: network, endpoint: NewEraSession(), onOutput: { _ in }) { _ in true })
    }

    /// A pump whose session is run by the runner `makeRunner` returns (given the session and the
    /// output handler it must call with every output, in order).
    public init(name: String, configuration: NewEraSession.Configuration = .init(),
                makeRunner: (NewEraSession, @escaping @Sendable (NewEraSession.Output) -> Void) -> any EndpointRunner<NewEraSession>) {
        self.name = name
        let (stream, continuation) = AsyncStream<PumpEvent>.makeStream(bufferingPolicy: .bufferingNewest(64))
        events = stream
        var logger = Logger(label: "infusion.driver.newera")
        logger[metadataKey: "pump"] = "\(name)"
        let router = Router(continuation: continuation, logger: logger)
        self.router = router
        (safeStopFrame, basicStopFrame) = Self.stopFrames(address: configuration.address)
        host = makeRunner(NewEraSession(configuration: configuration), { router.handle($0) })
    }

    deinit { host.stop() }

    // MARK: InfusionPump

    /// Rate limits for the syringe last confirmed by `configureSyringe` (advisory: the pump's `?OOR`
    /// is authoritative), and the pump's 4-significant-digit resolution (no fixed step).
    public var capabilities: PumpCapabilities {
        guard let diameter = router.diameter else { return PumpCapabilities() }
        let limits = NewEra.RateLimits(diameterMillimetres: diameter)
        return PumpCapabilities(maximumRate: limits.maximumRate, minimumRate: limits.minimumRate)
    }

    /// The last status received, without I/O.
    public var lastStatus: PumpStatus? { router.lastStatus }

    /// `VER`: model ("NE1000") and firmware ("3.928"); New Era pumps report no serial number.
    public func identify() async -> PumpCommandOutcome<PumpIdentity> {
        switch await perform(.identify) {
        case .confirmed(.version(let version)):
            return .confirmed(PumpIdentity(family: "newera", model: "NE\(version.model)" + (version.isUpgrade ? "X" : ""),
                                           firmware: version.firmware))
        case let other: return Self.unexpected(other)
        }
    }

    /// `DIA`: sets the inside diameter (rounded down to the pump's 4 digits) and reads it back.
    public func configureSyringe(insideDiameterMillimetres: Double) async -> PumpCommandOutcome<Double> {
        let limits = NewEra.RateLimits.self
        guard insideDiameterMillimetres.isFinite,
              insideDiameterMillimetres >= limits.minimumDiameterMillimetres,
              insideDiameterMillimetres <= limits.maximumDiameterMillimetres,
              let number = NewEra.Number.roundingDown(insideDiameterMillimetres)
        else {
            return .refused(PumpRefusal(code: "diameter", description:
                "syringe diameter \(insideDiameterMillimetres) mm is outside what New Era pumps accept (0.1–80 mm)"))
        }
        switch await perform(.setDiameter(number)) {
        case .confirmed(.diameter(let confirmed)):
            router.setDiameter(confirmed.value)
            return .confirmed(confirmed.value)
        case let other: return Self.unexpected(other)
        }
    }

    /// `RAT`: rounds toward less drug with `RateSetting.roundingDown`, sets it, reads it back, and
    /// reports what was asked and what is actually set.
    public func setRate(_ rate: VolumeRate) async -> PumpCommandOutcome<Rounded<VolumeRate>> {
        let setting: NewEra.RateSetting
        let rounded: Rounded<VolumeRate>
        do {
            (setting, rounded) = try NewEra.RateSetting.roundingDown(rate)
        } catch {
            return .refused(PumpRefusal(code: "rate", description: error.description))
        }
        switch await perform(.setRate(setting)) {
        case .confirmed(.rate(let confirmed)):
            return .confirmed(Rounded(requested: rounded.requested, actual: confirmed.volumeRate))
        case let other: return Self.unexpected(other)
        }
    }

    /// `VOL`: the volume to infuse in mL (µL below 10 mL, for resolution), rounded down to 4 digits.
    public func setVolumeToInfuse(_ volume: Volume) async -> PumpCommandOutcome<Rounded<Volume>> {
        guard case let (number, unit)? = Self.volumeSetting(for: volume) else {
            return .refused(PumpRefusal(code: "volume", description:
                "volume \(volume) cannot be sent to a New Era pump: it must be 0…9999 mL"))
        }
        switch await perform(.setVolume(number, unit)) {
        case .confirmed(.volume(let confirmed)):
            return .confirmed(Rounded(requested: volume, actual: confirmed.volume))
        case let other: return Self.unexpected(other)
        }
    }

    /// The `VOL` setting for `volume`: µL below 10 mL (for resolution), mL above, rounded down (toward
    /// less drug) to the pump's 4 significant digits. Nil when the volume is negative, not finite, or
    /// beyond what the pump prints (9999 mL). Pure; any thread. Shared with hosts that run
    /// `NewEraSession` themselves (the virtual-time session harness).
    public static func volumeSetting(for volume: Volume) -> (NewEra.Number, NewEra.VolumeUnit)? {
        let unit: NewEra.VolumeUnit = volume < Volume(10, .millilitres) ? .microlitres : .millilitres
        let rounded = volume.roundedDown(significantDigits: 4, maxFractionDigits: 3, in: unit.volumeUnit)
        guard volume.canonicalValue.isFinite, volume.canonicalValue >= 0,
              let number = NewEra.Number.roundingDown(rounded.actual.value(in: unit.volumeUnit))
        else { return nil }
        return (number, unit)
    }

    /// `DIR INF` + `RUN`: confirmed when the pump reports infusing; clears latched alarms.
    public func start() async -> PumpCommandOutcome<PumpStatus> { await statusOutcome(.start) }

    /// `STP`: confirmed when the pump reports paused or stopped.
    public func stop() async -> PumpCommandOutcome<PumpStatus> { await statusOutcome(.stop) }

    /// Status query + `DIS` + `RAT`.
    public func status() async -> PumpCommandOutcome<PumpStatus> { await statusOutcome(.status) }

    /// `CLD INF`, read back with `DIS`.
    public func clearVolume() async -> PumpCommandOutcome<Volume> {
        switch await perform(.clearInfused) {
        case .confirmed(.dispensed(let dispensed)): return .confirmed(dispensed.infusedVolume)
        case let other: return Self.unexpected(other)
        }
    }

    /// `SAF<n>`: arms safe mode with `timeout` rounded down to whole seconds (1…255 s); the session
    /// keeps it fed and re-arms it after every reconnect.
    public func armWatchdog(timeout: Duration) async -> PumpCommandOutcome<Duration> {
        let seconds = timeout.components.seconds
        guard (1...255).contains(seconds) else {
            return .refused(PumpRefusal(code: "SAF", description:
                "a New Era safe-mode time-out must be 1 to 255 whole seconds (asked \(timeout.humanReadable))"))
        }
        return await safeMode(UInt8(seconds))
    }

    /// `SAF0`: back to basic mode (no watchdog).
    public func disarmWatchdog() async -> PumpCommandOutcome<Duration> { await safeMode(0) }

    /// `SAF`: the safe-mode time-out the pump has stored, in whole seconds (0 = basic mode). The pump keeps
    /// it across power cycles. (The session re-arms its own configured time-out at every connection.)
    public func readSafeMode() async -> PumpCommandOutcome<UInt8> {
        switch await perform(.readSafeMode) {
        case .confirmed(.safeMode(let seconds)): return .confirmed(seconds)
        case let other: return Self.unexpected(other)
        }
    }

    /// `*ADR<n>` (or `*ADR<n>B<baud>`): a configuration command (technician use, pump stopped). Sets the
    /// pump's network address, confirmed by its reply from the new address; later calls go to the new
    /// address, but `sendStopNow()` keeps the frame encoded for the old one: close this driver and open a
    /// new one. With `baudRate`, the pump answers at the new rate, which this port (at the old rate) cannot
    /// read on a real line: the outcome is then usually `.uncertain`; confirm by opening the pump at the
    /// new address and rate and identifying it.
    public func setNetworkAddress(_ address: NewEra.Address, baudRate: NewEra.BaudRate? = nil) async -> PumpCommandOutcome<NewEra.Address> {
        switch await perform(.setAddress(address, baud: baudRate)) {
        case .confirmed(.address(let confirmed)): return .confirmed(confirmed)
        case let other: return Self.unexpected(other)
        }
    }

    /// Writes the pre-encoded `STP` frame (safe framing when the pump is in safe mode, basic otherwise)
    /// on the current link. Returns false when there is no link or the write failed. Does not allocate.
    public func sendStopNow() -> Bool {
        guard let link = host.currentLink else { return false }
        let frame = router.isSafe ? safeStopFrame : basicStopFrame
        do {
            try link.send(frame)
            return true
        } catch {
            return false
        }
    }

    /// The `STP` frames for the pump at `address`, encoded once: in safe framing (used while safe mode
    /// is on) and in basic framing. Pure; any thread. Shared with hosts that run `NewEraSession`
    /// themselves (the virtual-time session harness writes the same bytes as `sendStopNow()`).
    public static func stopFrames(address: NewEra.Address) -> (safe: [UInt8], basic: [UInt8]) {
        let stop = NewEra.CommandPacket(address: address, .stop)
        return ((try? NewEra.Framing.safePacket(stop)) ?? [], NewEra.Framing.basicCommand(stop))
    }

    /// Stops the host thread and closes the link; outstanding calls end `.uncertain`.
    public func close() {
        host.stop()
        router.closeAll()
    }

    // MARK: Internals

    private func safeMode(_ seconds: UInt8) async -> PumpCommandOutcome<Duration> {
        switch await perform(.setSafeMode(seconds: seconds)) {
        case .confirmed(.safeMode(let armed)): return .confirmed(.seconds(Int(armed)))
        case let other: return Self.unexpected(other)
        }
    }

    private func statusOutcome(_ request: NewEraSession.Request) async -> PumpCommandOutcome<PumpStatus> {
        switch await perform(request) {
        case .confirmed(.status(let status)): return .confirmed(status)
        case let other: return Self.unexpected(other)
        }
    }

    private func perform(_ request: NewEraSession.Request) async -> NewEraSession.Outcome {
        await withCheckedContinuation { (continuation: CheckedContinuation<NewEraSession.Outcome, Never>) in
            guard let id = router.register(continuation) else { return }
            host.perform { session, now, effects in session.submit(request, id: id, now: now, effects: &effects) }
        }
    }

    private static func unexpected<T>(_ outcome: NewEraSession.Outcome) -> PumpCommandOutcome<T> {
        switch outcome {
        case .confirmed(let answer): .uncertain(reason: "unexpected answer from the session: \(answer)")
        case let .refused(code, reason): .refused(PumpRefusal(code: code, description: reason))
        case .uncertain(let reason): .uncertain(reason: reason)
        }
    }

    /// Receives the session's outputs (on the host's threads) and resumes the waiting calls.
    private final class Router: Sendable {
        private struct State {
            var nextID: NewEraSession.RequestID = 1
            var waiting: [NewEraSession.RequestID: CheckedContinuation<NewEraSession.Outcome, Never>] = [:]
            var lastStatus: PumpStatus?
            var diameter: Double?
            var closed = false
        }
        private let state = Mutex(State())
        private let safe = Atomic<Bool>(false)
        private let continuation: AsyncStream<PumpEvent>.Continuation
        private let logger: Logger

        init(continuation: AsyncStream<PumpEvent>.Continuation, logger: Logger) {
            self.continuation = continuation
            self.logger = logger
        }

        var isSafe: Bool { safe.load(ordering: .relaxed) }
        var lastStatus: PumpStatus? { state.withLock { $0.lastStatus } }
        var diameter: Double? { state.withLock { $0.diameter } }
        func setDiameter(_ value: Double?) { state.withLock { $0.diameter = value } }

        /// A new request id for `continuation`, or nil (and the continuation resumed) after `closeAll`.
        func register(_ waiting: CheckedContinuation<NewEraSession.Outcome, Never>) -> NewEraSession.RequestID? {
            let id: NewEraSession.RequestID? = state.withLock { state in
                guard !state.closed else { return nil }
                let id = state.nextID
                state.nextID += 1
                state.waiting[id] = waiting
                return id
            }
            if id == nil { waiting.resume(returning: .uncertain("not sent: the pump driver is closed")) }
            return id
        }

        func handle(_ output: NewEraSession.Output) {
            switch output {
            case let .completed(id, outcome):
                state.withLock { $0.waiting.removeValue(forKey: id) }?.resume(returning: outcome)
            case let .connection(connection, at):
                logger.notice("connection: \(connection)")
                continuation.yield(.connection(connection, at: at))
            case let .alarms(alarms, at):
                if alarms.isEmpty {
                    logger.notice("pump alarms cleared")
                } else {
                    logger.warning("pump alarms: \(alarms.names.joined(separator: ", "))")
                }
                continuation.yield(.alarms(alarms, at: at))
            case .status(let status):
                state.withLock { $0.lastStatus = status }
                continuation.yield(.status(status))
            case .framing(let mode):
                safe.store(mode == .safe, ordering: .relaxed)
            }
        }

        func closeAll() {
            let waiting = state.withLock { state in
                state.closed = true
                defer { state.waiting.removeAll() }
                return Array(state.waiting.values)
            }
            for continuation in waiting { continuation.resume(returning: .uncertain("the pump driver was closed")) }
            continuation.finish()
        }
    }
}
