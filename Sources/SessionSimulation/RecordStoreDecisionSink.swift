import Foundation
import InfusionCore
import Records
import Supervisor
import Synchronization

/// Writes supervisor decisions into a session of the durable record (`Records.RecordStore`), one
/// committed event per decision: alarm changes as alarm events (raised, changed, cleared) with their
/// priority, operator actions as operator-action events with the operator's id, everything else
/// (stops, starts, confirmations, refusals, mode changes) as supervisor decisions. Each carries the
/// rule's requirement id ("R-MON-01") and the decision's details (rule, kind, modes, command). Operator
/// actions are the applied and refused actions, refused starts, and starts that passed the start checks.
///
/// For virtual-time sessions and tools: `record` blocks until the commit (one fsync), so it must never
/// be given to the real-time `SupervisorRunner` (use a `DecisionRing` drained by another thread there).
/// A write that fails is counted and its error kept (`failures`, `lastError`); later decisions are still
/// attempted. Any thread, one call at a time or concurrently (the store serialises its writes).
public final class RecordStoreDecisionSink: DecisionSink {
    /// The store written to (not owned: the caller closes it).
    public let store: RecordStore
    /// The session the events belong to.
    public let session: SessionID
    private let startedMonotonic: MonotonicInstant
    private let startedAt: Date
    private let operatorID: String
    private let state = Mutex<(written: Int, failures: Int, lastError: RecordStoreError?)>((0, 0, nil))

    /// A sink for `session` in `store`. Wall-clock times are `startedAt` plus the decision's time since
    /// `startedMonotonic` (the session's time axis); operator actions are attributed to `operatorID`.
    public init(store: RecordStore, session: SessionID, startedMonotonic: MonotonicInstant, startedAt: Date, operatorID: String) {
        self.store = store
        self.session = session
        self.startedMonotonic = startedMonotonic
        self.startedAt = startedAt
        self.operatorID = operatorID
    }

    /// Events committed so far.
    public var written: Int { state.withLock { $0.written } }
    /// Decisions that could not be written.
    public var failures: Int { state.withLock { $0.failures } }
    /// The last write error, if any.
    public var lastError: RecordStoreError? { state.withLock { $0.lastError } }

    /// Commits one event for `event` (blocks until the commit).
    public func record(_ event: DecisionEvent) {
        let entry = Self.event(for: event, channel: event.channel, operatorID: operatorID,
                               wallClock: startedAt.addingTimeInterval((event.at - startedMonotonic).seconds))
        do {
            try store.append(entry, to: session)
            state.withLock { $0.written += 1 }
        } catch {
            state.withLock {
                $0.failures += 1
                $0.lastError = error
            }
        }
    }

    /// The record event for a decision. Pure; any thread.
    public static func event(for event: DecisionEvent, channel: UInt16, operatorID: String, wallClock: Date) -> NewEvent {
        var details: [String: JSONValue] = [
            "rule": .string("\(event.rule)"), "decision": .string("\(event.kind)"),
            "modeBefore": .string(event.modeBefore.description), "modeAfter": .string(event.modeAfter.description),
        ]
        if let command = event.command { details["command"] = .string(command.description) }
        let ruleID = "\(event.rule.requirement)"
        let monotonic = event.at
        switch event.kind {
        case .alarm(let alarm):
            let kind: EventKind = switch alarm.phase {
            case .start: .alarmRaised
            case .end: .alarmCleared
            case .update, .escalate, .latch, .acknowledged: .alarmChanged
            }
            details["alarm"] = .string("\(alarm.cause)")
            details["phase"] = .string(alarm.phase.description)
            return .alarm(kind, AlarmText.message(alarm), priority: alarm.priority, ruleID: ruleID, monotonic: monotonic,
                          wallClock: wallClock, channel: "\(channel)", details: .object(details))
        case .actionApplied(let action):
            return .operatorAction("\(action) (\(event.modeBefore) → \(event.modeAfter))", operatorID: operatorID,
                                   monotonic: monotonic, wallClock: wallClock, channel: "\(channel)", details: .object(details))
        case .actionRefused(let action, let refusal):
            return .operatorAction("\(action) refused: \(AlarmText.reason(refusal))", operatorID: operatorID,
                                   monotonic: monotonic, wallClock: wallClock, channel: "\(channel)", details: .object(details))
        case .startRefused(let refusal):
            return .operatorAction("start refused: \(AlarmText.reason(refusal))", operatorID: operatorID,
                                   monotonic: monotonic, wallClock: wallClock, channel: "\(channel)", details: .object(details))
        case .startCommanded where event.rule == .startChecks:
            // Only an operator's start (or resume) passes the start checks (R-MON-07).
            let command = event.command.map { ": \($0)" } ?? ""
            return .operatorAction("start, checks passed\(command) (\(event.modeBefore) → \(event.modeAfter))",
                                   operatorID: operatorID, monotonic: monotonic, wallClock: wallClock, channel: "\(channel)",
                                   details: .object(details))
        default:
            let command = event.command.map { ": \($0)" } ?? ""
            return NewEvent(kind: .supervisorDecision, monotonic: monotonic, wallClock: wallClock,
                            message: "\(event.rule) \(event.kind)\(command) (\(event.modeBefore) → \(event.modeAfter))",
                            channel: "\(channel)", ruleID: ruleID, details: .object(details))
        }
    }
}
