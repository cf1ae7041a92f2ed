import DeviceIO
import DeviceProtocols
import InfusionCore

/// A simulated Masimo Radical-7 in "ASCII 1" mode (reference/protocols.md §B3), a pure model
/// (`infusion-sim --oximeter masimo`).
///
/// * One line a second from link-up (line k at link-up + k s), Radical-7 layout, CR LF. Output only:
///   whatever the host sends is ignored.
/// * Device clock: 01/01/25 08:00:00 at the host clock's origin, advancing with it.
/// * Values: the patient's SpO2, pulse rate and PI; `EXC=000800` (Masimo SET) in normal operation;
///   `ALARM=0012` (SpO2 low, alarm active) while SpO2 < 90 %.
/// * Conditions (scenario + faults) on the wire: probe off → EXC sensor off (0x20) and dashes for SpO2,
///   BPM and PI; artifact → EXC low signal IQ (0x400); low perfusion → EXC low perfusion (0x4) with PI at
///   most 0.2 %; out of track → EXC pulse search (0x8) and dashes. Low battery → ALARM low battery
///   (0x0040), values unchanged. Silence → nothing; corrupt → the
///   `=` of every `SPO2=` becomes `:` (the line cannot be read; the format has no checksum); garbage →
///   32 noise bytes before the next line.
public struct SimulatedMasimo: SimulatedDevice, PatientMonitoringDevice {
    /// Log lines for the operator.
    public typealias Output = String
    /// "masimo".
    public static let kind = "masimo"
    /// See `SimulatedDevice.faultHelp`.
    public static var faultHelp: [String] { OximeterFaults.help }

    /// The faults in force.
    public private(set) var faults = OximeterFaults()
    private var patient = ObservedPatient()
    private var linkUpAt: MonotonicInstant?
    private var emitted: Int64 = 0

    /// A device waiting for a link.
    public init() {}

    /// See `LinkEndpoint.nextDeadline`: the next line while the link is up.
    public var nextDeadline: MonotonicInstant? { linkUpAt.map { $0 + .seconds(emitted) } }

    /// See `PatientMonitoringDevice.observe(_:at:)`.
    public mutating func observe(_ observation: PatientObservation, at now: MonotonicInstant) {
        patient.observe(observation, at: now)
    }

    /// See `SimulatedDevice.inject(_:at:)`.
    public mutating func inject(_ fault: FaultCommand, at now: MonotonicInstant) throws(FaultError) -> String {
        if let done = try patient.control(fault) { return done }
        return try faults.inject(fault, at: now)
    }

    /// See `LinkEndpoint.linkUp(at:effects:)`.
    public mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        linkUpAt = now
        emitted = 0
        effects.emit("link up: one ASCII 1 line a second")
    }

    /// See `LinkEndpoint.linkDown(at:effects:)`.
    public mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        linkUpAt = nil
        effects.emit("link down")
    }

    /// See `LinkEndpoint.receive(_:at:effects:)`: ASCII 1 is output only; input is ignored.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<String>) {}

    /// See `LinkEndpoint.tick(at:effects:)`: sends the lines that are due.
    public mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        guard let start = linkUpAt else { return }
        var bytes: [UInt8] = []
        while start + .seconds(emitted) <= now {
            let t = start + .seconds(emitted)
            emitted += 1
            guard !faults.isSilent(at: t) else { continue }
            if let noise = faults.takeGarbage() { bytes += noise }
            var line = record(at: t).encoded(style: .radical7)
            if faults.isCorrupt(at: t), let index = Self.find(Array("SPO2=".utf8), in: line) { line[index + 4] = UInt8(ascii: ":") }
            bytes += line
        }
        if !bytes.isEmpty { effects.send(bytes) }
    }

    /// The record the device writes at `t`.
    public func record(at t: MonotonicInstant) -> Masimo.Record {
        let conditions = patient.observation.conditions.union(faults.conditions(at: t))
        var exceptions: Masimo.ExceptionFlags = .masimoSET
        var spo2: Percentage? = patient.observation.spo2
        var rate: PulseRate? = patient.observation.pulseRate
        var pi: Percentage? = patient.observation.perfusionIndex
        if conditions.contains(.lowPerfusion) {
            exceptions.insert(.lowPerfusion)
            pi = .percent(min(pi?.percent ?? 0.2, 0.2))
        }
        if conditions.contains(.motionArtifact) { exceptions.insert(.lowSignalIQ) }
        if conditions.contains(.outOfTrack) {
            exceptions.insert(.pulseSearch)
            (spo2, rate, pi) = (nil, nil, nil)
        }
        if conditions.contains(.probeOff) {
            exceptions.insert(.sensorOff)
            (spo2, rate, pi) = (nil, nil, nil)
        }
        var alarms: Masimo.AlarmFlags = []
        if let value = spo2?.percent, value.rounded() < 90 { alarms.formUnion([.spo2Low, .alarmActive]) }
        if faults.isLowBattery(at: t) { alarms.insert(.lowBattery) }
        return Masimo.Record(deviceTime: Self.deviceTime(at: t), serialNumber: "0123456789", spo2: spo2, pulseRate: rate,
                             perfusionIndex: pi, alarms: alarms, exceptions: exceptions)
    }

    /// The device clock at `t`: 2025-01-01 08:00:00 at the origin.
    static func deviceTime(at t: MonotonicInstant) -> Masimo.DeviceTime {
        let seconds = max(0, t.nanoseconds / 1_000_000_000) + 8 * 3600
        let days = Int(seconds / 86_400)
        let secondOfDay = Int(seconds % 86_400)
        let (year, month, day) = civil(fromDays: days + 20_089)  // 2025-01-01 is day 20 089 since 1970
        return Masimo.DeviceTime(month: month, day: day, year: year % 100, hour: secondOfDay / 3600,
                                 minute: secondOfDay / 60 % 60, second: secondOfDay % 60)
    }

    /// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
    static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<start + needle.count].elementsEqual(needle) {
            return start
        }
        return nil
    }
}
