import DeviceIO
import InfusionCore

/// What a simulated clinical pump does when the host's remote-control lease (Alaris) or keep-alive
/// (Fresenius) lapses. Either way it leaves remote control.
public enum RemoteLapseBehaviour: String, Hashable, Sendable, CaseIterable {
    /// Keep infusing at the last rate, as such pumps do in local mode (the default).
    case keepInfusing = "keep-infusing"
    /// Stop the infusion.
    case stop
}

/// A syringe being emptied at a rate, integrated exactly between events (pure; no clock).
struct SimulatedSyringeDrive: Hashable, Sendable {
    /// Programmed rate.
    var rate: VolumeRate = .zero
    /// True while the plunger moves.
    var running = false
    /// The pump's own counter (cleared on power reset or by command).
    var counter: Volume = .zero
    /// Everything ever pushed out (never decreases).
    var delivered: Volume = .zero
    /// What is left in the syringe.
    var remaining: Volume
    /// Volume still to infuse before the program stops itself (nil: no limit).
    var toInfuse: Volume?
    /// When `advance` last ran.
    var last: MonotonicInstant?

    init(capacity: Volume) { remaining = capacity }

    enum Stop: Hashable { case volumeReached, empty }

    /// Integrates delivery up to `now`; returns why it stopped, if it did.
    mutating func advance(to now: MonotonicInstant) -> Stop? {
        defer { last = now }
        guard running, let last, now > last else { return nil }
        var amount = Volume.millilitres(rate.millilitresPerHour * (now - last).hours)
        var reason: Stop?
        if let limit = toInfuse, amount >= limit { amount = limit; reason = .volumeReached }
        if amount >= remaining { amount = remaining; reason = .empty }
        counter = counter + amount
        delivered = delivered + amount
        remaining = remaining - amount
        if let limit = toInfuse { toInfuse = limit - amount }
        if reason != nil { running = false }
        return reason
    }
}

/// A small deterministic generator for garbage bytes (simulations must be reproducible).
struct NoiseGenerator: Hashable, Sendable {
    var state: UInt64

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }
}

/// The line faults the clinical-pump simulators share: `silence [DURATION]` (neither hears nor answers) and
/// `garbage [DURATION]` (a burst of random bytes before the next reply, or noise instead of every reply for
/// DURATION). Pure; the simulator asks it before each transmission.
struct ReplyLineFaults: Hashable, Sendable {
    private(set) var silentUntil: MonotonicInstant?
    private var noiseUntil: MonotonicInstant?
    private var pendingNoise = 0
    private var noise: NoiseGenerator
    /// Applied to noise bytes (0x7F for a 7-bit line such as Fresenius' 7E1).
    private let mask: UInt8

    init(seed: UInt64, mask: UInt8 = 0xFF) {
        noise = NoiseGenerator(state: seed)
        self.mask = mask
    }

    /// True while the device is silenced.
    func isSilent(at now: MonotonicInstant) -> Bool { silentUntil.map { now < $0 } ?? false }

    /// Applies `silence` or `garbage`; returns nil for any other fault (the simulator's own).
    mutating func inject(_ fault: FaultCommand, at now: MonotonicInstant) throws(FaultError) -> String? {
        switch fault.name {
        case "silence":
            let duration = try FaultArguments.duration(fault, default: .seconds(10))
            silentUntil = now + duration
            return "silent for \(duration)"
        case "garbage":
            if fault.arguments.isEmpty {
                pendingNoise += 64
                return "64 random bytes before the next reply"
            }
            let duration = try FaultArguments.duration(fault, default: .seconds(5))
            noiseUntil = now + duration
            return "noise instead of replies for \(duration)"
        default:
            return nil
        }
    }

    /// Before a reply: sends any pending noise burst; returns false when the reply must not be sent
    /// (silenced, or replaced by noise).
    mutating func admitReply(at now: MonotonicInstant, effects: inout EndpointEffects<String>) -> Bool {
        if isSilent(at: now) { return false }
        if pendingNoise > 0 {
            effects.send(noise.bytes(pendingNoise).map { $0 & mask })
            pendingNoise = 0
        }
        if let until = noiseUntil, now < until {
            effects.send(noise.bytes(16).map { $0 & mask })
            return false
        }
        return true
    }
}

/// Parsing helpers for fault arguments.
enum FaultArguments {
    static func duration(_ fault: FaultCommand, default value: Duration) throws(FaultError) -> Duration {
        guard let text = fault.arguments.first else { return value }
        guard let parsed = try? Duration.parse(text), parsed > .zero else {
            throw FaultError("\(fault.name): \"\(text)\" is not a duration (try 10s, 500ms, 2 min)")
        }
        return parsed
    }

    static func lapse(_ fault: FaultCommand) throws(FaultError) -> RemoteLapseBehaviour {
        guard let text = fault.arguments.first, let value = RemoteLapseBehaviour(rawValue: text) else {
            throw FaultError("\(fault.name) takes one of: \(RemoteLapseBehaviour.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }
}
