import DeviceIO
import Foundation
import InfusionCore
import Logging

/// How a hosted device is set up: its name, clock, where to put its `--link` symlink, and who to tell
/// when its pseudo-terminal path changes (each replug creates a new pty).
public struct HostedDeviceSetup: Sendable {
    /// "pump0", "oximeter0".
    public var name: String
    /// The clock the device runs on (system, or scaled for a faster demo).
    public var clock: any MonotonicClock
    /// Directory for a stable symlink `DIR/<name>` to the current pty, or nil.
    public var linkDirectory: String?
    /// Called with the new slave path after each (re)plug.
    public var onPath: @Sendable (String) -> Void
    /// For measurements: called with every chunk of bytes the device wrote to its pty master, after the
    /// write, with the real CLOCK_MONOTONIC time taken just BEFORE the `write` call (never the device's
    /// scaled clock: a reader may see the bytes before the call returns, so only the time before it is
    /// sure to precede their arrival), on the writing thread (one at a time, in write order). Nil: nothing
    /// is observed. It must return quickly.
    public var onSent: (@Sendable (UnsafeRawBufferPointer, MonotonicInstant) -> Void)?

    /// A setup; see each property.
    public init(name: String, clock: any MonotonicClock, linkDirectory: String? = nil, onPath: @escaping @Sendable (String) -> Void = { _ in },
                onSent: (@Sendable (UnsafeRawBufferPointer, MonotonicInstant) -> Void)? = nil) {
        self.name = name
        self.clock = clock
        self.linkDirectory = linkDirectory
        self.onPath = onPath
        self.onSent = onSent
    }
}

/// A link that tells `onSent` about every chunk written through it (`HostedDeviceSetup.onSent`).
/// Owns `inner` as the link it wraps; thread rules are `inner`'s.
private final class ObservedLink: ByteLink {
    let inner: any ByteLink
    let onSent: @Sendable (UnsafeRawBufferPointer, MonotonicInstant) -> Void
    let clock = SystemMonotonicClock()

    init(_ inner: any ByteLink, onSent: @escaping @Sendable (UnsafeRawBufferPointer, MonotonicInstant) -> Void) {
        self.inner = inner
        self.onSent = onSent
    }

    var name: String { inner.name }
    func start(handler: @escaping LinkHandler) throws(DeviceIOError) { try inner.start(handler: handler) }
    func send(_ bytes: UnsafeRawBufferPointer) throws(DeviceIOError) {
        let before = clock.now()
        try inner.send(bytes)
        onSent(bytes, before)
    }
    func close() { inner.close() }
}

/// A simulated device running behind a pseudo-terminal, as the host sees it (type-erased).
///
/// Threads: every method may be called from any thread.
public protocol HostedSimulation: AnyObject, Sendable {
    /// "pump0".
    var name: String { get }
    /// "newera".
    var kind: String { get }
    /// Pump, oximeter or balance.
    var role: SimulatedRole { get }
    /// The current pty slave path (nil before `start`).
    var devicePath: String? { get }
    /// Creates the pty and starts serving.
    func start()
    /// Stops serving and hangs up the pty.
    func stop()
    /// Pulls the plug (the driver sees a hang-up; the `--link` symlink is removed, as udev removes a
    /// device's link); plugs back in after `duration`, or on `replug()`.
    func unplug(for duration: Duration?)
    /// Plugs back in (a new pty; the `--link` symlink follows it).
    func replug()
    /// Applies a device fault.
    func inject(_ fault: FaultCommand) -> Result<String, FaultError>
    /// For pumps: the total volume delivered so far.
    func totalVolumeDelivered() -> Volume?
    /// For oximeters: the patient's current state.
    func observe(_ observation: PatientObservation)
    /// For balances: the volume delivered into the beaker so far.
    func weigh(deliveredVolume: Volume)
}

/// Hosts a `SimulatedDevice` on a pseudo-terminal through an `EndpointHost`.
public final class PTYHostedDevice<Device: SimulatedDevice>: HostedSimulation, @unchecked Sendable {
    public let name: String
    public let role: SimulatedRole
    public var kind: String { Device.kind }
    private let setup: HostedDeviceSetup
    private let host: EndpointHost<Device>
    private let state = NSLock()
    private var path: String?

    /// Hosts `device` (not started until `start()`).
    public init(device: Device, role: SimulatedRole, setup: HostedDeviceSetup) {
        self.name = setup.name
        self.role = role
        self.setup = setup
        let box = PathBox()
        var logger = Logger(label: "infusion.sim")
        logger[metadataKey: "device"] = "\(setup.name)"
        let log = logger
        host = EndpointHost(
            endpoint: device, name: setup.name, clock: setup.clock, reconnectInterval: .milliseconds(200),
            linkUpOnOpen: false,
            open: { () throws(DeviceIOError) -> any ByteLink in
                let pty = try PseudoTerminal()
                box.publish(pty.slavePath, setup: setup)
                let link = DescriptorLink(pseudoTerminal: pty, clock: setup.clock)
                return setup.onSent.map { ObservedLink(link, onSent: $0) } ?? link
            },
            onOutput: { output in log.debug("\(output)") })
        box.owner = { [weak self] path in self?.setPath(path) }
    }

    private func setPath(_ newPath: String?) {
        state.lock()
        path = newPath
        state.unlock()
    }

    public var devicePath: String? {
        state.lock()
        defer { state.unlock() }
        return path
    }

    public func start() { host.start() }
    public func stop() { host.stop() }
    public func unplug(for duration: Duration?) {
        // The link goes first: left pointing at the dead pty, a reconnecting driver could open that
        // /dev/pts number once the kernel hands it to another pseudo-terminal.
        if let directory = setup.linkDirectory {
            try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(setup.name))
        }
        setPath(nil)
        host.disconnect(reopenAfter: duration)
    }
    public func replug() { host.reconnectNow() }

    public func inject(_ fault: FaultCommand) -> Result<String, FaultError> {
        host.perform { device, now, _ -> Result<String, FaultError> in
            do throws(FaultError) { return .success(try device.inject(fault, at: now)) } catch { return .failure(error) }
        }
    }

    /// Reads the simulated device's state under the host's lock (for tests and status displays: what
    /// the device itself believes, e.g. whether a simulated pump is running). `body` must be quick.
    public func inspect<R>(_ body: (Device) -> R) -> R {
        host.perform { device, _, _ in body(device) }
    }

    public func totalVolumeDelivered() -> Volume? {
        host.perform { device, _, _ in (device as? any DeliveringDevice)?.totalVolumeDelivered }
    }

    public func observe(_ observation: PatientObservation) {
        host.perform { device, now, _ in
            guard var monitor = device as? any PatientMonitoringDevice else { return }
            monitor.observe(observation, at: now)
            if let updated = monitor as? Device { device = updated }
        }
    }

    public func weigh(deliveredVolume: Volume) {
        host.perform { device, now, _ in
            guard var balance = device as? any WeighingDevice else { return }
            balance.update(deliveredVolume: deliveredVolume, at: now)
            if let updated = balance as? Device { device = updated }
        }
    }
}

/// Carries a new pty path from the opener (which runs before `self` exists) to the hosted device, and
/// keeps the `--link` symlink pointing at it.
private final class PathBox: @unchecked Sendable {
    var owner: (@Sendable (String) -> Void)?

    func publish(_ path: String, setup: HostedDeviceSetup) {
        if let directory = setup.linkDirectory {
            let link = (directory as NSString).appendingPathComponent(setup.name)
            try? FileManager.default.removeItem(atPath: link)
            try? FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
        }
        owner?(path)
        setup.onPath(path)
    }
}
