import InfusionCore
import Supervisor

/// When the simulated pump started or stopped moving fluid, by its own state (not by what the
/// controller believes).
public struct PumpMotion: Hashable, Sendable {
    /// When it happened.
    public var at: MonotonicInstant
    /// True when the pump started pumping, false when it stopped.
    public var pumping: Bool
    /// Why it stopped, as the simulated pump said ("paused by STP", "watchdog", "stall", "volume
    /// reached"), or "fault NAME" for an injected fault; nil for starts.
    public var reason: String?
}

/// An operator action the script submitted, and the supervisor's answer.
public struct ScriptedActionOutcome: Hashable, Sendable {
    /// When the supervisor stepped it.
    public var at: MonotonicInstant
    /// The action.
    public var action: OperatorAction
    /// Applied, refused (with why), or nil when the controller never stepped it (it had gone silent).
    public var outcome: ActionOutcome?
}

/// What a virtual session did: the supervisor's final mode and every decision with its time, when
/// the simulated pump actually moved, the delivered volume as the pump counted it against what the
/// supervisor commanded, and the alarms raised. A plain value; any thread.
public struct VirtualSessionSummary: Hashable, Sendable {
    /// When the session started (time zero of the script and of the patient scenario).
    public var startedAt: MonotonicInstant
    /// When the run ended.
    public var endedAt: MonotonicInstant
    /// The supervisor's mode at the end.
    public var finalMode: ChannelMode
    /// The program phase at the end.
    public var finalPhase: ProgramPhase
    /// Every decision the supervisor made, in order (each carries its time, rule, command and modes).
    public var decisions: [DecisionEvent]
    /// Every alarm change (start, escalate, latch, end, acknowledged), in order.
    public var alarms: [AlarmEvent]
    /// The operator actions the script submitted, with their outcomes.
    public var actions: [ScriptedActionOutcome]
    /// Every start and stop of the simulated pump's motor, in order.
    public var pumpMotion: [PumpMotion]
    /// The simulated pump's own infused counter at the end (what it really pushed out while infusing).
    public var pumpCounter: Volume
    /// The pump's counter as the driver last reported it (nil when never read).
    public var reportedCounter: Volume?
    /// The volume the supervisor's commanded rates imply while it commanded delivery.
    public var commandedVolume: Volume
    /// The volume the supervisor accounts as delivered (the larger of the counter and the commanded volume).
    public var deliveredVolume: Volume
    /// Stop frames written to the pump's link by the supervisor's stop path.
    public var stopFramesWritten: Int
    /// Stop frames the stop path could not write (no link).
    public var stopFramesLost: Int
    /// Secondary stops engaged (the driver closed so that the pump's own watchdog stops it).
    public var secondaryStops: Int
    /// Supervisor steps taken (periodic and on new input).
    public var supervisorSteps: Int
    /// Vital-sign samples the oximeter driver published.
    public var samplesPublished: Int
    /// Oximeter frames the driver decoded (75 a second for DF2).
    public var oximeterFramesDecoded: Int

    /// Time since the session started.
    public func offset(_ instant: MonotonicInstant) -> Duration { instant - startedAt }

    /// The first time after `after` (session time) that the simulated pump stopped, or nil.
    public func pumpStopped(after: Duration = .zero) -> MonotonicInstant? {
        pumpMotion.first { !$0.pumping && offset($0.at) >= after }?.at
    }

    /// The first time after `after` (session time) that the simulated pump started, or nil.
    public func pumpStarted(after: Duration = .zero) -> MonotonicInstant? {
        pumpMotion.first { $0.pumping && offset($0.at) >= after }?.at
    }

    /// The causes of every alarm that started, in order, once each.
    public var alarmCauses: [AlarmCause] {
        var seen: [AlarmCause] = []
        for event in alarms where event.phase == .start && !seen.contains(event.cause) { seen.append(event.cause) }
        return seen
    }

    /// The highest priority any alarm reached, or nil when none was raised.
    public var highestAlarmPriority: AlarmPriority? {
        alarms.filter { $0.phase == .start || $0.phase == .escalate }.map(\.priority).max()
    }

    /// The decisions that changed the mode or carried a command, as one line each
    /// ("+12.340 s spo2Pause stopCommanded infusing -> stopped by supervisor stop"), for messages.
    public var timeline: String {
        decisions.filter { $0.modeBefore != $0.modeAfter || $0.command != nil }.map { event in
            let t = offset(event.at)
            return "+\(t.humanReadable) \(event.rule) \(event.kind) \(event.modeBefore) -> \(event.modeAfter)"
                + (event.command.map { " \($0)" } ?? "")
        }.joined(separator: "\n")
    }

    /// A comparable fingerprint of the run (decisions, alarms, motion, counters), for determinism checks.
    public var fingerprint: [String] {
        decisions.map { "\($0.at.nanoseconds) \($0.rule) \($0.kind) \($0.modeBefore)->\($0.modeAfter) \(String(describing: $0.command))" }
            + pumpMotion.map { "\($0.at.nanoseconds) motion \($0.pumping) \($0.reason ?? "")" }
            + ["counter \(pumpCounter.millilitres) commanded \(commandedVolume.millilitres) steps \(supervisorSteps) samples \(samplesPublished)"]
    }
}
