import DeviceIO
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Synchronization

/// A driver session and a simulated oximeter on one VirtualNetwork wire, in virtual time.
final class OximeterRig<Session: OximeterSession, Device: SimulatedDevice & PatientMonitoringDevice> where Device.Output == String {
    let clock = VirtualClock()
    let network: VirtualNetwork
    let driver: VirtualNetwork.NodeID
    let device: VirtualNetwork.NodeID
    private(set) var outputs: [(MonotonicInstant, OximeterOutput)] = []
    private(set) var deviceLog: [String] = []
    let bitsPerSecond: Int?

    init(session: Session, device model: Device, bitsPerSecond: Int?, observation: PatientObservation? = nil) {
        network = VirtualNetwork(clock: clock)
        self.bitsPerSecond = bitsPerSecond
        var box: OximeterRig?
        driver = network.add(session) { output in box?.record(output) }
        device = network.add(model) { line in box?.deviceLog.append(line) }
        box = self
        if let observation { observe(observation) }
        network.connect(driver, device, bitsPerSecond: bitsPerSecond)
    }

    private func record(_ output: OximeterOutput) { outputs.append((clock.now(), output)) }

    var now: MonotonicInstant { clock.now() }

    func run(_ duration: Duration) { network.run(for: duration) }

    func observe(_ observation: PatientObservation) {
        _ = network.perform(device, as: Device.self) { device, now, _ in device.observe(observation, at: now) }
    }

    @discardableResult
    func inject(_ name: String, _ arguments: String...) -> String {
        network.perform(device, as: Device.self) { device, now, _ -> String in
            do { return try device.inject(FaultCommand(name: name, arguments: arguments), at: now) } catch { return "error: \(error)" }
        } ?? "no device"
    }

    func unplug() { network.disconnect(driver) }
    func replug() { network.connect(driver, device, bitsPerSecond: bitsPerSecond) }

    var counters: OximeterCounters {
        network.perform(driver, as: Session.self) { session, _, _ in session.counters } ?? OximeterCounters()
    }

    func samples(after start: MonotonicInstant = .origin) -> [VitalSample] {
        outputs.compactMap { time, output in
            if case .sample(let s) = output, time >= start { return s }
            return nil
        }
    }

    func connections(after start: MonotonicInstant = .origin) -> [(MonotonicInstant, DeviceConnection)] {
        outputs.compactMap { time, output in
            if case let .connection(c, at) = output, time >= start { return (at, c) }
            return nil
        }
    }

    func noData(after start: MonotonicInstant = .origin) -> [MonotonicInstant] {
        outputs.compactMap { time, output in
            if case let .noData(_, at) = output, time >= start { return at }
            return nil
        }
    }

    func notices() -> [OximeterNotice] {
        outputs.compactMap { if case .notice(let n) = $0.1 { n } else { nil } }
    }

    /// The first sample after `start` whose quality contains `flag`, with the delay from `start`.
    func firstSample(with flag: OximetryQuality, after start: MonotonicInstant) -> (Duration, VitalSample)? {
        for (time, output) in outputs where time >= start {
            if case .sample(let s) = output, s.quality.contains(flag) { return (time - start, s) }
        }
        return nil
    }
}

/// A patient with known values and no noise.
func knownObservation(spo2: Double = 95, pulse: Double = 80, pi: Double = 3, conditions: MeasurementConditions = []) -> PatientObservation {
    PatientObservation(time: .zero, vitals: TrueVitals(spo2: .percent(spo2), pulseRate: .beatsPerMinute(pulse), perfusionIndex: .percent(pi)),
                       conditions: conditions)
}

/// A deterministic byte generator for robustness tests.
struct TestRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 11
    }
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) } }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }
}

/// Collects values from other threads.
final class Collector<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])
    func append(_ item: T) { items.withLock { $0.append(item) } }
    var all: [T] { items.withLock { $0 } }
}

/// Waits up to `timeout` for `condition`.
func waitUntil(_ timeout: TimeInterval = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition(), Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
    return condition()
}
