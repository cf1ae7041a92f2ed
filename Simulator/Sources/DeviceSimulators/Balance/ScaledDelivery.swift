import DeviceIO
import InfusionCore

/// A delivering device whose real output differs from what it believes it delivers: wraps any simulated
/// pump and scales its `totalVolumeDelivered` by `factor` (0.94 for a pump that delivers 6 % less than
/// commanded), while the pump itself (its protocol, its own volume counter) is unchanged. This is how a
/// badly calibrated pump looks to a gravimetric test: it reports the commanded volume, the balance weighs less.
///
/// Everything else (the wire protocol, faults) is forwarded to the wrapped device. Pure; hosts serialise calls.
public struct ScaledDelivery<Device: DeliveringDevice>: DeliveringDevice {
    /// The wrapped pump.
    public var device: Device
    /// Actual delivery ÷ the pump's own idea of its delivery (1 = accurate).
    public var factor: Double

    /// Wraps `device`; `factor` must be finite and not negative (otherwise 1 is used).
    public init(_ device: Device, factor: Double) {
        self.device = device
        self.factor = factor.isFinite && factor >= 0 ? factor : 1
    }

    /// What actually left the pump: the wrapped device's delivery × `factor`.
    public var totalVolumeDelivered: Volume { device.totalVolumeDelivered * factor }
}

extension ScaledDelivery: Sendable where Device: Sendable {}

extension ScaledDelivery: LinkEndpoint where Device: LinkEndpoint {
    /// The wrapped device's outputs.
    public typealias Output = Device.Output

    /// The wrapped device's deadline.
    public var nextDeadline: MonotonicInstant? { device.nextDeadline }

    /// Forwarded to the wrapped device.
    public mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        device.linkUp(at: now, effects: &effects)
    }

    /// Forwarded to the wrapped device.
    public mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        device.linkDown(at: now, effects: &effects)
    }

    /// Forwarded to the wrapped device.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        device.receive(bytes, at: now, effects: &effects)
    }

    /// Forwarded to the wrapped device.
    public mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        device.tick(at: now, effects: &effects)
    }
}

extension ScaledDelivery: SimulatedDevice where Device: SimulatedDevice {
    /// The wrapped device's kind.
    public static var kind: String { Device.kind }
    /// The wrapped device's faults.
    public static var faultHelp: [String] { Device.faultHelp }

    /// Forwarded to the wrapped device.
    public mutating func inject(_ fault: FaultCommand, at now: MonotonicInstant) throws(FaultError) -> String {
        try device.inject(fault, at: now)
    }
}

extension SimulatedBalance {
    /// The shared world's coupling in one call: the balance weighs what `device` actually delivered by `now`.
    public mutating func weigh(_ device: some DeliveringDevice, at now: MonotonicInstant) {
        update(deliveredVolume: device.totalVolumeDelivered, at: now)
    }
}

extension SimulatedBalance: WeighingDevice {}

extension SimulatedBalance {
    /// The registry's builder: `mt-sics` or `mt-sics:SERIAL` (printable ASCII without quotes, 1–20 characters).
    @Sendable
    public static func build(parameter: String?) throws(FaultError) -> SimulatedBalance {
        guard let serial = parameter else { return SimulatedBalance() }
        guard (1...20).contains(serial.count), serial.unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) && $0 != "\"" }) else {
            throw FaultError("mt-sics:SERIAL takes a serial number of 1 to 20 printable characters without quotes, such as mt-sics:B123456789")
        }
        return SimulatedBalance(configuration: .init(serialNumber: serial))
    }
}
