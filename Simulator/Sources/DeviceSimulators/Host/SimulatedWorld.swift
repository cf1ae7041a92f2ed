import Foundation
import InfusionCore
import Logging

/// Devices started together, sharing one simulated world on real (or scaled) time: a coupling thread
/// advances the `WorldModel` every `step` with what the simulated pumps delivered, hands the patient's
/// state to the simulated oximeters and the delivered volume to the simulated balances.
///
/// Threads: every method may be called from any thread.
public final class SimulatedWorld: @unchecked Sendable {
    private let lock = NSLock()
    private var model: WorldModel
    private var hosted: [any HostedSimulation] = []
    private var running = false
    private var latest: PatientObservation
    private let clock: any MonotonicClock
    private let step: Duration
    private let finished = DispatchSemaphore(value: 0)

    /// A world around `model`, coupled every `step` of `clock` time.
    public init(model: WorldModel, clock: any MonotonicClock, step: Duration = .milliseconds(100)) {
        self.model = model
        self.clock = clock
        self.step = step
        latest = model.patient.observation
    }

    /// Adds a hosted device (before or after `start`; it is started with the world or at once).
    public func add(_ device: any HostedSimulation) {
        lock.lock()
        hosted.append(device)
        let started = running
        lock.unlock()
        if started { device.start() }
    }

    /// The devices, in the order added.
    public var devices: [any HostedSimulation] {
        lock.lock()
        defer { lock.unlock() }
        return hosted
    }

    /// The device named `name` ("pump0"), or nil.
    public func device(named name: String) -> (any HostedSimulation)? { devices.first { $0.name == name } }

    /// The patient's state at the last coupling step.
    public var latestObservation: PatientObservation {
        lock.lock()
        defer { lock.unlock() }
        return latest
    }

    /// Starts every device and the coupling thread.
    public func start() {
        lock.lock()
        guard !running else { lock.unlock(); return }
        running = true
        let devices = hosted
        lock.unlock()
        for device in devices { device.start() }
        couple()  // oximeters get a patient before their first frame
        let thread = Thread { [self] in
            while isRunning {
                Thread.sleep(forTimeInterval: max(clock.realDuration(of: step).seconds, 0.001))
                couple()
            }
            finished.signal()
        }
        thread.name = "simulated world"
        thread.start()
    }

    private var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    /// One coupling step (also used directly by tests).
    public func couple() {
        let devices = self.devices
        let delivered = devices.filter { $0.role == .pump }.compactMap { $0.totalVolumeDelivered() }.reduce(Volume.zero, +)
        lock.lock()
        let observation = model.advance(to: clock.now(), totalDelivered: delivered)
        latest = observation
        lock.unlock()
        for device in devices {
            switch device.role {
            case .oximeter: device.observe(observation)
            case .balance: device.weigh(deliveredVolume: delivered)
            case .pump: break
            }
        }
    }

    /// Stops the coupling thread and every device.
    public func stop() {
        lock.lock()
        let wasRunning = running
        running = false
        let devices = hosted
        lock.unlock()
        if wasRunning { finished.wait() }
        for device in devices { device.stop() }
    }
}
