import DeviceIO
import DeviceProtocols
import InfusionCore

/// A simulated New Era syringe pump (NE-1000 by default) speaking the RS-232 protocol of
/// reference/protocols.md §A1, as a pure `LinkEndpoint`: bytes and time in, bytes and events out.
///
/// Modelled: the syringe (capacity, contents, plunger travel through the diameter), rate limits set by
/// the diameter (`NewEra.RateLimits`; out-of-range rates get `?OOR`), rate, volume to dispense and
/// direction, the infused and withdrawn counters, pause and stop (the first `STP` while pumping
/// pauses `P`, a second one stops `S`), basic and safe framing and switching between them, the
/// safe-mode watchdog (no valid packet within the time-out: stop, alarm T, unsolicited auto-alarm
/// packet), the 0.5 s inter-byte discard (`NewEra.CommandDecoder`), address filtering (other
/// addresses are ignored, `*` system commands and unaddressed commands are obeyed, network bursts
/// `0RAT…*1RAT…*` run the part for this address), the power-up reset alarm (`A?R` until a command
/// acknowledges it), faults (`faultHelp`), and optional byte pacing at the configured baud rate
/// (10 bits per byte, emitted at `nextDeadline`). Multi-phase pumping programs are not modelled, so
/// their alarms, program error `A?E` and phase out of range `A?O`, are faults (`program-error`,
/// `phase-out-of-range`): the pump stops and raises the alarm as it does for a stall **[unverified]**.
///
/// Behaviour the manuals leave open, chosen here and marked **[unverified]**: an alarm reply replaces
/// the command (the command is not executed; nesp-lib resends after `A?R`, which implies this); a
/// plunger reaching the end of travel stalls the motor (`A?S`); in safe mode, basic-framed commands are
/// ignored; a safe packet is obeyed in basic mode too (nesp-lib sends `SAF` in safe framing to a pump
/// in basic mode); `RUN` with a rate the syringe does not allow answers `?OOR`.
///
/// **Checked against florian-lapp/nesp-lib-py (nesp_lib/pump.py, read through the reference search):**
/// it sends `SAF<n>` in safe framing as its first command with "alarm ignore" and reads the reply in
/// safe framing if n > 0, else basic: this pump answers a `SAF` in the framing of the requested mode,
/// even when the answer is the pending `A?R` (then nesp-lib resends and gets `00S`). Replies carry a
/// 2-digit address (nesp-lib compares `int(reply[0:2])` with its address), a status letter or
/// `A?<type>` with nothing after it (nesp-lib reads `reply[3] == '?'`, `reply[4]`), and errors as
/// `?NA`/`?OOR`/`?COM`/`?IGN`. Numbers in DIA/RAT/VOL/DIS replies always contain a decimal point
/// (nesp-lib's float pattern is `\d+\.\d*`): they are printed with 4 digits ("26.59", "1.500MM",
/// "I0.250W0.000ML"); VER answers `NE1000V3.928` (`NE\d+V\d+\.\d+`); SAF answers an integer. Its
/// commands (`0RAT1.5MM`, `0VOLML`, `0VOL5`, `0CLDINF`, `0DIRINF`, empty status queries as the
/// heartbeat at time-out/2) are all understood. nesp-lib 2.0.0 itself runs unchanged against
/// `infusion-sim --pump newera` (by hand, not in CI: `Simulator/tools/nesp-lib-check.py`): identify,
/// every setting read back, run to a volume, withdraw, purge, pause/stop, ?NA, ?OOR, ?COM, the S/E/O
/// alarms, and safe mode kept alive by its heartbeat. A 4-digit whole number must carry its decimal
/// point ("1500.UM") for nesp-lib's number pattern.
///
/// A value type; hosts call it from one thread at a time with non-decreasing times.
public struct NewEraSimulatedPump: SimulatedDevice, DeliveringDevice {
    /// The kind on the `infusion-sim` command line.
    public static let kind = "newera"

    /// The faults `inject` accepts.
    public static let faultHelp = [
        "stall             motor stall/occlusion: stops, alarm S (now if pumping, else at the next RUN)",
        "occlusion         same as stall",
        "program-error     pumping program error: stops, alarm E (now if pumping, else at the next RUN)",
        "phase-out-of-range pumping program phase out of range: stops, alarm O (now if pumping, else at the next RUN)",
        "corrupt [N]       the next N safe-mode packets (default 1) arrive with a bad CRC, as after line noise: "
            + "each is answered ?COM and not obeyed (basic-mode packets carry no CRC and are not affected)",
        "empty [VOLUME]    syringe (nearly) empty: VOLUME left (default 0 mL); stops at the end of travel, alarm S",
        "refill            syringe full again (plunger back at the start)",
        "silence [DUR]     the pump neither hears nor answers for DUR (default 10s); safe mode then times out",
        "ignore-stop [DUR] for DUR (default 60s) every STP is lost as if garbled on the wire: no reply, no effect, "
            + "and it does not feed the safe-mode watchdog; every other packet is obeyed",
        "garbage [N]       sends N random bytes (default 16) on the line",
        "power-reset       power interrupted: stops, alarm R until acknowledged (auto-alarm in safe mode)",
        "accuracy FACTOR   delivers FACTOR × what it is commanded and reports (94% or 0.94: 6 % short; 1: accurate)",
    ]

    /// Power-up settings of the simulated pump.
    public struct Configuration: Hashable, Sendable {
        /// Network address (0…99).
        public var address: NewEra.Address
        /// What `VER` reports.
        public var version: NewEra.Version
        /// Safe-mode time-out at power-up (the pump keeps safe mode across power cycles); 0 = basic.
        public var safeModeTimeoutSeconds: UInt8
        /// Syringe inside diameter, mm.
        public var diameter: NewEra.Number
        /// Syringe capacity (full plunger travel).
        public var capacity: Volume
        /// What the syringe holds at power-up.
        public var contents: Volume
        /// Pace replies at this many bits per second (10 bits per byte); nil = send at once.
        public var bitsPerSecond: Int?
        /// Report `A?R` after power-up until a command acknowledges it (a real pump does).
        public var powerUpAlarm: Bool
        /// Seed of the `garbage` fault's byte generator.
        public var seed: UInt64

        /// Defaults: address 0, NE1000 V3.928, basic mode, a 60 mL B-D syringe (26.59 mm) holding
        /// 60 mL, no pacing, power-up alarm on.
        public init(address: NewEra.Address = .zero,
                    version: NewEra.Version = NewEra.Version(model: 1000, major: 3, minor: "928"),
                    safeModeTimeoutSeconds: UInt8 = 0,
                    diameter: NewEra.Number = NewEraLiterals.bd60,
                    capacity: Volume = Volume(60, .millilitres), contents: Volume = Volume(60, .millilitres),
                    bitsPerSecond: Int? = nil, powerUpAlarm: Bool = true, seed: UInt64 = 0x5EED) {
            self.address = address
            self.version = version
            self.safeModeTimeoutSeconds = safeModeTimeoutSeconds
            self.diameter = diameter
            self.capacity = capacity
            self.contents = contents
            self.bitsPerSecond = bitsPerSecond
            self.powerUpAlarm = powerUpAlarm
            self.seed = seed
        }
    }

    /// What the simulated pump reports to its host (for logs and tests).
    public enum Event: Hashable, Sendable {
        /// A driver opened / closed the line.
        case linkUp, linkDown
        /// A packet for this pump was obeyed (its text and framing).
        case command(String, NewEra.FramingMode)
        /// A packet was ignored: other address, basic framing in safe mode, or silenced.
        case ignored(String)
        /// A reply was sent (its text).
        case reply(String)
        /// An alarm was raised.
        case alarm(NewEra.Alarm)
        /// Pumping ended: "volume reached", "end of travel", "stall", "program error", "phase out of range",
        /// "watchdog", "power reset", "paused by STP".
        case stopped(String)
    }

    /// Outputs are events.
    public typealias Output = Event

    // MARK: Observable state

    /// The address the pump answers to.
    public private(set) var address: NewEra.Address
    /// The baud rate the pump is set to (`ADR<n>B<baud>`; 19200 at power-up). The pump answers the
    /// command that changes it, and everything after, at the new rate: with pacing on, replies are paced
    /// at it. (A pty has no real line speed, so a driver at the old rate still reads the replies.)
    public private(set) var baudRate: Int = 19200
    /// The framing the pump speaks.
    public private(set) var mode: NewEra.FramingMode
    /// Safe-mode time-out, s (0 in basic mode).
    public private(set) var safeModeTimeoutSeconds: UInt8
    /// The status prompt (what it reports when no alarm is pending).
    public private(set) var prompt: NewEra.Prompt = .stopped
    /// The alarm waiting to be acknowledged.
    public private(set) var alarm: NewEra.Alarm?
    /// Syringe diameter, mm.
    public private(set) var diameter: NewEra.Number { didSet { refreshDeliverySettings() } }
    /// The rate set.
    public private(set) var rate: NewEra.RateSetting { didSet { refreshDeliverySettings() } }
    /// Volume to dispense per run (0 = no limit), in `volumeUnit`.
    public private(set) var volumeTarget: NewEra.Number { didSet { refreshDeliverySettings() } }
    /// Unit of `VOL` and `DIS`.
    public private(set) var volumeUnit: NewEra.VolumeUnit = .millilitres { didSet { refreshDeliverySettings() } }
    /// Pumping direction.
    public private(set) var direction: NewEra.Direction = .infuse
    /// Infused counter (cleared by `CLD INF`), mL.
    public private(set) var infusedMillilitres = 0.0
    /// Withdrawn counter (cleared by `CLD WDR`), mL.
    public private(set) var withdrawnMillilitres = 0.0
    /// What the syringe holds, mL.
    public private(set) var contentsMillilitres: Double
    /// True while the watchdog is counting (safe mode, after the first valid packet since power-up).
    public private(set) var isWatchdogRunning = false
    /// When the last valid packet for this pump arrived (the safe-mode watchdog counts from it); nil
    /// since power-up (or a power reset) until the first. Host clock time.
    public private(set) var lastValidPacketAt: MonotonicInstant?

    /// Everything pushed out since creation, including purges (never decreases).
    public var totalVolumeDelivered: Volume { Volume(totalDeliveredMillilitres, .millilitres) }

    /// Plunger position from the start of travel, mm.
    public var plungerTravelMillimetres: Double {
        (capacityMillilitres - contentsMillilitres) * 1000 / NewEra.RateLimits(diameterMillimetres: diameter.value).microlitresPerMillimetre
    }

    // MARK: Private state

    private let version: NewEra.Version
    private let capacityMillilitres: Double
    private var byteTime: Duration?
    private var decoder = NewEra.CommandDecoder()
    private var linkIsUp = false
    private var lastUpdate: MonotonicInstant?
    private var phaseDispensedMillilitres = 0.0
    private var totalDeliveredMillilitres = 0.0
    /// What the pump really delivers ÷ what it is commanded and counts (1: accurate; 0.94: 6 % short). Its
    /// own counters (`DIS`) and the syringe travel follow the command; only the liquid that leaves it
    /// (`totalVolumeDelivered`, what the world and a balance see) is scaled.
    public private(set) var deliveryFactor = 1.0
    /// The alarm the next RUN raises 100 ms after it starts (an injected stall, program error or phase out of
    /// range while the pump was not pumping).
    private var pendingRunAlarm: NewEra.Alarm?
    /// When an armed run alarm (`runAlarm`) fires.
    private var runAlarmAt: MonotonicInstant?
    private var runAlarm: NewEra.Alarm = .stalled
    /// Safe packets still to be received as corrupt (`corrupt` fault).
    private var corruptPacketsLeft = 0
    private var silentUntil: MonotonicInstant?
    private var ignoreStopUntil: MonotonicInstant?
    private var outgoing: [UInt8] = []
    private var nextByteAt: MonotonicInstant?
    private var injected: [[UInt8]] = []
    private var injectedDue: MonotonicInstant?
    private var random: UInt64
    /// The settings delivery is computed from, as plain numbers (mL/h, mL), worked out once per change of
    /// setting: converting the exact decimal settings is costly, and delivery, deadlines and the shared
    /// world read them many times a second (a 4-hour virtual session reads them millions of times).
    private var settingRateMillilitresPerHour = 0.0
    private var purgeRateMillilitresPerHour = 0.0
    private var volumeTargetMillilitres = 0.0

    /// A pump that has just been powered up with `configuration`.
    public init(configuration: Configuration = Configuration()) {
        address = configuration.address
        version = configuration.version
        safeModeTimeoutSeconds = configuration.safeModeTimeoutSeconds
        mode = configuration.safeModeTimeoutSeconds > 0 ? .safe : .basic
        diameter = configuration.diameter
        rate = NewEra.RateSetting(NewEraLiterals.zero, .millilitresPerHour)
        volumeTarget = NewEraLiterals.zero
        capacityMillilitres = configuration.capacity.value(in: .millilitres)
        contentsMillilitres = min(configuration.contents.value(in: .millilitres), configuration.capacity.value(in: .millilitres))
        byteTime = configuration.bitsPerSecond.map { .nanoseconds(10_000_000_000 / Int64(max(1, $0))) }
        alarm = configuration.powerUpAlarm ? .reset : nil
        random = configuration.seed == 0 ? 0x5EED : configuration.seed
        outgoing.reserveCapacity(256)
        refreshDeliverySettings()
    }

    private mutating func refreshDeliverySettings() {
        settingRateMillilitresPerHour = rate.volumeRate.value(in: .millilitresPerHour)
        purgeRateMillilitresPerHour = limits.maximumRate.value(in: .millilitresPerHour)
        volumeTargetMillilitres = volumeTarget.value * (volumeUnit == .microlitres ? 0.001 : 1)
    }

    /// The earliest of: the next paced byte, injected bytes, the watchdog, a delayed stall, and the
    /// moment the running program reaches its volume or the syringe its end of travel.
    public var nextDeadline: MonotonicInstant? {
        var next: MonotonicInstant?
        func consider(_ instant: MonotonicInstant?) {
            guard let instant else { return }
            next = next.map { min($0, instant) } ?? instant
        }
        consider(injectedDue)
        consider(nextByteAt)
        consider(runAlarmAt)
        if isWatchdogRunning, mode == .safe, let last = lastValidPacketAt {
            consider(last + .seconds(Int(safeModeTimeoutSeconds)))
        }
        consider(pumpingEndsAt)
        // While pumping, integrate at least twice a second so `totalVolumeDelivered` stays fresh for the
        // shared simulated world, which reads it between events.
        if prompt.isPumping, let last = lastUpdate { consider(last + .milliseconds(500)) }
        return next
    }

    /// The pump `infusion-sim --pump newera[:ADDRESS]` starts: address from the parameter, replies
    /// paced at 19200 baud (the factory rate).
    public static func fromParameter(_ parameter: String?) throws(FaultError) -> NewEraSimulatedPump {
        var configuration = Configuration(bitsPerSecond: 19200)
        if let parameter {
            guard let number = Int(parameter), let address = NewEra.Address(number) else {
                throw FaultError("newera:\(parameter): the parameter is the pump's address, 0 to 99 (e.g. newera:1)")
            }
            configuration.address = address
        }
        return NewEraSimulatedPump(configuration: configuration)
    }

    // MARK: LinkEndpoint

    /// A driver opened the line.
    public mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<Event>) {
        linkIsUp = true
        decoder.reset()
        effects.emit(.linkUp)
    }

    /// The driver closed the line (or it was unplugged): partial input and unsent output are lost. The
    /// pump itself carries on (and its watchdog keeps counting).
    public mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<Event>) {
        linkIsUp = false
        decoder.reset()
        outgoing.removeAll(keepingCapacity: true)
        nextByteAt = nil
        effects.emit(.linkDown)
    }

    /// Bytes from the host: decode and obey packets.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<Event>) {
        if let until = silentUntil, now < until {
            effects.emit(.ignored("\(bytes.count) byte(s) while silenced"))
            return
        }
        silentUntil = nil
        for event in decoder.decode(bytes, at: now) {
            switch event {
            case .success(let received) where received.framing == .safe && corruptPacketsLeft > 0:
                // The `corrupt` fault: this packet's CRC is taken as wrong, as if the line garbled it.
                corruptPacketsLeft -= 1
                effects.emit(.ignored(received.message.text + " (corrupt fault: bad CRC)"))
                update(to: now, effects: &effects)
                reply(NewEra.Reply(address: address, status: currentStatus, body: .error(.invalidPacket)),
                      framing: .safe, at: now, effects: &effects)
            case .success(let received):
                obey(received.message, framing: received.framing, at: now, effects: &effects)
            case .failure:
                // A safe packet with a bad CRC: answer ?COM (address unknown, so this pump answers).
                update(to: now, effects: &effects)
                reply(NewEra.Reply(address: address, status: currentStatus, body: .error(.invalidPacket)),
                      framing: .safe, at: now, effects: &effects)
            }
        }
    }

    /// Time passes: deliver, stop at the volume or end of travel, run the watchdog, pace bytes out.
    public mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<Event>) {
        if let due = injectedDue, now >= due {
            injectedDue = nil
            let frames = injected
            injected.removeAll()
            for frame in frames { transmit(frame, at: now, effects: &effects) }
        }
        update(to: now, effects: &effects)
        if let at = runAlarmAt, now >= at {
            runAlarmAt = nil
            halt(raising: runAlarm, at: now, effects: &effects)
        }
        if isWatchdogRunning, mode == .safe, let last = lastValidPacketAt, now >= last + .seconds(Int(safeModeTimeoutSeconds)) {
            isWatchdogRunning = false
            if prompt.isPumping { effects.emit(.stopped("watchdog")) }
            prompt = .stopped
            raise(.safeModeTimeout, at: now, effects: &effects)
        }
        flushPaced(at: now, effects: &effects)
    }

    /// Brings delivery up to `now` (the simulated world calls it before reading `totalVolumeDelivered`).
    public mutating func update(to now: MonotonicInstant) {
        var effects = EndpointEffects<Event>()
        update(to: now, effects: &effects)
        // Stops found here are reported again by the next tick's state; the events are not needed.
    }

    // MARK: Faults

    /// Applies a fault (see `faultHelp`). Bytes it sends (auto-alarm, garbage) go out at the next tick,
    /// which `nextDeadline` makes immediate.
    public mutating func inject(_ fault: FaultCommand, at now: MonotonicInstant) throws(FaultError) -> String {
        var effects = EndpointEffects<Event>()
        update(to: now, effects: &effects)
        switch fault.name {
        case "stall", "occlusion", "program-error", "phase-out-of-range":
            let alarm: NewEra.Alarm = switch fault.name {
            case "program-error": .programError
            case "phase-out-of-range": .phaseOutOfRange
            default: .stalled
            }
            if prompt.isPumping {
                halt(raising: alarm, at: now, effects: &effects)
                queueInjected(effects.outgoing, at: now)
                return "\(alarm == .stalled ? "motor stalled" : Self.haltReason(alarm)) while pumping: stopped, alarm \(alarm.rawValue)"
            }
            pendingRunAlarm = alarm
            return "\(fault.name) set: the next RUN stops 100 ms after starting, alarm \(alarm.rawValue)"
        case "corrupt":
            var count = 1
            if let text = fault.arguments.first {
                guard let n = Int(text), (1...1000).contains(n) else { throw FaultError("corrupt: N must be 1…1000 packets") }
                count = n
            }
            corruptPacketsLeft = count
            return "the next \(count) safe-mode packet(s) arrive corrupted: each is answered ?COM"
        case "empty":
            var left = 0.0
            if let text = fault.arguments.first {
                guard let volume = try? Volume.parse(text) else { throw FaultError("empty: cannot read \"\(text)\" as a volume (e.g. 0.5mL)") }
                left = volume.value(in: .millilitres)
            }
            contentsMillilitres = min(max(0, left), contentsMillilitres)
            return "syringe holds \(contentsMillilitres) mL: it stops at the end of travel"
        case "accuracy":
            guard fault.arguments.count == 1 else { throw FaultError("accuracy takes one factor, such as 94% or 0.94") }
            let text = fault.arguments[0]
            let number = Double(text.hasSuffix("%") ? String(text.dropLast()) : text).map { text.hasSuffix("%") ? $0 / 100 : $0 }
            guard let factor = number, factor.isFinite, (0.5...1.5).contains(factor) else {
                throw FaultError("accuracy: \"\(text)\" is not a factor from 0.5 to 1.5 (or 50% to 150%), such as 94% or 0.94")
            }
            deliveryFactor = factor
            return "delivers \(NumberText.format(factor * 100, fractionDigits: 1)) % of what it is commanded"
        case "refill":
            contentsMillilitres = capacityMillilitres
            return "syringe refilled to \(capacityMillilitres) mL"
        case "silence":
            let duration: Duration
            if fault.arguments.isEmpty {
                duration = .seconds(10)
            } else {
                guard let parsed = fault.duration else { throw FaultError("silence: cannot read \"\(fault.arguments[0])\" as a duration (e.g. 10s)") }
                duration = parsed
            }
            silentUntil = now + duration
            outgoing.removeAll(keepingCapacity: true)
            nextByteAt = nil
            return "silent for \(duration.humanReadable)"
        case "ignore-stop":
            let duration: Duration
            if fault.arguments.isEmpty {
                duration = .seconds(60)
            } else {
                guard let parsed = fault.duration else {
                    throw FaultError("ignore-stop: cannot read \"\(fault.arguments[0])\" as a duration (e.g. 60s)")
                }
                duration = parsed
            }
            ignoreStopUntil = now + duration
            return "STP commands lost for \(duration.humanReadable); safe mode still times out when the host goes silent"
        case "garbage":
            var count = 16
            if let text = fault.arguments.first {
                guard let n = Int(text), (1...4096).contains(n) else { throw FaultError("garbage: N must be 1…4096 bytes") }
                count = n
            }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(count)
            for _ in 0..<count { bytes.append(nextRandomByte()) }
            queueInjected([bytes], at: now)
            return "sending \(count) random bytes"
        case "power-reset":
            if prompt.isPumping { effects.emit(.stopped("power reset")) }
            prompt = .stopped
            runAlarmAt = nil
            isWatchdogRunning = false
            lastValidPacketAt = nil
            decoder.reset()
            outgoing.removeAll(keepingCapacity: true)
            nextByteAt = nil
            raise(.reset, at: now, effects: &effects)
            queueInjected(effects.outgoing, at: now)
            return "power interrupted: stopped, alarm R" + (mode == .safe ? " (auto-alarm sent)" : "")
        default:
            throw FaultError("unknown New Era fault \"\(fault.name)\"; known: "
                + Self.faultHelp.map { String($0.prefix { $0 != " " }) }.joined(separator: ", "))
        }
    }

    // MARK: Packets

    private var currentStatus: NewEra.Status { alarm.map(NewEra.Status.alarm) ?? .prompt(prompt) }

    private mutating func obey(_ packet: NewEra.CommandPacket, framing: NewEra.FramingMode, at now: MonotonicInstant,
                               effects: inout EndpointEffects<Event>) {
        if mode == .safe, framing == .basic {
            effects.emit(.ignored(packet.text + " (basic framing while in safe mode)"))
            return
        }
        // Network command burst: "0RAT60.00MM*1RAT30.00MM*" — obey the part for this address.
        let text = packet.text
        if let star = text.firstIndex(of: "*"), star != text.startIndex {
            for part in text.split(separator: "*") {
                let sub = NewEra.CommandPacket(parsing: part)
                if case .pump(let a) = sub.destination, a == address { obey(sub, framing: framing, at: now, effects: &effects) }
            }
            return
        }
        switch packet.destination {
        case .pump(let a) where a != address:
            effects.emit(.ignored(text + " (for address \(a))"))
            return
        default: break
        }
        if case .stop = packet.command, let until = ignoreStopUntil, now < until {
            effects.emit(.ignored(text + " (ignore-stop fault: lost as if garbled)"))
            return
        }
        effects.emit(.command(text, framing))
        lastValidPacketAt = now
        if mode == .safe { isWatchdogRunning = true }
        update(to: now, effects: &effects)

        // A SAF set is answered in the framing of the mode it asks for (what nesp-lib expects).
        var replyFraming = mode
        if case .setSafeMode(let seconds) = packet.command { replyFraming = seconds > 0 ? .safe : .basic }

        if let pending = alarm {
            // The alarm reply acknowledges the alarm and replaces the command [unverified].
            alarm = nil
            reply(NewEra.Reply(address: address, status: .alarm(pending)), framing: replyFraming, at: now, effects: &effects)
            return
        }
        let body = execute(packet.command, at: now, effects: &effects)
        if case .setSafeMode = packet.command { replyFraming = mode }
        reply(NewEra.Reply(address: address, status: currentStatus, body: body), framing: replyFraming, at: now, effects: &effects)
    }

    private mutating func execute(_ command: NewEra.Command?, at now: MonotonicInstant, effects: inout EndpointEffects<Event>) -> NewEra.Reply.Body {
        guard let command else { return .none }
        let pumping = prompt.isPumping
        switch command {
        case .queryDiameter:
            return .data(diameter.fourDigitText)
        case .setDiameter(let mm):
            guard !pumping else { return .error(.notApplicable) }
            guard mm.value >= NewEra.RateLimits.minimumDiameterMillimetres, mm.value <= NewEra.RateLimits.maximumDiameterMillimetres
            else { return .error(.outOfRange) }
            diameter = mm
            return .none
        case .queryRate:
            return .data(rate.replyText)
        case .setRate(let setting):
            guard limits.accepts(setting.volumeRate) else { return .error(.outOfRange) }
            rate = setting  // allowed while pumping (a rate change takes effect at once)
            return .none
        case .queryVolume:
            return .data(NewEra.VolumeSetting(volumeTarget, volumeUnit).replyText)
        case .setVolume(let number):
            guard !pumping else { return .error(.notApplicable) }
            volumeTarget = number
            return .none
        case .setVolumeUnit(let unit):
            guard !pumping else { return .error(.notApplicable) }
            volumeUnit = unit
            return .none
        case .queryDirection:
            return .data(direction.rawValue)
        case .setDirection(let wanted):
            guard !pumping else { return .error(.notApplicable) }
            switch wanted {
            case .reverse: direction = direction == .infuse ? .withdraw : .infuse
            default: direction = wanted
            }
            return .none
        case .run:
            guard !pumping else { return .none }
            guard limits.accepts(rate.volumeRate) else { return .error(.outOfRange) }
            if prompt != .paused { phaseDispensedMillilitres = 0 }
            prompt = direction == .withdraw ? .withdrawing : .infusing
            lastUpdate = now
            if let alarm = pendingRunAlarm {
                pendingRunAlarm = nil
                runAlarm = alarm
                runAlarmAt = now + .milliseconds(100)
            }
            return .none
        case .purge:
            guard !pumping else { return .none }
            prompt = .purging
            lastUpdate = now
            return .none
        case .stop:
            if pumping {
                prompt = .paused
                effects.emit(.stopped("paused by STP"))
            } else {
                prompt = .stopped
            }
            runAlarmAt = nil
            return .none
        case .queryDispensed:
            let factor = volumeUnit == .microlitres ? 1000.0 : 1.0
            let cap = NewEraLiterals.largest
            // Rounded to 1e-9 first so binary round-off (1.9999999999) does not print as 1.999.
            func number(_ millilitres: Double) -> NewEra.Number {
                NewEra.Number.roundingDown((millilitres * factor * 1e9).rounded() / 1e9) ?? cap
            }
            let dispensed = NewEra.Dispensed(infused: number(infusedMillilitres), withdrawn: number(withdrawnMillilitres), unit: volumeUnit)
            return .data(dispensed.replyText)
        case .clearDispensed(let counter):
            switch counter {
            case .infused: infusedMillilitres = 0
            case .withdrawn: withdrawnMillilitres = 0
            }
            return .none
        case .queryVersion:
            return .data(version.replyText)
        case .querySafeMode:
            return .data(String(safeModeTimeoutSeconds))
        case .setSafeMode(let seconds):
            safeModeTimeoutSeconds = seconds
            mode = seconds > 0 ? .safe : .basic
            isWatchdogRunning = seconds > 0
            return .none
        case .setAddress(let new):
            address = new
            return .none
        case let .setAddressAndBaud(new, baud):
            address = new
            baudRate = baud.rawValue
            if byteTime != nil { byteTime = .nanoseconds(10_000_000_000 / Int64(baud.rawValue)) }
            return .none
        case let .other(name, _):
            let modelled = ["DIA", "RAT", "VOL", "DIR", "RUN", "PUR", "STP", "DIS", "CLD", "VER", "SAF", "ADR"]
            if modelled.contains(name) { return .error(.outOfRange) }  // known command, bad argument
            let accepted = ["PHN", "FUN", "ALR", "BUZ", "TRG", "DIN", "ROM", "LOC", "LN", "IN", "OUT"]
            return accepted.contains(name) ? .none : .error(.notRecognised)
        }
    }

    private var limits: NewEra.RateLimits { NewEra.RateLimits(diameterMillimetres: diameter.value) }

    // MARK: Delivery

    private var rateMillilitresPerHour: Double {
        prompt == .purging ? purgeRateMillilitresPerHour : settingRateMillilitresPerHour
    }

    /// Millilitres the running program may still move before it must stop.
    private var remainingMillilitres: Double {
        var remaining = direction == .withdraw && prompt == .withdrawing
            ? capacityMillilitres - contentsMillilitres : contentsMillilitres
        if prompt != .purging, volumeTarget.scaledValue > 0 {
            remaining = min(remaining, volumeTargetMillilitres - phaseDispensedMillilitres)
        }
        return max(0, remaining)
    }

    private var pumpingEndsAt: MonotonicInstant? {
        guard prompt.isPumping, let last = lastUpdate else { return nil }
        let perHour = rateMillilitresPerHour
        guard perHour > 0 else { return nil }
        let hours = remainingMillilitres / perHour
        guard hours < 1e6 else { return nil }
        return last + .nanoseconds(Int64((hours * 3_600_000_000_000).rounded(.up)))
    }

    private mutating func update(to now: MonotonicInstant, effects: inout EndpointEffects<Event>) {
        defer { lastUpdate = now }
        guard prompt.isPumping, let last = lastUpdate, now > last else { return }
        let hours = Double((now - last).components.seconds) / 3600 + Double((now - last).components.attoseconds) / 3.6e21
        let remaining = remainingMillilitres
        let moved = min(rateMillilitresPerHour * hours, remaining)
        if prompt == .withdrawing {
            contentsMillilitres += moved
            withdrawnMillilitres += moved
        } else {
            contentsMillilitres -= moved
            infusedMillilitres += moved
            totalDeliveredMillilitres += moved * deliveryFactor
        }
        phaseDispensedMillilitres += moved
        guard moved >= remaining - 1e-12 else { return }
        let travelEnded = prompt == .withdrawing ? contentsMillilitres >= capacityMillilitres - 1e-12 : contentsMillilitres <= 1e-12
        if travelEnded {
            halt(raising: .stalled, reason: "end of travel", at: now, effects: &effects)
        } else {
            prompt = .stopped
            effects.emit(.stopped("volume reached"))
        }
    }

    /// Stops pumping and raises `alarm` (a stall, a program error, a phase out of range); `reason` is the
    /// `.stopped` event's text (default: the alarm's).
    private mutating func halt(raising alarm: NewEra.Alarm, reason: String? = nil, at now: MonotonicInstant,
                               effects: inout EndpointEffects<Event>) {
        prompt = .stopped
        runAlarmAt = nil
        effects.emit(.stopped(reason ?? Self.haltReason(alarm)))
        raise(alarm, at: now, effects: &effects)
    }

    /// The `.stopped` event text for a pump stopped by `alarm`: "stall", "program error", "phase out of range".
    private static func haltReason(_ alarm: NewEra.Alarm) -> String {
        switch alarm {
        case .programError: "program error"
        case .phaseOutOfRange: "phase out of range"
        case .stalled: "stall"
        case .reset: "power reset"
        case .safeModeTimeout: "watchdog"
        }
    }

    /// Raises an alarm; in safe mode the pump also sends it unsolicited (the auto-alarm packet).
    private mutating func raise(_ new: NewEra.Alarm, at now: MonotonicInstant, effects: inout EndpointEffects<Event>) {
        alarm = new
        effects.emit(.alarm(new))
        if mode == .safe {
            reply(NewEra.Reply(address: address, status: .alarm(new)), framing: .safe, at: now, effects: &effects)
        }
    }

    // MARK: Output

    private mutating func reply(_ reply: NewEra.Reply, framing: NewEra.FramingMode, at now: MonotonicInstant,
                                effects: inout EndpointEffects<Event>) {
        if let until = silentUntil, now < until { return }
        guard let bytes = try? NewEra.Framing.encode(reply, mode: framing) else { return }
        effects.emit(.reply(reply.text))
        transmit(bytes, at: now, effects: &effects)
    }

    private mutating func transmit(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<Event>) {
        guard linkIsUp else { return }  // nobody listening: lost, as on a real line
        guard let byteTime else {
            effects.send(bytes)
            return
        }
        outgoing.append(contentsOf: bytes)
        if nextByteAt == nil { nextByteAt = now + byteTime }
        flushPaced(at: now, effects: &effects)
    }

    /// Sends every paced byte whose transmission has completed by `now`.
    private mutating func flushPaced(at now: MonotonicInstant, effects: inout EndpointEffects<Event>) {
        guard let byteTime, var due = nextByteAt, now >= due, !outgoing.isEmpty else {
            if outgoing.isEmpty { nextByteAt = nil }
            return
        }
        var count = 0
        while count < outgoing.count, due <= now {
            count += 1
            due = due + byteTime
        }
        effects.send(Array(outgoing[..<count]))
        outgoing.removeFirst(count)
        nextByteAt = outgoing.isEmpty ? nil : due
    }

    private mutating func queueInjected(_ frames: [[UInt8]], at now: MonotonicInstant) {
        guard !frames.isEmpty else { return }
        injected.append(contentsOf: frames)
        injectedDue = now
    }

    private mutating func nextRandomByte() -> UInt8 {
        random ^= random << 13
        random ^= random >> 7
        random ^= random << 17
        return UInt8(truncatingIfNeeded: random >> 24)
    }
}

/// Literal numbers of the pump's grammar (compile-time constants, valid by construction; the unit tests
/// read each back).
@usableFromInline
enum NewEraLiterals {
    /// 26.59 mm: a 60 mL B-D syringe, the manual's example.
    @usableFromInline static let bd60 = NewEra.Number(scaledValue: 2659, fractionDigits: 2)!
    /// 0.
    @usableFromInline static let zero = NewEra.Number(0)!
    /// 9999, the largest number the pump prints.
    @usableFromInline static let largest = NewEra.Number(9999)!
}
