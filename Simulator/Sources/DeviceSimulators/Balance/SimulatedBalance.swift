import DeviceIO
import DeviceProtocols
import InfusionCore

/// What the simulated balance reports to its host, for the log.
public enum SimulatedBalanceEvent: Hashable, Sendable {
    /// A command line arrived.
    case command(String, at: MonotonicInstant)
    /// A reply was sent.
    case reply(String, at: MonotonicInstant)
    /// A command was dropped (silence fault, queue full), and why.
    case ignored(String, reason: String, at: MonotonicInstant)
    /// Garbage bytes were sent (the `garbage` fault).
    case garbage(count: Int, at: MonotonicInstant)
}

/// A simulated Mettler Toledo balance speaking MT-SICS level 0 (reference/protocols.md §A7), with a
/// collection vessel on its pan that a simulated pump fills.
///
/// Weight: the host feeds the delivered volume (`update(deliveredVolume:at:)`, from a `DeliveringDevice`'s
/// `totalVolumeDelivered`); the liquid's mass is volume × density, less evaporation at a constant rate.
/// The displayed net weight is (liquid + any load put on by a fault − the zero offset) plus seeded noise,
/// rounded to the balance's resolution.
///
/// Stability: a step of at least `stepThresholdGrams` between updates (a drop, a load) makes the reading
/// dynamic for `settlingTime`; a continuous slow flow does not. `SI` answers at once (`S S` or `S D`);
/// `S` and `Z` wait for stability up to `stabilityTimeout`, then answer `S I` / `Z I`.
///
/// Limits and errors: gross above `capacityGrams` → `S +` (and `Z +`); gross below −`zeroRangeGrams`
/// → `S -` (and `Z -`); zeroing outside ±`zeroRangeGrams` of the power-on zero → `Z +`/`Z -`. Unknown
/// command → `ES`; a command with bytes outside printable ASCII → `ET`; injected `EL`/`ET` faults.
///
/// Pure (time comes in as arguments; the noise generator is seeded). Hosts serialise calls.
public struct SimulatedBalance: SimulatedDevice {
    /// Log events.
    public typealias Output = SimulatedBalanceEvent

    /// The kind on the simulator's command line.
    public static let kind = "mt-sics"

    /// The faults this device accepts.
    public static let faultHelp = [
        "unstable [DURATION]   reading dynamic (S waits then S I, Z I) for DURATION, or until `stable`",
        "stable                end `unstable` and any settling now",
        "overload              put more than the capacity on the pan (S +, Z +) until `load 0`",
        "underload             take the pan off (S -, Z -) until `load 0`",
        "load GRAMS            put GRAMS on the pan (negative: take weight off); `load 0` removes it",
        "silence [DURATION]    answer nothing for DURATION, or until `silence off`",
        "garbage               send a line of random bytes now",
        "logical-error [N]     answer the next N commands (default 1) with EL",
        "transmission-error [N] answer the next N commands (default 1) with ET",
    ]

    /// The balance's build and behaviour.
    public struct Configuration: Hashable, Sendable {
        /// Model, for `I2` ("XS204").
        public var model: String
        /// Serial number, for `I4` and `@`.
        public var serialNumber: String
        /// Software version, for `I3`.
        public var softwareVersion: String
        /// Capacity, grams; a gross load above it is an overload.
        public var capacityGrams: Double
        /// Displayed decimals (4 = 0.1 mg resolution).
        public var fractionDigits: Int
        /// Density of the liquid in the vessel, g/mL (water at 20 °C: 0.998204).
        public var densityGramsPerMillilitre: Double
        /// Noise on a stable reading: uniform ± this, grams.
        public var noiseGrams: Double
        /// Noise on a dynamic reading: uniform ± this, grams.
        public var dynamicNoiseGrams: Double
        /// How long the reading stays dynamic after a step.
        public var settlingTime: Duration
        /// How long `S` and `Z` wait for stability before `S I` / `Z I`.
        public var stabilityTimeout: Duration
        /// A change of at least this much between two updates is a step (disturbs the reading), grams.
        public var stepThresholdGrams: Double
        /// Zeroing is allowed within ± this of the power-on zero, grams; below −this is an underload.
        public var zeroRangeGrams: Double
        /// Evaporation from the vessel, grams per hour (0: none, or an oil layer).
        public var evaporationGramsPerHour: Double
        /// Seed of the noise generator.
        public var seed: UInt64
        /// Commands this balance does not support (answered `ES`, as an older balance answers `I5`).
        public var unsupportedCommands: Set<MTSICSCommand>

        /// A configuration; the defaults are an XS204-like analytical balance with water at 20 °C.
        public init(model: String = "XS204", serialNumber: String = "B123456789", softwareVersion: String = "4.10",
                    capacityGrams: Double = 220, fractionDigits: Int = 4, densityGramsPerMillilitre: Double = 0.998204,
                    noiseGrams: Double = 0.0002, dynamicNoiseGrams: Double = 0.005, settlingTime: Duration = .seconds(2),
                    stabilityTimeout: Duration = .seconds(5), stepThresholdGrams: Double = 0.05, zeroRangeGrams: Double = 10,
                    evaporationGramsPerHour: Double = 0, seed: UInt64 = 1,
                    unsupportedCommands: Set<MTSICSCommand> = []) {
            self.model = model
            self.serialNumber = serialNumber
            self.softwareVersion = softwareVersion
            self.capacityGrams = capacityGrams
            self.fractionDigits = max(0, min(6, fractionDigits))
            self.densityGramsPerMillilitre = densityGramsPerMillilitre
            self.noiseGrams = max(0, noiseGrams)
            self.dynamicNoiseGrams = max(0, dynamicNoiseGrams)
            self.settlingTime = settlingTime
            self.stabilityTimeout = stabilityTimeout
            self.stepThresholdGrams = stepThresholdGrams
            self.zeroRangeGrams = zeroRangeGrams
            self.evaporationGramsPerHour = max(0, evaporationGramsPerHour)
            self.seed = seed
            self.unsupportedCommands = unsupportedCommands
        }
    }

    private static let forever = MonotonicInstant(nanoseconds: .max)
    private static let queueLimit = 16

    /// The configuration.
    public let configuration: Configuration
    /// Mass of the delivered liquid before evaporation, grams.
    public private(set) var liquidGrams = 0.0
    /// Mass evaporated so far, grams.
    public private(set) var evaporatedGrams = 0.0
    /// Load put on (or taken off) the pan by faults, grams.
    public private(set) var extraLoadGrams = 0.0
    /// The zero point, grams of gross load.
    public private(set) var zeroOffsetGrams = 0.0

    private var lastTime: MonotonicInstant?
    private var lastDisturbance: MonotonicInstant?
    private var unstableUntil: MonotonicInstant?
    private var silentUntil: MonotonicInstant?
    private var garbageDue: MonotonicInstant?
    private var forcedReplies: [MTSICSResponse] = []
    private var waiting: (command: MTSICSCommand, deadline: MonotonicInstant)?
    private var commands: [String] = []
    private var splitter = MTSICSLineSplitter()
    private var random: UInt64

    /// A balance with an empty, zeroed pan.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.random = configuration.seed
    }

    // MARK: World coupling

    /// The host's coupling: the delivering device has pushed out `deliveredVolume` in all by `now`; the
    /// vessel holds that times the density (less evaporation). A step of at least `stepThresholdGrams`
    /// disturbs the reading.
    public mutating func update(deliveredVolume: Volume, at now: MonotonicInstant) {
        advance(to: now)
        let grams = max(0, deliveredVolume.millilitres) * configuration.densityGramsPerMillilitre
        if abs(grams - liquidGrams) >= configuration.stepThresholdGrams { lastDisturbance = now }
        liquidGrams = grams
    }

    /// The gross load on the pan now (liquid less evaporation, plus fault loads), grams, without noise.
    public var grossGrams: Double { liquidGrams - evaporatedGrams + extraLoadGrams }

    /// The true net weight (gross − zero), grams, without noise or rounding.
    public var netGrams: Double { grossGrams - zeroOffsetGrams }

    /// Whether a reading at `now` would be stable.
    public func isStable(at now: MonotonicInstant) -> Bool { now >= stableFrom }

    // MARK: LinkEndpoint

    /// The earliest of: the stability check or time-out of a waiting `S`/`Z`, and a pending garbage burst.
    public var nextDeadline: MonotonicInstant? {
        var next = garbageDue
        if let waiting {
            let due = min(waiting.deadline, stableFrom)
            next = next.map { min($0, due) } ?? due
        }
        return next
    }

    /// A driver opened the port.
    public mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        advance(to: now)
        splitter.reset()
    }

    /// The driver closed the port: pending commands are dropped.
    public mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        advance(to: now)
        splitter.reset()
        waiting = nil
        commands.removeAll()
    }

    /// Command bytes from the driver.
    public mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        advance(to: now)
        var lines: [String] = []
        splitter.feed(bytes) { event in
            switch event {
            case let .line(line): lines.append(line)
            case .lineTooLong: lines.append("\u{FFFD}")  // answered ET, as a garbled line would be
            }
        }
        for line in lines {
            effects.emit(.command(line, at: now))
            if let silentUntil, now < silentUntil {
                effects.emit(.ignored(line, reason: "silence fault", at: now))
                continue
            }
            guard commands.count < Self.queueLimit else {
                effects.emit(.ignored(line, reason: "command queue full", at: now))
                continue
            }
            commands.append(line)
        }
        process(at: now, effects: &effects)
    }

    /// Answers a waiting `S`/`Z` when stable or timed out; sends pending garbage.
    public mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        advance(to: now)
        if let due = garbageDue, now >= due {
            garbageDue = nil
            var bytes: [UInt8] = []
            for _ in 0..<12 { bytes.append(UInt8(truncatingIfNeeded: nextRandom() % 95 + 0x21)) }
            bytes += [0xFF, 0x0D, 0x0A]
            effects.send(bytes)
            effects.emit(.garbage(count: bytes.count, at: now))
        }
        if let current = waiting {
            if isStable(at: now) {
                waiting = nil
                answerStable(current.command, at: now, effects: &effects)
            } else if now >= current.deadline {
                waiting = nil
                reply(current.command == .zero ? .zero(immediate: false, .notExecutable) : .weightNotExecutable, at: now, effects: &effects)
            }
        }
        process(at: now, effects: &effects)
    }

    // MARK: Faults

    /// Applies a fault (see `faultHelp`).
    public mutating func inject(_ fault: FaultCommand, at now: MonotonicInstant) throws(FaultError) -> String {
        advance(to: now)
        switch fault.name {
        case "unstable":
            let duration = fault.duration
            unstableUntil = duration.map { now + $0 } ?? Self.forever
            return "balance reading dynamic " + (duration.map { "for \($0.humanReadable)" } ?? "until `stable`")
        case "stable":
            unstableUntil = nil
            lastDisturbance = nil
            return "balance reading stable"
        case "overload":
            setLoad(configuration.capacityGrams + 10, at: now)
            return "balance overloaded (\(Self.text(extraLoadGrams)) g on the pan); `load 0` removes it"
        case "underload":
            setLoad(-(configuration.zeroRangeGrams + 5), at: now)
            return "balance pan taken off (\(Self.text(extraLoadGrams)) g); `load 0` puts it back"
        case "load":
            guard let text = fault.arguments.first, let grams = Double(text), grams.isFinite else {
                throw FaultError("load needs a weight in grams, such as `load 15` or `load -15`")
            }
            setLoad(grams, at: now)
            return "balance load \(Self.text(grams)) g"
        case "silence":
            if fault.arguments.first == "off" {
                silentUntil = nil
                return "balance answering again"
            }
            let duration = fault.duration
            if !fault.arguments.isEmpty, duration == nil {
                throw FaultError("silence takes a duration such as `silence 10s`, or `silence off`")
            }
            silentUntil = duration.map { now + $0 } ?? Self.forever
            return "balance silent " + (duration.map { "for \($0.humanReadable)" } ?? "until `silence off`")
        case "garbage":
            garbageDue = now
            return "balance sends a line of garbage"
        case "logical-error", "transmission-error":
            let count = try Self.count(fault)
            let reply: MTSICSResponse = fault.name == "logical-error" ? .logicalError : .transmissionError
            forcedReplies += Array(repeating: reply, count: count)
            return "balance answers the next \(count) command\(count == 1 ? "" : "s") with \(reply.line)"
        default:
            throw FaultError("unknown balance fault \"\(fault.name)\"; accepted: " + Self.faultHelp.map { String($0.prefix { $0 != " " }) }.joined(separator: ", "))
        }
    }

    // MARK: Internals

    private var stableFrom: MonotonicInstant {
        var from = unstableUntil ?? .origin
        if let lastDisturbance {
            let settled = lastDisturbance + configuration.settlingTime
            if settled > from { from = settled }
        }
        return from
    }

    private static func text(_ grams: Double) -> String { NumberText.format(grams, fractionDigits: 3) }

    private static func count(_ fault: FaultCommand) throws(FaultError) -> Int {
        guard let text = fault.arguments.first else { return 1 }
        guard let count = Int(text), (1...100).contains(count) else {
            throw FaultError("\(fault.name) takes a count of 1 to 100, such as `\(fault.name) 2`")
        }
        return count
    }

    private mutating func setLoad(_ grams: Double, at now: MonotonicInstant) {
        if grams != extraLoadGrams { lastDisturbance = now }
        extraLoadGrams = grams
    }

    private mutating func advance(to now: MonotonicInstant) {
        defer { lastTime = max(lastTime ?? now, now) }
        guard let lastTime, now > lastTime, configuration.evaporationGramsPerHour > 0 else { return }
        let lost = configuration.evaporationGramsPerHour * (now - lastTime).hours
        evaporatedGrams = min(liquidGrams, evaporatedGrams + lost)
    }

    private var isOverloaded: Bool { grossGrams > configuration.capacityGrams }
    private var isUnderloaded: Bool { grossGrams < -configuration.zeroRangeGrams }

    /// Handles queued command lines until one must wait for stability.
    private mutating func process(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        while waiting == nil, !commands.isEmpty {
            let line = commands.removeFirst()
            if line.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value > 0x7E }) {
                reply(.transmissionError, at: now, effects: &effects)
                continue
            }
            if !forcedReplies.isEmpty {
                reply(forcedReplies.removeFirst(), at: now, effects: &effects)
                continue
            }
            guard let command = MTSICSCommand(line: line), !configuration.unsupportedCommands.contains(command) else {
                reply(.syntaxError, at: now, effects: &effects)
                continue
            }
            execute(command, at: now, effects: &effects)
        }
    }

    private mutating func execute(_ command: MTSICSCommand, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        let capacity = MTSICSWeight(value: configuration.capacityGrams, fractionDigits: configuration.fractionDigits).valueText + " g"
        switch command {
        case .level: reply(.information(.level, ["01", "2.20", "2.20", "1.00", "1.50"]), at: now, effects: &effects)
        case .balanceData: reply(.information(.balanceData, [configuration.model, capacity]), at: now, effects: &effects)
        case .softwareVersion: reply(.information(.softwareVersion, [configuration.softwareVersion]), at: now, effects: &effects)
        case .serialNumber: reply(.serialNumber(configuration.serialNumber), at: now, effects: &effects)
        case .softwareIdentification: reply(.information(.softwareIdentification, ["11671158C"]), at: now, effects: &effects)
        case .reset:
            waiting = nil
            commands.removeAll()
            forcedReplies.removeAll()
            reply(.serialNumber(configuration.serialNumber), at: now, effects: &effects)
        case .weighImmediately:
            if isOverloaded { return reply(.weightOverload, at: now, effects: &effects) }
            if isUnderloaded { return reply(.weightUnderload, at: now, effects: &effects) }
            reply(.weight(reading(stable: isStable(at: now))), at: now, effects: &effects)
        case .weighStable:
            if isOverloaded { return reply(.weightOverload, at: now, effects: &effects) }
            if isUnderloaded { return reply(.weightUnderload, at: now, effects: &effects) }
            if isStable(at: now) { return answerStable(.weighStable, at: now, effects: &effects) }
            waiting = (.weighStable, now + configuration.stabilityTimeout)
        case .zero, .zeroImmediately:
            let immediate = command == .zeroImmediately
            if isOverloaded || grossGrams > configuration.zeroRangeGrams {
                return reply(.zero(immediate: immediate, .aboveRange), at: now, effects: &effects)
            }
            if grossGrams < -configuration.zeroRangeGrams {
                return reply(.zero(immediate: immediate, .belowRange), at: now, effects: &effects)
            }
            if immediate {
                let stable = isStable(at: now)
                zeroOffsetGrams = grossGrams
                return reply(.zero(immediate: true, stable ? .doneWhileStable : .doneWhileDynamic), at: now, effects: &effects)
            }
            if isStable(at: now) { return answerStable(.zero, at: now, effects: &effects) }
            waiting = (.zero, now + configuration.stabilityTimeout)
        }
    }

    /// Answers `S` or `Z` now that the reading is stable (rechecking the limits, which may have changed).
    private mutating func answerStable(_ command: MTSICSCommand, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        if command == .zero {
            if grossGrams > configuration.zeroRangeGrams { return reply(.zero(immediate: false, .aboveRange), at: now, effects: &effects) }
            if grossGrams < -configuration.zeroRangeGrams { return reply(.zero(immediate: false, .belowRange), at: now, effects: &effects) }
            zeroOffsetGrams = grossGrams
            return reply(.zero(immediate: false, .done), at: now, effects: &effects)
        }
        if isOverloaded { return reply(.weightOverload, at: now, effects: &effects) }
        if isUnderloaded { return reply(.weightUnderload, at: now, effects: &effects) }
        reply(.weight(reading(stable: true)), at: now, effects: &effects)
    }

    /// The displayed net weight: true net plus noise, rounded to the resolution.
    private mutating func reading(stable: Bool) -> MTSICSWeight {
        let amplitude = stable ? configuration.noiseGrams : configuration.dynamicNoiseGrams
        let unit = Double(nextRandom() >> 11) / Double(1 << 53)  // [0, 1)
        let noisy = netGrams + (unit * 2 - 1) * amplitude
        let scale = pow10(configuration.fractionDigits)
        var value = (noisy * scale).rounded() / scale
        if value == 0 { value = 0 }  // no "-0.0000"
        return MTSICSWeight(value: value, unit: "g", fractionDigits: configuration.fractionDigits,
                            stability: stable ? .stable : .dynamic)
    }

    private func pow10(_ n: Int) -> Double {
        var result = 1.0
        for _ in 0..<n { result *= 10 }
        return result
    }

    private mutating func reply(_ response: MTSICSResponse, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        effects.send(response.bytes)
        effects.emit(.reply(response.line, at: now))
    }

    /// SplitMix64.
    private mutating func nextRandom() -> UInt64 {
        random &+= 0x9E37_79B9_7F4A_7C15
        var z = random
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
