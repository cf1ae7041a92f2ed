import DeviceIO
import DeviceSimulators
import InfusionCore

/// The simulated New Era pump with a probe on its motor: forwards everything to the pump unchanged
/// and notes every instant its state changes between pumping and not pumping (the truth the tests
/// judge the controller by: when the fluid actually stopped, not when the controller believed it).
struct ObservedPump: LinkEndpoint {
    typealias Output = NewEraSimulatedPump.Event

    var device: NewEraSimulatedPump
    private(set) var motion: [PumpMotion] = []
    private var pumping = false
    private var lastReason: String?

    init(_ device: NewEraSimulatedPump) { self.device = device }

    var nextDeadline: MonotonicInstant? { device.nextDeadline }

    mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        device.linkUp(at: now, effects: &effects)
        note(now, effects)
    }

    mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        device.linkDown(at: now, effects: &effects)
        note(now, effects)
    }

    mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        device.receive(bytes, at: now, effects: &effects)
        note(now, effects)
    }

    mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        device.tick(at: now, effects: &effects)
        note(now, effects)
    }

    /// Brings delivery up to `now` (stops at the volume or end of travel are noted) and returns the
    /// total volume pushed out.
    mutating func update(to now: MonotonicInstant) -> Volume {
        device.update(to: now)
        note(now, EndpointEffects())
        return device.totalVolumeDelivered
    }

    /// Injects a fault and notes any stop it causes (reason "fault NAME").
    mutating func inject(_ fault: FaultCommand, at now: MonotonicInstant) throws(FaultError) -> String {
        let answer = try device.inject(fault, at: now)
        lastReason = "fault \(fault.name)"
        note(now, EndpointEffects())
        lastReason = nil
        return answer
    }

    private mutating func note(_ now: MonotonicInstant, _ effects: EndpointEffects<Output>) {
        for case .stopped(let reason) in effects.outputs { lastReason = reason }
        let isPumping = device.prompt.isPumping
        guard isPumping != pumping else { return }
        pumping = isPumping
        motion.append(PumpMotion(at: now, pumping: isPumping, reason: isPumping ? nil : lastReason))
        lastReason = nil
    }
}
