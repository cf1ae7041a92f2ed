import DeviceIO
import DeviceProtocols
import InfusionCore

/// Timing and layout of a Fresenius session. Defaults follow the open client (infupy's
/// `fresenius.py`): a reply is awaited 1 s; a command is re-sent on NAK or time-out, here at most
/// `attempts` sends in all (infupy: 2). The pump's ENQ keep-alive is expected at least every
/// `keepAliveTimeout` (1.5 s): the real pump's ENQ period is not public **[unverified]**; set this to
/// about three periods, and at most 2 s so that a loss is reported within 2 s.
public struct FreseniusSessionConfiguration: Hashable, Sendable {
    /// The rack slots (1...5) this session drives, one pump object each.
    public var modules: [Int]
    /// How long to wait for the reply to one frame before re-sending it.
    public var replyTimeout: Duration
    /// Sends per frame in all (first send + retries on NAK, bad replies or time-out). At least 1.
    public var attempts: Int
    /// How long without an ENQ from the pump before the keep-alive is reported lost.
    public var keepAliveTimeout: Duration
    /// How often the module bitmap (`LE;b` on the base) and each module's variables (`LE;dram`) are read.
    public var pollInterval: Duration

    /// A configuration; see each property. Slots outside 1...5 are dropped.
    public init(modules: [Int] = [1], replyTimeout: Duration = .seconds(1), attempts: Int = 3,
                keepAliveTimeout: Duration = .milliseconds(1500), pollInterval: Duration = .seconds(1)) {
        self.modules = Array(Set(modules.filter { (1...5).contains($0) })).sorted()
        self.replyTimeout = replyTimeout
        self.attempts = max(1, attempts)
        self.keepAliveTimeout = keepAliveTimeout
        self.pollInterval = pollInterval
    }
}

/// A request for one module.
public enum FreseniusRequest: Hashable, Sendable {
    /// `LF;b`: the device type (reported as the model).
    case identify
    /// `PR;<hex 0.1 mL/h>` rounded down, then `LE;d` to confirm the rate now set.
    case setRate(VolumeRate)
    /// No public start command exists for this family: refused with advice (start at the keypad).
    case start
    /// `PO` (pause), then `LE;dram`: confirmed as paused when the pump answers `C`.
    case stop
    /// `LE;dram`: rate, volume infused, alarm and mode.
    case status
    /// `RV`, then `LE;r`: the counter after the reset.
    case clearVolume
}

/// What the Fresenius session publishes.
public enum FreseniusSessionOutput: Hashable, Sendable {
    /// The request `id` finished.
    case completed(id: UInt64, ClinicalPumpResult)
    /// Module `slot`'s link state changed: `.connected` once its session is open (DC, MO;2),
    /// `.silent` when frames to it fail after all attempts (cleared by its next good reply) or the
    /// keep-alive stops (cleared when the session is reopened), `.disconnected`
    /// when the port closes or the module is not in the rack (bitmap, or error `0E`).
    case connection(slot: Int, DeviceConnection, at: MonotonicInstant)
    /// Module `slot`'s active alarms changed (pump alarms from `a`, `.remoteControlLost` while its
    /// remote session is not known open, `.deviceFault` while frames to it fail after all attempts).
    case alarms(slot: Int, PumpAlarms, at: MonotonicInstant)
    /// A status of module `slot`, from a read that carried both its rate and its volume counter.
    case status(slot: Int, PumpStatus)
    /// The base reported which slots are occupied.
    case modules(FreseniusModuleSet, at: MonotonicInstant)
}

/// The Fresenius Kabi Base A / Agilia driver's session rules for one serial port (a rack base with
/// syringe modules) as a pure endpoint.
///
/// Link layer: every good frame from the pump is answered `ACK`, a bad one `NAK` + error digit; ENQ
/// is answered `DC4` at once, whatever else is happening. One frame of ours is in flight at a time;
/// on `NAK` or a missing reply after `replyTimeout` it is re-sent, at most `attempts` sends in all;
/// after that the request completes `.uncertain`, and the module gets `.deviceFault` and `.silent`
/// (the technical alarm), cleared by its next good reply. Spontaneous `E`/`M` messages are answered
/// with origin + status letter and their variables applied.
///
/// Sessions: at link-up the base session is opened (`0DC`) and the bitmap read (`0LE;b`); each
/// configured module present is connected (`nDC`, `nMO;2`). Errors `0D`/`1E` (session not open)
/// reconnect once and retry the command; `0E` (module unreachable) or a bitmap without the slot
/// reports the module disconnected. Mode `m` read back as 1 (local) raises `.remoteControlLost` and
/// reconnects. No ENQ for `keepAliveTimeout` raises `.remoteControlLost` on every module.
///
/// Run state: no public variable gives it **[unverified]**. The driver reports `.stopped` when the
/// rate is 0, `.infusing` when the volume counter grew since the previous read, `.paused` after a
/// confirmed `PO` until the counter grows again, and `.unknown` (possibly delivering) otherwise.
///
/// Hosts call it from one thread at a time (`LinkEndpoint`).
public struct FreseniusSession: LinkEndpoint {
    /// The published outputs.
    public typealias Output = FreseniusSessionOutput

    /// Counters, for tests and logs.
    public struct Statistics: Hashable, Sendable {
        /// Frames re-sent after NAK or time-out.
        public var retries = 0
        /// Frames that failed after all attempts.
        public var failures = 0
        /// NAKs received.
        public var naksReceived = 0
        /// NAKs sent for bad frames from the pump.
        public var naksSent = 0
        /// Spontaneous messages acknowledged.
        public var eventsAcknowledged = 0
        /// Session reconnections after `0D`/`1E` or a local mode read back.
        public var reconnections = 0
        /// ENQs answered.
        public var keepAlivesAnswered = 0
    }

    private enum Purpose: Hashable {
        case baseConnect, basePoll
        case moduleConnect(Int)
        case poll(Int)
        case request(UInt64, FreseniusRequest)
    }

    private struct Job {
        var purpose: Purpose
        var address: FreseniusAddress
        var steps: [FreseniusCommand]
        var index = 0
        var attempt = 1
        var reconnected = false
        var rate: Rounded<VolumeRate>?
        var slot: Int? { address.moduleSlot }
        var command: FreseniusCommand { steps[index] }
    }

    private struct Module {
        var present = false
        var remote = false
        var sessionLost = false
        var commsFault = false
        var pumpAlarms: PumpAlarms = []
        var published: PumpAlarms = []
        var connection: DeviceConnection = .disconnected
        var lastVolume: Volume?
        /// When the counter was last seen to change (or first read): the run-state inference's reference.
        var counterSince: MonotonicInstant?
        /// The counter's last change was growth (delivery seen).
        var growing = false
        /// The state inferred at the last full read (rate and counter).
        var inferred: PumpRunState = .unknown
        var pausedByHost = false
    }

    private static let statusFlags: [FreseniusVariableID] = [.rate, .volumeInfused, .alarm, .mode]

    /// The timing and slots in force.
    public let configuration: FreseniusSessionConfiguration
    /// Counters since creation.
    public private(set) var statistics = Statistics()
    /// The occupied slots last reported by the base (nil before the first read).
    public private(set) var rack: FreseniusModuleSet?
    /// When the last ENQ arrived (nil before the first).
    public private(set) var lastKeepAlive: MonotonicInstant?
    /// True while the keep-alive is reported lost.
    public private(set) var keepAliveLost = false

    private var decoder = FreseniusLinkDecoder()
    private var up = false
    private var modules: [Int: Module] = [:]
    private var current: Job?
    private var queue: [Job] = []
    private var replyDeadline: MonotonicInstant?
    private var pollDue: MonotonicInstant?
    private var keepAliveReference: MonotonicInstant?
    private var baseConnected = false
    private var lastSentWasCommand = true
    private var lastEventAck: [UInt8]?
    private var eventAckResends = 0

    /// A session for `configuration`; it does nothing until `linkUp`.
    public init(configuration: FreseniusSessionConfiguration = FreseniusSessionConfiguration()) {
        self.configuration = configuration
        for slot in configuration.modules { modules[slot] = Module() }
    }

    /// The alarms last published for `slot`.
    public func alarms(slot: Int) -> PumpAlarms { modules[slot]?.published ?? [] }

    /// True while module `slot`'s remote session is open (DC and MO;2 confirmed).
    public func isRemote(slot: Int) -> Bool { modules[slot]?.remote ?? false }

    /// The earliest of the reply deadline, the next poll and the keep-alive expiry.
    public var nextDeadline: MonotonicInstant? {
        guard up else { return nil }
        var deadlines = [replyDeadline, pollDue]
        if let reference = keepAliveReference, !keepAliveLost { deadlines.append(reference + configuration.keepAliveTimeout) }
        return deadlines.compactMap { $0 }.min()
    }

    /// The port opened: opens the base session and reads the rack.
    public mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        up = true
        decoder.reset()
        keepAliveReference = now
        keepAliveLost = false
        baseConnected = false
        queue.append(Job(purpose: .baseConnect, address: .base, steps: [.connect, .readVariables([.modules])]))
        pollDue = now + configuration.pollInterval
        pump(at: now, effects: &effects)
    }

    /// The port closed: requests complete `.uncertain`; every module is disconnected.
    public mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        up = false
        let reason = "the link to the Fresenius base went down before it answered: the command may or may not have taken effect; check the cable (19200 7E1), then read the pump's status"
        for job in [current].compactMap({ $0 }) + queue {
            if case let .request(id, _) = job.purpose { effects.emit(.completed(id: id, .uncertain(reason))) }
        }
        current = nil
        queue.removeAll()
        replyDeadline = nil
        pollDue = nil
        keepAliveReference = nil
        baseConnected = false
        for slot in modules.keys.sorted() {
            if modules[slot]?.remote == true { modules[slot]?.sessionLost = true }
            modules[slot]?.remote = false
            setConnection(slot, .disconnected, at: now, effects: &effects)
            publishAlarms(slot, at: now, effects: &effects)
        }
    }

    /// Submits a request for module `slot`; its completion is published as `.completed(id:…)`.
    public mutating func submit(_ request: FreseniusRequest, slot: Int, id: UInt64, at now: MonotonicInstant,
                                effects: inout EndpointEffects<Output>) {
        guard let address = FreseniusAddress.module(slot), modules[slot] != nil else {
            effects.emit(.completed(id: id, .refused(PumpRefusal(code: "slot", description: "slot \(slot) is not driven by this session (configured: \(configuration.modules))"))))
            return
        }
        guard up else {
            effects.emit(.completed(id: id, .uncertain("no link to the Fresenius base: nothing was sent; check the cable and the port, then retry")))
            return
        }
        var job = Job(purpose: .request(id, request), address: address, steps: [])
        switch request {
        case .identify: job.steps = [.readFixedVariable(.deviceType)]
        case let .setRate(rate):
            do {
                let encoded = try FreseniusRate(roundingDown: rate)
                job.steps = [.setRate(encoded), .readVariables([.rate])]
                job.rate = encoded.rounded
            } catch {
                effects.emit(.completed(id: id, .refused(PumpRefusal(code: "rate", description: error.description))))
                return
            }
        case .start:
            effects.emit(.completed(id: id, .refused(PumpRefusal(
                code: PumpRefusal.noRemoteStartCode,
                description: "no public Fresenius Base A/Agilia source gives a remote start command (infupy has none): start the infusion at the pump's keypad; this driver then sets the rate (PR), reads it back and stops it (PO)"))))
            return
        case .stop: job.steps = [.pause, .readVariables(Self.statusFlags)]
        case .status: job.steps = [.readVariables(Self.statusFlags)]
        case .clearVolume: job.steps = [.resetVolumeInfused, .readVariables([.volumeInfused])]
        }
        if request == .stop { queue.insert(job, at: 0) } else { queue.append(job) }
        pump(at: now, effects: &effects)
    }

    /// Feeds received bytes: link control, frames, replies and spontaneous messages.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        var events: [FreseniusLinkEvent] = []
        decoder.feed(bytes) { events.append($0) }
        for event in events {
            switch event {
            case .keepAlive:
                effects.send(FreseniusLink.keepAliveAnswer)
                statistics.keepAlivesAnswered += 1
                lastKeepAlive = now
                keepAliveReference = now
                if keepAliveLost {
                    keepAliveLost = false
                    reconnectAll(at: now)
                }
            case .acknowledgement, .keepAliveAnswer:
                break
            case let .negativeAcknowledgement(code):
                statistics.naksReceived += 1
                handleNAK(code, at: now, effects: &effects)
            case let .error(error):
                if let code = error.negativeAcknowledgement {
                    effects.send(FreseniusLink.negativeAcknowledgement(code))
                    statistics.naksSent += 1
                }
            case let .frame(frame):
                effects.send(FreseniusLink.acknowledgement)
                handle(frame, at: now, effects: &effects)
            }
        }
        pump(at: now, effects: &effects)
    }

    /// Re-sends or fails the frame in flight; polls; checks the keep-alive.
    public mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard up else { return }
        if let deadline = replyDeadline, now >= deadline, current != nil { retryOrFail(at: now, effects: &effects) }
        if let due = pollDue, now >= due {
            pollDue = now + configuration.pollInterval
            schedulePolls()
        }
        if let reference = keepAliveReference, !keepAliveLost, now >= reference + configuration.keepAliveTimeout {
            keepAliveLost = true
            for slot in modules.keys.sorted() {
                guard modules[slot]?.present == true else { continue }
                modules[slot]?.remote = false
                modules[slot]?.sessionLost = true
                setConnection(slot, .silent, at: now, effects: &effects)
                publishAlarms(slot, at: now, effects: &effects)
            }
        }
        pump(at: now, effects: &effects)
    }

    // MARK: Internals

    private mutating func schedulePolls() {
        if !baseConnected {
            if !hasJob(.baseConnect) { queue.append(Job(purpose: .baseConnect, address: .base, steps: [.connect, .readVariables([.modules])])) }
            return
        }
        if !hasJob(.basePoll) { queue.append(Job(purpose: .basePoll, address: .base, steps: [.readVariables([.modules])])) }
        for slot in modules.keys.sorted() {
            guard let module = modules[slot], module.present, let address = FreseniusAddress.module(slot) else { continue }
            if !module.remote {
                if !hasJob(.moduleConnect(slot)) { queue.append(Job(purpose: .moduleConnect(slot), address: address, steps: [.connect, .mode(.remote)])) }
            } else if !hasJob(.poll(slot)) {
                queue.append(Job(purpose: .poll(slot), address: address, steps: [.readVariables(Self.statusFlags)]))
            }
        }
    }

    private func hasJob(_ purpose: Purpose) -> Bool {
        current?.purpose == purpose || queue.contains { $0.purpose == purpose }
    }

    private mutating func reconnectAll(at now: MonotonicInstant) {
        statistics.reconnections += 1
        baseConnected = false
        if !hasJob(.baseConnect) { queue.insert(Job(purpose: .baseConnect, address: .base, steps: [.connect, .readVariables([.modules])]), at: 0) }
    }

    private mutating func pump(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard up, current == nil, !queue.isEmpty else { return }
        current = queue.removeFirst()
        send(at: now, effects: &effects)
    }

    private mutating func send(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard let job = current else { return }
        do {
            effects.send(try job.command.frame(to: job.address).bytes)
            lastSentWasCommand = true
            replyDeadline = now + configuration.replyTimeout
        } catch {
            current = nil
            replyDeadline = nil
            if case let .request(id, _) = job.purpose {
                effects.emit(.completed(id: id, .refused(PumpRefusal(code: "encoding", description: error.description))))
            }
            pump(at: now, effects: &effects)
        }
    }

    private mutating func handleNAK(_ code: FreseniusNAKCode, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        if !lastSentWasCommand, let ack = lastEventAck, eventAckResends < configuration.attempts - 1 {
            eventAckResends += 1
            effects.send(ack)
            return
        }
        guard current != nil else { return }
        retryOrFail(at: now, effects: &effects)
    }

    private mutating func retryOrFail(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard var job = current else { return }
        if job.attempt < configuration.attempts {
            job.attempt += 1
            statistics.retries += 1
            current = job
            send(at: now, effects: &effects)
            return
        }
        statistics.failures += 1
        current = nil
        replyDeadline = nil
        let affected = job.slot.map { [$0] } ?? modules.keys.sorted().filter { modules[$0]?.present == true }
        for slot in affected where modules[slot] != nil {
            modules[slot]?.commsFault = true
            if modules[slot]?.present == true { setConnection(slot, .silent, at: now, effects: &effects) }
            publishAlarms(slot, at: now, effects: &effects)
        }
        if case let .request(id, _) = job.purpose {
            let text = (try? job.command.message()) ?? job.command.code
            effects.emit(.completed(id: id, .uncertain(
                "no valid reply to \(text) from the Fresenius \(job.address) after \(configuration.attempts) attempt(s) (NAK, bad checksum or no answer within \(configuration.replyTimeout.formattedSeconds) s): it may or may not have taken effect; check the cable and the port settings (19200 7E1), then read the pump's status")))
        }
        if job.purpose == .baseConnect { baseConnected = false }
    }

    private mutating func handle(_ frame: FreseniusFrame, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        guard let reply = try? FreseniusReply(frame: frame) else { return }
        if let acknowledgement = reply.acknowledgement {
            let bytes = acknowledgement.bytes
            effects.send(bytes)
            lastSentWasCommand = false
            lastEventAck = bytes
            eventAckResends = 0
            statistics.eventsAcknowledged += 1
            if let slot = reply.origin.moduleSlot, let variables = try? reply.variables() {
                apply(variables, slot: slot, at: now, effects: &effects)
            }
            return
        }
        guard var job = current, reply.origin == job.address else { return }
        // A good answer from this address: the link to it works (a module whose session is still open is
        // connected again; one whose session lapsed reconnects through `DC`, `MO;2` first).
        if let slot = job.slot, modules[slot]?.commsFault == true {
            clearCommsFault(slot, at: now, effects: &effects)
        } else if job.slot == nil {
            for slot in modules.keys.sorted() where modules[slot]?.commsFault == true {
                clearCommsFault(slot, at: now, effects: &effects)
            }
        }
        switch reply.body {
        case let .incorrect(error):
            handleError(error, job: &job, at: now, effects: &effects)
        case let .correct(data):
            // A reply whose shape does not fit the command in flight is a stale one (the answer to a
            // fast-path PO written directly on the port, or to an earlier attempt): wait for ours.
            switch job.command {
            case .readVariables, .readFixedVariable: if data == nil { return }
            default: if data != nil { return }
            }
            let variables = (try? FreseniusVariables(parsing: data ?? "")) ?? FreseniusVariables()
            step(&job, variables: variables, data: data, at: now, effects: &effects)
        case .event, .adjustedEvent:
            break
        }
    }

    private mutating func handleError(_ error: FreseniusApplicationError, job: inout Job, at now: MonotonicInstant,
                                      effects: inout EndpointEffects<Output>) {
        let code = "I;" + String(error.code, radix: 16, uppercase: true).leftPadded(to: 2)
        switch error {
        case .baseSessionNotOpen, .moduleSessionNotOpen:
            if let slot = job.slot {
                modules[slot]?.remote = false
                modules[slot]?.sessionLost = true
                publishAlarms(slot, at: now, effects: &effects)
            }
            if error == .baseSessionNotOpen { baseConnected = false }
            if !job.reconnected, job.command != .connect {
                // Reconnect (DC; MO;2 for a module) and retry the command once.
                statistics.reconnections += 1
                job.reconnected = true
                var prefix: [FreseniusCommand] = []
                if error == .baseSessionNotOpen, job.address != .base {
                    // The base session must come first; queue it ahead and retry this job after it.
                    queue.insert(job, at: 0)
                    queue.insert(Job(purpose: .baseConnect, address: .base, steps: [.connect, .readVariables([.modules])]), at: 0)
                    current = nil
                    replyDeadline = nil
                    return
                }
                prefix = job.address == .base ? [.connect] : [.connect, .mode(.remote)]
                job.steps.insert(contentsOf: prefix, at: job.index)
                job.attempt = 1
                current = job
                send(at: now, effects: &effects)
                return
            }
        case .moduleUnreachable:
            if let slot = job.slot { moduleGone(slot, at: now, effects: &effects) }
        case .modeAlreadyActive where job.command == .mode(.remote):
            step(&job, variables: FreseniusVariables(), data: nil, at: now, effects: &effects)
            return
        default:
            break
        }
        current = nil
        replyDeadline = nil
        if case let .request(id, _) = job.purpose {
            effects.emit(.completed(id: id, .refused(PumpRefusal(code: code, description: error.description))))
        }
    }

    private mutating func step(_ job: inout Job, variables: FreseniusVariables, data: String?, at now: MonotonicInstant,
                               effects: inout EndpointEffects<Output>) {
        var result: ClinicalPumpResult?
        switch job.command {
        case .connect:
            if job.address == .base { baseConnected = true }
        case .mode(.remote):
            if let slot = job.slot {
                modules[slot]?.remote = true
                modules[slot]?.sessionLost = false
                if modules[slot]?.present == true, !keepAliveLost { setConnection(slot, .connected, at: now, effects: &effects) }
                publishAlarms(slot, at: now, effects: &effects)
            }
        case .readVariables:
            if job.address == .base {
                if let set = variables.modules { updateRack(set, at: now, effects: &effects) }
            } else if let slot = job.slot {
                let status = apply(variables, slot: slot, at: now, effects: &effects)
                if case let .request(_, request) = job.purpose {
                    switch request {
                    case .setRate:
                        if let wanted = job.rate, let reported = variables.rate {
                            result = (try? FreseniusRate(roundingDown: reported))?.tenths == (try? FreseniusRate(roundingDown: wanted.actual))?.tenths
                                ? .rate(wanted)
                                : .uncertain("the Fresenius module \(slot) reports \(reported.formatted(fractionDigits: 1)) after PR for \(wanted.actual.formatted(fractionDigits: 1)): read its status before relying on the rate")
                        } else {
                            result = .uncertain("the Fresenius module \(slot) accepted PR but did not report its rate: read its status")
                        }
                    case .clearVolume:
                        result = variables.volumeInfused.map { .volumeCleared($0) } ?? .uncertain("the module did not report its volume after RV")
                    case .stop:
                        result = status.map { .status($0) } ?? .uncertain("the module did not report its status after PO")
                    case .status:
                        result = status.map { .status($0) } ?? .uncertain("the module's reply carried no status variables")
                    case .identify, .start:
                        break
                    }
                }
            }
        case .readFixedVariable:
            if case .request = job.purpose {
                // `b<device type>`: the value's format is not public, so it is reported verbatim.
                let text = data.map { $0.hasPrefix("b") ? String($0.dropFirst()) : $0 } ?? ""
                result = .identity(PumpIdentity(family: "fresenius", model: text.isEmpty ? "unknown" : text, firmware: "unknown", serialNumber: nil))
            }
        case .pause:
            if let slot = job.slot {
                modules[slot]?.pausedByHost = true
                modules[slot]?.lastVolume = nil  // what was delivered before the pause is not "infusing"
            }
        default:
            break
        }
        job.index += 1
        job.attempt = 1
        if result == nil, job.index < job.steps.count {
            current = job
            send(at: now, effects: &effects)
            return
        }
        current = nil
        replyDeadline = nil
        if case let .request(id, _) = job.purpose {
            effects.emit(.completed(id: id, result ?? .uncertain("the Fresenius exchange ended without a result (driver error): read the pump's status")))
        }
    }

    @discardableResult
    private mutating func apply(_ variables: FreseniusVariables, slot: Int, at now: MonotonicInstant,
                                effects: inout EndpointEffects<Output>) -> PumpStatus? {
        guard var module = modules[slot] else { return nil }
        if let bits = variables.hexValue(of: .alarm) {
            module.pumpAlarms = FreseniusVariableReading.alarms(fromAlarmBits: bits)
        }
        if let mode = variables.hexValue(of: .mode), mode == UInt32(FreseniusOperatingMode.local.rawValue), module.remote {
            // The module fell back to local control (keep-alive lost at the pump's end, or the keypad).
            module.remote = false
            module.sessionLost = true
        }
        // No public variable gives the run state: it is inferred from the pump's own volume counter.
        var state: PumpRunState = .unknown
        let rate = variables.rate
        let volume = variables.volumeInfused
        if let volume, volume != module.lastVolume {
            module.growing = module.lastVolume.map { volume > $0 } ?? false  // a first read or a reset is no growth
            module.counterSince = now
        }
        if volume != nil, module.growing, module.counterSince == now {
            state = .infusing
            module.pausedByHost = false
        } else if rate == .zero {
            state = .stopped
        } else if module.pausedByHost {
            state = .paused
        } else if let rate, volume != nil, let since = module.counterSince {
            // The counter did not move at this read. At `rate` it advances one 0.001 mL step every
            // `step`: unchanged for longer than three steps (and at least 1.5 s, a poll and a half) means
            // the plunger is not moving. Within that, a counter that was growing is still infusing; a
            // module known not to deliver at the previous full read, whose counter has not moved since,
            // is still stopped (only a start at its keypad can change that, and the next growth shows it);
            // otherwise it is not known yet.
            let step = rate > .zero ? Duration.seconds(FreseniusVolume.resolution.millilitres / rate.millilitresPerHour * 3600) : .seconds(3600)
            let window = max(.milliseconds(1500), step * 3)
            if now - since > window {
                state = .stopped
            } else if module.growing {
                state = .infusing
            } else if module.inferred == .stopped || module.inferred == .paused {
                state = .stopped
            }
        }
        if let volume { module.lastVolume = volume }
        modules[slot] = module
        publishAlarms(slot, at: now, effects: &effects)
        // The run state needs both the rate and the counter: a partial read (the rate read back after `PR`,
        // the counter after `RV`) publishes no status, rather than one whose state is unknown.
        guard rate != nil, volume != nil else { return nil }
        modules[slot]?.inferred = state
        let status = PumpStatus(receivedAt: now, state: state, rate: rate, volumeInfused: volume, alarms: module.published)
        effects.emit(.status(slot: slot, status))
        return status
    }

    private mutating func updateRack(_ set: FreseniusModuleSet, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        if set != rack { effects.emit(.modules(set, at: now)) }
        rack = set
        for slot in modules.keys.sorted() {
            let present = set.contains(slot: slot)
            if present, modules[slot]?.present == false {
                modules[slot]?.present = true
                modules[slot]?.remote = false
                if let address = FreseniusAddress.module(slot), !hasJob(.moduleConnect(slot)) {
                    queue.append(Job(purpose: .moduleConnect(slot), address: address, steps: [.connect, .mode(.remote)]))
                }
            } else if !present {
                moduleGone(slot, at: now, effects: &effects)
            }
        }
    }

    private mutating func moduleGone(_ slot: Int, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        modules[slot]?.present = false
        modules[slot]?.remote = false
        modules[slot]?.lastVolume = nil
        setConnection(slot, .disconnected, at: now, effects: &effects)
        // Requests queued for a module that left the rack cannot be sent to it.
        queue.removeAll { job in
            guard job.slot == slot else { return false }
            if case let .request(id, _) = job.purpose {
                effects.emit(.completed(id: id, .uncertain("module \(slot) is not in the rack (removed or unreachable): nothing was sent; seat it and retry")))
            }
            return true
        }
    }

    private func alarmsNow(_ slot: Int) -> PumpAlarms {
        guard let module = modules[slot] else { return [] }
        var set = module.pumpAlarms
        if module.commsFault { set.insert(.deviceFault) }
        if module.sessionLost { set.insert(.remoteControlLost) }
        return set
    }

    private mutating func publishAlarms(_ slot: Int, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        let set = alarmsNow(slot)
        guard modules[slot] != nil, set != modules[slot]?.published else { return }
        modules[slot]?.published = set
        effects.emit(.alarms(slot: slot, set, at: now))
    }

    private mutating func clearCommsFault(_ slot: Int, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        modules[slot]?.commsFault = false
        if let module = modules[slot], module.present, module.remote, !keepAliveLost {
            setConnection(slot, .connected, at: now, effects: &effects)
        }
        publishAlarms(slot, at: now, effects: &effects)
    }

    private mutating func setConnection(_ slot: Int, _ state: DeviceConnection, at now: MonotonicInstant,
                                        effects: inout EndpointEffects<Output>) {
        guard modules[slot] != nil, modules[slot]?.connection != state else { return }
        modules[slot]?.connection = state
        effects.emit(.connection(slot: slot, state, at: now))
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
