import Foundation
import Testing
@testable import InfusionCore
@testable import Supervisor

/// The shipped library and real validated programs from it.
enum Programs {
    static let libraryURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/infusionctl/Resources/default-library.toml")

    static let library: DrugLibrary? = {
        guard let text = try? String(contentsOf: libraryURL, encoding: .utf8) else { return nil }
        return try? DrugLibrary.load(text: text, source: "default-library.toml")
    }()

    /// A program validated against the shipped library (confirmed with a reason when it needs it).
    static func program(weight: Double = 80, dose: Double = 0.35, concentration: Double = 1, minutes: Int = 40,
                        loading: (dose: Double, minutes: Int)? = nil) throws -> ValidatedProgram {
        let library = try #require(library, "the shipped library should load")
        let request = ProgramRequest(
            profile: "ketamine-chronic-pain", drug: "Ketamine", concentration: .milligramsPerMillilitre(concentration),
            weight: .kilograms(weight), dose: .weightBased(.milligramsPerKilogramPerHour(dose), .milligramsPerKilogramPerHour),
            duration: .seconds(minutes * 60),
            loading: loading.map { LoadingEntry(dose: .milligramsPerKilogram($0.dose), over: .seconds($0.minutes * 60)) })
        let result = ProgramValidator.validate(request, library: library)
        switch result.status {
        case .accepted: return try #require(result.acceptedProgram)
        case .needsConfirmation: return try result.confirm(SoftLimitConfirmation(reason: "test"))
        case .rejected:
            Issue.record("program rejected: \(result.findings.map(\.message))")
            throw ProgramRejected()
        }
    }

    struct ProgramRejected: Error {}
}

/// A stand-in pump for scenario tests (not a device simulator: no wire protocol): it obeys the
/// commands it is given, integrates its volume counter, and can be told to misbehave.
struct FakePump {
    var state: PumpRunState = .stopped
    var rate: VolumeRate = .zero
    var volume: Volume = .zero
    var alarms: PumpAlarms = []
    /// Reported rate = actual × this (a pump that lies about, or mis-delivers, its rate).
    var rateFactor = 1.0
    /// When set, the rate reported while infusing (whatever is delivered).
    var reportedRate: VolumeRate?
    /// Extra volume added to what the counter reports.
    var counterOffset: Volume = .zero
    /// Ignore stop commands (a pump that does not stop).
    var ignoresStops = false
    /// Ignore start commands (a pump that does not start).
    var ignoresStarts = false
    /// Report a volume counter at all.
    var reportsVolume = true
    var lastAdvance: MonotonicInstant = .origin

    mutating func advance(to now: MonotonicInstant) {
        if state == .infusing, now > lastAdvance {
            volume = volume + Volume(canonicalValue: rate.millilitresPerHour * rateFactor * (now - lastAdvance).hours)
        }
        lastAdvance = max(lastAdvance, now)
    }

    func status(at now: MonotonicInstant) -> PumpStatus {
        PumpStatus(receivedAt: now, state: state, rate: state == .infusing ? (reportedRate ?? rate * rateFactor) : .zero,
                   volumeInfused: reportsVolume ? volume + counterOffset : nil, alarms: alarms)
    }

    mutating func apply(_ commands: BoundedBuffer<PumpCommand>) {
        for command in commands {
            switch command {
            case .stop, .secondaryStop:
                if !ignoresStops { state = .stopped }
            case let .start(r, _):
                if !ignoresStarts {
                    state = .infusing
                    rate = r
                }
            case let .setRate(r):
                rate = r
            }
        }
    }
}

/// The patient as the oximeter reports it.
struct FakeOximeter {
    var spo2: Double? = 97
    var pulse: Double? = 72
    var quality: OximetryQuality = []
    /// How old a sample is when it arrives (device time behind arrival).
    var delay: Duration = .zero
    /// Publish a new sample every tick.
    var publishing = true
    var connection: DeviceConnection = .connected
}

/// Drives one `SupervisorChannel` in virtual time with a fake pump and oximeter, recording every
/// decision in an in-memory sink.
struct Scenario {
    var channel: SupervisorChannel
    var now: MonotonicInstant
    var tickLength: Duration
    var pump = FakePump()
    var oximeter = FakeOximeter()
    var pumpReporting = true
    var pumpLink: DeviceConnection = .connected
    var watchdogArmed = true
    var output = StepOutput()
    let sink = InMemoryDecisionSink()
    var inputs = ChannelInputs()
    /// Every command sent, with its time.
    var commands: [(MonotonicInstant, PumpCommand)] = []

    init(program: ValidatedProgram, tick: Duration = .milliseconds(100), pumpHasWatchdog: Bool = true,
         limits: ((SupervisorLimits) -> SupervisorLimits)? = nil) {
        var l = SupervisorLimits(program: program)
        if let limits { l = limits(l) }
        now = MonotonicInstant(nanoseconds: 1_000_000_000_000)
        channel = SupervisorChannel(configuration: ChannelConfiguration(channel: 1, limits: l, pumpHasWatchdog: pumpHasWatchdog), now: now)
        tickLength = tick
        pump.lastAdvance = now
    }

    var mode: ChannelMode { channel.state.mode }
    var limits: SupervisorLimits { channel.limits }
    func alarm(_ cause: AlarmCause) -> AlarmStatus { channel.alarms[cause] }

    /// One tick: time moves on, the devices publish, the supervisor steps, the pump obeys.
    @discardableResult
    mutating func tick(_ action: OperatorAction? = nil) -> StepOutput {
        now = now + tickLength
        pump.advance(to: now)
        if oximeter.publishing {
            inputs.vitals = VitalSample(arrivedAt: now, measuredAt: now - oximeter.delay,
                                        spo2: oximeter.spo2.map { .percent($0) }, pulseRate: oximeter.pulse.map { .beatsPerMinute($0) },
                                        quality: oximeter.quality)
        }
        inputs.oximeter = oximeter.connection
        if pumpReporting { inputs.pump = pump.status(at: now) }
        inputs.pumpLink = pumpLink
        inputs.pumpWatchdogArmed = watchdogArmed
        inputs.action = action
        channel.step(inputs: inputs, now: now, into: &output)
        sink.record(output)
        for c in output.commands { commands.append((now, c)) }
        pump.apply(output.commands)
        return output
    }

    /// Ticks for `duration` (rounded down to whole ticks); returns the outputs.
    @discardableResult
    mutating func run(for duration: Duration) -> [StepOutput] {
        var outputs: [StepOutput] = []
        let n = Int(duration.nanoseconds / tickLength.nanoseconds)
        for _ in 0..<n { outputs.append(tick()) }
        return outputs
    }

    /// Ticks until `condition` holds or `limit` passes; returns the time it took (nil: never).
    @discardableResult
    mutating func run(until condition: (Scenario) -> Bool, limit: Duration = .seconds(600)) -> Duration? {
        let start = now
        while now - start < limit {
            tick()
            if condition(self) { return now - start }
        }
        return nil
    }

    /// Warm-up with good vitals, then an operator start, then one tick for the pump to confirm.
    mutating func startInfusing() {
        tick()
        tick(.start)
        tick()
        #expect(mode == .infusing, "the scenario should be infusing, is \(mode)")
    }

    /// Decisions recorded so far.
    var decisions: [DecisionEvent] { sink.events }

    /// True when the commands sent include a stop at or after `since`.
    func stopSent(since: MonotonicInstant) -> Bool {
        commands.contains { $0.0 >= since && $0.1 == .stop }
    }
}

extension StepOutput {
    var commandList: [PumpCommand] { Array(commands) }
    var alarmCauses: [AlarmCause] { alarmEvents.map(\.cause) }
    func started(_ cause: AlarmCause) -> Bool { alarmEvents.contains { $0.cause == cause && $0.phase == .start } }
}
