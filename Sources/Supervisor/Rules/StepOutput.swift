import InfusionCore

/// A list with a fixed capacity whose storage is allocated once, at `init`. `append` past the capacity
/// drops the element and counts it (`dropped`) instead of growing, and `removeAll()` keeps the storage:
/// neither ever allocates, so the real-time tick can reuse one buffer forever.
///
/// Not thread-safe; owned by one thread at a time. Do not copy one and then change both: the first
/// change to a shared copy allocates (copy-on-write).
public struct BoundedBuffer<Element: Sendable>: Sendable, RandomAccessCollection {
    private var storage: [Element]
    /// The most elements it holds.
    public let capacity: Int
    /// Elements refused because the buffer was full, since the last `removeAll()`.
    public private(set) var dropped: Int = 0

    /// An empty buffer that can hold `capacity` elements. Allocates.
    public init(capacity: Int) {
        self.capacity = Swift.max(capacity, 1)
        storage = []
        storage.reserveCapacity(self.capacity)
    }

    /// Appends `element`, or counts it as dropped when full. Returns false when dropped.
    @discardableResult
    public mutating func append(_ element: Element) -> Bool {
        guard storage.count < capacity else {
            dropped &+= 1
            return false
        }
        storage.append(element)
        return true
    }

    /// Removes the elements that match, in place (keeps the storage; no allocation).
    public mutating func removeAll(where shouldRemove: (Element) -> Bool) {
        storage.removeAll(where: shouldRemove)
    }

    /// Empties the buffer, keeping its storage, and resets `dropped`.
    public mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        dropped = 0
    }

    public var startIndex: Int { storage.startIndex }
    public var endIndex: Int { storage.endIndex }
    public subscript(position: Int) -> Element { storage[position] }
}

/// What one supervisor step decided: pump commands, alarm changes, audio changes, the answer to an
/// operator action, and a decision event for each of them. Reused tick after tick: `step` empties it
/// first, and nothing in it allocates after `init`.
///
/// Owned by the thread that runs the step.
public struct StepOutput: Sendable {
    /// Commands for the pump, in order. A stop is always first when present.
    public var commands: BoundedBuffer<PumpCommand>
    /// Alarm changes, in order.
    public var alarmEvents: BoundedBuffer<AlarmEvent>
    /// Every decision this step, with the rule, the inputs and the command (for the durable record).
    public var decisions: BoundedBuffer<DecisionEvent>
    /// A change to alarm audio, if any.
    public var audio: AudioChange?
    /// The answer to this step's operator action, if there was one.
    public var actionOutcome: ActionOutcome?

    /// An empty output with room for everything one step can produce. Allocates (once).
    public init() {
        commands = BoundedBuffer(capacity: 8)
        alarmEvents = BoundedBuffer(capacity: AlarmCause.count * 3)
        decisions = BoundedBuffer(capacity: AlarmCause.count * 3 + 24)
    }

    /// True when this step commands a stop (or the secondary stop): the runner must write the
    /// pre-encoded stop frame at once, before anything else.
    public var stopIsUrgent: Bool { commands.contains { $0.isUrgent } }

    /// Adds a pump command, keeping the order safe: an urgent command (stop) cancels any start or rate
    /// change already in this step, and a start or rate change after an urgent command is dropped.
    /// Delivery never goes out after a stop in the same step.
    public mutating func command(_ command: PumpCommand) {
        if command.isUrgent {
            commands.removeAll { !$0.isUrgent }
            commands.append(command)
        } else if !commands.contains(where: { $0.isUrgent }) {
            commands.append(command)
        }
    }

    /// Empties every list without releasing storage.
    public mutating func reset() {
        commands.removeAll()
        alarmEvents.removeAll()
        decisions.removeAll()
        audio = nil
        actionOutcome = nil
    }
}

/// The answer to an operator action.
public enum ActionOutcome: Hashable, Sendable {
    /// The action was applied.
    case applied(OperatorAction)
    /// A start or resume was refused by the start checks (R-ST-01, §6.2).
    case startRefused(StartRefusal)
    /// The action does not apply in the channel's current mode, or its content was refused.
    case refused(OperatorAction, ActionRefusal)
}

/// Why a start (or resume) was refused: the first start check that failed. `AlarmText` renders it.
public enum StartRefusal: UInt8, Hashable, Sendable, CaseIterable {
    /// The channel is in a mode from which no start is possible (session ended or fault).
    case sessionEnded
    /// Delivery is already commanded.
    case alreadyDelivering
    /// A supervisor stop is latched: the operator must acknowledge it first (R-MON-07).
    case notAcknowledged
    /// The oximeter is not connected.
    case monitorNotConnected
    /// No vital-sign sample has been received.
    case noVitals
    /// The latest sample is older than the start checks' freshness limit (or out of order).
    case vitalsStale
    /// The latest sample is invalid (probe off, no pulse, low quality) or lacks SpO2 or pulse.
    case vitalsInvalid
    /// SpO2 below the start minimum.
    case spo2TooLow
    /// Pulse rate below the start minimum.
    case pulseTooLow
    /// Pulse rate above the start maximum.
    case pulseTooHigh
    /// The pump's link is down or its status is stale.
    case pumpNotConnected
    /// The pump does not report itself stopped (it may be delivering, or its state is unknown).
    case pumpNotStopped
    /// The pump reports a high-priority alarm.
    case pumpAlarm
    /// The pump's family has a communication watchdog and it is not armed.
    case pumpWatchdogNotArmed
    /// A previous stop has not been confirmed by the pump.
    case stopNotConfirmed
    /// The session's hard cumulative dose has been reached.
    case cumulativeLimitReached
    /// The program has no delivery time left.
    case programFinished
}

/// Why an operator action other than a start was refused.
public enum ActionRefusal: UInt8, Hashable, Sendable, CaseIterable {
    /// Nothing to pause: delivery is not running.
    case notDelivering
    /// Nothing to resume: the channel is not paused by the operator.
    case notPaused
    /// The session has already ended.
    case sessionEnded
    /// The titration is for another program (library, profile, drug, concentration or weight).
    case titrationForAnotherProgram
    /// The titration's rate exceeds its validated maximum or the drug's hard ceiling.
    case titrationAboveLimit
    /// A titration is possible only while the program runs or is paused by the operator.
    case titrationNotAllowedNow
}
