import Foundation
import InfusionCore

/// The identity of one recorded session: the database's row id, assigned by `RecordStore.startSession`.
/// Shown to people as a plain number ("session 12"). A plain value; any thread.
public struct SessionID: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The row id in the `sessions` table.
    public let rawValue: Int64

    /// Wraps a row id (no check that such a session exists: queries throw `unknownSession` when it doesn't).
    public init(rawValue: Int64) { self.rawValue = rawValue }

    /// Parses a session id as typed on a command line ("12"); nil for anything but a positive integer.
    public init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let value = Int64(trimmed), value > 0 else { return nil }
        rawValue = value
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { String(rawValue) }
}

/// Where a session stands. Stored as text; a CHECK constraint in the schema allows only these values.
public enum SessionState: String, Hashable, Sendable, Codable, CaseIterable {
    /// Started and not ended. After a crash this is what the restarted process finds.
    case running
    /// Ended normally: the program ran to its end.
    case completed
    /// Ended early on purpose: by the operator or after a safety stop that was not restarted.
    case stopped
    /// The controller process ended without ending the session (crash, `kill -9`, power loss), found and
    /// marked by the recovery path on restart.
    case interrupted
}

/// What an event records. Stored as its raw text.
public enum EventKind: String, Hashable, Sendable, Codable, CaseIterable {
    /// A command written to a device (payload: the command, the encoded frame where useful).
    case commandSent = "command-sent"
    /// A reply or unsolicited message from a device.
    case deviceReply = "device-reply"
    /// An alarm condition became active.
    case alarmRaised = "alarm-raised"
    /// An active alarm changed (escalated, acknowledged, audio-paused, latched).
    case alarmChanged = "alarm-changed"
    /// An alarm condition ended or was reset.
    case alarmCleared = "alarm-cleared"
    /// The safety supervisor decided something (stop, pause, a rule started or ended its hold time).
    case supervisorDecision = "supervisor-decision"
    /// A person did something: pause, resume, stop, acknowledge, audio-pause. Needs `operatorID`.
    case operatorAction = "operator-action"
    /// A soft drug-library limit was overridden. Needs `operatorID` and `reason`.
    case softLimitConfirmation = "soft-limit-confirmation"
    /// The session's state changed (started, completed, stopped, interrupted).
    case sessionStateChange = "session-state-change"
    /// Anything else worth keeping.
    case note

    /// Human wording ("operator action").
    public var label: String { rawValue.replacingOccurrences(of: "-", with: " ") }

    /// Device traffic (commands and replies): plentiful, left out of the HTML report's event table by default.
    public var isDeviceTraffic: Bool { self == .commandSent || self == .deviceReply }
}

/// A JSON value, for an event's structured details. Encodes to standard JSON; numbers must be finite.
/// A plain value; any thread.
public enum JSONValue: Hashable, Sendable, Codable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral,
    ExpressibleByNilLiteral
{
    /// JSON `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number (finite, or the event is refused).
    case number(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object; keys are written sorted.
    case object([String: JSONValue])

    // Literals, so details read as JSON: ["spo2": 86.5, "rule": "R-MON-01", "frames": ["a", "b"], "none": nil].
    public init(nilLiteral: ()) { self = .null }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }

    /// Decodes any JSON value.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null; return }
        if let value = try? container.decode(Bool.self) { self = .bool(value); return }
        if let value = try? container.decode(Double.self) { self = .number(value); return }
        if let value = try? container.decode(String.self) { self = .string(value); return }
        if let value = try? container.decode([JSONValue].self) { self = .array(value); return }
        self = .object(try container.decode([String: JSONValue].self))
    }

    /// Encodes as the JSON value it is.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case let .bool(value): try container.encode(value)
        case let .number(value): try container.encode(value)
        case let .string(value): try container.encode(value)
        case let .array(value): try container.encode(value)
        case let .object(value): try container.encode(value)
        }
    }

    /// True when every number inside is finite (JSON has no NaN or infinity).
    public var isFinite: Bool {
        switch self {
        case .null, .bool, .string: true
        case let .number(value): value.isFinite
        case let .array(values): values.allSatisfy(\.isFinite)
        case let .object(values): values.values.allSatisfy(\.isFinite)
        }
    }

    /// Compact JSON text with sorted keys (deterministic), or nil for a non-finite number.
    public var jsonText: String? {
        guard isFinite else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// Parses JSON text; nil when it is not valid JSON.
    public static func parse(_ text: String) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }
}

/// An event to append: what happened, when, and to whom. The store gives it the session's next sequence
/// number when it commits it. A plain value; any thread.
public struct NewEvent: Hashable, Sendable {
    /// What kind of event.
    public var kind: EventKind
    /// When it happened on the session's monotonic clock (the injected `MonotonicClock`).
    public var monotonic: MonotonicInstant
    /// When it happened on the wall clock (for people and reports only; never used for timing).
    public var wallClock: Date
    /// One sentence for people: "SpO2 below 88 % for 15 s: pump paused".
    public var message: String
    /// The channel (pump + oximeter pair) it concerns, when the box runs several ("1").
    public var channel: String?
    /// The clinical.md rule id behind it ("R-MON-01", "R-DL-05"), when there is one.
    public var ruleID: String?
    /// The alarm priority, for alarm events.
    public var priority: AlarmPriority?
    /// Who did it, for operator actions and soft-limit confirmations (required there).
    public var operatorID: String?
    /// Why, as the person gave it (required for soft-limit confirmations).
    public var reason: String?
    /// Structured details (device frame, rates, thresholds), stored as JSON.
    public var details: JSONValue?

    /// An event; see each property. `append` checks the fields a kind needs.
    public init(
        kind: EventKind, monotonic: MonotonicInstant, wallClock: Date, message: String, channel: String? = nil,
        ruleID: String? = nil, priority: AlarmPriority? = nil, operatorID: String? = nil, reason: String? = nil,
        details: JSONValue? = nil
    ) {
        self.kind = kind
        self.monotonic = monotonic
        self.wallClock = wallClock
        self.message = message
        self.channel = channel
        self.ruleID = ruleID
        self.priority = priority
        self.operatorID = operatorID
        self.reason = reason
        self.details = details
    }

    /// An operator action ("pause", "resume", "stop", "acknowledge", "audio pause") with who and why.
    public static func operatorAction(
        _ message: String, operatorID: String, reason: String? = nil, monotonic: MonotonicInstant, wallClock: Date,
        channel: String? = nil, details: JSONValue? = nil
    ) -> NewEvent {
        NewEvent(kind: .operatorAction, monotonic: monotonic, wallClock: wallClock, message: message, channel: channel,
                 operatorID: operatorID, reason: reason, details: details)
    }

    /// An alarm event (raised, changed or cleared) with its priority and rule.
    public static func alarm(
        _ kind: EventKind, _ message: String, priority: AlarmPriority, ruleID: String? = nil,
        monotonic: MonotonicInstant, wallClock: Date, channel: String? = nil, details: JSONValue? = nil
    ) -> NewEvent {
        NewEvent(kind: kind, monotonic: monotonic, wallClock: wallClock, message: message, channel: channel,
                 ruleID: ruleID, priority: priority, details: details)
    }

    /// What is wrong with this event, or nil when it can be recorded (principle 7: a bad event changes nothing).
    public var problem: String? {
        if message.allSatisfy(\.isWhitespace) { return "a \(kind.label) event needs a message" }
        switch kind {
        case .operatorAction:
            if operatorID?.allSatisfy(\.isWhitespace) ?? true { return "an operator action needs the operator's id" }
        case .softLimitConfirmation:
            if operatorID?.allSatisfy(\.isWhitespace) ?? true { return "a soft-limit confirmation needs the id of who confirmed" }
            if reason?.allSatisfy(\.isWhitespace) ?? true { return "a soft-limit confirmation needs a reason" }
        case .alarmRaised, .alarmChanged, .alarmCleared:
            if priority == nil { return "an alarm event needs its priority" }
        default:
            break
        }
        if let details, !details.isFinite { return "the event's details contain a number that is not finite (NaN or infinity)" }
        return nil
    }
}

/// A device used in a session, as the runner describes it (for the record and the report).
public struct DeviceDescription: Hashable, Sendable, Codable {
    /// "pump" or "oximeter" (or "balance").
    public var role: String
    /// Make and model ("New Era NE-1000", "Nonin 3150 (simulated)").
    public var model: String
    /// The wire protocol used.
    public var wireProtocol: String?
    /// Device path ("/dev/infusion/pump0", "/dev/pts/3").
    public var path: String?
    /// Serial number or other identity the device reported.
    public var serialNumber: String?

    /// A device description; see each property.
    public init(role: String, model: String, wireProtocol: String? = nil, path: String? = nil, serialNumber: String? = nil) {
        self.role = role
        self.model = model
        self.wireProtocol = wireProtocol
        self.path = path
        self.serialNumber = serialNumber
    }

    /// One line: "pump: New Era NE-1000, protocol newera, /dev/pts/3, serial 1234".
    public var summary: String {
        var parts = [model]
        if let wireProtocol { parts.append("protocol \(wireProtocol)") }
        if let path { parts.append(path) }
        if let serialNumber { parts.append("serial \(serialNumber)") }
        return "\(role): " + parts.joined(separator: ", ")
    }
}

/// What a session starts with. A plain value; any thread.
public struct SessionStart: Sendable {
    /// The patient's identifier (as the clinic writes it). Must not be blank.
    public var patientID: String
    /// The operator who starts the session. Must not be blank.
    public var operatorID: String
    /// Wall-clock start (for people and reports).
    public var startedAt: Date
    /// Start on the session's monotonic clock: the origin of the session's time axis.
    public var startedMonotonic: MonotonicInstant
    /// The program, validated against the drug library (and confirmed, when it needed a confirmation).
    public var program: ValidatedProgram
    /// The devices used.
    public var devices: [DeviceDescription]

    /// A session start; see each property.
    public init(patientID: String, operatorID: String, startedAt: Date, startedMonotonic: MonotonicInstant,
                program: ValidatedProgram, devices: [DeviceDescription] = []) {
        self.patientID = patientID
        self.operatorID = operatorID
        self.startedAt = startedAt
        self.startedMonotonic = startedMonotonic
        self.program = program
        self.devices = devices
    }
}

/// A soft-limit finding that was overridden, as recorded.
public struct RecordedFinding: Hashable, Sendable, Codable {
    /// The clinical.md rule id ("R-DL-05").
    public var rule: String
    /// "soft" (hard findings are never overridden).
    public var severity: String
    /// The validator's sentence.
    public var message: String
    /// The limit as written in the library.
    public var limit: String?

    /// A recorded finding; see each property.
    public init(rule: String, severity: String, message: String, limit: String?) {
        self.rule = rule
        self.severity = severity
        self.message = message
        self.limit = limit
    }
}

/// The loading phase of a recorded program.
public struct RecordedLoading: Hashable, Sendable {
    /// Loading dose per kg.
    public var dose: WeightBasedDose
    /// Over how long.
    public var duration: Duration
    /// Pump rate: requested and actual (rounded down).
    public var pumpRate: Rounded<VolumeRate>
    /// Volume the loading phase infuses.
    public var volume: Volume
}

/// The monitoring thresholds of the profile in force, kept with the session so the report can draw them.
public struct RecordedMonitoringLimits: Hashable, Sendable, Codable {
    /// R-MON-01 pause threshold, % SpO2.
    public var spo2PauseBelow: Double
    /// R-MON-02 warning threshold, % SpO2.
    public var spo2WarningAtOrBelow: Double
    /// R-MON-03 upper pause threshold, bpm.
    public var pulsePauseAbove: Double
    /// R-MON-03 lower pause threshold, bpm.
    public var pulsePauseBelow: Double
    /// R-MON-03 warning threshold, bpm.
    public var pulseWarningAbove: Double

    /// The limits of a library profile.
    public init(_ rules: MonitoringRules) {
        spo2PauseBelow = rules.spo2PauseBelow.percent
        spo2WarningAtOrBelow = rules.spo2WarningAtOrBelow.percent
        pulsePauseAbove = rules.pulsePauseAbove.beatsPerMinute
        pulsePauseBelow = rules.pulsePauseBelow.beatsPerMinute
        pulseWarningAbove = rules.pulseWarningAbove.beatsPerMinute
    }
}

/// The validated program as it is recorded: every number the session ran with, in typed units, plus the
/// library identity and any soft-limit override. (A `ValidatedProgram` itself is only made by the validator,
/// so what comes back from the database is this plain record.) A plain value; any thread.
public struct RecordedProgram: Hashable, Sendable {
    /// Library name.
    public var libraryName: String
    /// Library version.
    public var libraryVersion: String
    /// Library SHA-256 (lowercase hex).
    public var librarySHA256: String
    /// Care-area profile id.
    public var profileID: String
    /// Care-area profile name.
    public var profileName: String
    /// Drug name.
    public var drug: String
    /// Solution concentration.
    public var concentration: Concentration
    /// Patient weight.
    public var weight: BodyWeight
    /// Prescribed maintenance dose rate.
    public var doseRate: WeightBasedDoseRate
    /// Maintenance pump rate: requested (exact) and actual (rounded down to the pump's resolution).
    public var pumpRate: Rounded<VolumeRate>
    /// The dose rate the actual pump rate delivers.
    public var deliveredDoseRate: WeightBasedDoseRate
    /// Volume to be infused by the maintenance phase.
    public var vtbi: Volume
    /// Maintenance duration.
    public var duration: Duration
    /// The loading phase, if any.
    public var loading: RecordedLoading?
    /// Projected cumulative dose of the session, per kg.
    public var projectedCumulativeDose: WeightBasedDose
    /// The drug's hard cumulative session limit, per kg (the supervisor stops there).
    public var cumulativeHardLimit: WeightBasedDose
    /// The soft-limit confirmation, when the program needed one: reason and who confirmed.
    public var confirmation: SoftLimitConfirmation?
    /// The soft findings that were overridden (empty when none).
    public var overriddenFindings: [RecordedFinding]
    /// The profile's monitoring thresholds.
    public var monitoringLimits: RecordedMonitoringLimits?

    /// The record of a validated program.
    public init(_ program: ValidatedProgram) {
        libraryName = program.libraryName
        libraryVersion = program.libraryVersion
        librarySHA256 = program.librarySHA256
        profileID = program.profile.id
        profileName = program.profile.name
        drug = program.drug.name
        concentration = program.concentration
        weight = program.weight
        doseRate = program.doseRate
        pumpRate = program.calculation.pumpRate
        deliveredDoseRate = program.calculation.deliveredDoseRate
        vtbi = program.calculation.vtbi
        duration = program.calculation.duration
        loading = program.calculation.loading.map {
            RecordedLoading(dose: $0.dose, duration: $0.duration, pumpRate: $0.pumpRate, volume: $0.volume)
        }
        projectedCumulativeDose = program.calculation.projectedCumulativeDose
        cumulativeHardLimit = program.drug.cumulativeDose.hardMaximum
        confirmation = program.confirmation
        overriddenFindings = program.overriddenFindings.map {
            RecordedFinding(rule: $0.rule.rawValue, severity: $0.severity.rawValue, message: $0.message, limit: $0.limit)
        }
        monitoringLimits = RecordedMonitoringLimits(program.profile.monitoring)
    }

    init(
        libraryName: String, libraryVersion: String, librarySHA256: String, profileID: String, profileName: String,
        drug: String, concentration: Concentration, weight: BodyWeight, doseRate: WeightBasedDoseRate,
        pumpRate: Rounded<VolumeRate>, deliveredDoseRate: WeightBasedDoseRate, vtbi: Volume, duration: Duration,
        loading: RecordedLoading?, projectedCumulativeDose: WeightBasedDose, cumulativeHardLimit: WeightBasedDose,
        confirmation: SoftLimitConfirmation?, overriddenFindings: [RecordedFinding], monitoringLimits: RecordedMonitoringLimits?
    ) {
        self.libraryName = libraryName
        self.libraryVersion = libraryVersion
        self.librarySHA256 = librarySHA256
        self.profileID = profileID
        self.profileName = profileName
        self.drug = drug
        self.concentration = concentration
        self.weight = weight
        self.doseRate = doseRate
        self.pumpRate = pumpRate
        self.deliveredDoseRate = deliveredDoseRate
        self.vtbi = vtbi
        self.duration = duration
        self.loading = loading
        self.projectedCumulativeDose = projectedCumulativeDose
        self.cumulativeHardLimit = cumulativeHardLimit
        self.confirmation = confirmation
        self.overriddenFindings = overriddenFindings
        self.monitoringLimits = monitoringLimits
    }

    /// Total programmed time: loading + maintenance.
    public var totalDuration: Duration { duration + (loading?.duration ?? .zero) }
}

/// One recorded session (the `sessions` row). A plain value; any thread.
public struct SessionRecord: Hashable, Sendable {
    /// Its id.
    public var id: SessionID
    /// Patient identifier.
    public var patientID: String
    /// Operator who started it.
    public var operatorID: String
    /// Wall-clock start.
    public var startedAt: Date
    /// Start on the session's monotonic clock: the origin of its time axis.
    public var startedMonotonic: MonotonicInstant
    /// Wall-clock end: when it completed or was stopped; for an interrupted session, the time of its last
    /// record (the process died after that; the state-change event says when recovery found it). Nil while running.
    public var endedAt: Date?
    /// Running, completed, stopped or interrupted.
    public var state: SessionState
    /// The program it ran.
    public var program: RecordedProgram
    /// The devices it used.
    public var devices: [DeviceDescription]

    /// Wall-clock time of a monotonic instant of this session (its time axis mapped onto the start time).
    public func wallClock(of instant: MonotonicInstant) -> Date {
        startedAt.addingTimeInterval(Double((instant - startedMonotonic).nanoseconds) / 1e9)
    }
}

/// One recorded event (the `events` row). A plain value; any thread.
public struct EventRecord: Hashable, Sendable {
    /// The session it belongs to.
    public var sessionID: SessionID
    /// Its sequence number in the session: 1, 2, 3… with no gaps, in commit order.
    public var sequence: Int64
    /// When it happened on the session's monotonic clock; nil for events written by another process than the
    /// session's own (the recovery path's "interrupted"), whose monotonic clock is not comparable.
    public var monotonic: MonotonicInstant?
    /// When it happened on the wall clock.
    public var wallClock: Date
    /// What kind of event.
    public var kind: EventKind
    /// The channel, when given.
    public var channel: String?
    /// The rule id, when given.
    public var ruleID: String?
    /// The alarm priority, when given.
    public var priority: AlarmPriority?
    /// Who, when given.
    public var operatorID: String?
    /// Why, when given.
    public var reason: String?
    /// The sentence for people.
    public var message: String
    /// Structured details.
    public var details: JSONValue?

    /// Offset from the session's start: monotonic when known, otherwise from the wall clock.
    public func offset(in session: SessionRecord) -> Duration {
        if let monotonic { return monotonic - session.startedMonotonic }
        return .milliseconds(Int64((wallClock.timeIntervalSince(session.startedAt) * 1000).rounded()))
    }
}

/// A session with everything recorded for it, in order. A plain value; any thread.
public struct LoadedSession: Hashable, Sendable {
    /// The session row with its program.
    public var session: SessionRecord
    /// Every event, by sequence.
    public var events: [EventRecord]
    /// Every recorded vital-sign sample, by measurement time.
    public var samples: [VitalSample]
    /// Every recorded pump status, by arrival time.
    public var pumpStatuses: [PumpStatus]

    /// A loaded session (reports can also be rendered from one built by hand).
    public init(session: SessionRecord, events: [EventRecord], samples: [VitalSample], pumpStatuses: [PumpStatus]) {
        self.session = session
        self.events = events
        self.samples = samples
        self.pumpStatuses = pumpStatuses
    }
}

/// A session in the list, with counts. A plain value; any thread.
public struct SessionSummary: Hashable, Sendable {
    /// The session row with its program.
    public var session: SessionRecord
    /// Number of events.
    public var eventCount: Int
    /// Number of alarm-raised events.
    public var alarmCount: Int
    /// Number of vital-sign samples.
    public var sampleCount: Int
    /// Number of pump statuses.
    public var pumpStatusCount: Int
}

/// Several records appended in one transaction: the call returns once all of them are committed, or
/// none is. A plain value; any thread.
public struct RecordBatch: Sendable {
    /// Events, in order; each gets the next sequence number.
    public var events: [NewEvent]
    /// Vital-sign samples.
    public var samples: [VitalSample]
    /// Pump statuses.
    public var pumpStatuses: [PumpStatus]

    /// A batch; any part may be empty.
    public init(events: [NewEvent] = [], samples: [VitalSample] = [], pumpStatuses: [PumpStatus] = []) {
        self.events = events
        self.samples = samples
        self.pumpStatuses = pumpStatuses
    }

    /// True when there is nothing to write.
    public var isEmpty: Bool { events.isEmpty && samples.isEmpty && pumpStatuses.isEmpty }
}
