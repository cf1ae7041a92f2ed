import Foundation
import InfusionCore
import Records
import Supervisor

/// A snapshot of one session for the operator's display and the `status` event. Built only from what
/// has been COMMITTED to the record store (decisions, alarms, recorded samples and pump statuses), so
/// nothing shown can be lost by a crash. A plain value; any thread.
public struct SessionStatus: Hashable, Sendable {
    /// The channel's mode, as of the last committed decision.
    public var mode: ChannelMode
    /// Time with delivery commanded (the program's position in its schedule), controller time.
    public var elapsed: Duration
    /// Program time left.
    public var remaining: Duration
    /// `elapsed / (elapsed + remaining)`, 0…1.
    public var progress: Double
    /// SpO2 of the last recorded sample (nil: none, or the device reported none).
    public var spo2: Percentage?
    /// Pulse rate of the last recorded sample.
    public var pulseRate: PulseRate?
    /// True when the last recorded sample was valid (no invalidating quality flag).
    public var vitalsValid: Bool
    /// The rate the pump last reported (nil: not reported).
    public var pumpRate: VolumeRate?
    /// The state the pump last reported.
    public var pumpState: PumpRunState?
    /// Volume delivered in this session according to the pump's own counter (resets carried over).
    public var delivered: Volume
    /// The drug mass that volume holds at the program's concentration.
    public var deliveredMass: Mass
    /// Present alarms (active or latched), highest priority first.
    public var alarms: [AlarmSummary]
    /// True while alarm audio is paused by the operator.
    public var audioPaused: Bool

    /// A snapshot; see each property.
    public init(mode: ChannelMode, elapsed: Duration, remaining: Duration, progress: Double, spo2: Percentage?,
                pulseRate: PulseRate?, vitalsValid: Bool, pumpRate: VolumeRate?, pumpState: PumpRunState?, delivered: Volume,
                deliveredMass: Mass, alarms: [AlarmSummary], audioPaused: Bool) {
        self.mode = mode
        self.elapsed = elapsed
        self.remaining = remaining
        self.progress = progress
        self.spo2 = spo2
        self.pulseRate = pulseRate
        self.vitalsValid = vitalsValid
        self.pumpRate = pumpRate
        self.pumpState = pumpState
        self.delivered = delivered
        self.deliveredMass = deliveredMass
        self.alarms = alarms
        self.audioPaused = audioPaused
    }
}

/// One present alarm in a `SessionStatus`. A plain value.
public struct AlarmSummary: Hashable, Sendable {
    /// Which alarm.
    public var cause: AlarmCause
    /// Its current priority.
    public var priority: AlarmPriority
    /// Active or latched.
    public var state: AlarmConditionState
    /// True once the operator acknowledged it.
    public var acknowledged: Bool
    /// Short title ("SpO2 low").
    public var title: String { AlarmText.title(cause) }

    /// A summary; see each property.
    public init(cause: AlarmCause, priority: AlarmPriority, state: AlarmConditionState, acknowledged: Bool) {
        self.cause = cause
        self.priority = priority
        self.state = state
        self.acknowledged = acknowledged
    }
}

/// The pump's own infused-volume counter followed through one session: the first value seen is the base;
/// a counter that goes backwards (pump reset or cleared) is carried over, as the supervisor does. Pure.
public struct PumpVolumeCounter: Hashable, Sendable {
    private var base: Volume?
    private var last: Volume?
    private var carried: Volume = .zero

    /// A counter that has seen nothing.
    public init() {}

    /// Takes the counter's next reading.
    public mutating func observe(_ volume: Volume) {
        if base == nil { base = volume }
        if let previous = last, volume < previous, let start = base {
            carried = carried + (previous - start)
            base = .zero
        }
        last = volume
    }

    /// Volume delivered since the first reading (zero before any).
    public var delivered: Volume {
        guard let base, let last else { return .zero }
        return max(.zero, carried + (last - base))
    }
}

/// Which vital-sign samples to record (docs/records.md): one a second, plus every abnormal one (invalid,
/// missing values, or outside the profile's warning bands). Routine samples are due on a 1-second grid
/// with half an interval of tolerance either way, so a 1 Hz oximeter whose frames jitter is still
/// recorded whole, and a 75 Hz one yields one sample a second. Pure.
public struct SampleSelection: Sendable {
    /// The spacing of routine samples.
    public let interval: Duration
    private let limits: SupervisorLimits
    private var nextDue: MonotonicInstant?

    /// A selection for the profile's `limits`, keeping a routine sample every `interval`.
    public init(limits: SupervisorLimits, interval: Duration = .seconds(1)) {
        self.limits = limits
        self.interval = interval
    }

    /// True when `sample` should be recorded; a routine one moves the grid on.
    public mutating func shouldRecord(_ sample: VitalSample) -> Bool {
        let t = sample.measuredAt
        let half = interval / 2
        if let due = nextDue, t < due - half, due - t <= interval * 2 {
            return isAbnormal(sample)
        }
        if let due = nextDue, t <= due + half, t >= due - half {
            nextDue = due + interval
        } else {
            nextDue = t + interval  // first sample, a gap, or a clock that went back: start a new grid
        }
        return true
    }

    /// Invalid, a value missing, SpO2 at or below the warning level, or pulse outside the warning band.
    public func isAbnormal(_ sample: VitalSample) -> Bool {
        guard sample.isValid, let spo2 = sample.spo2, let pulse = sample.pulseRate else { return true }
        return spo2 <= limits.spo2WarningAtOrBelow || pulse > limits.pulseWarningAbove || pulse < limits.pulsePauseBelow
    }
}

/// Which pump statuses to record: every change of state, rate or alarms, and otherwise one every
/// `interval` (so the volume counter is followed). Pure.
public struct PumpStatusSelection: Sendable {
    /// The spacing of routine statuses.
    public let interval: Duration
    private var lastRecorded: PumpStatus?

    /// A selection keeping a routine status every `interval`.
    public init(interval: Duration = .seconds(1)) { self.interval = interval }

    /// True when `status` should be recorded; remembers it when so.
    public mutating func shouldRecord(_ status: PumpStatus) -> Bool {
        if let last = lastRecorded {
            guard status.receivedAt != last.receivedAt else { return false }
            let changed = status.state != last.state || status.rate != last.rate || status.alarms != last.alarms
            guard changed || status.receivedAt - last.receivedAt >= interval else { return false }
        }
        lastRecorded = status
        return true
    }
}

/// The session's committed view of the supervisor: it turns decisions into records and events, and keeps
/// what the display shows (mode, schedule position, alarms, audio pause, last recorded sample and pump
/// status, delivered volume), updated only after the records are committed. Pure: time comes in as
/// arguments. Owned by one thread at a time (the session keeps it behind a lock).
public struct SessionTracker: Sendable {
    /// The session's start on the controller clock.
    public let startedAt: MonotonicInstant
    /// The program's concentration (for the delivered mass).
    public let concentration: Concentration
    /// Loading plus maintenance time.
    public let programDuration: Duration
    /// The channel label written on records ("1").
    public let channel: String

    /// The mode as of the last committed decision.
    public private(set) var mode: ChannelMode = .idle
    /// True when the last thing that ended delivery was the supervisor (a rule's stop, or a fault), and
    /// delivery has not started again since: an operator's end then counts as "ended after a supervisor stop".
    public private(set) var stoppedBySupervisorSinceDelivery = false
    private var deliveringSince: MonotonicInstant?
    private var accumulated: Duration = .zero
    private var alarms: [AlarmCause: AlarmSummary] = [:]
    private var audioPausedUntil: MonotonicInstant?
    private var lastSample: VitalSample?
    private var lastPumpStatus: PumpStatus?
    private var counter = PumpVolumeCounter()

    /// A tracker for a session that started at `startedAt` with `program`.
    public init(program: ValidatedProgram, startedAt: MonotonicInstant, channel: String = "1") {
        self.startedAt = startedAt
        concentration = program.concentration
        programDuration = program.calculation.totalDuration
        self.channel = channel
    }

    // MARK: Records

    /// The record for a decision: alarm changes as alarm events (raised, changed, cleared) with their
    /// priority; everything else as a supervisor decision; both with the rule's requirement id and the
    /// inputs the decision saw in the details. `answering` names the operator action it answers, if any.
    public func record(for decision: DecisionEvent, wallClock: Date, answering: PendingOperatorAction? = nil) -> NewEvent {
        var details = Self.details(decision)
        if let answering {
            details["action"] = .string(SessionNames.action(answering.action))
            details["request_record"] = .number(Double(answering.requestRecord))
        }
        let message = DecisionText.message(decision)
        if case let .alarm(alarm) = decision.kind {
            let kind: EventKind
            switch alarm.phase {
            case .start: kind = .alarmRaised
            case .end: kind = .alarmCleared
            case .update, .escalate, .latch, .acknowledged: kind = .alarmChanged
            }
            var event = NewEvent.alarm(kind, message, priority: alarm.priority, ruleID: "\(decision.rule.requirement)",
                                       monotonic: decision.at, wallClock: wallClock, channel: channel, details: .object(details))
            event.operatorID = answering?.operatorID
            event.reason = answering?.reason
            return event
        }
        return NewEvent(kind: .supervisorDecision, monotonic: decision.at, wallClock: wallClock, message: message,
                        channel: channel, ruleID: "\(decision.rule.requirement)", operatorID: answering?.operatorID,
                        reason: answering?.reason, details: .object(details))
    }

    /// The event to emit for a committed decision.
    public func notice(for decision: DecisionEvent, record: Int64) -> SessionEvent.Body {
        if case let .alarm(alarm) = decision.kind {
            return .alarm(AlarmNotice(record: record, cause: alarm.cause, phase: alarm.phase, priority: alarm.priority,
                                      state: alarm.state, message: AlarmText.message(alarm),
                                      action: AlarmText.operatorAction(for: alarm.cause)))
        }
        return .decision(DecisionNotice(record: record, rule: decision.rule, kind: SessionNames.kind(decision.kind),
                                        modeBefore: decision.modeBefore, modeAfter: decision.modeAfter,
                                        command: decision.command.map(SessionNames.command), message: DecisionText.message(decision)))
    }

    // MARK: Committed state

    /// Takes a committed decision into the displayed state: mode, schedule position, alarms, audio pause.
    public mutating func apply(_ decision: DecisionEvent) {
        let wasDelivering = mode.commandsDelivery
        mode = decision.modeAfter
        if decision.modeAfter.commandsDelivery, !wasDelivering {
            deliveringSince = decision.at
        } else if !decision.modeAfter.commandsDelivery, wasDelivering, let since = deliveringSince {
            accumulated += max(.zero, decision.at - since)
            deliveringSince = nil
        }
        if decision.modeAfter == .stoppedBySupervisor || decision.modeAfter == .fault {
            stoppedBySupervisorSinceDelivery = true
        } else if decision.modeAfter.commandsDelivery {
            stoppedBySupervisorSinceDelivery = false
        }
        switch decision.kind {
        case .alarm(let alarm):
            if alarm.state == .inactive {
                alarms[alarm.cause] = nil
            } else {
                let acknowledged = alarm.phase == .acknowledged || (alarm.phase != .start && alarm.phase != .escalate && (alarms[alarm.cause]?.acknowledged ?? false))
                alarms[alarm.cause] = AlarmSummary(cause: alarm.cause, priority: alarm.priority, state: alarm.state, acknowledged: acknowledged)
            }
        case .audio(let change):
            switch change {
            case .paused(let until): audioPausedUntil = until
            case .expired, .resumedByNewAlarm: audioPausedUntil = nil
            }
        default:
            break
        }
    }

    /// Takes committed samples and pump statuses into the displayed state.
    public mutating func noteRecorded(samples: [VitalSample], pumpStatuses: [PumpStatus]) {
        if let latest = samples.max(by: { $0.measuredAt < $1.measuredAt }), latest.measuredAt >= (lastSample?.measuredAt ?? .origin) {
            lastSample = latest
        }
        for status in pumpStatuses {
            lastPumpStatus = status
            if let volume = status.volumeInfused { counter.observe(volume) }
        }
    }

    /// Volume delivered in the session by the pump's counter.
    public var delivered: Volume { counter.delivered }

    /// The snapshot at `now` (controller time).
    public func status(at now: MonotonicInstant) -> SessionStatus {
        var elapsed = accumulated
        if let since = deliveringSince, now > since { elapsed += now - since }
        if mode == .complete || elapsed > programDuration { elapsed = programDuration }
        let remaining = max(.zero, programDuration - elapsed)
        let progress = programDuration > .zero ? min(1, max(0, elapsed.seconds / programDuration.seconds)) : 1
        let delivered = counter.delivered
        let present = alarms.values.sorted { lhs, rhs in
            lhs.priority != rhs.priority ? lhs.priority > rhs.priority : lhs.cause.rawValue < rhs.cause.rawValue
        }
        return SessionStatus(
            mode: mode, elapsed: elapsed, remaining: remaining, progress: progress, spo2: lastSample?.spo2,
            pulseRate: lastSample?.pulseRate, vitalsValid: lastSample?.isValid ?? false, pumpRate: lastPumpStatus?.rate,
            pumpState: lastPumpStatus?.state, delivered: delivered,
            deliveredMass: Dosing.deliveredDose(volume: delivered, concentration: concentration), alarms: present,
            audioPaused: audioPausedUntil.map { now < $0 } ?? false)
    }

    /// The decision's inputs and outcome as JSON details for its record.
    static func details(_ decision: DecisionEvent) -> [String: JSONValue] {
        let inputs = decision.inputs
        func number(_ value: Double?) -> JSONValue {
            guard let value, value.isFinite else { return .null }
            return .number(value)
        }
        var details: [String: JSONValue] = [
            "rule": .string(SessionNames.rule(decision.rule)),
            "kind": .string(SessionNames.kind(decision.kind)),
            "mode_before": .string(SessionNames.mode(decision.modeBefore)),
            "mode_after": .string(SessionNames.mode(decision.modeAfter)),
            "command": decision.command.map { .string(SessionNames.command($0)) } ?? .null,
            "spo2": number(inputs.spo2?.percent),
            "pulse_rate": number(inputs.pulseRate?.beatsPerMinute),
            "quality": .string(inputs.quality.names.joined(separator: ", ")),
            "oximeter": .string("\(inputs.oximeter)"),
            "pump_state": .string(inputs.pumpState.description),
            "pump_rate_ml_h": number(inputs.pumpRate?.millilitresPerHour),
            "pump_volume_ml": number(inputs.pumpVolume?.millilitres),
            "pump_link": .string("\(inputs.pumpLink)"),
            "commanded_rate_ml_h": number(inputs.commandedRate.millilitresPerHour),
            "delivered_ml": number(inputs.deliveredVolume.millilitres),
        ]
        if case let .alarm(alarm) = decision.kind {
            details["cause"] = .string(SessionNames.cause(alarm.cause))
            details["phase"] = .string(alarm.phase.description)
            details["priority"] = .string(alarm.priority.description)
            details["state"] = .string(alarm.state.description)
        }
        return details
    }
}

/// An operator action committed and handed to the supervisor, waiting for its answer. A plain value.
public struct PendingOperatorAction: Hashable, Sendable {
    /// The session's ticket for it.
    public var ticket: Int
    /// The action.
    public var action: OperatorAction
    /// Who.
    public var operatorID: String
    /// Why, as given.
    public var reason: String?
    /// The committed request's sequence number.
    public var requestRecord: Int64
    /// The word the operator used ("resume" may be submitted as a start after an acknowledged stop).
    public var label: String

    /// A pending action; see each property.
    public init(ticket: Int, action: OperatorAction, operatorID: String, reason: String?, requestRecord: Int64, label: String) {
        self.ticket = ticket
        self.action = action
        self.operatorID = operatorID
        self.reason = reason
        self.requestRecord = requestRecord
        self.label = label
    }
}

/// The supervisor's answer to one operator action. A plain value.
public struct OperatorActionAnswer: Hashable, Sendable {
    /// True when applied.
    public var accepted: Bool
    /// What happened, for people.
    public var message: String
    /// The committed answer's sequence number.
    public var record: Int64

    /// An answer; see each property.
    public init(accepted: Bool, message: String, record: Int64) {
        self.accepted = accepted
        self.message = message
        self.record = record
    }
}

/// Matches supervisor decisions to the operator actions waiting for an answer: the supervisor answers
/// every action, in the order submitted, with exactly one of `actionApplied`, `actionRefused`,
/// `startRefused`, or (for a start or resume that passed its checks) `startCommanded`. Pure.
public enum OperatorAnswers {
    /// The answer this decision gives, if it is one: accepted, and which actions it can answer.
    public static func answer(_ decision: DecisionEvent) -> (accepted: Bool, message: String, matches: (OperatorAction) -> Bool)? {
        switch decision.kind {
        case .actionApplied(let action):
            return (true, DecisionText.message(decision), { $0 == action })
        case let .actionRefused(action, refusal):
            return (false, AlarmText.reason(refusal), { $0 == action })
        case .startRefused(let refusal):
            return (false, "start refused: " + AlarmText.reason(refusal), { $0 == .start || $0 == .resume })
        case .startCommanded where decision.rule == .startChecks:
            return (true, DecisionText.message(decision), { $0 == .start || $0 == .resume })
        default:
            return nil
        }
    }

    /// Takes the first pending action `decision` answers out of `pending`, with the actions submitted
    /// before it that got no answer (the supervisor answers in order, so those never will).
    public static func match(_ decision: DecisionEvent, in pending: inout [PendingOperatorAction])
        -> (answered: PendingOperatorAction, accepted: Bool, message: String, unanswered: [PendingOperatorAction])? {
        guard let answer = answer(decision), let index = pending.firstIndex(where: { answer.matches($0.action) }) else { return nil }
        let unanswered = Array(pending[..<index])
        let answered = pending[index]
        pending.removeSubrange(...index)
        return (answered, answer.accepted, answer.message, unanswered)
    }
}

/// Sentences for people about supervisor decisions (records and the operator's display). Pure.
public enum DecisionText {
    /// "stop commanded (SpO2 pause, R-MON-01); infusing → stopped by supervisor".
    public static func message(_ decision: DecisionEvent) -> String {
        let what: String
        switch decision.kind {
        case .stopCommanded: what = "stop commanded (\(ruleText(decision.rule)))"
        case .stopRepeated(let attempt): what = "stop not yet confirmed: sent again (attempt \(attempt))"
        case .secondaryStopEngaged: what = "stop still not confirmed: secondary stop engaged"
        case .stopConfirmed(let after): what = "the pump confirmed the stop after \(after.humanReadable)"
        case .startCommanded:
            what = decision.command.map { "start checks passed: \(SessionNames.command($0))" } ?? "start commanded"
        case .deliveryConfirmed: what = "the pump confirmed delivery\(decision.inputs.pumpRate.map { " at \($0)" } ?? "")"
        case .rateChanged: what = decision.command.map { "rate changed: \(SessionNames.command($0))" } ?? "rate changed"
        case .modeChanged: what = "mode changed (\(ruleText(decision.rule)))"
        case .phaseChanged(let phase): what = "program phase: \(phase)"
        case .alarm(let alarm): what = AlarmText.message(alarm)
        case .audio(let change):
            switch change {
            case .paused(let until): what = "alarm audio paused until \(until)"
            case .expired: what = "alarm audio pause ended"
            case .resumedByNewAlarm: what = "alarm audio resumed by a new high-priority alarm"
            }
        case .sampleIgnored(let rejection): what = "oximeter sample ignored (\(rejection)): counts as no data"
        case let .counterReset(before, after):
            what = "pump volume counter went from \(before.formatted(fractionDigits: 3)) to \(after.formatted(fractionDigits: 3)); delivered volume carried over"
        case .actionApplied(let action): what = "operator action applied: \(SessionNames.action(action))"
        case .startRefused(let refusal): what = "start refused: \(AlarmText.reason(refusal))"
        case let .actionRefused(action, refusal): what = "operator action \(SessionNames.action(action)) refused: \(AlarmText.reason(refusal))"
        case .rateRefused(let rate): what = "rate \(rate) refused by the last-resort guard"
        }
        guard decision.modeBefore != decision.modeAfter else { return what }
        return "\(what); \(decision.modeBefore) → \(decision.modeAfter)"
    }

    private static func ruleText(_ rule: SupervisorRule) -> String {
        let name = SessionNames.rule(rule).replacingOccurrences(of: "-", with: " ")
        let requirement = "\(rule.requirement)"
        return name == requirement ? name : "\(name), \(requirement)"
    }
}
