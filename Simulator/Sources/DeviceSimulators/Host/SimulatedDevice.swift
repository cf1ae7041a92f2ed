import DeviceIO
import InfusionCore

/// A fault command typed on the simulator host's standard input (`pump0 stall`, `oximeter0 probe-off 30s`).
public struct FaultCommand: Hashable, Sendable {
    /// The fault's name ("stall", "probe-off", "silence").
    public var name: String
    /// Its arguments ("30s").
    public var arguments: [String]

    /// A command; see each property.
    public init(name: String, arguments: [String] = []) {
        self.name = name
        self.arguments = arguments
    }

    /// The first argument read as a duration ("30s"), or nil when absent or unreadable.
    public var duration: Duration? { arguments.first.flatMap { try? Duration.parse($0) } }
}

/// Why a fault command was refused; the message says what is accepted.
public struct FaultError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong and what is accepted.
    public var description: String

    /// An error with its message.
    public init(_ description: String) { self.description = description }
}

/// A simulated device as the simulator host runs it: a pure model speaking the real wire protocol
/// (`LinkEndpoint`), plus the faults that can be injected into it by name.
///
/// The host handles `unplug` and `replug` itself (it closes and recreates the pseudo-terminal); every
/// other fault is the device's own. Hosts call `inject` between other calls, never concurrently.
public protocol SimulatedDevice: LinkEndpoint {
    /// The kind as written on the command line ("newera", "nonin-df2", "mt-sics").
    static var kind: String { get }
    /// Help lines for the faults this device accepts ("stall             motor stall: alarm S, stops").
    static var faultHelp: [String] { get }
    /// Applies a fault at `now`; returns a one-line confirmation for the operator.
    mutating func inject(_ fault: FaultCommand, at now: MonotonicInstant) throws(FaultError) -> String
}

/// A simulated device that delivers drug: the shared simulated world reads its delivery to drive the
/// virtual patient (and the simulated balance weighs it).
public protocol DeliveringDevice {
    /// Total volume the device has pushed out since it was created (never decreases; withdrawal is not
    /// delivery), in its own model's terms.
    var totalVolumeDelivered: Volume { get }
}

/// A simulated device that measures the virtual patient (oximeters).
public protocol PatientMonitoringDevice {
    /// Gives the device the patient's state at `now`; it encodes what it measures from it.
    mutating func observe(_ observation: PatientObservation, at now: MonotonicInstant)
}

/// A simulated device that weighs what a delivering device pushed out (the MT-SICS balance in
/// gravimetric calibration).
public protocol WeighingDevice {
    /// Gives the balance the total volume delivered into its beaker so far, at `now`.
    mutating func update(deliveredVolume: Volume, at now: MonotonicInstant)
}
