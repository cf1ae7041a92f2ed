import DeviceIO
import DeviceProtocols
import InfusionCore
import Logging
import Synchronization

/// One serial port to a Fresenius Kabi Base A rack (19200 7E1): the shared link multiplexer. It runs
/// one `FreseniusSession` in one `EndpointHost` for the port and hands out one `FreseniusPump` per
/// configured slot; every module's requests go through the same session (one frame in flight, ENQ
/// answered at once), and its outputs are routed to the module they concern.
///
/// Threads: any. The host owns the port's descriptor; the port closes when the rack is closed or the
/// last of its pumps is closed.
public final class FreseniusRack: Sendable {
    /// The pumps of the configured slots, in slot order.
    public let pumps: [FreseniusPump]
    let core: FreseniusCore

    /// A rack on the serial port at `path`, driving `configuration.modules`. Starts at once.
    public convenience init(name: String, path: String, configuration: FreseniusSessionConfiguration = FreseniusSessionConfiguration(),
                            settings: SerialSettings = .fresenius19200, clock: any MonotonicClock = SystemMonotonicClock(),
                            reconnectInterval: Duration = .milliseconds(500)) {
        self.init(name: name, configuration: configuration, clock: clock, reconnectInterval: reconnectInterval) { () throws(DeviceIOError) -> any ByteLink in
            DescriptorLink(port: try SerialPort(path: path, settings: settings), clock: clock)
        }
    }

    /// A rack over links made by `open` (tests, other transports). Starts at once.
    public init(name: String, configuration: FreseniusSessionConfiguration = FreseniusSessionConfiguration(),
                clock: any MonotonicClock, reconnectInterval: Duration = .milliseconds(500),
                open: @escaping EndpointHost<FreseniusSession>.Opener) {
        let core = FreseniusCore(name: name, configuration: configuration, clock: clock, reconnectInterval: reconnectInterval, open: open)
        self.core = core
        pumps = configuration.modules.map { FreseniusPump(core: core, slot: $0, name: "\(name) module \($0)") }
        core.host.start()
    }

    /// The pump in `slot`, if this rack drives it.
    public func pump(slot: Int) -> FreseniusPump? { pumps.first { $0.slot == slot } }

    /// Closes every pump and the port.
    public func close() { for pump in pumps { pump.close() } }
}

/// The shared state behind a rack and its pumps.
final class FreseniusCore: Sendable {
    let host: EndpointHost<FreseniusSession>
    let waiters = ClinicalRequestWaiters()
    let boxes: [Int: ClinicalPumpEvents]
    private let open = Mutex<Set<Int>>([])

    init(name: String, configuration: FreseniusSessionConfiguration, clock: any MonotonicClock, reconnectInterval: Duration,
         open: @escaping EndpointHost<FreseniusSession>.Opener) {
        var boxes: [Int: ClinicalPumpEvents] = [:]
        for slot in configuration.modules { boxes[slot] = ClinicalPumpEvents() }
        self.boxes = boxes
        self.open.withLock { $0 = Set(configuration.modules) }
        let waiters = self.waiters
        var logger = Logger(label: "infusion.driver.fresenius")
        logger[metadataKey: "rack"] = "\(name)"
        host = EndpointHost(endpoint: FreseniusSession(configuration: configuration), name: name, clock: clock,
                            reconnectInterval: reconnectInterval, open: open) { [logger, boxes] output in
            switch output {
            case let .completed(id, result): waiters.resume(id, with: result)
            case let .connection(slot, state, at):
                logger.info("module \(slot): connection \(state)")
                boxes[slot]?.publish(.connection(state, at: at))
            case let .alarms(slot, set, at):
                if !set.isEmpty { logger.warning("module \(slot) alarms: \(set.names.joined(separator: ", "))") }
                boxes[slot]?.publish(.alarms(set, at: at))
            case let .status(slot, status): boxes[slot]?.publish(.status(status))
            case let .modules(set, _): logger.info("rack slots occupied: \(set.slots)")
            }
        }
    }

    func run(_ request: FreseniusRequest, slot: Int) async -> ClinicalPumpResult {
        await waiters.wait { id in
            host.perform { session, now, effects in session.submit(request, slot: slot, id: id, at: now, effects: &effects) }
        }
    }

    /// Marks `slot` closed; the last one stops the host.
    func close(slot: Int) {
        let remaining = open.withLock { set -> Int? in
            guard set.remove(slot) != nil else { return nil }
            return set.count
        }
        guard let remaining else { return }
        boxes[slot]?.finish()
        if remaining == 0 {
            host.stop()
            waiters.resumeAll(with: .uncertain("the Fresenius driver was closed before the pump answered"))
        }
    }
}

/// One syringe module of a Fresenius Kabi Base A rack behind the `InfusionPump` interface. Made by
/// `FreseniusRack`; shares the rack's port and session with the other modules.
///
/// Threads: every method may be called from any task or thread.
public final class FreseniusPump: InfusionPump {
    /// "pump0 module 2".
    public let name: String
    /// The rack slot (1...5).
    public let slot: Int
    private let core: FreseniusCore
    private let stopFrame: [UInt8]

    /// What this family does when the controller goes silent, stated honestly.
    public static let safetyFeatures = PumpSafetyFeatures(
        stopsWhenControllerSilent: false,
        explanation: "A Fresenius Base A/Agilia module drops the remote session when the controller stops answering its ENQ keep-alive and falls back to local control; it is not known to stop the infusion then. The supervisor's own stop path and bedside observation are the only protection.")

    /// 0.1 mL/h steps (the `d`/`PR` unit); the range is not public, so none is claimed.
    public static let pumpCapabilities = PumpCapabilities(rateResolution: FreseniusRate.resolution)

    init(core: FreseniusCore, slot: Int, name: String) {
        self.core = core
        self.slot = slot
        self.name = name
        let frame = (try? FreseniusCommand.pause.frame(to: FreseniusAddress.module(slot) ?? .base))?.bytes
        stopFrame = frame ?? []
    }

    /// Not known to stop by itself (see `safetyFeatures`).
    public var safety: PumpSafetyFeatures { Self.safetyFeatures }
    /// 0.1 mL/h resolution.
    public var capabilities: PumpCapabilities { Self.pumpCapabilities }

    /// `LF;b`: the device type, reported as the model (no serial number or firmware is public).
    public func identify() async -> PumpCommandOutcome<PumpIdentity> {
        await core.run(.identify, slot: slot).outcome { if case let .identity(value) = $0 { value } else { nil } }
    }

    /// Refused: the module identifies the syringe itself.
    public func configureSyringe(insideDiameterMillimetres: Double) async -> PumpCommandOutcome<Double> {
        .refused(ClinicalRefusals.syringeFromPump("Fresenius"))
    }

    /// `PR;<hex>` rounded down to 0.1 mL/h, confirmed by reading `d` back.
    public func setRate(_ rate: VolumeRate) async -> PumpCommandOutcome<Rounded<VolumeRate>> {
        await core.run(.setRate(rate), slot: slot).outcome { if case let .rate(value) = $0 { value } else { nil } }
    }

    /// Refused: the `PV` (limit volume) argument format is not public.
    public func setVolumeToInfuse(_ volume: Volume) async -> PumpCommandOutcome<Rounded<Volume>> {
        .refused(PumpRefusal(code: "PV-format-unknown", description: "the Fresenius limit-volume command (PV) has no public argument format: set the volume limit at the pump"))
    }

    /// Refused: no public remote start command (start at the keypad; see `FreseniusRequest.start`).
    public func start() async -> PumpCommandOutcome<PumpStatus> {
        await core.run(.start, slot: slot).outcome { if case let .status(value) = $0 { value } else { nil } }
    }

    /// `PO` (pause) ahead of anything queued, then a status read.
    public func stop() async -> PumpCommandOutcome<PumpStatus> {
        await core.run(.stop, slot: slot).outcome { if case let .status(value) = $0 { value } else { nil } }
    }

    /// `LE;dram`.
    public func status() async -> PumpCommandOutcome<PumpStatus> {
        await core.run(.status, slot: slot).outcome { if case let .status(value) = $0 { value } else { nil } }
    }

    /// The last status received (polled every second), without I/O.
    public var lastStatus: PumpStatus? { core.boxes[slot]?.lastStatus }

    /// `RV`, confirmed by reading `r` back.
    public func clearVolume() async -> PumpCommandOutcome<Volume> {
        await core.run(.clearVolume, slot: slot).outcome { if case let .volumeCleared(value) = $0 { value } else { nil } }
    }

    /// Refused: no pump-side watchdog is documented (see `safety`).
    public func armWatchdog(timeout: Duration) async -> PumpCommandOutcome<Duration> { .refused(ClinicalRefusals.noWatchdog("Fresenius Base A/Agilia")) }

    /// Refused: no pump-side watchdog is documented.
    public func disarmWatchdog() async -> PumpCommandOutcome<Duration> { .refused(ClinicalRefusals.noWatchdog("Fresenius Base A/Agilia")) }

    /// This module's connection, alarm and status changes.
    public var events: AsyncStream<PumpEvent> { core.boxes[slot]?.stream ?? AsyncStream { $0.finish() } }

    /// Writes this module's `PO` frame (encoded at init) on the shared port now, from the calling thread.
    public func sendStopNow() -> Bool {
        guard !stopFrame.isEmpty, let link = core.host.currentLink else { return false }
        do { try link.send(stopFrame) } catch { return false }
        return true
    }

    /// Detaches this module; the port closes when the last module of the rack is closed.
    public func close() { core.close(slot: slot) }
}
