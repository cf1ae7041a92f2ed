import DeviceIO
import DeviceProtocols
import InfusionCore

/// Timing of the Alaris session. Defaults follow the open clients (§A6, OpenICE `Asena.java`): a
/// reply is awaited 0.5 s and the command re-sent once; the remote-control lease is renewed once a
/// second. The lease is reported lost when no renewal has been confirmed for
/// `leaseConfirmationTimeout` (1.5 s), so a pump that stops answering is reported within 2 s.
public struct AlarisSessionConfiguration: Hashable, Sendable {
    /// How long to wait for the reply to one command before re-sending it.
    public var replyTimeout: Duration
    /// Sends per command (1 = no retry; the open client's 2 = one retry). At least 1.
    public var attempts: Int
    /// How often `REMOTE_CTRL^ENABLED` + `REMOTE_CFG^ENABLED` are re-sent.
    public var leaseInterval: Duration
    /// How long without a confirmed lease renewal before `.remoteControlLost` is raised.
    public var leaseConfirmationTimeout: Duration
    /// How often the `INF` status line is read (the `lastStatus` freshness).
    public var pollInterval: Duration

    /// A configuration; see each property.
    public init(replyTimeout: Duration = .milliseconds(500), attempts: Int = 2, leaseInterval: Duration = .seconds(1),
                leaseConfirmationTimeout: Duration = .milliseconds(1500), pollInterval: Duration = .seconds(1)) {
        self.replyTimeout = replyTimeout
        self.attempts = max(1, attempts)
        self.leaseInterval = leaseInterval
        self.leaseConfirmationTimeout = leaseConfirmationTimeout
        self.pollInterval = pollInterval
    }
}

/// A request the public class submits to the session.
public enum AlarisRequest: Hashable, Sendable {
    /// Serial number (`INST_SERIALNO`) and protocol text (`COMMS_PROTOCOL`).
    case identify
    /// `INF_RATE^<rate>^ml/h`, rounded down to 0.01 mL/h; confirmed when the echoed rate matches.
    case setRate(VolumeRate)
    /// `INF_VTBI^ACTIV^<volume>^ml^STOP`, rounded down to 0.001 mL.
    case setVolumeToInfuse(Volume)
    /// `INF_START`, then `INF`: confirmed when the pump reports itself infusing.
    case start
    /// `INF_STOP`, then `INF`: confirmed when the pump reports itself stopped.
    case stop
    /// `INF`: a fresh status.
    case status
}

/// What the Alaris session publishes.
public enum AlarisSessionOutput: Hashable, Sendable {
    /// The request `id` finished.
    case completed(id: UInt64, ClinicalPumpResult)
    /// The link state changed: `.connected` on the first good reply, `.silent` when a command got no
    /// valid reply after all its attempts, `.disconnected` on link loss.
    case connection(DeviceConnection, at: MonotonicInstant)
    /// The set of active alarms changed (pump alarms, `.remoteControlLost`, and `.deviceFault` while
    /// commands fail after their retries: the technical alarm for a link that does not work).
    case alarms(PumpAlarms, at: MonotonicInstant)
    /// A status read from the pump's `INF` line.
    case status(PumpStatus)
}

/// The Alaris Asena driver's session rules as a pure endpoint (no clock, no I/O): one command in
/// flight at a time (half duplex), a reply awaited `replyTimeout` and re-sent up to `attempts` times
/// (bad CRCs are ignored like missing replies, since the protocol has no NAK); at link-up the serial
/// number is read and the remote code derived from it; the remote-control lease is renewed every
/// `leaseInterval` ahead of any queued request; the status line is polled every `pollInterval`.
///
/// Technical alarms: a command that exhausts its attempts raises `.deviceFault` and reports the
/// connection `.silent` (cleared by the next good reply); a lease reply `REMOTE_CTRL^DISABLED`, a
/// control command answered with `REMOTE_CTRL^DISABLED`, or no confirmed renewal for
/// `leaseConfirmationTimeout` raise `.remoteControlLost` (cleared when a renewal is confirmed again).
///
/// Hosts call it from one thread at a time (`LinkEndpoint`).
public struct AlarisSession: LinkEndpoint {
    /// The published outputs.
    public typealias Output = AlarisSessionOutput

    /// Counters, for tests and logs.
    public struct Statistics: Hashable, Sendable {
        /// Commands re-sent after a missing or bad reply.
        public var retries = 0
        /// Commands that got no valid reply after all attempts.
        public var failures = 0
        /// Frames dropped by the decoder (bad CRC, malformed, too long).
        public var badFrames = 0
        /// Good frames that answered nothing in flight (late replies after a retry).
        public var unexpectedReplies = 0
    }

    private enum Purpose: Hashable {
        case connect, lease, poll
        case request(UInt64, AlarisRequest)
    }

    private struct Job {
        var purpose: Purpose
        var steps: [AlarisCommand]
        var index = 0
        var attempt = 1
        var rate: Rounded<VolumeRate>?
        var volume: Rounded<Volume>?
        var identity: (serial: String?, protocolText: String?) = (nil, nil)
        var command: AlarisCommand { steps[index] }
    }

    private enum StepResult {
        case next
        case done(ClinicalPumpResult)
        case ignore
    }

    /// The timing in force.
    public let configuration: AlarisSessionConfiguration
    /// Counters since creation.
    public private(set) var statistics = Statistics()
    /// The serial number read at connect (nil before).
    public private(set) var serialNumber: String?
    /// True while the lease is confirmed.
    public private(set) var leaseHeld = false

    private var decoder = AlarisFrameDecoder()
    private var up = false
    private var code: AlarisRemoteCode?
    private var current: Job?
    private var queue: [Job] = []
    private var replyDeadline: MonotonicInstant?
    private var connectDue: MonotonicInstant?
    private var leaseDue: MonotonicInstant?
    private var pollDue: MonotonicInstant?
    private var leaseReference: MonotonicInstant?
    private var leaseLost = false
    private var commsFault = false
    private var pumpAlarms: PumpAlarms = []
    private var publishedAlarms: PumpAlarms = []
    private var connection: DeviceConnection = .disconnected
    private var protocolText: String?

    /// A session with `configuration`; it does nothing until `linkUp`.
    public init(configuration: AlarisSessionConfiguration = AlarisSessionConfiguration()) {
        self.configuration = configuration
    }

    /// When the lease was last confirmed by the pump (nil while not held).
    public var leaseConfirmedAt: MonotonicInstant? { leaseHeld ? leaseReference : nil }

    /// The active alarms as last published.
    public var alarms: PumpAlarms { publishedAlarms }

    /// The earliest of the reply deadline, the next lease renewal, the next poll, the lease expiry.
    public var nextDeadline: MonotonicInstant? {
        guard up else { return nil }
        var deadlines = [replyDeadline, connectDue, leaseDue, pollDue]
        if let reference = leaseReference, !leaseLost { deadlines.append(reference + configuration.leaseConfirmationTimeout) }
        return deadlines.compactMap { $0 }.min()
    }

    /// The port opened: reads the serial number first (the remote code needs it).
    public mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        up = true
        decoder.reset()
        serialNumber = nil
        code = nil
        leaseReference = nil
        connectDue = now
        pump(at: now, effects: &effects)
    }

    /// The port closed: every request in flight or queued completes `.uncertain`; the lease is lost.
    public mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        up = false
        let reason = "the link to the Alaris pump went down before it answered: the command may or may not have taken effect; check the cable, then read the pump's status"
        for job in [current].compactMap({ $0 }) + queue {
            if case let .request(id, _) = job.purpose { effects.emit(.completed(id: id, .uncertain(reason))) }
        }
        current = nil
        queue.removeAll()
        replyDeadline = nil
        connectDue = nil
        leaseDue = nil
        pollDue = nil
        if leaseHeld || leaseReference != nil { leaseLost = true }
        leaseHeld = false
        leaseReference = nil
        setConnection(.disconnected, at: now, effects: &effects)
        publishAlarms(at: now, effects: &effects)
    }

    /// Submits a request; its completion is published as `.completed(id:…)`. Refused at once for a
    /// value the codec cannot encode; `.uncertain` at once when the link is down.
    public mutating func submit(_ request: AlarisRequest, id: UInt64, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard up else {
            effects.emit(.completed(id: id, .uncertain("no link to the Alaris pump: nothing was sent; check the cable and the port, then retry")))
            return
        }
        var job: Job
        switch request {
        case .identify: job = Job(purpose: .request(id, request), steps: [.querySerialNumber, .queryCommsProtocol])
        case let .setRate(rate):
            do {
                let encoded = try AlarisRate(roundingDown: rate)
                job = Job(purpose: .request(id, request), steps: [.setRate(encoded)])
                job.rate = encoded.rounded
            } catch {
                effects.emit(.completed(id: id, .refused(PumpRefusal(code: "rate", description: error.description))))
                return
            }
        case let .setVolumeToInfuse(volume):
            do {
                let encoded = try AlarisVolume(roundingDown: volume)
                job = Job(purpose: .request(id, request), steps: [.activateVTBI(encoded, then: .stop)])
                job.volume = encoded.rounded
            } catch {
                effects.emit(.completed(id: id, .refused(PumpRefusal(code: "volume", description: error.description))))
                return
            }
        case .start: job = Job(purpose: .request(id, request), steps: [.start, .queryInfusionStatus])
        case .stop: job = Job(purpose: .request(id, request), steps: [.stop, .queryInfusionStatus])
        case .status: job = Job(purpose: .request(id, request), steps: [.queryInfusionStatus])
        }
        // A stop goes ahead of everything queued (after the exchange in flight).
        if request == .stop { queue.insert(job, at: 0) } else { queue.append(job) }
        pump(at: now, effects: &effects)
    }

    /// Feeds received bytes through the frame decoder and matches replies to the command in flight.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        var messages: [AlarisMessage] = []
        decoder.feed(bytes) { event in
            switch event {
            case let .message(message): messages.append(message)
            case .error: break
            }
        }
        statistics.badFrames = decoder.statistics.checksumMismatches + decoder.statistics.malformedFrames + decoder.statistics.oversizedFrames
        for message in messages { handle(message, at: now, effects: &effects) }
        pump(at: now, effects: &effects)
    }

    /// Re-sends or fails the command in flight at its deadline; renews the lease; polls; checks expiry.
    public mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard up else { return }
        if let deadline = replyDeadline, now >= deadline, var job = current {
            if job.attempt < configuration.attempts {
                job.attempt += 1
                statistics.retries += 1
                current = job
                send(job, at: now, effects: &effects)
            } else {
                fail(job, at: now, effects: &effects)
            }
        }
        if let due = connectDue, now >= due {
            connectDue = nil
            if !queue.contains(where: { $0.purpose == .connect }), current?.purpose != .connect {
                queue.insert(Job(purpose: .connect, steps: [.querySerialNumber]), at: 0)
            }
        }
        if let due = leaseDue, now >= due, let code {
            leaseDue = now + configuration.leaseInterval
            if leaseReference == nil { leaseReference = now }
            if !queue.contains(where: { $0.purpose == .lease }), current?.purpose != .lease {
                queue.insert(Job(purpose: .lease, steps: [.enableRemoteControl(code), .enableRemoteConfiguration(code)]), at: 0)
            }
        }
        if let due = pollDue, now >= due {
            pollDue = now + configuration.pollInterval
            if !queue.contains(where: { $0.purpose == .poll }), current?.purpose != .poll {
                queue.append(Job(purpose: .poll, steps: [.queryInfusionStatus]))
            }
        }
        if let reference = leaseReference, !leaseLost, now >= reference + configuration.leaseConfirmationTimeout {
            leaseLost = true
            leaseHeld = false
            publishAlarms(at: now, effects: &effects)
        }
        pump(at: now, effects: &effects)
    }

    // MARK: Internals

    private mutating func pump(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard up, current == nil, !queue.isEmpty else { return }
        let job = queue.removeFirst()
        current = job
        send(job, at: now, effects: &effects)
    }

    private mutating func send(_ job: Job, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        effects.send(job.command.frame)
        replyDeadline = now + configuration.replyTimeout
    }

    private mutating func fail(_ job: Job, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        statistics.failures += 1
        current = nil
        replyDeadline = nil
        commsFault = true
        setConnection(.silent, at: now, effects: &effects)
        publishAlarms(at: now, effects: &effects)
        let seconds = configuration.replyTimeout.formattedSeconds
        switch job.purpose {
        case let .request(id, _):
            effects.emit(.completed(id: id, .uncertain(
                "no valid reply to \(job.command.keyword) from the Alaris pump within \(seconds) s after \(configuration.attempts) attempt(s): it may or may not have taken effect; check the cable, the baud rate (38400 8N1) and that the pump is on, then read its status")))
        case .connect:
            connectDue = now + configuration.pollInterval
        case .lease, .poll:
            break
        }
    }

    private mutating func handle(_ message: AlarisMessage, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard var job = current else { statistics.unexpectedReplies += 1; return }
        let expected = job.command
        let isRemoteRefusal = message.keyword == AlarisKeyword.remoteControl && expected.keyword != AlarisKeyword.remoteControl
        guard message.keyword == expected.keyword || isRemoteRefusal else { statistics.unexpectedReplies += 1; return }
        guard let reply = try? AlarisReply(message: message) else {
            statistics.badFrames += 1  // a reply with our keyword that does not parse: wait for the retry
            return
        }
        // A good reply: the link works.
        if commsFault {
            commsFault = false
            publishAlarms(at: now, effects: &effects)
        }
        setConnection(.connected, at: now, effects: &effects)
        let result: StepResult
        if isRemoteRefusal {
            if case let .remoteControl(state) = reply, !state.enabled { markLeaseLost(at: now, effects: &effects) }
            result = .done(.refused(PumpRefusal(code: message.text,
                                                description: "the Alaris pump refused \(expected.keyword): it is not under remote control (\(message.text)); the lease is being renewed, retry in a second, or use the pump's keypad")))
        } else {
            result = step(&job, reply: reply, message: message, at: now, effects: &effects)
        }
        switch result {
        case .ignore:
            return
        case .next:
            job.index += 1
            job.attempt = 1
            if job.index < job.steps.count {
                current = job
                send(job, at: now, effects: &effects)
            } else {
                finish(job, with: nil, at: now, effects: &effects)
            }
        case let .done(outcome):
            finish(job, with: outcome, at: now, effects: &effects)
        }
    }

    private mutating func finish(_ job: Job, with outcome: ClinicalPumpResult?, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        current = nil
        replyDeadline = nil
        switch job.purpose {
        case let .request(id, request):
            let result: ClinicalPumpResult
            if let outcome {
                result = outcome
            } else if request == .identify {
                result = .identity(PumpIdentity(family: "alaris", model: "Asena", firmware: job.identity.protocolText ?? "unknown",
                                                serialNumber: job.identity.serial))
            } else {
                result = .uncertain("the Alaris exchange ended without a result (driver error); read the pump's status")
            }
            effects.emit(.completed(id: id, result))
        case .connect:
            leaseDue = now
            pollDue = now
        case .lease, .poll:
            break
        }
    }

    private mutating func step(_ job: inout Job, reply: AlarisReply, message: AlarisMessage, at now: MonotonicInstant,
                               effects: inout EndpointEffects<Output>) -> StepResult {
        let refusal = PumpRefusal(code: message.text, description: "the Alaris pump answered \(job.command.keyword) with \"\(message.text)\": the command was not accepted; check the pump's display")
        switch (job.command, reply) {
        case let (.querySerialNumber, .serialNumber(serial)):
            if serialNumber != serial {
                serialNumber = serial
                code = AlarisRemoteCode(serialNumber: serial)
            }
            job.identity.serial = serial
            return .next
        case let (.queryCommsProtocol, .commsProtocol(text)):
            protocolText = text
            job.identity.protocolText = text
            return .next
        case let (.enableRemoteControl, .remoteControl(state)):
            if state.enabled, state.permitted != false {
                leaseHeld = true
                leaseReference = now
                if leaseLost {
                    leaseLost = false
                    publishAlarms(at: now, effects: &effects)
                }
            } else {
                markLeaseLost(at: now, effects: &effects)
            }
            return .next
        case (.enableRemoteConfiguration, .remoteConfiguration):
            return .next
        case let (.setRate(rate), .rate(echoed)):
            guard let requested = job.rate else { return .done(.uncertain("driver error: no rate recorded")) }
            if (try? AlarisRate(roundingDown: echoed))?.hundredths == rate.hundredths {
                return .done(.rate(requested))
            }
            return .done(.uncertain("the Alaris pump echoed \(echoed.formatted(fractionDigits: 2)) after being asked for \(rate.text) mL/h: read its status before relying on the rate"))
        case let (.activateVTBI, .vtbi(status)):
            guard let requested = job.volume else { return .done(.uncertain("driver error: no volume recorded")) }
            return status.active ? .done(.volume(requested)) : .done(.refused(refusal))
        case (.start, .started), (.stop, .stopped):
            return .next
        case (.queryInfusionStatus, .other(let line)):
            guard let parsed = AlarisInfusionStatus(message: line) else { return .ignore }
            let status = publish(parsed, at: now, effects: &effects)
            guard case let .request(_, request) = job.purpose else { return .next }
            switch request {
            case .start where status.state != .infusing:
                return .done(.uncertain("the Alaris pump accepted INF_START but reports \"\(parsed.mode)\": it may not be infusing; check the pump"))
            case .stop where !status.state.isKnownStopped:
                return .done(.uncertain("the Alaris pump accepted INF_STOP but reports \"\(parsed.mode)\": it may still be infusing; stop it at the pump"))
            default:
                return .done(.status(status))
            }
        case (.start, .other), (.stop, .other), (.setRate, .other), (.activateVTBI, .other):
            return .done(.refused(refusal))
        default:
            return .ignore
        }
    }

    private mutating func publish(_ line: AlarisInfusionStatus, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) -> PumpStatus {
        var found: PumpAlarms = []
        switch line.alarm {
        case AlarisInfusionStatus.Alarm.none, "": break
        case AlarisInfusionStatus.Alarm.occlusion: found.insert(.occlusion)
        case AlarisInfusionStatus.Alarm.empty: found.insert(.empty)
        default: found.insert(.deviceFault)  // an alarm word this driver does not know: still an alarm
        }
        if found != pumpAlarms {
            pumpAlarms = found
            publishAlarms(at: now, effects: &effects)
        }
        let status = PumpStatus(receivedAt: now, state: line.runState, rate: line.rate, volumeInfused: line.volumeInfused,
                                alarms: currentAlarms)
        effects.emit(.status(status))
        return status
    }

    private mutating func markLeaseLost(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        leaseHeld = false
        if !leaseLost {
            leaseLost = true
            publishAlarms(at: now, effects: &effects)
        }
    }

    private var currentAlarms: PumpAlarms {
        var set = pumpAlarms
        if commsFault { set.insert(.deviceFault) }
        if leaseLost { set.insert(.remoteControlLost) }
        return set
    }

    private mutating func publishAlarms(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        let set = currentAlarms
        guard set != publishedAlarms else { return }
        publishedAlarms = set
        effects.emit(.alarms(set, at: now))
    }

    private mutating func setConnection(_ state: DeviceConnection, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard state != connection else { return }
        connection = state
        effects.emit(.connection(state, at: now))
    }
}

extension Duration {
    /// Seconds with up to three decimals, for messages ("0.5").
    var formattedSeconds: String {
        let millis = Int64((seconds * 1000).rounded())
        return millis % 1000 == 0 ? "\(millis / 1000)" : "\(Double(millis) / 1000)"
    }
}
