import DeviceIO
import DeviceProtocols
import InfusionCore

/// A simulated Contec CMS50D+ speaking protocol V7.0 (reference/protocols.md §B4a), a pure model
/// (`infusion-sim --oximeter contec`).
///
/// * Silent until "start real-time" (A1); then a real-time packet every 1/60 s exactly (packet k at the
///   start + k/60 s) until "stop real-time" (A2, answered with free feedback 0x0C), or until no command
///   at all came for `keepAliveTimeout` (15 s by default: the simulator's choice, V7.0 only says to
///   send the keep-alive AF every 5 s). Link-down stops it too.
/// * Commands: A1 and AF need no answer; AA → device identifier (0x04, "CMS50D+"); any other control
///   code → command feedback 0x0B with reason 05 (unsupported), as V7.0 says for unknown commands.
/// * Real-time packet: the patient's pleth (0…127), SpO2, pulse rate, PI; pulse beep on the packet
///   where a beat starts; signal strength 6 (PI ≥ 1 %), 3 (PI < 1 %), 1 during low perfusion.
/// * Conditions (scenario + faults): probe off → probe error bit, pleth 0x40, signal 0, invalid markers
///   (PR 0xFF, SpO2 0x7F, PI 0xFFFF); artifact → "searching pulse" (the format has no artifact bit);
///   low perfusion → signal strength 1 and PI at most 0.2 %; out of track → "searching pulse" +
///   "searching too long" and invalid markers. Silence → nothing at all, not even command answers;
///   corrupt → bit 7 cleared on the SpO2 byte of every packet (the packet is cut short at it; V7.0 has
///   no checksum); garbage → 32 noise bytes. `low-battery` is refused: the format has no battery bit.
public struct SimulatedContec: SimulatedDevice, PatientMonitoringDevice {
    /// Log lines for the operator.
    public typealias Output = String
    /// "contec".
    public static let kind = "contec"
    /// See `SimulatedDevice.faultHelp`: every oximeter fault but `low-battery` (see `inject`).
    public static var faultHelp: [String] { OximeterFaults.helpWithoutLowBattery }

    /// The faults in force.
    public private(set) var faults = OximeterFaults()
    /// Stop streaming when no command came for this long.
    public var keepAliveTimeout: Duration
    /// True while real-time packets are being sent.
    public private(set) var streaming = false
    private var patient = ObservedPatient()
    private var linkIsUp = false
    private var streamStart: MonotonicInstant = .origin
    private var emitted: Int64 = 0
    private var lastCommandAt: MonotonicInstant = .origin
    private var lastBeat: Int64 = -1
    private var commands = Contec.HostStreamDecoder()

    /// A device waiting for a link and a start command.
    public init(keepAliveTimeout: Duration = .seconds(15)) {
        self.keepAliveTimeout = keepAliveTimeout
    }

    /// See `LinkEndpoint.nextDeadline`: the next packet while streaming.
    public var nextDeadline: MonotonicInstant? {
        guard linkIsUp, streaming else { return nil }
        return min(packetTime(emitted), lastCommandAt + keepAliveTimeout)
    }

    private func packetTime(_ index: Int64) -> MonotonicInstant { streamStart + .nanoseconds(index * 1_000_000_000 / 60) }

    /// See `PatientMonitoringDevice.observe(_:at:)`.
    public mutating func observe(_ observation: PatientObservation, at now: MonotonicInstant) {
        patient.observe(observation, at: now)
    }

    /// See `SimulatedDevice.inject(_:at:)`. Refuses `low-battery`: the V7.0 real-time packet has no
    /// battery bit (reference/protocols.md §B4a), so the fault could not reach the host.
    public mutating func inject(_ fault: FaultCommand, at now: MonotonicInstant) throws(FaultError) -> String {
        if fault.name == "low-battery" {
            throw FaultError("low-battery: a Contec V7.0 real-time packet has no battery bit, so a low battery cannot be "
                + "shown to the host; use a Nonin or Masimo simulator to test it")
        }
        if let done = try patient.control(fault) { return done }
        return try faults.inject(fault, at: now)
    }

    /// See `LinkEndpoint.linkUp(at:effects:)`: waits for "start real-time".
    public mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        linkIsUp = true
        streaming = false
        commands = Contec.HostStreamDecoder()
        effects.emit("link up: waiting for start real-time")
    }

    /// See `LinkEndpoint.linkDown(at:effects:)`.
    public mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        linkIsUp = false
        streaming = false
        effects.emit("link down")
    }

    /// See `LinkEndpoint.receive(_:at:effects:)`: control commands.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        guard !faults.isSilent(at: now) else { return }
        for byte in bytes {
            guard let message = commands.push(byte) else { continue }
            guard case .control(let command) = message else { continue }
            lastCommandAt = now
            switch command.code {
            case .startRealTime:
                if !streaming {
                    streaming = true
                    streamStart = now
                    emitted = 0
                    effects.emit("start real-time")
                }
            case .stopRealTime:
                streaming = false
                effects.send(Contec.DeviceMessage.freeFeedback.encoded())
                effects.emit("stop real-time")
            case .keepAlive:
                break
            case .queryDeviceIdentifier:
                effects.send(Contec.DeviceIdentifier("CMS50D+").packet.encoded())
            default:
                effects.send(Contec.CommandFeedback(command: command.code, reason: .unsupported).packet.encoded())
                effects.emit("command \(command.code): unsupported")
            }
        }
    }

    /// See `LinkEndpoint.tick(at:effects:)`: sends the packets that are due.
    public mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        guard linkIsUp, streaming else { return }
        if now >= lastCommandAt + keepAliveTimeout {
            streaming = false
            effects.emit("no keep-alive for \(keepAliveTimeout.humanReadable): real-time stopped")
            return
        }
        var bytes: [UInt8] = []
        while packetTime(emitted) <= now {
            let t = packetTime(emitted)
            emitted += 1
            guard !faults.isSilent(at: t) else { continue }
            if let noise = faults.takeGarbage() { bytes += noise }
            let start = bytes.count
            realTimeData(at: t).packet.encode(into: &bytes)
            if faults.isCorrupt(at: t) { bytes[start + 6] &= 0x7F }
        }
        if !bytes.isEmpty { effects.send(bytes) }
    }

    /// The real-time data the device sends at `t`.
    public mutating func realTimeData(at t: MonotonicInstant) -> Contec.RealTimeData {
        let conditions = patient.observation.conditions.union(faults.conditions(at: t))
        let cycles = patient.cardiacCycles(at: t)
        let beat = Int64(cycles.rounded(.down))
        let beep = beat > lastBeat
        lastBeat = beat
        let observedPI = patient.observation.perfusionIndex.percent
        var data = Contec.RealTimeData(
            signalStrength: observedPI >= 1 ? 6 : 3, pulseBeep: beep,
            pleth: UInt8(max(0, min(127, (syntheticPlethysmogram(phase: cycles) * 127).rounded()))),
            pulseRate: patient.observation.pulseRate, spo2: patient.observation.spo2,
            perfusionIndex: patient.observation.perfusionIndex)
        data.barGraph = data.pleth / 8
        data.lowSpO2 = (data.spo2?.percent ?? 100).rounded() < 90
        if conditions.contains(.lowPerfusion) {
            data.signalStrength = 1
            data.perfusionIndex = .percent(min(observedPI, 0.2))
        }
        if conditions.contains(.motionArtifact) { data.searchingPulse = true }
        if conditions.contains(.outOfTrack) {
            data.searchingPulse = true
            data.searchingTooLong = true
            (data.pulseRate, data.spo2, data.perfusionIndex, data.pulseBeep) = (nil, nil, nil, false)
        }
        if conditions.contains(.probeOff) {
            data.probeError = true
            data.signalStrength = 0
            data.pleth = 0x40
            data.barGraph = 0
            (data.pulseRate, data.spo2, data.perfusionIndex, data.pulseBeep, data.lowSpO2) = (nil, nil, nil, false, false)
        }
        return data
    }
}
