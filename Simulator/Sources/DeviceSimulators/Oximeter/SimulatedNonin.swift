import DeviceIO
import DeviceProtocols
import InfusionCore

/// Which Nonin format a simulated Nonin starts in (its `kind`).
public protocol NoninSimulatorKind: Sendable {
    /// The command-line kind ("nonin-df2").
    static var kind: String { get }
    /// The format the device sends after power-up.
    static var format: Nonin.DataFormat { get }
}

/// Starts in DF2.
public enum NoninDF2Kind: NoninSimulatorKind {
    /// "nonin-df2".
    public static let kind = "nonin-df2"
    /// DF2.
    public static let format = Nonin.DataFormat.df2
}

/// Starts in DF7.
public enum NoninDF7Kind: NoninSimulatorKind {
    /// "nonin-df7".
    public static let kind = "nonin-df7"
    /// DF7.
    public static let format = Nonin.DataFormat.df7
}

/// Starts in DF8.
public enum NoninDF8Kind: NoninSimulatorKind {
    /// "nonin-df8".
    public static let kind = "nonin-df8"
    /// DF8.
    public static let format = Nonin.DataFormat.df8
}

/// The simulated Nonin in DF2 (`infusion-sim --oximeter nonin-df2`).
public typealias SimulatedNoninDF2 = SimulatedNonin<NoninDF2Kind>
/// The simulated Nonin in DF7.
public typealias SimulatedNoninDF7 = SimulatedNonin<NoninDF7Kind>
/// The simulated Nonin in DF8.
public typealias SimulatedNoninDF8 = SimulatedNonin<NoninDF8Kind>

/// A simulated Nonin pulse oximeter (reference/protocols.md §B1), a pure model.
///
/// * Streams from link-up: DF2/DF7 at exactly 75 frames/s (frame k at link-up + k/75 s), 25-frame
///   packets with SYNC on frame 1; DF8 one record a second.
/// * FLOAT slots: HR, SpO2 (recording, 4-beat; missing at once when the probe comes off or out of
///   track), the 1/3-s timer (+1 per packet), SpO2-D/HR-D (display: updated every 1.5 s; held for
///   10 s with SNSA after the probe comes off, then missing), E-HR/E-SpO2/E-SpO2-D and SpO2 Fast/B-B
///   (= the recording values).
/// * RPRF/GPRF: set for the 12 frames (160 ms) starting at each beat (from the patient's cardiac
///   cycles): green when PI ≥ 1 %, yellow when 0.5 % ≤ PI < 1 %, red when PI < 0.5 % or during low
///   perfusion. Pleth: the patient's synthetic plethysmogram (0…255 in DF2, 0…65535 in DF7; scaled to
///   a fifth at low perfusion, flat 0 with the probe off).
/// * The patient and the faults are sampled once per packet (at its frame 1, every 1/3 s, the rate at
///   which the recording values update), so a packet's status bits and values always agree.
/// * Conditions (scenario + faults) on the wire: probe off → SNSA (DF8: SNSA) and missing values as
///   above; artifact → ARTF; out of track → OOT and missing values; low perfusion → red perfusion
///   (DF8: LPRF). Low battery → STAT2 bit 0 (frame 8, sampled with the packet; DF8: byte 4 bit 0).
///   Silence → nothing sent; corrupt → every frame's checksum off by one (DF8, which has
///   no checksum: bit 7 cleared in byte 1, so the record cannot be framed); garbage → 32 noise bytes.
/// * Host commands: set-format (`02 70 02 02 ZZ 03`) to DF2, DF7 or DF8 is ACKed (06) and takes effect
///   at the next frame if it comes within 5 s of link-up (the 9560's rule); otherwise, or for another
///   format, NAK (15). Other commands are logged and ignored. A partial command is dropped after 0.5 s.
public struct SimulatedNonin<Kind: NoninSimulatorKind>: SimulatedDevice, PatientMonitoringDevice {
    /// Log lines for the operator.
    public typealias Output = String

    /// See `SimulatedDevice.kind`.
    public static var kind: String { Kind.kind }
    /// See `SimulatedDevice.faultHelp`.
    public static var faultHelp: [String] { OximeterFaults.help }

    /// The format being sent now (changes on an accepted set-format command).
    public private(set) var format: Nonin.DataFormat = Kind.format
    /// The faults in force.
    public private(set) var faults = OximeterFaults()
    private var patient = ObservedPatient()
    private var linkUpAt: MonotonicInstant?
    private var streamStart: MonotonicInstant = .origin
    private var emitted: Int64 = 0  // frames (DF2/DF7) or records (DF8) since streamStart
    private var frameInPacket = 0
    private var values = Nonin.PacketValues()
    private var packetConditions: MeasurementConditions = []
    private var timerTicks: UInt16 = 0
    private var probeOffSince: MonotonicInstant?
    private var display: (spo2: Percentage?, heartRate: PulseRate?) = (nil, nil)
    private var displayUpdatedAt: MonotonicInstant?
    private var lastBeat: Int64 = -1
    private var beatFramesLeft = 0
    private var commands = Nonin.HostCommandDecoder()
    private var outgoing: [UInt8] = []

    /// A device in `Kind.format`, waiting for a link.
    public init() {
        outgoing.reserveCapacity(64)
    }

    /// See `LinkEndpoint.nextDeadline`: the next frame or record, while the link is up.
    public var nextDeadline: MonotonicInstant? { linkUpAt == nil ? nil : emissionTime(emitted) }

    private func emissionTime(_ index: Int64) -> MonotonicInstant {
        format == .df8 ? streamStart + .seconds(index) : streamStart + .nanoseconds(index * 1_000_000_000 / 75)
    }

    /// See `PatientMonitoringDevice.observe(_:at:)`.
    public mutating func observe(_ observation: PatientObservation, at now: MonotonicInstant) {
        patient.observe(observation, at: now)
    }

    /// See `SimulatedDevice.inject(_:at:)`.
    public mutating func inject(_ fault: FaultCommand, at now: MonotonicInstant) throws(FaultError) -> String {
        if let done = try patient.control(fault) { return done }
        return try faults.inject(fault, at: now)
    }

    /// See `LinkEndpoint.linkUp(at:effects:)`: starts streaming now.
    public mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        linkUpAt = now
        restartStream(at: now)
        commands = Nonin.HostCommandDecoder()
        effects.emit("link up: sending DF\(format.rawValue)")
    }

    /// See `LinkEndpoint.linkDown(at:effects:)`.
    public mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        linkUpAt = nil
        effects.emit("link down")
    }

    /// See `LinkEndpoint.receive(_:at:effects:)`: host commands.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        var replies: [(Nonin.CommandReply, Nonin.DataFormat?)] = []
        let withinWindow = linkUpAt.map { now - $0 <= .seconds(5) } ?? false
        commands.push(contentsOf: bytes, at: now) { command in
            switch command {
            case .setDataFormat(let requested) where requested != .df13 && withinWindow:
                replies.append((.ack, requested))
            case .setDataFormat:
                replies.append((.nak, nil))
            default:
                break
            }
        }
        for (reply, newFormat) in replies {
            guard !faults.isSilent(at: now) else { continue }
            effects.send(reply.encoded)
            if let newFormat {
                effects.emit("set data format DF\(newFormat.rawValue): ACK")
                if newFormat != format {
                    format = newFormat
                    restartStream(at: now)
                }
            } else {
                effects.emit("set data format refused: NAK")
            }
        }
    }

    /// See `LinkEndpoint.tick(at:effects:)`: sends every frame or record that is due.
    public mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        guard linkUpAt != nil else { return }
        outgoing.removeAll(keepingCapacity: true)
        while emissionTime(emitted) <= now {
            let t = emissionTime(emitted)
            emitted += 1
            if let noise = faults.takeGarbage(), !faults.isSilent(at: t) { outgoing += noise }
            if format == .df8 { appendRecord(at: t) } else { appendFrame(at: t) }
        }
        if !outgoing.isEmpty { effects.send(outgoing) }
    }

    // MARK: Internals

    private mutating func restartStream(at now: MonotonicInstant) {
        streamStart = now
        emitted = 0
        frameInPacket = 0
    }

    private func effectiveConditions(at t: MonotonicInstant) -> MeasurementConditions {
        patient.observation.conditions.union(faults.conditions(at: t))
    }

    /// Updates the probe-off clock and the held display values at `t`.
    private mutating func updateDisplay(at t: MonotonicInstant, conditions: MeasurementConditions) -> (Percentage?, PulseRate?) {
        let spo2: Percentage? = patient.observation.spo2
        let rate: PulseRate? = patient.observation.pulseRate
        if conditions.contains(.probeOff) {
            let since = probeOffSince ?? t
            probeOffSince = since
            if t - since >= .seconds(10) { display = (nil, nil) }
        } else {
            probeOffSince = nil
            if conditions.contains(.outOfTrack) {
                display = (nil, nil)
            } else if displayUpdatedAt.map({ t - $0 >= .milliseconds(1_500) }) ?? true {
                display = (spo2, rate)
                displayUpdatedAt = t
            }
        }
        return display
    }

    private mutating func appendFrame(at t: MonotonicInstant) {
        frameInPacket = frameInPacket % Nonin.PacketValues.framesPerPacket + 1
        if frameInPacket == 1 { packetConditions = effectiveConditions(at: t) }
        let conditions = packetConditions
        if frameInPacket == 1 {
            let shown = updateDisplay(at: t, conditions: conditions)
            let missing = conditions.contains(.probeOff) || conditions.contains(.outOfTrack)
            let spo2: Percentage? = missing ? nil : patient.observation.spo2
            let rate: PulseRate? = missing ? nil : patient.observation.pulseRate
            timerTicks = (timerTicks &+ 1) & 0x3FFF
            values = Nonin.PacketValues(
                heartRate: rate, spo2: spo2, revision: 0x2A, timerTicks: timerTicks,
                status2: faults.isLowBattery(at: t) ? [.lowBattery] : [],
                spo2Display: shown.0, spo2Fast: spo2, spo2BeatToBeat: spo2, extendedHeartRate: rate,
                extendedSpO2: spo2, extendedSpO2Display: shown.0, heartRateDisplay: shown.1,
                extendedHeartRateDisplay: shown.1)
        }
        let cycles = patient.cardiacCycles(at: t)
        let beat = Int64(cycles.rounded(.down))
        if beat > lastBeat {
            lastBeat = beat
            beatFramesLeft = 12
        }
        var status: Nonin.FrameStatus = frameInPacket == 1 ? [.sync] : []
        if conditions.contains(.probeOff) { status.insert(.sensorAlarm) }
        if conditions.contains(.motionArtifact) { status.insert(.artifact) }
        if conditions.contains(.outOfTrack) { status.insert(.outOfTrack) }
        let pulsing = !conditions.contains(.probeOff) && !conditions.contains(.outOfTrack)
        if beatFramesLeft > 0 {
            beatFramesLeft -= 1
            if pulsing { status = status.with(perfusion: perfusion(conditions)) }
        }
        var amplitude = pulsing ? syntheticPlethysmogram(phase: cycles) : 0
        if conditions.contains(.lowPerfusion) { amplitude /= 5 }
        let full: Double = format == .df7 ? 65_535 : 255
        let pleth = UInt16(max(0, min(full, (amplitude * full).rounded())))
        let start = outgoing.count
        Nonin.Frame(status: status, pleth: pleth, float: values.floatByte(frame: frameInPacket))
            .encode(format == .df7 ? .df7 : .df2, into: &outgoing)
        if faults.isCorrupt(at: t) { outgoing[start + 4] &+= 1 }
        if faults.isSilent(at: t) { outgoing.removeSubrange(start...) }
    }

    private func perfusion(_ conditions: MeasurementConditions) -> Nonin.Perfusion {
        let pi = patient.observation.perfusionIndex.percent
        if conditions.contains(.lowPerfusion) || pi < 0.5 { return .low }
        if pi < 1 { return .marginal }
        return .high
    }

    private mutating func appendRecord(at t: MonotonicInstant) {
        let conditions = effectiveConditions(at: t)
        let shown = updateDisplay(at: t, conditions: conditions)
        var status: Nonin.DF8Status = []
        if conditions.contains(.probeOff) { status.insert(.sensorAlarm) }
        if conditions.contains(.motionArtifact) { status.insert(.artifact) }
        if conditions.contains(.outOfTrack) { status.insert(.outOfTrack) }
        if faults.isLowBattery(at: t) { status.insert(.lowBattery) }
        if !conditions.contains(.probeOff) && !conditions.contains(.outOfTrack) {
            switch perfusion(conditions) {
            case .low: status.insert(.lowPerfusion)
            case .marginal: status.insert(.marginalPerfusion)
            case .high, .none: break
            }
        }
        let start = outgoing.count
        outgoing += Nonin.DF8Record(status: status, heartRate: shown.1, spo2: shown.0).encoded()
        if faults.isCorrupt(at: t) { outgoing[start] &= 0x7F }
        if faults.isSilent(at: t) { outgoing.removeSubrange(start...) }
    }
}
