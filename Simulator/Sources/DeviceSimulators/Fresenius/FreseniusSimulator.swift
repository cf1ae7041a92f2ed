import DeviceIO
import DeviceProtocols
import InfusionCore

/// A simulated Fresenius Kabi Base A rack with syringe modules in slots 1...N, speaking the protocol
/// of reference/protocols.md §A5 as infupy's `fresenius.py` uses it: every host frame with a good
/// checksum is answered `ACK` then a reply frame from the addressed unit (`<slot>C[;data]` or
/// `<slot>I;<code>`); a bad frame is answered `NAK` + error digit; a host `NAK` makes it re-send its
/// last reply (at most 3 times); ENQ is sent every `keepAliveInterval` and must be answered DC4.
/// infupy's calls work unchanged: `0DC`, `0LE;b`, `<n>DC`, `<n>LE;d`, `<n>LE;r`, `<n>LF;b`,
/// `<n>MO;2`, `<n>PO`, `<n>RV`, `<n>DE;…`/`AE`, and its acknowledgement of spontaneous messages
/// (`<n>E`).
///
/// Sessions: the base session (`0DC`) must be open before a module's (`<n>DC`, else `I;0D`); a
/// module's commands need its session (else `I;1E`); rate, pause and volume reset need remote mode
/// `MO;2` (else `I;02`); a frame for an empty slot gets `I;0E`. When no DC4 answers the ENQs for
/// `keepAliveTimeout`, every session closes, modules fall back to local mode and, per
/// `lapseBehaviour`, keep infusing (default) or stop. An alarm raised in a module with an open
/// session is sent spontaneously (`<n>E;a<bits>`) until the host acknowledges it.
///
/// Choices not in the public sources **[unverified]**: the ENQ period (0.5 s) and keep-alive time-out
/// (1.5 s); `a` as the hex bit set of `FreseniusVariableReading`; `m` as the `MO` digit; the device
/// type text; no remote start (modules start from the keypad: fault `keypad-start N`).
///
/// Pure: time comes in as arguments. Hosts call it from one thread at a time.
public struct FreseniusSimulator: SimulatedDevice, DeliveringDevice {
    /// Log lines for the operator.
    public typealias Output = String

    /// `fresenius` (`fresenius:N` on the simulator host's command line: N modules).
    public static let kind = "fresenius"
    /// The faults this rack accepts (N = slot, 1 by default).
    public static let faultHelp = [
        "stall | occlusion [N]   occlusion alarm in module N: stops, sent spontaneously",
        "empty [N]               syringe empty alarm in module N: stops",
        "clear-alarm [N]         the operator clears module N's alarm",
        "keypad-start [N]        the operator starts module N at its set rate",
        "keypad-stop [N]         the operator stops module N",
        "silence [10s]           no bytes at all (no replies, no ENQ) for the duration",
        "garbage [dur]           64 random bytes now; with a duration, noise instead of every reply",
        "nak-storm [5s]          every host frame answered NAK 2 (bad checksum) for the duration",
        "corrupt-replies [N]     the next N replies (default 1) carry a wrong checksum; a host NAK gets the correct re-send",
        "keepalive-loss [5s]     the host's DC4 answers are lost for the duration (sessions lapse)",
        "remove-module N         pull module N out of the rack",
        "insert-module N         put module N back (new session needed)",
        "power-reset             power cycle: sessions closed, modules stopped, rates and counters cleared",
        "on-lapse keep-infusing|stop   what modules do when the keep-alive lapses (default keep-infusing)",
    ]

    /// Settings of the simulated rack.
    public struct Configuration: Hashable, Sendable {
        /// Modules in slots 1...`modules` (1...5).
        public var modules: Int
        /// How often the rack sends ENQ **[unverified]**.
        public var keepAliveInterval: Duration
        /// How long without DC4 before sessions lapse **[unverified]**.
        public var keepAliveTimeout: Duration
        /// Syringe capacity of each module.
        public var syringeVolume: Volume
        /// What modules do when the keep-alive lapses.
        public var lapseBehaviour: RemoteLapseBehaviour
        /// The `LF;b` answer **[unverified]**.
        public var deviceType: String

        /// A configuration; see each property. `modules` is clamped to 1...5.
        public init(modules: Int = 1, keepAliveInterval: Duration = .milliseconds(500), keepAliveTimeout: Duration = .milliseconds(1500),
                    syringeVolume: Volume = .millilitres(50), lapseBehaviour: RemoteLapseBehaviour = .keepInfusing,
                    deviceType: String = "AGILIA SP") {
            self.modules = min(5, max(1, modules))
            self.keepAliveInterval = keepAliveInterval
            self.keepAliveTimeout = keepAliveTimeout
            self.syringeVolume = syringeVolume
            self.lapseBehaviour = lapseBehaviour
            self.deviceType = deviceType
        }
    }

    /// One syringe module's state.
    public struct Module: Sendable {
        /// Seated in the rack.
        public var present = true
        /// Its session is open (`DC`).
        public var session = false
        /// Remote (`MO;2`) or local mode.
        public var mode: FreseniusOperatingMode = .local
        /// Active alarm bits (`a`).
        public var alarmBits: UInt32 = 0
        var drive: SimulatedSyringeDrive
        var pendingEvent: (frame: [UInt8], due: MonotonicInstant, sends: Int)?

        /// True while the plunger moves.
        public var isInfusing: Bool { drive.running }
        /// The set rate.
        public var rate: VolumeRate { drive.rate }
        /// The module's volume-infused counter.
        public var volumeInfused: Volume { drive.counter }
    }

    /// The settings in force.
    public private(set) var configuration: Configuration
    /// Modules by slot (index 0 = slot 1).
    public private(set) var modules: [Module]
    /// The base session is open.
    public private(set) var baseSession = false
    /// ENQs sent.
    public private(set) var keepAlivesSent = 0

    private var decoder = FreseniusLinkDecoder()
    private var linkIsUp = false
    private var nextENQ: MonotonicInstant?
    private var lastDC4: MonotonicInstant?
    private var lastReply: [UInt8]?
    private var replyResends = 0
    private var nakStormUntil: MonotonicInstant?
    private var corruptReplies = 0
    /// Host NAKs received (each answered by a re-send of the last reply, at most 3 times per reply).
    public private(set) var naksReceived = 0
    private var dc4LostUntil: MonotonicInstant?
    private var line = ReplyLineFaults(seed: 0xF2E5_E1C5, mask: 0x7F)
    private var deliveredByRemovedModules: Volume = .zero

    /// A rack with `configuration.modules` modules, stopped, sessions closed.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        modules = (0..<configuration.modules).map { _ in Module(drive: SimulatedSyringeDrive(capacity: configuration.syringeVolume)) }
    }

    /// Everything pushed out by all modules since creation.
    public var totalVolumeDelivered: Volume {
        modules.reduce(deliveredByRemovedModules) { $0 + $1.drive.delivered }
    }

    /// Spontaneous event frames (`DE`) sent, first sends and re-sends (an event not acknowledged is re-sent
    /// every second, three sends at most).
    public private(set) var eventFramesSent = 0

    /// The module in `slot` (1...5), if the rack has that slot.
    public func module(_ slot: Int) -> Module? { modules.indices.contains(slot - 1) ? modules[slot - 1] : nil }

    /// ENQ, keep-alive expiry, spontaneous-event resends and 100 ms delivery steps.
    public var nextDeadline: MonotonicInstant? {
        var deadlines: [MonotonicInstant?] = [nextENQ]
        if let last = lastDC4, anySession { deadlines.append(last + configuration.keepAliveTimeout) }
        for module in modules {
            if module.drive.running, let last = module.drive.last { deadlines.append(last + .milliseconds(100)) }
            deadlines.append(module.pendingEvent?.due)
        }
        return deadlines.compactMap { $0 }.min()
    }

    private var anySession: Bool { baseSession || modules.contains { $0.session } }

    /// A host opened the port: ENQs start.
    public mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        linkIsUp = true
        decoder.reset()
        nextENQ = now + configuration.keepAliveInterval
        effects.emit("host connected")
    }

    /// The host closed the port: ENQs stop; sessions lapse at the keep-alive time-out.
    public mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        linkIsUp = false
        decoder.reset()
        nextENQ = nil
        effects.emit("host disconnected")
    }

    /// Link-layer and application handling of host bytes.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        advance(to: now, effects: &effects)
        var events: [FreseniusLinkEvent] = []
        decoder.feed(bytes) { events.append($0) }
        for event in events {
            switch event {
            case .keepAliveAnswer:
                if let until = dc4LostUntil, now < until { continue }
                lastDC4 = now
            case .keepAlive, .acknowledgement:
                break
            case .negativeAcknowledgement:
                naksReceived += 1
                if let reply = lastReply, replyResends < 3 {
                    replyResends += 1
                    emitBytes(reply, at: now, effects: &effects)
                }
            case let .error(error):
                if let code = error.negativeAcknowledgement { emitBytes(FreseniusLink.negativeAcknowledgement(code), at: now, effects: &effects) }
            case let .frame(frame):
                if let until = nakStormUntil, now < until {
                    emitBytes(FreseniusLink.negativeAcknowledgement(.badChecksum), at: now, effects: &effects)
                    continue
                }
                emitBytes(FreseniusLink.acknowledgement, at: now, effects: &effects)
                guard let reply = answer(frame, at: now, effects: &effects), let encoded = try? reply.frame() else { continue }
                lastReply = encoded.bytes
                replyResends = 0
                var bytes = encoded.bytes
                if corruptReplies > 0, bytes.count >= 3 {
                    // The last checksum digit replaced by another hex digit: framed, but the sum is wrong.
                    corruptReplies -= 1
                    bytes[bytes.count - 2] = bytes[bytes.count - 2] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
                }
                emitReply(bytes, at: now, effects: &effects)
            }
        }
    }

    /// ENQ, keep-alive lapse, delivery, spontaneous-event resends.
    public mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        advance(to: now, effects: &effects)
        if let due = nextENQ, now >= due {
            nextENQ = now + configuration.keepAliveInterval
            if !isSilent(now) {
                effects.send(FreseniusLink.keepAlive)
                keepAlivesSent += 1
            }
        }
        for index in modules.indices {
            guard var pending = modules[index].pendingEvent, now >= pending.due else { continue }
            if pending.sends >= 3 || !modules[index].session {
                modules[index].pendingEvent = nil
                continue
            }
            pending.sends += 1
            eventFramesSent += 1
            pending.due = now + .seconds(1)
            modules[index].pendingEvent = pending
            emitReply(pending.frame, at: now, effects: &effects)
        }
    }

    /// Applies a fault (see `faultHelp`).
    public mutating func inject(_ fault: FaultCommand, at now: MonotonicInstant) throws(FaultError) -> String {
        if let message = try line.inject(fault, at: now) { return message }
        var effects = EndpointEffects<String>()
        advance(to: now, effects: &effects)
        switch fault.name {
        case "stall", "occlusion", "empty":
            let slot = try slotArgument(fault, required: false)
            let bit = fault.name == "empty" ? FreseniusVariableReading.emptyBit : FreseniusVariableReading.occlusionBit
            raise(bit, slot: slot, at: now)
            return "module \(slot): \(fault.name == "empty" ? "syringe empty" : "occlusion") alarm, stopped"
        case "clear-alarm":
            let slot = try slotArgument(fault, required: false)
            modules[slot - 1].alarmBits = 0
            return "module \(slot): alarm cleared"
        case "keypad-start":
            let slot = try slotArgument(fault, required: false)
            guard modules[slot - 1].present, modules[slot - 1].alarmBits == 0, modules[slot - 1].drive.rate > .zero else {
                throw FaultError("module \(slot) cannot start: it needs to be present, without alarm, with a rate set")
            }
            modules[slot - 1].drive.running = true
            modules[slot - 1].drive.last = now
            return "module \(slot): started at the keypad at \(modules[slot - 1].drive.rate.formatted(fractionDigits: 1))"
        case "keypad-stop":
            let slot = try slotArgument(fault, required: false)
            modules[slot - 1].drive.running = false
            return "module \(slot): stopped at the keypad"
        case "nak-storm":
            let duration = try FaultArguments.duration(fault, default: .seconds(5))
            nakStormUntil = now + duration
            return "every host frame answered NAK 2 for \(duration)"
        case "corrupt-replies":
            var count = 1
            if let text = fault.arguments.first {
                guard let n = Int(text), (1...100).contains(n) else { throw FaultError("corrupt-replies: N must be 1…100 replies") }
                count = n
            }
            corruptReplies = count
            return "the next \(count) repl\(count == 1 ? "y carries" : "ies carry") a wrong checksum"
        case "keepalive-loss":
            let duration = try FaultArguments.duration(fault, default: .seconds(5))
            dc4LostUntil = now + duration
            return "DC4 answers lost for \(duration)"
        case "remove-module":
            let slot = try slotArgument(fault, required: true)
            modules[slot - 1].present = false
            modules[slot - 1].session = false
            modules[slot - 1].mode = .local
            modules[slot - 1].drive.running = false
            modules[slot - 1].pendingEvent = nil
            return "module \(slot) removed from the rack"
        case "insert-module":
            let slot = try slotArgument(fault, required: true)
            if !modules[slot - 1].present {
                deliveredByRemovedModules = deliveredByRemovedModules + modules[slot - 1].drive.delivered
                modules[slot - 1] = Module(drive: SimulatedSyringeDrive(capacity: configuration.syringeVolume))
            }
            return "module \(slot) seated in the rack"
        case "power-reset":
            baseSession = false
            for index in modules.indices {
                modules[index].session = false
                modules[index].mode = .local
                modules[index].alarmBits = 0
                modules[index].pendingEvent = nil
                let delivered = modules[index].drive.delivered
                modules[index].drive = SimulatedSyringeDrive(capacity: modules[index].drive.remaining)
                modules[index].drive.delivered = delivered
                modules[index].drive.last = now
            }
            return "power reset: sessions closed, modules stopped, rates and counters cleared"
        case "on-lapse":
            configuration.lapseBehaviour = try FaultArguments.lapse(fault)
            return "on keep-alive lapse: \(configuration.lapseBehaviour.rawValue)"
        default:
            throw FaultError("unknown fault \"\(fault.name)\" for fresenius; accepted:\n" + Self.faultHelp.joined(separator: "\n"))
        }
    }

    // MARK: Internals

    private func slotArgument(_ fault: FaultCommand, required: Bool) throws(FaultError) -> Int {
        guard let text = fault.arguments.first else {
            if required { throw FaultError("\(fault.name) needs a slot number 1...\(modules.count)") }
            return 1
        }
        guard let slot = Int(text), modules.indices.contains(slot - 1) else {
            throw FaultError("\(fault.name): \"\(text)\" is not a slot of this rack (1...\(modules.count))")
        }
        return slot
    }

    private func isSilent(_ now: MonotonicInstant) -> Bool { line.isSilent(at: now) }

    private mutating func emitBytes(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        guard !isSilent(now) else { return }
        effects.send(bytes)
    }

    private mutating func emitReply(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        guard line.admitReply(at: now, effects: &effects) else { return }
        effects.send(bytes)
    }

    private mutating func raise(_ bit: UInt32, slot: Int, at now: MonotonicInstant) {
        modules[slot - 1].alarmBits |= bit
        modules[slot - 1].drive.running = false
        guard modules[slot - 1].session, let origin = FreseniusAddress.module(slot),
              let frame = try? FreseniusReply(origin: origin, body: .event(data: "a" + String(modules[slot - 1].alarmBits, radix: 16, uppercase: true))).frame()
        else { return }
        modules[slot - 1].pendingEvent = (frame.bytes, now, 0)
    }

    private mutating func advance(to now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        for index in modules.indices {
            switch modules[index].drive.advance(to: now) {
            case .empty?:
                effects.emit("module \(index + 1): syringe empty, stopped")
                raise(FreseniusVariableReading.emptyBit, slot: index + 1, at: now)
            case .volumeReached?, nil: break
            }
        }
        if isSilent(now) {
            lastDC4 = now  // the pump is not polling while silent; the keep-alive restarts afterwards
        } else if let last = lastDC4, anySession, now >= last + configuration.keepAliveTimeout {
            lapse(at: now, effects: &effects)
        }
    }

    private mutating func lapse(at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        baseSession = false
        lastDC4 = nil
        for index in modules.indices where modules[index].session {
            modules[index].session = false
            modules[index].mode = .local
            if configuration.lapseBehaviour == .stop, modules[index].drive.running {
                modules[index].drive.running = false
                effects.emit("module \(index + 1): keep-alive lapsed, local control, stopped")
            } else {
                effects.emit("module \(index + 1): keep-alive lapsed, local control\(modules[index].drive.running ? ", infusing on" : "")")
            }
        }
    }

    private func variables(_ ids: [FreseniusVariableID], module: Module?) -> String? {
        var parts: [FreseniusVariable] = []
        for id in ids {
            switch (id, module) {
            case (.modules, nil): parts.append(.modules(FreseniusModuleSet(slots: modules.indices.filter { modules[$0].present }.map { $0 + 1 })))
            case (.moduleCount, nil): parts.append(.moduleCount(modules.filter(\.present).count))
            case (.alarm, nil): parts.append(.alarm("0"))
            case (.mode, nil): parts.append(.mode(String(baseSession ? 2 : 1)))
            case let (.rate, module?): parts.append(.rate((try? FreseniusRate(roundingDown: module.drive.rate)) ?? FreseniusRate(tenths: 0)))
            case let (.volumeInfused, module?): parts.append(.volumeInfused((try? FreseniusVolume(roundingDown: module.drive.counter)) ?? FreseniusVolume(thousandths: 0)))
            case let (.alarm, module?): parts.append(.alarm(String(module.alarmBits, radix: 16, uppercase: true)))
            case let (.mode, module?): parts.append(.mode(String(module.mode.rawValue)))
            case (.error, _): parts.append(.error("0"))
            case (.bolusRate, _): parts.append(.bolusRate("0"))
            case (.bolusVolume, _): parts.append(.bolusVolume("0"))
            default: return nil
            }
        }
        return FreseniusVariables(parts).text
    }

    private mutating func answer(_ frame: FreseniusFrame, at now: MonotonicInstant, effects: inout EndpointEffects<String>) -> FreseniusReply? {
        let origin = frame.address
        func correct(_ data: String? = nil) -> FreseniusReply { FreseniusReply(origin: origin, body: .correct(data: data)) }
        func incorrect(_ error: FreseniusApplicationError) -> FreseniusReply { FreseniusReply(origin: origin, body: .incorrect(error)) }
        let message: FreseniusHostMessage
        do {
            message = try FreseniusHostMessage(frame: frame)
        } catch {
            return incorrect(error.applicationError ?? .syntaxError)
        }
        guard let character = origin.character else { return incorrect(.notAuthorisedOnThisPort) }  // a rack needs an address
        if character == FreseniusAddress.base.character {
            guard case let .command(command) = message else { return nil }
            switch command {
            case .connect:
                baseSession = true
                lastDC4 = now
                return correct()
            case .disconnect:
                baseSession = false
                for index in modules.indices { modules[index].session = false; modules[index].mode = .local }
                return correct()
            case let .readVariables(ids):
                guard baseSession else { return incorrect(.baseSessionNotOpen) }
                return variables(ids, module: nil).map { correct($0) } ?? incorrect(.identifierNotUsed)
            case .readFixedVariable: return correct("b" + "BASE A")
            case .silenceAlarm, .enableSpontaneousVariables, .disableSpontaneousVariables: return correct()
            default: return incorrect(.disabledInThisMode)
            }
        }
        guard let slot = origin.moduleSlot, modules.indices.contains(slot - 1), modules[slot - 1].present else {
            return incorrect(.moduleUnreachable)
        }
        let index = slot - 1
        switch message {
        case let .spontaneousAcknowledgement(status):
            if status == .event { modules[index].pendingEvent = nil }
            return nil
        case let .command(command):
            if command == .connect {
                guard baseSession else { return incorrect(.baseSessionNotOpen) }
                modules[index].session = true
                lastDC4 = now
                return correct()
            }
            guard modules[index].session else { return incorrect(.moduleSessionNotOpen) }
            switch command {
            case .disconnect:
                modules[index].session = false
                modules[index].mode = .local
                return correct()
            case let .mode(mode):
                modules[index].mode = mode
                effects.emit("module \(slot): \(mode == .remote ? "remote" : "local") mode")
                return correct()
            case let .readVariables(ids):
                return variables(ids, module: modules[index]).map { correct($0) } ?? incorrect(.identifierNotUsed)
            case .readFixedVariable: return correct("b" + configuration.deviceType)
            case .enableSpontaneousVariables, .disableSpontaneousVariables, .silenceAlarm: return correct()
            case let .setRate(rate):
                guard modules[index].mode == .remote else { return incorrect(.disabledInThisMode) }
                guard modules[index].alarmBits == 0 else { return incorrect(.alarmPresent) }
                modules[index].drive.rate = rate.value
                effects.emit("module \(slot): rate \(rate)")
                return correct()
            case .pause:
                guard modules[index].mode == .remote else { return incorrect(.disabledInThisMode) }
                if modules[index].drive.running { effects.emit("module \(slot): paused") }
                modules[index].drive.running = false
                return correct()
            case .resetVolumeInfused:
                guard modules[index].mode == .remote else { return incorrect(.disabledInThisMode) }
                modules[index].drive.counter = .zero
                return correct()
            case .other: return incorrect(.unknownCommand)
            default: return incorrect(.disabledInThisStatus)
            }
        }
    }
}
