import InfusionCore

/// The alarm system of one channel (IEC 60601-1-8 vocabulary, clinical.md §3.2 and §6.4): one slot per
/// `AlarmCause`, each inactive, active or latched, with its priority, acknowledgement and trigger values;
/// a global audio pause with an expiry; escalation of persisting medium alarms to high.
///
/// Owned by one `SupervisorChannel` and changed only inside its step, on one thread. Its storage is
/// allocated once in `init`; no method allocates afterwards (as long as the value is not shared, which
/// would make the first change copy it).
public struct AlarmManager: Sendable {
    /// Every alarm's status, indexed by `AlarmCause.rawValue`.
    public private(set) var statuses: [AlarmStatus]
    /// When the current audio pause ends; nil when audio is not paused.
    public private(set) var audioPausedUntil: MonotonicInstant?
    /// How long an audio pause lasts (from the profile).
    public let audioPauseMax: Duration
    /// How long a medium alarm may persist before it escalates to high (from the profile).
    public let escalateMediumAfter: Duration

    /// An alarm system with every alarm inactive. Allocates its table (call outside the tick).
    public init(audioPauseMax: Duration, escalateMediumAfter: Duration, now: MonotonicInstant) {
        self.audioPauseMax = audioPauseMax
        self.escalateMediumAfter = escalateMediumAfter
        statuses = AlarmCause.allCases.map {
            AlarmStatus(cause: $0, state: .inactive, priority: $0.properties.priority, acknowledged: false, since: now, trigger: .none)
        }
    }

    /// The status of one alarm.
    public subscript(cause: AlarmCause) -> AlarmStatus { statuses[Int(cause.rawValue)] }

    /// The highest priority among active or latched alarms, or nil when none is present.
    public var highestPriority: AlarmPriority? {
        var best: AlarmPriority?
        for s in statuses where s.state != .inactive {
            if best.map({ s.priority > $0 }) ?? true { best = s.priority }
        }
        return best
    }

    /// True when an alarm sound should play at `now`: an unacknowledged alarm is active or latched and
    /// audio is not paused. (Audio pause never hides the visual indication: `statuses` still shows it.)
    public func isAudible(at now: MonotonicInstant) -> Bool {
        if let until = audioPausedUntil, now < until { return false }
        return statuses.contains { $0.state != .inactive && !$0.acknowledged }
    }

    /// Reports whether the condition behind `cause` is present now. A new condition starts the alarm
    /// (ending an audio pause when it is high priority); an ended one latches (latching causes) or
    /// becomes inactive. While present, `trigger` refreshes the stored values without an event.
    mutating func set(_ cause: AlarmCause, present: Bool, trigger: AlarmTrigger, now: MonotonicInstant, into output: inout StepOutput) {
        let i = Int(cause.rawValue)
        let props = cause.properties
        switch (statuses[i].state, present) {
        case (.active, true):
            statuses[i].trigger = trigger
        case (.inactive, true), (.latched, true):
            statuses[i].state = .active
            statuses[i].priority = props.priority
            statuses[i].acknowledged = false
            statuses[i].since = now
            statuses[i].trigger = trigger
            emit(i, .start, now, &output)
            if props.priority == .high, audioPausedUntil != nil {
                audioPausedUntil = nil
                output.audio = .resumedByNewAlarm
            }
        case (.active, false):
            if props.latching && !statuses[i].acknowledged {
                statuses[i].state = .latched
                emit(i, .latch, now, &output)
            } else {
                statuses[i].state = .inactive
                emit(i, .end, now, &output)
            }
        case (.inactive, false), (.latched, false):
            break
        }
    }

    /// Raises `cause` as a one-off event (a counter reset, a completed program): it starts and, for a
    /// latching cause, stays latched until acknowledged.
    mutating func raiseEvent(_ cause: AlarmCause, trigger: AlarmTrigger, now: MonotonicInstant, into output: inout StepOutput) {
        set(cause, present: true, trigger: trigger, now: now, into: &output)
        set(cause, present: false, trigger: trigger, now: now, into: &output)
    }

    /// Raises the priority of a present alarm to high (R-MON-06: monitoring loss that has lasted into the
    /// pause window). Clears its acknowledgement. No effect when it is inactive or already high.
    mutating func escalate(_ cause: AlarmCause, trigger: AlarmTrigger, now: MonotonicInstant, into output: inout StepOutput) {
        let i = Int(cause.rawValue)
        guard statuses[i].state != .inactive, statuses[i].priority < .high else { return }
        statuses[i].priority = .high
        statuses[i].acknowledged = false
        statuses[i].trigger = trigger
        emit(i, .escalate, now, &output)
        if audioPausedUntil != nil {
            audioPausedUntil = nil
            output.audio = .resumedByNewAlarm
        }
    }

    /// Acknowledges every present alarm: latched ones become inactive, active ones are marked
    /// acknowledged (their sound stops; they stay visible while the condition lasts).
    /// Returns how many alarms were affected.
    @discardableResult
    mutating func acknowledgeAll(now: MonotonicInstant, into output: inout StepOutput) -> Int {
        var count = 0
        for i in statuses.indices {
            switch statuses[i].state {
            case .latched:
                statuses[i].state = .inactive
                statuses[i].acknowledged = true
                emit(i, .acknowledged, now, &output)
                count += 1
            case .active where !statuses[i].acknowledged:
                statuses[i].acknowledged = true
                emit(i, .acknowledged, now, &output)
                count += 1
            case .active, .inactive:
                break
            }
        }
        return count
    }

    /// Pauses alarm audio until `now + audioPauseMax`.
    mutating func pauseAudio(now: MonotonicInstant, into output: inout StepOutput) {
        audioPausedUntil = now + audioPauseMax
        output.audio = .paused(until: now + audioPauseMax)
    }

    /// Time-driven behaviour: ends an expired audio pause; escalates medium alarms whose condition has
    /// persisted for `escalateMediumAfter` (R-ALM-03).
    mutating func tick(now: MonotonicInstant, into output: inout StepOutput) {
        if let until = audioPausedUntil, now >= until {
            audioPausedUntil = nil
            output.audio = .expired
        }
        for i in statuses.indices where statuses[i].state == .active && statuses[i].priority == .medium {
            if now - statuses[i].since >= escalateMediumAfter {
                statuses[i].priority = .high
                statuses[i].acknowledged = false
                emit(i, .escalate, now, &output)
            }
        }
    }

    private func emit(_ i: Int, _ phase: AlarmEventPhase, _ now: MonotonicInstant, _ output: inout StepOutput) {
        let s = statuses[i]
        output.alarmEvents.append(AlarmEvent(cause: s.cause, phase: phase, priority: s.priority, category: s.category,
                                             state: s.state, trigger: s.trigger, at: now))
    }
}

/// A change to alarm audio in one step.
public enum AudioChange: Hashable, Sendable {
    /// The operator paused audio until this instant.
    case paused(until: MonotonicInstant)
    /// The audio pause ran out.
    case expired
    /// A new high-priority alarm (or an escalation) ended the audio pause.
    case resumedByNewAlarm
}
