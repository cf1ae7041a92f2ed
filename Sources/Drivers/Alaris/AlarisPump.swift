import DeviceIO
import DeviceProtocols
import InfusionCore
import Logging

/// An Alaris (CareFusion/BD) Asena GH/CC syringe pump behind the `InfusionPump` interface: the pure
/// `AlarisSession` run over the serial port (38400 8N1) by an `EndpointHost`.
///
/// At connect it reads the serial number, derives the remote code and keeps the remote-control lease
/// renewed once a second for as long as it is open. Commands are confirmed by the pump's echo (rate,
/// VTBI) or by its status line (start, stop); time-outs and link loss give `.uncertain`.
///
/// Threads: every method may be called from any task or thread. The host owns the port's descriptor
/// and closes it on `close()`.
public final class AlarisPump: InfusionPump {
    /// "pump0 on /dev/infusion/pump0".
    public let name: String
    /// Not known to stop by itself: see `AlarisPump.safetyFeatures`.
    public var safety: PumpSafetyFeatures { Self.safetyFeatures }
    /// 0.01 mL/h steps; 0.1 to 1200 mL/h as OpenICE's driver limits it **[unverified]** for the GH.
    public var capabilities: PumpCapabilities { Self.pumpCapabilities }

    /// What this family does when the controller goes silent, stated honestly.
    public static let safetyFeatures = PumpSafetyFeatures(
        stopsWhenControllerSilent: false,
        explanation: "The Asena drops remote control when the controller stops renewing its lease, but no public source says it then stops the infusion; like pumps in local mode it is assumed to keep infusing at the last rate. The supervisor's own stop path and bedside observation are the only protection.")

    /// Rate resolution and range (see `capabilities`).
    public static let pumpCapabilities = PumpCapabilities(
        rateResolution: AlarisRate.resolution, maximumRate: .millilitresPerHour(1200), minimumRate: .millilitresPerHour(0.1),
        volumeResolution: AlarisVolume.resolution)

    private let host: EndpointHost<AlarisSession>
    private let waiters: ClinicalRequestWaiters
    private let eventBox: ClinicalPumpEvents
    private let stopFrame: [UInt8]

    /// A pump on the serial port at `path` (a stable `/dev/infusion/...` name or a pty). Starts at once;
    /// reconnects every `reconnectInterval` while the port is missing.
    public convenience init(name: String, path: String, configuration: AlarisSessionConfiguration = AlarisSessionConfiguration(),
                            settings: SerialSettings = .alaris38400, clock: any MonotonicClock = SystemMonotonicClock(),
                            reconnectInterval: Duration = .milliseconds(500)) {
        self.init(name: name, configuration: configuration, clock: clock, reconnectInterval: reconnectInterval) { () throws(DeviceIOError) -> any ByteLink in
            DescriptorLink(port: try SerialPort(path: path, settings: settings), clock: clock)
        }
    }

    /// A pump over links made by `open` (tests, other transports). Starts at once.
    public init(name: String, configuration: AlarisSessionConfiguration = AlarisSessionConfiguration(),
                clock: any MonotonicClock, reconnectInterval: Duration = .milliseconds(500),
                open: @escaping EndpointHost<AlarisSession>.Opener) {
        self.name = name
        let waiters = ClinicalRequestWaiters()
        let events = ClinicalPumpEvents()
        self.waiters = waiters
        self.eventBox = events
        stopFrame = AlarisCommand.stop.frame
        var logger = Logger(label: "infusion.driver.alaris")
        logger[metadataKey: "pump"] = "\(name)"
        host = EndpointHost(endpoint: AlarisSession(configuration: configuration), name: name, clock: clock,
                            reconnectInterval: reconnectInterval, open: open) { [logger] output in
            switch output {
            case let .completed(id, result): waiters.resume(id, with: result)
            case let .connection(state, at):
                logger.info("connection \(state)")
                events.publish(.connection(state, at: at))
            case let .alarms(set, at):
                if !set.isEmpty { logger.warning("alarms: \(set.names.joined(separator: ", "))") }
                events.publish(.alarms(set, at: at))
            case let .status(status): events.publish(.status(status))
            }
        }
        host.start()
    }

    private func run(_ request: AlarisRequest) async -> ClinicalPumpResult {
        await waiters.wait { id in
            host.perform { session, now, effects in session.submit(request, id: id, at: now, effects: &effects) }
        }
    }

    /// Serial number (`INST_SERIALNO`) and protocol text (`COMMS_PROTOCOL`, reported as firmware).
    public func identify() async -> PumpCommandOutcome<PumpIdentity> {
        await run(.identify).outcome { if case let .identity(value) = $0 { value } else { nil } }
    }

    /// Refused: the Asena selects the syringe from its own library at the pump.
    public func configureSyringe(insideDiameterMillimetres: Double) async -> PumpCommandOutcome<Double> {
        .refused(ClinicalRefusals.syringeFromPump("Alaris Asena"))
    }

    /// `INF_RATE^<rate>^ml/h`, rounded down to 0.01 mL/h; confirmed by the pump's echo.
    public func setRate(_ rate: VolumeRate) async -> PumpCommandOutcome<Rounded<VolumeRate>> {
        await run(.setRate(rate)).outcome { if case let .rate(value) = $0 { value } else { nil } }
    }

    /// `INF_VTBI^ACTIV^<volume>^ml^STOP`, rounded down to 0.001 mL; confirmed by the pump's echo.
    public func setVolumeToInfuse(_ volume: Volume) async -> PumpCommandOutcome<Rounded<Volume>> {
        await run(.setVolumeToInfuse(volume)).outcome { if case let .volume(value) = $0 { value } else { nil } }
    }

    /// `INF_START`; confirmed when the status line then reports infusing.
    public func start() async -> PumpCommandOutcome<PumpStatus> {
        await run(.start).outcome { if case let .status(value) = $0 { value } else { nil } }
    }

    /// `INF_STOP` (ahead of anything queued); confirmed when the status line then reports stopped.
    public func stop() async -> PumpCommandOutcome<PumpStatus> {
        await run(.stop).outcome { if case let .status(value) = $0 { value } else { nil } }
    }

    /// The `INF` status line.
    public func status() async -> PumpCommandOutcome<PumpStatus> {
        await run(.status).outcome { if case let .status(value) = $0 { value } else { nil } }
    }

    /// The last status received (polled every second), without I/O.
    public var lastStatus: PumpStatus? { eventBox.lastStatus }

    /// Refused: no public Asena command clears the volume-infused counter.
    public func clearVolume() async -> PumpCommandOutcome<Volume> {
        .refused(PumpRefusal(code: "no-clear-volume", description: "no public Alaris Asena command clears the volume infused: clear it at the pump, or record the counter at the start of the session"))
    }

    /// Refused: no pump-side watchdog is documented (see `safety`).
    public func armWatchdog(timeout: Duration) async -> PumpCommandOutcome<Duration> { .refused(ClinicalRefusals.noWatchdog("Alaris Asena")) }

    /// Refused: no pump-side watchdog is documented.
    public func disarmWatchdog() async -> PumpCommandOutcome<Duration> { .refused(ClinicalRefusals.noWatchdog("Alaris Asena")) }

    /// Connection, alarm and status changes.
    public var events: AsyncStream<PumpEvent> { eventBox.stream }

    /// Writes `!INF_STOP|CD57\r` (encoded at init) on the current link from the calling thread.
    /// Whether a real Asena honours `INF_STOP` outside remote control is not public: keep the lease held.
    public func sendStopNow() -> Bool {
        guard let link = host.currentLink else { return false }
        do { try link.send(stopFrame) } catch { return false }
        return true
    }

    /// Ends remote control explicitly (`REMOTE_CTRL^DISABLED`, best effort), stops renewing the lease,
    /// closes the port and ends waiting requests as `.uncertain`. The pump then stays in local control
    /// and keeps doing what it was doing (stop it first if it must not infuse).
    public func close() {
        try? host.currentLink?.send(AlarisCommand.disableRemoteControl.frame)
        host.stop()
        waiters.resumeAll(with: .uncertain("the Alaris driver was closed before the pump answered"))
        eventBox.finish()
    }
}
