import Foundation
import InfusionCore
import Records
import Supervisor

/// One event of a running session, in the order the session emits it (docs/run-contract.md "--json-events").
/// Events that record something (decisions, alarms, operator actions, warnings) are emitted only AFTER
/// their record is committed to the record store; `record` then holds the committed event's sequence
/// number in the session. A plain value; any thread.
public struct SessionEvent: Hashable, Sendable {
    /// Controller time since the session started (the session's `MonotonicClock`; zero for recovery
    /// events, which happen before any session starts).
    public var time: Duration
    /// Wall-clock time, for people and logs only.
    public var wallClock: Date
    /// What happened.
    public var body: Body

    /// An event; see each property.
    public init(time: Duration, wallClock: Date, body: Body) {
        self.time = time
        self.wallClock = wallClock
        self.body = body
    }

    /// The kinds of event, one per JSON `type`.
    public enum Body: Hashable, Sendable {
        /// `session-started`: the session row and its "session started" event are committed.
        case sessionStarted(SessionStartedInfo)
        /// `status`: a snapshot of committed state (at least once per real second and on every mode change).
        case status(SessionStatus)
        /// `alarm`: an alarm changed (committed).
        case alarm(AlarmNotice)
        /// `decision`: a supervisor decision other than an alarm change (committed).
        case decision(DecisionNotice)
        /// `operator-action`: the answer to an operator action, or a refused input line (committed).
        case operatorAction(OperatorActionNotice)
        /// `recovered`: an interrupted session was found and recovered; nothing was started.
        case recovered(RecoveryReport)
        /// `warning`: something the operator must know before or during the session (committed as a note).
        case warning(WarningNotice)
        /// `session-ended`: the session's end is committed; the process exits with `exit_code`.
        case sessionEnded(SessionEndNotice)
    }

    /// The JSON `type` ("session-started", "status", …).
    public var type: String {
        switch body {
        case .sessionStarted: "session-started"
        case .status: "status"
        case .alarm: "alarm"
        case .decision: "decision"
        case .operatorAction: "operator-action"
        case .recovered: "recovered"
        case .warning: "warning"
        case .sessionEnded: "session-ended"
        }
    }

    /// The committed record's sequence number in the session, for events that record something.
    public var record: Int64? {
        switch body {
        case .alarm(let notice): notice.record
        case .decision(let notice): notice.record
        case .operatorAction(let notice): notice.record
        case .warning(let notice): notice.record
        case .sessionStarted, .status, .recovered, .sessionEnded: nil
        }
    }
}

/// What `session-started` carries. A plain value.
public struct SessionStartedInfo: Hashable, Sendable {
    /// The session's id in the record store.
    public var session: SessionID
    /// Patient id.
    public var patient: String
    /// Operator id.
    public var operatorID: String
    /// Drug name.
    public var drug: String
    /// The dose as entered ("0.35 mg/kg/h").
    public var dose: String
    /// The validated maintenance pump rate.
    public var rate: VolumeRate
    /// The whole program's duration (loading plus maintenance).
    public var duration: Duration
    /// The pump, for people ("New Era (newera) on /dev/pts/3").
    public var pump: String
    /// The oximeter, for people.
    public var oximeter: String

    /// Session start information; see each property.
    public init(session: SessionID, patient: String, operatorID: String, drug: String, dose: String, rate: VolumeRate,
                duration: Duration, pump: String, oximeter: String) {
        self.session = session
        self.patient = patient
        self.operatorID = operatorID
        self.drug = drug
        self.dose = dose
        self.rate = rate
        self.duration = duration
        self.pump = pump
        self.oximeter = oximeter
    }
}

/// An alarm change, as committed. A plain value.
public struct AlarmNotice: Hashable, Sendable {
    /// The committed event's sequence number.
    public var record: Int64
    /// The alarm's cause.
    public var cause: AlarmCause
    /// What happened to it (start, latch, end, acknowledged…).
    public var phase: AlarmEventPhase
    /// Its priority after the change.
    public var priority: AlarmPriority
    /// Its condition state after the change.
    public var state: AlarmConditionState
    /// One line for people (`AlarmText.message`).
    public var message: String
    /// What the operator should do (`AlarmText.operatorAction`).
    public var action: String

    /// A notice; see each property.
    public init(record: Int64, cause: AlarmCause, phase: AlarmEventPhase, priority: AlarmPriority, state: AlarmConditionState, message: String, action: String) {
        self.record = record
        self.cause = cause
        self.phase = phase
        self.priority = priority
        self.state = state
        self.message = message
        self.action = action
    }
}

/// A supervisor decision other than an alarm change, as committed. A plain value.
public struct DecisionNotice: Hashable, Sendable {
    /// The committed event's sequence number.
    public var record: Int64
    /// The rule that decided.
    public var rule: SupervisorRule
    /// What the decision did, as text ("stop-commanded", "start-refused"…).
    public var kind: String
    /// The mode before.
    public var modeBefore: ChannelMode
    /// The mode after.
    public var modeAfter: ChannelMode
    /// The pump command sent, as text, if any.
    public var command: String?
    /// One line for people.
    public var message: String

    /// A notice; see each property.
    public init(record: Int64, rule: SupervisorRule, kind: String, modeBefore: ChannelMode, modeAfter: ChannelMode, command: String?, message: String) {
        self.record = record
        self.rule = rule
        self.kind = kind
        self.modeBefore = modeBefore
        self.modeAfter = modeAfter
        self.command = command
        self.message = message
    }
}

/// The answer to an operator action (or a refused input), as committed. A plain value.
public struct OperatorActionNotice: Hashable, Sendable {
    /// The committed event's sequence number (the supervisor's answer, or the refusal note).
    public var record: Int64
    /// The action as the operator gave it ("pause", "start", "ack"…).
    public var action: String
    /// Who.
    public var operatorID: String
    /// Why, as given (nil: no reason given).
    public var reason: String?
    /// True when the supervisor applied it.
    public var accepted: Bool
    /// What happened, for people.
    public var message: String

    /// A notice; see each property.
    public init(record: Int64, action: String, operatorID: String, reason: String?, accepted: Bool, message: String) {
        self.record = record
        self.action = action
        self.operatorID = operatorID
        self.reason = reason
        self.accepted = accepted
        self.message = message
    }
}

/// A warning for the operator, as committed (a `note` event). A plain value.
public struct WarningNotice: Hashable, Sendable {
    /// The committed event's sequence number.
    public var record: Int64
    /// What is wrong.
    public var message: String
    /// What to do.
    public var action: String

    /// A notice; see each property.
    public init(record: Int64, message: String, action: String) {
        self.record = record
        self.message = message
        self.action = action
    }
}

/// What the recovery of one interrupted session found and did. A plain value.
public struct RecoveryReport: Hashable, Sendable {
    /// The interrupted session.
    public var session: SessionID
    /// The state the pump reported (nil: it did not answer).
    public var pumpState: PumpRunState?
    /// The pump's own infused-volume counter, when it reported one.
    public var volumeInfused: Volume?
    /// True when the recovery stopped the pump (it reported delivery, or could not be read) and the pump
    /// confirmed the stop.
    public var stoppedByController: Bool
    /// What happened and what to do next, for people.
    public var message: String

    /// A report; see each property.
    public init(session: SessionID, pumpState: PumpRunState?, volumeInfused: Volume?, stoppedByController: Bool, message: String) {
        self.session = session
        self.pumpState = pumpState
        self.volumeInfused = volumeInfused
        self.stoppedByController = stoppedByController
        self.message = message
    }
}

/// How a session ended, with the process exit code docs/run-contract.md gives it.
public enum SessionOutcome: String, Hashable, Sendable, CaseIterable {
    /// The program ran to its end (exit 0).
    case completed
    /// The operator ended it early (exit 4).
    case stoppedByOperator = "stopped-by-operator"
    /// It ended after a supervisor stop or a device fault, without completing (exit 5).
    case endedAfterSupervisorStop = "ended-after-supervisor-stop"
    /// The devices were unavailable or the start checks never passed (exit 6).
    case devicesUnavailable = "devices-unavailable"
    /// An internal or record-store error (exit 1).
    case error

    /// The process exit code (docs/run-contract.md "Exit codes").
    public var exitCode: Int32 {
        switch self {
        case .completed: 0
        case .stoppedByOperator: 4
        case .endedAfterSupervisorStop: 5
        case .devicesUnavailable: 6
        case .error: 1
        }
    }
}

/// What `session-ended` carries. A plain value.
public struct SessionEndNotice: Hashable, Sendable {
    /// The session.
    public var session: SessionID
    /// How it ended.
    public var outcome: SessionOutcome
    /// Volume delivered according to the pump's own counter.
    public var delivered: Volume
    /// The drug mass that volume holds.
    public var deliveredMass: Mass
    /// The session end's committed sequence number (nil when the end could not be recorded).
    public var record: Int64?
    /// One line for people.
    public var message: String

    /// A notice; see each property.
    public init(session: SessionID, outcome: SessionOutcome, delivered: Volume, deliveredMass: Mass, record: Int64?, message: String) {
        self.session = session
        self.outcome = outcome
        self.delivered = delivered
        self.deliveredMass = deliveredMass
        self.record = record
        self.message = message
    }
}

// MARK: - JSON (docs/run-contract.md)

extension SessionEvent {
    /// The event as the JSON object of docs/run-contract.md: `type`, `t` (seconds of controller time since the
    /// session started), `wall` (ISO 8601 UTC) and the type's fields in snake_case; absent values are
    /// `null`; numbers are plain JSON numbers (a non-finite number becomes `null`). Recording events also
    /// carry `record`, the committed event's sequence number. Pure.
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "type": .string(type),
            "t": Self.number(time.seconds),
            "wall": .string(Self.iso8601(wallClock)),
        ]
        switch body {
        case .sessionStarted(let info):
            fields["session"] = .number(Double(info.session.rawValue))
            fields["patient"] = .string(info.patient)
            fields["operator"] = .string(info.operatorID)
            fields["drug"] = .string(info.drug)
            fields["dose"] = .string(info.dose)
            fields["rate_ml_h"] = Self.number(info.rate.millilitresPerHour)
            fields["duration_s"] = Self.number(info.duration.seconds)
            fields["pump"] = .string(info.pump)
            fields["oximeter"] = .string(info.oximeter)
        case .status(let status):
            fields["mode"] = .string(SessionNames.mode(status.mode))
            fields["elapsed_s"] = Self.number(status.elapsed.seconds)
            fields["remaining_s"] = Self.number(status.remaining.seconds)
            fields["progress"] = Self.number(status.progress)
            fields["spo2"] = Self.number(status.spo2?.percent)
            fields["pulse_rate"] = Self.number(status.pulseRate?.beatsPerMinute)
            fields["rate_ml_h"] = Self.number(status.pumpRate?.millilitresPerHour)
            fields["pump_state"] = status.pumpState.map { .string($0.description) } ?? .null
            fields["delivered_ml"] = Self.number(status.delivered.millilitres)
            fields["delivered_mg"] = Self.number(status.deliveredMass.milligrams)
            fields["alarms"] = .array(status.alarms.map { alarm in
                .object(["cause": .string(SessionNames.cause(alarm.cause)), "priority": .string(alarm.priority.description),
                         "state": .string(alarm.state.description), "acknowledged": .bool(alarm.acknowledged)])
            })
            fields["audio_paused"] = .bool(status.audioPaused)
        case .alarm(let notice):
            fields["record"] = .number(Double(notice.record))
            fields["cause"] = .string(SessionNames.cause(notice.cause))
            fields["phase"] = .string(notice.phase.description)
            fields["priority"] = .string(notice.priority.description)
            fields["state"] = .string(notice.state.description)
            fields["message"] = .string(notice.message)
            fields["action"] = .string(notice.action)
        case .decision(let notice):
            fields["record"] = .number(Double(notice.record))
            fields["rule"] = .string(SessionNames.rule(notice.rule))
            fields["kind"] = .string(notice.kind)
            fields["mode_before"] = .string(SessionNames.mode(notice.modeBefore))
            fields["mode_after"] = .string(SessionNames.mode(notice.modeAfter))
            fields["command"] = notice.command.map(JSONValue.string) ?? .null
            fields["message"] = .string(notice.message)
        case .operatorAction(let notice):
            fields["record"] = .number(Double(notice.record))
            fields["action"] = .string(notice.action)
            fields["operator"] = .string(notice.operatorID)
            fields["reason"] = notice.reason.map(JSONValue.string) ?? .null
            fields["accepted"] = .bool(notice.accepted)
            fields["message"] = .string(notice.message)
        case .recovered(let report):
            fields["session"] = .number(Double(report.session.rawValue))
            fields["pump_state"] = report.pumpState.map { .string($0.description) } ?? .null
            fields["volume_ml"] = Self.number(report.volumeInfused?.millilitres)
            fields["stopped_by_controller"] = .bool(report.stoppedByController)
            fields["message"] = .string(report.message)
        case .warning(let notice):
            fields["record"] = .number(Double(notice.record))
            fields["message"] = .string(notice.message)
            fields["action"] = .string(notice.action)
        case .sessionEnded(let notice):
            fields["session"] = .number(Double(notice.session.rawValue))
            fields["outcome"] = .string(notice.outcome.rawValue)
            fields["exit_code"] = .number(Double(notice.outcome.exitCode))
            fields["delivered_ml"] = Self.number(notice.delivered.millilitres)
            fields["delivered_mg"] = Self.number(notice.deliveredMass.milligrams)
            fields["record"] = notice.record.map { .number(Double($0)) } ?? .null
            fields["message"] = .string(notice.message)
        }
        return .object(fields)
    }

    /// The event as one line of JSON (no newline; keys sorted). Pure.
    public var jsonLine: String { json.jsonText ?? #"{"type":"\#(type)"}"# }

    private static func number(_ value: Double?) -> JSONValue {
        guard let value, value.isFinite else { return .null }
        return .number(value)
    }

    private static func iso8601(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        let whole = floor(seconds)
        let millis = Int(((seconds - whole) * 1000).rounded(.down))
        var time = time_t(whole)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }
}

/// The names the session uses in JSON and records for supervisor values: kebab-case, stable. Pure.
public enum SessionNames {
    /// "idle", "checked", "infusing", "paused-by-operator", "stopped-by-supervisor", "acknowledged",
    /// "complete", "stopped-by-operator", "fault".
    public static func mode(_ mode: ChannelMode) -> String {
        switch mode {
        case .idle: "idle"
        case .checked: "checked"
        case .infusing: "infusing"
        case .pausedByOperator: "paused-by-operator"
        case .stoppedBySupervisor: "stopped-by-supervisor"
        case .acknowledged: "acknowledged"
        case .complete: "complete"
        case .stoppedByOperator: "stopped-by-operator"
        case .fault: "fault"
        }
    }

    /// "spo2-low", "monitoring-lost"…
    public static func cause(_ cause: AlarmCause) -> String { kebab(String(describing: cause)) }

    /// "spo2-pause", "start-checks"…
    public static func rule(_ rule: SupervisorRule) -> String { kebab(String(describing: rule)) }

    /// "start", "pause", "resume", "stop", "acknowledge", "audio-pause", "titrate".
    public static func action(_ action: OperatorAction) -> String {
        switch action {
        case .start: "start"
        case .pause: "pause"
        case .resume: "resume"
        case .stop: "stop"
        case .acknowledge: "acknowledge"
        case .audioPause: "audio-pause"
        case .titrate: "titrate"
        }
    }

    /// "start 28 mL/h (limit 20 mL)", "set rate 28 mL/h", "stop", "secondary stop".
    public static func command(_ command: PumpCommand) -> String {
        switch command {
        case let .start(rate, volumeLimit): "start \(rate) (volume limit \(volumeLimit.formatted(fractionDigits: 3)))"
        case .setRate(let rate): "set rate \(rate)"
        case .stop: "stop"
        case .secondaryStop: "secondary stop"
        }
    }

    /// "stop-commanded", "start-refused"…
    public static func kind(_ kind: DecisionKind) -> String {
        switch kind {
        case .stopCommanded: "stop-commanded"
        case .stopRepeated: "stop-repeated"
        case .secondaryStopEngaged: "secondary-stop-engaged"
        case .stopConfirmed: "stop-confirmed"
        case .startCommanded: "start-commanded"
        case .deliveryConfirmed: "delivery-confirmed"
        case .rateChanged: "rate-changed"
        case .modeChanged: "mode-changed"
        case .phaseChanged: "phase-changed"
        case .alarm: "alarm"
        case .audio: "audio"
        case .sampleIgnored: "sample-ignored"
        case .counterReset: "counter-reset"
        case .actionApplied: "action-applied"
        case .startRefused: "start-refused"
        case .actionRefused: "action-refused"
        case .rateRefused: "rate-refused"
        }
    }

    /// Inserts a hyphen before each capital and lowercases: "spo2ImmediatePause" → "spo2-immediate-pause".
    static func kebab(_ name: String) -> String {
        var result = ""
        for character in name {
            if character.isUppercase {
                if !result.isEmpty { result.append("-") }
                result.append(contentsOf: character.lowercased())
            } else {
                result.append(character)
            }
        }
        return result
    }
}
