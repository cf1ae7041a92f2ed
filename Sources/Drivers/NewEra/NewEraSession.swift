import DeviceIO
import DeviceProtocols
import InfusionCore

/// The New Era session rules as a pure `LinkEndpoint` (DRIVER-ARCHITECTURE.md): one outstanding
/// command at a time (the protocol is half-duplex master/slave), reply deadlines and bounded retries,
/// the safe-mode handshake and heartbeat, the power-up reset alarm, typed alarms, and the connection
/// state. No threads, clocks or descriptors: `NewEraPump` runs it over a real link in an
/// `EndpointHost`; tests run it against the simulated pump in a `VirtualNetwork`.
///
/// **Handshake.** Every time the link comes up the session sends `SAF<n>` *in safe framing* (n = the
/// configured watchdog time-out in whole seconds, 0 for basic mode). A pump accepts a safe packet in
/// either mode and answers in the framing of the new mode (§A1; nesp-lib does the same). After a
/// power-up the first command is answered `A?R`; that reply acknowledges the alarm and the command is
/// sent once more (as nesp-lib does). A reset seen on the very first connection is the expected
/// power-up report; a reset seen after the session already had contact means the pump lost power
/// during the session and is latched as `.powerReset`.
///
/// **Heartbeat.** While idle it sends an empty status query every `heartbeatInterval` (at most a third
/// of the safe-mode time-out, and at most `pollInterval`), which feeds the pump's watchdog and detects
/// a silent pump: the first reply deadline missed turns the connection `.silent`.
///
/// **Alarms.** An alarm reply (`A?S`, `A?T`, `A?R`, `A?E`, `A?O`) or the unsolicited safe-mode
/// auto-alarm is latched as a typed `PumpAlarms` member and published; it stays in every status until a
/// `start` is confirmed (the operator has seen it and restarted). Since the alarm reply replaces the
/// command's execution, the command is sent again (at most twice), except `RUN`: a start answered with
/// an alarm is refused, never retried behind the operator's back.
///
/// **Outcomes.** Every request ends in exactly one `.completed(id, outcome)`: `.confirmed` with what the
/// pump reported back (sets are read back and compared), `.refused` when the pump answered no
/// (`?OOR`, `?NA`, `?COM`, `?`), or `.uncertain` when the command may or may not have taken effect
/// (no reply after all attempts, link lost).
///
/// A value type; hosts call it from one thread at a time with non-decreasing times.
public struct NewEraSession: LinkEndpoint {
    /// Identifies a request in `.completed` outputs.
    public typealias RequestID = UInt64

    /// Session settings.
    public struct Configuration: Hashable, Sendable {
        /// The pump's network address (0…99; factory 0).
        public var address: NewEra.Address
        /// The safe-mode watchdog time-out in whole seconds (1…255), or 0 for basic mode. Default 5
        /// (DESIGN.md [P]): the pump stops itself when the host is silent that long.
        public var safeModeTimeoutSeconds: UInt8
        /// How long to wait for each reply before trying again. Default 400 ms (a 20-byte reply takes
        /// 10 ms at 19200 baud, 0.67 s at 300 baud: raise it for slow lines).
        public var replyTimeout: Duration
        /// Attempts per command (first try plus retries). Default 3.
        public var maxAttempts: Int
        /// The longest idle gap between status queries, for silence detection. Default 400 ms, so a
        /// silent pump is reported within 1 s.
        public var pollInterval: Duration
        /// How long a request submitted while the link is down waits for it to come up (and for the
        /// handshake) before it ends uncertain, not sent. Default 2 s (a new driver's first calls wait
        /// for the port to open).
        public var connectTimeout: Duration

        /// Settings; see each property.
        public init(address: NewEra.Address = .zero, safeModeTimeoutSeconds: UInt8 = 5,
                    replyTimeout: Duration = .milliseconds(400), maxAttempts: Int = 3,
                    pollInterval: Duration = .milliseconds(400), connectTimeout: Duration = .seconds(2)) {
            self.address = address
            self.safeModeTimeoutSeconds = safeModeTimeoutSeconds
            self.replyTimeout = replyTimeout
            self.maxAttempts = max(1, maxAttempts)
            self.pollInterval = pollInterval
            self.connectTimeout = connectTimeout
        }
    }

    /// What a caller can ask of the pump. Each is carried out as one or more command exchanges.
    public enum Request: Hashable, Sendable {
        /// `VER`.
        case identify
        /// `DIA<n>` then `DIA` to read it back.
        case setDiameter(NewEra.Number)
        /// `RAT<n><unit>` then `RAT` to read it back.
        case setRate(NewEra.RateSetting)
        /// `VOL<unit>`, `VOL<n>`, then `VOL` to read it back.
        case setVolume(NewEra.Number, NewEra.VolumeUnit)
        /// `DIR INF` then `RUN`: confirmed when the pump reports itself infusing.
        case start
        /// `STP`: confirmed when the pump reports itself paused or stopped.
        case stop
        /// Status query, `DIS` and `RAT`: a full `PumpStatus`.
        case status
        /// `CLD INF` then `DIS` to read the cleared counter back.
        case clearInfused
        /// `SAF<n>` in safe framing: arm the watchdog with n seconds, or return to basic mode (0).
        case setSafeMode(seconds: UInt8)
        /// `SAF`: read the safe-mode time-out the pump has stored (0 = basic mode).
        case readSafeMode
        /// `*ADR<n>` (or `*ADR<n>B<baud>`) as a system command, which the pump accepts whatever its
        /// address: sets its network address (and baud rate). Confirmed by the reply from the new address;
        /// afterwards the session talks to the new address. With a baud rate, the reply comes at the new
        /// rate, which a port at the old rate cannot read: expect `.uncertain`, reopen the port at the new
        /// rate and identify the pump to confirm.
        case setAddress(NewEra.Address, baud: NewEra.BaudRate?)
    }

    /// What a confirmed request reports.
    public enum Answer: Hashable, Sendable {
        /// Model and firmware (`identify`).
        case version(NewEra.Version)
        /// The diameter read back, mm (`setDiameter`).
        case diameter(NewEra.Number)
        /// The rate read back (`setRate`).
        case rate(NewEra.RateSetting)
        /// The volume read back (`setVolume`).
        case volume(NewEra.VolumeSetting)
        /// The status after the command (`start`, `stop`, `status`).
        case status(PumpStatus)
        /// The counters read back (`clearInfused`).
        case dispensed(NewEra.Dispensed)
        /// The watchdog time-out now in force, s; 0 = basic mode (`setSafeMode`, `readSafeMode`).
        case safeMode(seconds: UInt8)
        /// The address the pump now answers to (`setAddress`).
        case address(NewEra.Address)
    }

    /// How a request ended (DESIGN.md principle 3).
    public enum Outcome: Hashable, Sendable {
        /// The pump acknowledged and its reply confirms it.
        case confirmed(Answer)
        /// The pump answered no: its code ("?OOR", "A?S") and what it means and what to do.
        case refused(code: String, reason: String)
        /// Sent but not acknowledged, or not sent: may or may not have taken effect.
        case uncertain(String)
    }

    /// What the session publishes.
    public enum Output: Hashable, Sendable {
        /// Request `id` ended.
        case completed(RequestID, Outcome)
        /// The connection state changed.
        case connection(DeviceConnection, at: MonotonicInstant)
        /// The set of latched alarms changed.
        case alarms(PumpAlarms, at: MonotonicInstant)
        /// A status (full, or state-only from a heartbeat merged into the last full one).
        case status(PumpStatus)
        /// The framing the pump now speaks (for the fast stop's choice of pre-encoded frame).
        case framing(NewEra.FramingMode)
    }

    /// Counters for diagnostics and tests.
    public struct Statistics: Hashable, Sendable {
        /// Replies from our pump that were used.
        public var replies = 0
        /// Reply deadlines missed.
        public var timeouts = 0
        /// Commands sent again (time-out, `?COM`, unusable data, alarm acknowledgement).
        public var resends = 0
        /// Replies that arrived with nothing outstanding (late replies, auto-alarms).
        public var unsolicited = 0
        /// Replies from other addresses, or packets that could not be decoded.
        public var ignored = 0
    }

    // MARK: State

    /// The settings in force (the safe-mode value follows `setSafeMode`).
    public private(set) var configuration: Configuration
    /// The framing the pump speaks, as far as the session knows.
    public private(set) var framing: NewEra.FramingMode = .basic
    /// The connection state last published.
    public private(set) var connection: DeviceConnection = .disconnected
    /// Alarms latched since the last confirmed start.
    public private(set) var alarms: PumpAlarms = []
    /// The last status published (nil before the first).
    public private(set) var lastStatus: PumpStatus?
    /// Diagnostics.
    public private(set) var statistics = Statistics()

    private enum Kind: Hashable, Sendable {
        case user(Request)
        case handshake
        case heartbeat
    }

    private struct Job: Sendable {
        var id: RequestID?
        var kind: Kind
        var steps: [NewEra.Command?]
        var step = 0
        var attempts = 0
        var alarmResends = 0
        var sent = false
        /// For requests waiting for the link: when they give up.
        var expiresAt: MonotonicInstant?
        var version: NewEra.Version?
        var diameter: NewEra.Number?
        var rate: NewEra.RateSetting?
        var volume: NewEra.VolumeSetting?
        var dispensed: NewEra.Dispensed?
        var prompt: NewEra.Prompt?
        var safeMode: UInt8?

        var command: NewEra.Command? { step < steps.count ? steps[step] : nil }
    }

    private var decoder = NewEra.ReplyDecoder()
    private var linkIsUp = false
    private var ready = false
    private var hadContact = false
    private var handshakeFailed = false
    private var handshakeAt: MonotonicInstant?
    private var inFlight: Job?
    private var queue: [Job] = []
    private var replyDeadline: MonotonicInstant?
    private var lastSentAt: MonotonicInstant?

    /// A session with `configuration`; the link is down until `linkUp`.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        queue.reserveCapacity(8)
    }

    /// The idle gap between status queries: `pollInterval`, and in safe mode at most a third of the
    /// watchdog time-out.
    public var heartbeatInterval: Duration {
        let seconds = configuration.safeModeTimeoutSeconds
        guard seconds > 0 else { return configuration.pollInterval }
        return min(configuration.pollInterval, .seconds(Int(seconds)) / 3)
    }

    /// True while a submitted request has not completed yet (queued, or in flight). Heartbeats and the
    /// handshake do not count.
    public var hasPendingRequests: Bool { inFlight?.id != nil || !queue.isEmpty }

    /// True when the handshake has completed on the current link.
    public var isReady: Bool { ready }

    /// When `tick` must run next: the reply deadline, the next heartbeat, or a handshake retry.
    public var nextDeadline: MonotonicInstant? {
        guard linkIsUp else { return queue.compactMap(\.expiresAt).min() }
        if let replyDeadline { return replyDeadline }
        if inFlight == nil, !ready, let handshakeAt { return handshakeAt }
        if inFlight == nil, ready, queue.isEmpty { return (lastSentAt ?? .origin) + heartbeatInterval }
        return nil
    }

    // MARK: Requests

    /// Queues `request` under `id`. Completes at once with `.uncertain` when the link is down or the
    /// pump has not answered the handshake.
    public mutating func submit(_ request: Request, id: RequestID, now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard linkIsUp else {
            var job = Job(id: id, kind: .user(request), steps: Self.steps(for: request))
            job.expiresAt = now + configuration.connectTimeout
            queue.append(job)
            return
        }
        if !ready && handshakeFailed {
            effects.emit(.completed(id, .uncertain(
                "not sent: the pump does not answer (\(noReplyAdvice))")))
            return
        }
        queue.append(Job(id: id, kind: .user(request), steps: Self.steps(for: request)))
        if inFlight == nil, ready { startNext(now: now, effects: &effects) }
    }

    private var noReplyAdvice: String {
        "check the cable, the pump's baud rate and that its address is \(configuration.address)"
    }

    private static func steps(for request: Request) -> [NewEra.Command?] {
        switch request {
        case .identify: [.queryVersion]
        case .setDiameter(let mm): [.setDiameter(mm), .queryDiameter]
        case .setRate(let rate): [.setRate(rate), .queryRate]
        case let .setVolume(number, unit): [.setVolumeUnit(unit), .setVolume(number), .queryVolume]
        case .start: [.setDirection(.infuse), .run(phase: nil)]
        case .stop: [.stop]
        case .status: [nil, .queryDispensed, .queryRate]
        case .clearInfused: [.clearDispensed(.infused), .queryDispensed]
        case .setSafeMode(let seconds): [.setSafeMode(timeoutSeconds: seconds)]
        case .readSafeMode: [.querySafeMode]
        case let .setAddress(address, baud): [baud.map { .setAddressAndBaud(address, $0) } ?? .setAddress(address)]
        }
    }

    // MARK: LinkEndpoint

    /// The port opened: reset the decoder and start the handshake (which re-arms safe mode).
    public mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        linkIsUp = true
        ready = false
        handshakeFailed = false
        decoder.reset()
        replyDeadline = nil
        inFlight = nil
        for index in queue.indices { queue[index].expiresAt = nil }
        startHandshake(now: now, effects: &effects)
    }

    /// The link went down: everything outstanding becomes uncertain; report `.disconnected`.
    public mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        linkIsUp = false
        ready = false
        replyDeadline = nil
        handshakeAt = nil
        if let job = inFlight, let id = job.id {
            effects.emit(.completed(id, .uncertain(
                "link lost while waiting for the pump's answer to \(job.command?.text ?? "a status query"): "
                    + "the command may or may not have taken effect")))
        }
        inFlight = nil
        failQueued(reason: "not sent: the link to the pump went down", effects: &effects)
        setConnection(.disconnected, at: now, effects: &effects)
    }

    /// Bytes from the pump: decode replies and advance the exchange.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        for event in decoder.decode(bytes, at: now) {
            switch event {
            case .success(let received):
                handle(received.message, at: now, effects: &effects)
            case .failure:
                statistics.ignored += 1  // bad CRC or unreadable: the deadline will retry
            }
        }
    }

    /// Deadlines: a missed reply (retry or give up), a heartbeat, a handshake retry.
    public mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard linkIsUp else {
            let expired = queue.filter { ($0.expiresAt ?? .origin) <= now }
            queue.removeAll { ($0.expiresAt ?? .origin) <= now }
            for job in expired {
                if let id = job.id {
                    effects.emit(.completed(id, .uncertain(
                        "not sent: the link to the pump is down (no device, or unplugged) and did not come back within "
                            + "\(configuration.connectTimeout.humanReadable); the driver keeps trying to reconnect")))
                }
            }
            return
        }
        if let deadline = replyDeadline, now >= deadline {
            replyDeadline = nil
            replyMissed(at: now, effects: &effects)
            return
        }
        if inFlight == nil, !ready, let at = handshakeAt, now >= at {
            startHandshake(now: now, effects: &effects)
            return
        }
        if inFlight == nil, ready, queue.isEmpty, now >= (lastSentAt ?? .origin) + heartbeatInterval {
            inFlight = Job(kind: .heartbeat, steps: [nil])
            send(now: now, effects: &effects)
        }
    }

    // MARK: Exchanges

    private mutating func startHandshake(now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        handshakeAt = nil
        inFlight = Job(kind: .handshake, steps: [.setSafeMode(timeoutSeconds: configuration.safeModeTimeoutSeconds)])
        send(now: now, effects: &effects)
    }

    private mutating func startNext(now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard inFlight == nil, ready, !queue.isEmpty else { return }
        inFlight = queue.removeFirst()
        send(now: now, effects: &effects)
    }

    /// Sends the in-flight job's current step.
    private mutating func send(now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard var job = inFlight else { return }
        let command = job.command
        var packet = NewEra.CommandPacket(address: configuration.address, command)
        if case .user(.setAddress) = job.kind { packet.destination = .system }
        let mode: NewEra.FramingMode
        if case .setSafeMode = command { mode = .safe } else { mode = framing }
        do {
            effects.send(try NewEra.Framing.encode(packet, mode: mode))
        } catch {
            finish(job, .uncertain("cannot encode \(packet.text): \(error)"), now: now, effects: &effects)
            return
        }
        job.attempts += 1
        job.sent = true
        inFlight = job
        lastSentAt = now
        replyDeadline = now + configuration.replyTimeout
    }

    private mutating func replyMissed(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        statistics.timeouts += 1
        guard let job = inFlight else { return }
        if connection == .connected { setConnection(.silent, at: now, effects: &effects) }
        if job.attempts < configuration.maxAttempts {
            statistics.resends += 1
            send(now: now, effects: &effects)
            return
        }
        let what = job.command?.text ?? "status query"
        let total = configuration.replyTimeout * configuration.maxAttempts
        switch job.kind {
        case .handshake:
            inFlight = nil
            handshakeFailed = true
            failQueued(reason: "not sent: the pump does not answer (\(noReplyAdvice))", effects: &effects)
            handshakeAt = now + configuration.pollInterval
            if connection != .silent { setConnection(.silent, at: now, effects: &effects) }
        case .heartbeat:
            // The pump stopped answering: start over with a handshake when it answers again (it may
            // have been power-cycled or switched to the other framing meanwhile).
            inFlight = nil
            ready = false
            handshakeFailed = true
            failQueued(reason: "not sent: the pump does not answer (\(noReplyAdvice))", effects: &effects)
            handshakeAt = now
        case .user:
            finish(job, .uncertain(
                "no reply from the pump to \(what) within \(total.humanReadable) (\(configuration.maxAttempts) attempts): "
                    + "the command may or may not have taken effect; \(noReplyAdvice)"),
                   now: now, effects: &effects)
        }
    }

    private mutating func handle(_ reply: NewEra.Reply, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        var expected = configuration.address
        if case .user(.setAddress(let new, _))? = inFlight?.kind { expected = new }
        guard reply.address == expected else {
            statistics.ignored += 1
            return
        }
        guard var job = inFlight, job.sent else {
            statistics.unsolicited += 1
            if let alarm = reply.alarm { latch(alarm, at: now, effects: &effects) }
            return
        }
        statistics.replies += 1
        replyDeadline = nil
        setConnection(.connected, at: now, effects: &effects)

        if let alarm = reply.alarm {
            let expectedPowerUp = job.kind == .handshake && alarm == .reset && !hadContact
            if !expectedPowerUp { latch(alarm, at: now, effects: &effects) }
            if case .run = job.command {
                finish(job, .refused(code: reply.status.text, reason:
                    "the pump reported \(Self.alarmText(alarm)) instead of starting; the alarm is now acknowledged: "
                        + "check the pump and the line, then start again"), now: now, effects: &effects)
                return
            }
            if job.alarmResends < 2 {
                job.alarmResends += 1
                job.attempts = 0
                inFlight = job
                statistics.resends += 1
                send(now: now, effects: &effects)
            } else {
                finish(job, .uncertain("the pump keeps answering with alarms (\(reply.status.text))"), now: now, effects: &effects)
            }
            return
        }

        guard case .prompt(let prompt) = reply.status else { return }
        job.prompt = prompt

        if let error = reply.error {
            // Starting while already infusing: DIR is refused with ?NA, and the pump is doing what was asked.
            if case .setDirection = job.command, error == .notApplicable, prompt == .infusing {
                job.step += 1
                inFlight = job
                advance(now: now, effects: &effects)
                return
            }
            if error == .invalidPacket, job.attempts < configuration.maxAttempts {
                statistics.resends += 1
                inFlight = job
                send(now: now, effects: &effects)
                return
            }
            finish(job, .refused(code: error.text, reason: refusalReason(error, job: job)), now: now, effects: &effects)
            return
        }

        do {
            switch job.command {
            case .queryVersion: job.version = try reply.decode(NewEra.Version.self)
            case .queryDiameter: job.diameter = try reply.decode(NewEra.Number.self)
            case .queryRate: job.rate = try reply.decode(NewEra.RateSetting.self)
            case .queryVolume: job.volume = try reply.decode(NewEra.VolumeSetting.self)
            case .queryDispensed: job.dispensed = try reply.decode(NewEra.Dispensed.self)
            case .querySafeMode:
                let number = try reply.decode(NewEra.Number.self)
                guard let seconds = UInt8(exactly: number.value) else { throw NewEra.ParseError(what: "SAF data", text: number.text, reason: "a safe-mode time-out is 0 to 255 whole seconds") }
                job.safeMode = seconds
            default: break
            }
        } catch {
            // A late reply to an earlier command, or line noise: ask again within the attempt budget.
            if job.attempts < configuration.maxAttempts {
                statistics.resends += 1
                inFlight = job
                send(now: now, effects: &effects)
            } else {
                finish(job, .uncertain("unusable answer from the pump to \(job.command?.text ?? "a status query"): \(error)"),
                       now: now, effects: &effects)
            }
            return
        }
        job.step += 1
        inFlight = job
        advance(now: now, effects: &effects)
    }

    /// The in-flight job finished a step: send the next one or complete it.
    private mutating func advance(now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard var job = inFlight else { return }
        if job.step < job.steps.count {
            job.attempts = 0
            job.alarmResends = 0
            inFlight = job
            send(now: now, effects: &effects)
            return
        }
        finish(job, conclude(job, now: now, effects: &effects), now: now, effects: &effects)
    }

    /// The outcome of a job whose steps all got usable answers.
    private mutating func conclude(_ job: Job, now: MonotonicInstant, effects: inout EndpointEffects<Output>) -> Outcome {
        let prompt = job.prompt ?? .stopped
        switch job.kind {
        case .handshake:
            applySafeMode(configuration.safeModeTimeoutSeconds, effects: &effects)
            hadContact = true
            ready = true
            handshakeFailed = false
            publishState(prompt, at: now, effects: &effects)
            return .confirmed(.safeMode(seconds: configuration.safeModeTimeoutSeconds))
        case .heartbeat:
            publishState(prompt, at: now, effects: &effects)
            return .confirmed(.safeMode(seconds: configuration.safeModeTimeoutSeconds))
        case .user(let request):
            switch request {
            case .identify:
                guard let version = job.version else { return .uncertain("no VER data") }
                return .confirmed(.version(version))
            case .setDiameter(let wanted):
                guard let got = job.diameter else { return .uncertain("no DIA data") }
                return got == wanted ? .confirmed(.diameter(got))
                    : .uncertain("the pump reports diameter \(got) mm after being set to \(wanted) mm")
            case .setRate(let wanted):
                guard let got = job.rate else { return .uncertain("no RAT data") }
                return got.volumeRate == wanted.volumeRate ? .confirmed(.rate(got))
                    : .uncertain("the pump reports rate \(got) after being set to \(wanted)")
            case let .setVolume(number, unit):
                guard let got = job.volume else { return .uncertain("no VOL data") }
                return got == NewEra.VolumeSetting(number, unit) ? .confirmed(.volume(got))
                    : .uncertain("the pump reports volume \(got) after being set to \(number)\(unit.rawValue)")
            case .start:
                guard prompt == .infusing else {
                    publishState(prompt, at: now, effects: &effects)
                    return .refused(code: prompt.rawValue, reason:
                        "the pump did not start: it reports \(Self.state(for: prompt)); check the rate, "
                            + "the volume to be infused and the syringe")
                }
                if !alarms.isEmpty {
                    alarms = []
                    effects.emit(.alarms(alarms, at: now))
                }
                return .confirmed(.status(publishState(prompt, at: now, effects: &effects)))
            case .stop:
                let status = publishState(prompt, at: now, effects: &effects)
                return status.state.isKnownStopped ? .confirmed(.status(status))
                    : .uncertain("the pump still reports \(status.state) after STP")
            case .status:
                var status = PumpStatus(receivedAt: now, state: Self.state(for: prompt), alarms: alarms)
                status.rate = job.rate?.volumeRate
                status.volumeInfused = job.dispensed?.infusedVolume
                lastStatus = status
                effects.emit(.status(status))
                return .confirmed(.status(status))
            case .clearInfused:
                guard let dispensed = job.dispensed else { return .uncertain("no DIS data") }
                return dispensed.infused.scaledValue == 0 ? .confirmed(.dispensed(dispensed))
                    : .uncertain("the pump still reports \(dispensed.infusedVolume) infused after CLD INF")
            case .setSafeMode(let seconds):
                configuration.safeModeTimeoutSeconds = seconds
                applySafeMode(seconds, effects: &effects)
                return .confirmed(.safeMode(seconds: seconds))
            case .readSafeMode:
                guard let seconds = job.safeMode else { return .uncertain("no SAF data") }
                return .confirmed(.safeMode(seconds: seconds))
            case .setAddress(let address, _):
                configuration.address = address
                return .confirmed(.address(address))
            }
        }
    }

    private mutating func finish(_ job: Job, _ outcome: Outcome, now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        inFlight = nil
        replyDeadline = nil
        if let id = job.id { effects.emit(.completed(id, outcome)) }
        startNext(now: now, effects: &effects)
    }

    private mutating func failQueued(reason: String, effects: inout EndpointEffects<Output>) {
        for job in queue {
            if let id = job.id { effects.emit(.completed(id, .uncertain(reason))) }
        }
        queue.removeAll(keepingCapacity: true)
    }

    private mutating func applySafeMode(_ seconds: UInt8, effects: inout EndpointEffects<Output>) {
        let mode: NewEra.FramingMode = seconds > 0 ? .safe : .basic
        if mode != framing {
            framing = mode
        }
        effects.emit(.framing(mode))
    }

    private mutating func setConnection(_ state: DeviceConnection, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard state != connection else { return }
        connection = state
        effects.emit(.connection(state, at: now))
    }

    private mutating func latch(_ alarm: NewEra.Alarm, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        let typed = Self.pumpAlarm(alarm)
        guard !alarms.contains(typed) else { return }
        alarms.insert(typed)
        effects.emit(.alarms(alarms, at: now))
        if var status = lastStatus {
            status.alarms = alarms
            status.state = .stopped  // S, T and R stop the pump; E and O end the program
            lastStatus = status
        }
    }

    /// Merges a prompt into the last status and publishes it.
    @discardableResult
    private mutating func publishState(_ prompt: NewEra.Prompt, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) -> PumpStatus {
        var status = lastStatus ?? PumpStatus(receivedAt: now, state: .unknown)
        status.receivedAt = now
        status.state = Self.state(for: prompt)
        status.alarms = alarms
        lastStatus = status
        effects.emit(.status(status))
        return status
    }

    private func refusalReason(_ error: NewEra.CommandError, job: Job) -> String {
        let command = job.command?.text ?? "status query"
        switch error {
        case .outOfRange:
            if case .user(let request) = job.kind {
                switch request {
                case .setRate(let rate):
                    return "the pump refused rate \(rate.volumeRate) as out of range for the syringe set (?OOR): "
                        + "the limits depend on the syringe diameter; check the syringe, or choose a rate within its limits"
                case .setDiameter(let mm):
                    return "the pump refused diameter \(mm) mm as out of range (?OOR): New Era pumps accept 0.1–80 mm"
                case .setVolume(let number, let unit):
                    return "the pump refused volume \(number) \(unit.rawValue) as out of range (?OOR)"
                default: break
                }
            }
            return "the pump refused \(command) as out of range (?OOR)"
        case .notApplicable:
            return "the pump refused \(command) as not applicable now (?NA): most settings cannot change while it pumps; stop it first"
        case .invalidPacket:
            return "the pump rejected \(command) as a corrupt packet (?COM) \(configuration.maxAttempts) times: "
                + "line noise or a wrong baud rate; check the cable and the pump's baud rate"
        case .notRecognised:
            return "the pump did not recognise \(command) (?): check that this is a New Era pump and that its firmware supports it"
        case .ignored:
            return "the pump ignored \(command) because a new phase started at the same moment (?IGN): send it again"
        case .other(let code):
            return "the pump answered \(command) with error ?\(code)"
        }
    }

    // MARK: Mappings

    /// The typed pump alarm for a New Era alarm: stall → occlusion (high priority, IEC 60601-2-24),
    /// T → communication time-out, R → power reset, E → program error, O → out of range.
    public static func pumpAlarm(_ alarm: NewEra.Alarm) -> PumpAlarms {
        switch alarm {
        case .stalled: .occlusion
        case .safeModeTimeout: .communicationTimeout
        case .reset: .powerReset
        case .programError: .programError
        case .phaseOutOfRange: .outOfRange
        }
    }

    /// The run state a prompt means: T (timed pause) and U (trigger wait) are not moving fluid.
    public static func state(for prompt: NewEra.Prompt) -> PumpRunState {
        switch prompt {
        case .infusing: .infusing
        case .withdrawing: .withdrawing
        case .stopped: .stopped
        case .paused, .timedPause, .userWait: .paused
        case .purging: .purging
        }
    }

    static func alarmText(_ alarm: NewEra.Alarm) -> String {
        switch alarm {
        case .reset: "a power reset (A?R)"
        case .stalled: "a motor stall or occlusion (A?S)"
        case .safeModeTimeout: "a safe-mode communication time-out (A?T)"
        case .programError: "a pumping program error (A?E)"
        case .phaseOutOfRange: "a program phase out of range (A?O)"
        }
    }
}
