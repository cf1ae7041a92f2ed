import DeviceIO
import DeviceProtocols
import InfusionCore

/// A simulated Alaris Asena syringe pump speaking the `!MSG|CRC\r` protocol (reference/protocols.md
/// §A4, §A6) as the open clients use it: infupy's `alaris.py` (INST_SERIALNO, REMOTE_CTRL/REMOTE_CFG
/// lease every second, INF_RATE, INF_VI, INF_START, INF_STOP) and OpenICE's `Asena.java` (also INF,
/// COMMS_PROTOCOL, COMMS_RESPONSE_MAX, INF_VTBI, INF_BOLUS, REMQUERY). Every frame with a good CRC
/// is answered at once with a frame echoing its keyword; frames with a bad CRC are ignored (the
/// protocol has no negative acknowledgement); ESC aborts a partial frame.
///
/// Remote control: `REMOTE_CTRL^ENABLED^<code>` with the right code (CRC-16/CCITT-FALSE of the serial
/// number) grants a lease of `leaseTimeout`; each renewal extends it. Control commands (rate, VTBI,
/// start, bolus) without a lease are answered `REMOTE_CTRL^DISABLED`. When the lease lapses the pump
/// leaves remote control and, per `lapseBehaviour`, keeps infusing (default) or stops. `INF_STOP` is
/// accepted at any time (a simulator choice: the real pump's rule is not public).
///
/// Choices not in the public sources **[unverified]**: the lease time-out (3 s by default), the
/// `INF` line's alarm/mode words (`AlarisInfusionStatus`), refusals written `<KEYWORD>^REFUSED^<why>`.
///
/// Pure: time comes in as arguments. Hosts call it from one thread at a time.
public struct AlarisSimulator: SimulatedDevice, DeliveringDevice {
    /// Log lines for the operator.
    public typealias Output = String

    /// `alaris`.
    public static let kind = "alaris"
    /// The faults this pump accepts.
    public static let faultHelp = [
        "stall | occlusion     occlusion alarm: stops",
        "empty                 syringe empty alarm: stops",
        "clear-alarm           the operator clears the alarm at the pump",
        "silence [10s]         no replies for the duration",
        "garbage [dur]         a burst of random bytes now; with a duration, noise instead of every reply",
        "bad-crc | nak-storm [5s]  every reply carries a wrong CRC for the duration",
        "power-reset           power cycle: leaves remote control, stops, rate and counters cleared",
        "drop-remote [5s]      the pump leaves remote control and refuses it for the duration",
        "on-lapse keep-infusing|stop   what the pump does when the lease lapses (default keep-infusing)",
    ]

    /// Settings of the simulated pump.
    public struct Configuration: Hashable, Sendable {
        /// The serial number reported by `INST_SERIALNO` (§A4's example by default).
        public var serialNumber: String
        /// The text reported by `COMMS_PROTOCOL`.
        public var protocolText: String
        /// How long a lease lasts without renewal **[unverified]**.
        public var leaseTimeout: Duration
        /// Syringe capacity.
        public var syringeVolume: Volume
        /// What happens when the lease lapses.
        public var lapseBehaviour: RemoteLapseBehaviour

        /// A configuration; see each property.
        public init(serialNumber: String = "8002-51740", protocolText: String = "Asena Rev 2.1.5", leaseTimeout: Duration = .seconds(3),
                    syringeVolume: Volume = .millilitres(50), lapseBehaviour: RemoteLapseBehaviour = .keepInfusing) {
            self.serialNumber = serialNumber
            self.protocolText = protocolText
            self.leaseTimeout = leaseTimeout
            self.syringeVolume = syringeVolume
            self.lapseBehaviour = lapseBehaviour
        }
    }

    /// The settings in force (`lapseBehaviour` changes with `on-lapse`).
    public private(set) var configuration: Configuration
    /// True while the host holds remote control.
    public private(set) var remoteControl = false
    /// The alarm word shown in the `INF` line (`NONE` when clear).
    public private(set) var alarm = AlarisInfusionStatus.Alarm.none

    private var drive: SimulatedSyringeDrive
    private var decoder = AlarisFrameDecoder()
    private var leaseExpires: MonotonicInstant?
    private var remoteRefusedUntil: MonotonicInstant?
    private var badCRCUntil: MonotonicInstant?
    private var line = ReplyLineFaults(seed: 0x5EED_A1A2)
    private let code: AlarisRemoteCode

    /// A pump with `configuration`, stopped, not under remote control.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        drive = SimulatedSyringeDrive(capacity: configuration.syringeVolume)
        code = AlarisRemoteCode(serialNumber: configuration.serialNumber)
    }

    /// Everything pushed out since creation.
    public var totalVolumeDelivered: Volume { drive.delivered }
    /// True while the plunger moves.
    public var isInfusing: Bool { drive.running }
    /// The programmed rate.
    public var rate: VolumeRate { drive.rate }

    /// Lease expiry, and 100 ms steps while infusing (delivery, VTBI end, empty syringe).
    public var nextDeadline: MonotonicInstant? {
        var deadlines: [MonotonicInstant?] = [remoteControl ? leaseExpires : nil]
        if drive.running, let last = drive.last { deadlines.append(last + .milliseconds(100)) }
        return deadlines.compactMap { $0 }.min()
    }

    /// A host opened the port.
    public mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        decoder.reset()
        effects.emit("host connected")
    }

    /// The host closed the port: nothing changes until the lease lapses.
    public mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        decoder.reset()
        effects.emit("host disconnected")
    }

    /// Decodes host frames and answers each one with a good CRC.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        advance(to: now, effects: &effects)
        var messages: [AlarisMessage] = []
        decoder.feed(bytes) { event in
            if case let .message(message) = event { messages.append(message) }
        }
        for message in messages {
            guard let reply = answer(message, at: now, effects: &effects) else { continue }
            send(reply, at: now, effects: &effects)
        }
    }

    /// Delivery progress and lease expiry.
    public mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        advance(to: now, effects: &effects)
    }

    /// Applies a fault (see `faultHelp`).
    public mutating func inject(_ fault: FaultCommand, at now: MonotonicInstant) throws(FaultError) -> String {
        if let message = try line.inject(fault, at: now) { return message }
        var ignored = EndpointEffects<String>()
        advance(to: now, effects: &ignored)
        switch fault.name {
        case "stall", "occlusion":
            raise(AlarisInfusionStatus.Alarm.occlusion)
            return "occlusion: alarm OCCLUSION, stopped"
        case "empty":
            raise(AlarisInfusionStatus.Alarm.empty)
            return "syringe empty: alarm EMPTY, stopped"
        case "clear-alarm":
            alarm = AlarisInfusionStatus.Alarm.none
            return "alarm cleared"
        case "bad-crc", "nak-storm":
            let duration = try FaultArguments.duration(fault, default: .seconds(5))
            badCRCUntil = now + duration
            return "replies with a wrong CRC for \(duration)"
        case "power-reset":
            let delivered = drive.delivered
            drive = SimulatedSyringeDrive(capacity: drive.remaining)
            drive.delivered = delivered
            drive.last = now
            remoteControl = false
            leaseExpires = nil
            alarm = AlarisInfusionStatus.Alarm.none
            return "power reset: stopped, rate and counters cleared, local control"
        case "drop-remote":
            let duration = try FaultArguments.duration(fault, default: .seconds(5))
            remoteRefusedUntil = now + duration
            leaveRemoteControl(at: now, effects: &ignored)
            return "left remote control; refusing it for \(duration) (\(configuration.lapseBehaviour.rawValue))"
        case "on-lapse":
            configuration.lapseBehaviour = try FaultArguments.lapse(fault)
            return "on lease lapse: \(configuration.lapseBehaviour.rawValue)"
        default:
            throw FaultError("unknown fault \"\(fault.name)\" for alaris; accepted:\n" + Self.faultHelp.joined(separator: "\n"))
        }
    }

    // MARK: Internals

    private mutating func raise(_ word: String) {
        alarm = word
        drive.running = false
    }

    private mutating func advance(to now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        switch drive.advance(to: now) {
        case .volumeReached?: effects.emit("volume to be infused reached: stopped")
        case .empty?:
            alarm = AlarisInfusionStatus.Alarm.empty
            effects.emit("syringe empty: stopped")
        case nil: break
        }
        if remoteControl, let expires = leaseExpires, now >= expires {
            effects.emit("remote-control lease lapsed")
            leaveRemoteControl(at: now, effects: &effects)
        }
    }

    private mutating func leaveRemoteControl(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        remoteControl = false
        leaseExpires = nil
        if configuration.lapseBehaviour == .stop, drive.running {
            drive.running = false
            effects.emit("left remote control: stopped")
        } else if drive.running {
            effects.emit("left remote control: infusing on at \(drive.rate.formatted(fractionDigits: 2))")
        }
    }

    private mutating func send(_ message: AlarisMessage, at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        guard line.admitReply(at: now, effects: &effects) else { return }
        var frame = AlarisFrame.encode(message)
        if let until = badCRCUntil, now < until, frame.count > 2 {
            frame[frame.count - 2] = frame[frame.count - 2] == 0x30 ? 0x31 : 0x30  // last CRC digit changed
        }
        effects.send(frame)
    }

    private var remoteState: AlarisRemoteState {
        remoteControl ? AlarisRemoteState(enabled: true, detail: ["****", "PERMIT", "0", "ms"]) : AlarisRemoteState(enabled: false)
    }

    private func refused(_ keyword: String, _ why: String) -> AlarisMessage? {
        try? AlarisMessage(keyword: keyword, arguments: ["REFUSED", why])
    }

    private mutating func answer(_ message: AlarisMessage, at now: MonotonicInstant, effects: inout EndpointEffects<String>) -> AlarisMessage? {
        let command: AlarisCommand
        do {
            command = try AlarisCommand(message: message)
        } catch {
            return refused(message.keyword, "SYNTAX")
        }
        func reply(_ reply: AlarisReply) -> AlarisMessage? { try? reply.message() }
        let notRemote = AlarisReply.remoteControl(AlarisRemoteState(enabled: false))
        switch command {
        case .querySerialNumber: return reply(.serialNumber(configuration.serialNumber))
        case .queryCommsProtocol: return reply(.commsProtocol(configuration.protocolText))
        case .queryResponseTimeMaximum: return try? AlarisMessage(keyword: AlarisKeyword.responseTimeMaximum, arguments: ["500", "ms"])
        case .queryInfusionStatus:
            let line = AlarisInfusionStatus(alarm: alarm, mode: drive.running ? AlarisInfusionStatus.Mode.infusing : AlarisInfusionStatus.Mode.stopped,
                                            rate: drive.rate, volumeInfused: drive.counter)
            return try? line.message()
        case let .enableRemoteControl(given):
            if given == code, remoteRefusedUntil.map({ now >= $0 }) ?? true {
                if !remoteControl { effects.emit("remote control taken") }
                remoteControl = true
                leaseExpires = now + configuration.leaseTimeout
            }
            return reply(.remoteControl(remoteState))
        case .disableRemoteControl:
            if remoteControl { effects.emit("remote control ended by the host") }
            remoteControl = false
            leaseExpires = nil
            return reply(.remoteControl(remoteState))
        case let .enableRemoteConfiguration(given):
            let granted = given == code && remoteControl
            return reply(.remoteConfiguration(granted ? AlarisRemoteState(enabled: true, detail: ["****", "PERMIT", "0", "ms"]) : AlarisRemoteState(enabled: false)))
        case .disableRemoteConfiguration:
            return reply(.remoteConfiguration(AlarisRemoteState(enabled: false)))
        case .queryRate: return reply(.rate(drive.rate))
        case let .setRate(rate):
            guard remoteControl else { return reply(notRemote) }
            drive.rate = rate.value
            effects.emit("rate \(rate.text) ml/h")
            return reply(.rate(drive.rate))
        case .queryVolumeInfused: return reply(.volumeInfused(drive.counter))
        case .start:
            guard remoteControl else { return reply(notRemote) }
            guard alarm == AlarisInfusionStatus.Alarm.none else { return refused(AlarisKeyword.start, "ALARM") }
            guard drive.rate > .zero else { return refused(AlarisKeyword.start, "NO_RATE") }
            guard drive.remaining > .zero else { return refused(AlarisKeyword.start, "EMPTY") }
            drive.running = true
            drive.last = now
            effects.emit("infusing at \(drive.rate.formatted(fractionDigits: 2))")
            return reply(.started)
        case .stop:
            if drive.running { effects.emit("stopped") }
            drive.running = false
            return reply(.stopped)
        case .queryVTBI:
            return reply(.vtbi(AlarisVTBIStatus(active: drive.toInfuse != nil, volume: drive.toInfuse, endAction: drive.toInfuse == nil ? nil : .stop)))
        case let .activateVTBI(volume, action):
            guard remoteControl else { return reply(notRemote) }
            drive.toInfuse = volume.value
            return reply(.vtbi(AlarisVTBIStatus(active: true, volume: volume.value, endAction: action)))
        case .deactivateVTBI:
            guard remoteControl else { return reply(notRemote) }
            drive.toInfuse = nil
            return reply(.vtbi(AlarisVTBIStatus(active: false)))
        case .enableBolus:
            guard remoteControl else { return reply(notRemote) }
            return reply(.bolusEnabled)
        case .deactivateRemoteQuery: return reply(.remoteQueryDeactivated)
        case .unrecognized:
            return refused(message.keyword, "UNKNOWN")
        }
    }
}
