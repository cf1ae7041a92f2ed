import DeviceIO
import InfusionCore

/// Who and what a pump says it is.
public struct PumpIdentity: Hashable, Sendable, Codable {
    /// The protocol family ("newera", "alaris", "fresenius").
    public var family: String
    /// Model as reported ("NE1000").
    public var model: String
    /// Firmware version as reported ("3.928").
    public var firmware: String
    /// Serial number, where the device reports one.
    public var serialNumber: String?

    /// An identity; see each property.
    public init(family: String, model: String, firmware: String, serialNumber: String? = nil) {
        self.family = family
        self.model = model
        self.firmware = firmware
        self.serialNumber = serialNumber
    }
}

/// What a pump family can do for safety, stated honestly so session start can warn about what is missing
/// (DESIGN.md principle 2: two independent stops).
public struct PumpSafetyFeatures: Hashable, Sendable {
    /// True when the pump stops itself if the controller goes silent (New Era safe mode: yes).
    public var stopsWhenControllerSilent: Bool
    /// How the pump-side stop works, or why there is none, for the operator.
    public var explanation: String

    /// Features; see each property.
    public init(stopsWhenControllerSilent: Bool, explanation: String) {
        self.stopsWhenControllerSilent = stopsWhenControllerSilent
        self.explanation = explanation
    }
}

/// Why a pump refused a command (it answered, and the answer was no).
public struct PumpRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    /// The device's own code ("?OOR", "I;08"), for records.
    public var code: String
    /// What it means and what to do.
    public var description: String

    /// A refusal; see each property.
    public init(code: String, description: String) {
        self.code = code
        self.description = description
    }

    /// The code of a `start` refused because the family has no documented remote start (Fresenius Base
    /// A/Agilia): the operator starts the infusion at the pump itself.
    public static let noRemoteStartCode = "no-start-command"

    /// True when this refuses a start because the family has no remote start (see `noRemoteStartCode`).
    public var isNoRemoteStart: Bool { code == Self.noRemoteStartCode }
}

/// The outcome of a command sent to a pump (DESIGN.md principle 3: confirm, don't assume).
public enum PumpCommandOutcome<Value: Sendable>: Sendable {
    /// The pump acknowledged and its reply confirms the command; `Value` is what it reports.
    case confirmed(Value)
    /// The pump answered and refused.
    case refused(PumpRefusal)
    /// The command may or may not have taken effect: it was sent but not acknowledged (time-out,
    /// link lost mid-exchange), or could not be sent. Never reported as done or failed.
    case uncertain(reason: String)

    /// The confirmed value, or nil.
    public var value: Value? {
        if case let .confirmed(value) = self { return value }
        return nil
    }
}

/// Connection and alarm changes a pump driver reports as they happen.
public enum PumpEvent: Hashable, Sendable {
    /// The link's state changed (connected, silent, disconnected).
    case connection(DeviceConnection, at: MonotonicInstant)
    /// The set of active pump alarms changed.
    case alarms(PumpAlarms, at: MonotonicInstant)
    /// A fresh status snapshot arrived.
    case status(PumpStatus)
}

/// The interface every pump driver offers the rest of the system (issue 4). Drivers implement it over
/// an `EndpointHost` running the family's pure session endpoint.
///
/// Threads: every method may be called from any task or thread. `sendStopNow()` is the supervisor's
/// fast path and may be called from its real-time thread: it writes a frame encoded in advance.
public protocol InfusionPump: AnyObject, Sendable {
    /// A name for logs and the operator ("pump0 on /dev/infusion/pump0").
    var name: String { get }
    /// What the family can do for safety when the controller goes silent.
    var safety: PumpSafetyFeatures { get }
    /// Rate resolution and range, for program validation (rounding toward less drug).
    var capabilities: PumpCapabilities { get }

    /// Asks the pump for its model, firmware and (where it has one) serial number.
    func identify() async -> PumpCommandOutcome<PumpIdentity>
    /// Sets the syringe's inside diameter (syringe pumps); see `SyringeCatalogue`.
    func configureSyringe(insideDiameterMillimetres: Double) async -> PumpCommandOutcome<Double>
    /// Sets the rate; the driver converts to the device's units and resolution, rounding toward less,
    /// and reports the rate actually set.
    func setRate(_ rate: VolumeRate) async -> PumpCommandOutcome<Rounded<VolumeRate>>
    /// Sets the volume to be infused (the pump stops itself there); reports the volume actually set.
    func setVolumeToInfuse(_ volume: Volume) async -> PumpCommandOutcome<Rounded<Volume>>
    /// Starts delivery at the set rate; confirmed when the pump reports itself infusing.
    func start() async -> PumpCommandOutcome<PumpStatus>
    /// Stops delivery; confirmed when the pump reports itself stopped.
    func stop() async -> PumpCommandOutcome<PumpStatus>
    /// Asks for a fresh status snapshot.
    func status() async -> PumpCommandOutcome<PumpStatus>
    /// The last status received, without any I/O (nil before the first); `receivedAt` is the last contact.
    var lastStatus: PumpStatus? { get }
    /// Clears the pump's infused-volume counter.
    func clearVolume() async -> PumpCommandOutcome<Volume>
    /// Arms the pump's own communication watchdog (New Era safe mode) with `timeout`; the driver then
    /// keeps it fed. Refused by families that have none.
    func armWatchdog(timeout: Duration) async -> PumpCommandOutcome<Duration>
    /// Disarms the pump's own communication watchdog.
    func disarmWatchdog() async -> PumpCommandOutcome<Duration>
    /// Connection, alarm and status changes, as they happen.
    var events: AsyncStream<PumpEvent> { get }
    /// The fast stop: writes a stop frame encoded in advance on the current link, now, from the calling
    /// thread. Returns false when there is no link. Confirmation comes from the pump's reported status.
    func sendStopNow() -> Bool
    /// Closes the link and stops the driver's threads.
    func close()
}

/// Common syringes and their inside diameters, for `configureSyringe`. Values are the ones New Era and
/// open-source syringe-pump projects publish; check the syringe actually loaded, since brands differ.
public struct SyringeSpec: Hashable, Sendable {
    /// "BD Plastipak 50 mL".
    public var name: String
    /// Nominal capacity.
    public var nominalVolume: Volume
    /// Inside diameter in millimetres.
    public var insideDiameterMillimetres: Double
    /// Where the diameter comes from.
    public var source: String

    /// A syringe entry; see each property. (Public so catalogues and tests outside Drivers can build one.)
    public init(name: String, nominalVolume: Volume, insideDiameterMillimetres: Double, source: String) {
        self.name = name
        self.nominalVolume = nominalVolume
        self.insideDiameterMillimetres = insideDiameterMillimetres
        self.source = source
    }
}
