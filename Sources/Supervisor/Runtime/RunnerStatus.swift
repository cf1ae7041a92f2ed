import InfusionCore
import Synchronization

/// The runner's sign of life for an outside watchdog (systemd's, or a second process): a count of
/// completed ticks and the monotonic instant of the last one. Written by the runner's thread after
/// every tick; readable from any thread without locks (R-SW-02: heartbeat ≤ 100 ms).
public final class Heartbeat: Sendable {
    private let count = Atomic<UInt64>(0)
    private let last = Atomic<Int64>(Int64.min)

    /// A heartbeat that has not beaten yet.
    public init() {}

    /// Runner thread only. One beat at `now`.
    func beat(at now: MonotonicInstant) {
        last.store(now.nanoseconds, ordering: .relaxed)
        count.wrappingAdd(1, ordering: .releasing)
    }

    /// Completed ticks so far. Any thread.
    public var beats: UInt64 { count.load(ordering: .acquiring) }

    /// When the last tick completed (on the runner's clock), or nil before the first. Any thread.
    public var lastBeat: MonotonicInstant? {
        let ns = last.load(ordering: .relaxed)
        return ns == Int64.min ? nil : MonotonicInstant(nanoseconds: ns)
    }

    /// True when a tick completed within `window` before `now` (same clock). Any thread.
    public func isAlive(now: MonotonicInstant, within window: Duration) -> Bool {
        guard let lastBeat else { return false }
        return now - lastBeat <= window
    }
}

/// Counters of the runner's behaviour, updated by its thread with relaxed atomics (no locks, no
/// allocation) and readable from any thread. `snapshot()` copies them into a plain value.
public final class RunnerCounters: Sendable {
    let ticks = Atomic<UInt64>(0)
    let timerWakeups = Atomic<UInt64>(0)
    let inputWakeups = Atomic<UInt64>(0)
    let overruns = Atomic<UInt64>(0)
    let worstLateness = Atomic<Int64>(0)
    let lastLateness = Atomic<Int64>(0)
    let worstTick = Atomic<Int64>(0)
    let stopFrames = Atomic<UInt64>(0)
    let stopWriteFailures = Atomic<UInt64>(0)
    let secondaryStops = Atomic<UInt64>(0)
    let commandsSubmitted = Atomic<UInt64>(0)
    let pollErrors = Atomic<UInt64>(0)
    let outputOverflows = Atomic<UInt64>(0)

    init() {}

    /// The counters now. Any thread.
    public func snapshot() -> RunnerStatistics {
        RunnerStatistics(
            ticks: ticks.load(ordering: .relaxed), timerWakeups: timerWakeups.load(ordering: .relaxed),
            inputWakeups: inputWakeups.load(ordering: .relaxed), overruns: overruns.load(ordering: .relaxed),
            worstWakeLateness: .nanoseconds(worstLateness.load(ordering: .relaxed)),
            lastWakeLateness: .nanoseconds(lastLateness.load(ordering: .relaxed)),
            worstTickDuration: .nanoseconds(worstTick.load(ordering: .relaxed)),
            stopFramesWritten: stopFrames.load(ordering: .relaxed), stopWriteFailures: stopWriteFailures.load(ordering: .relaxed),
            secondaryStops: secondaryStops.load(ordering: .relaxed), commandsSubmitted: commandsSubmitted.load(ordering: .relaxed),
            pollErrors: pollErrors.load(ordering: .relaxed), outputOverflows: outputOverflows.load(ordering: .relaxed))
    }

    static func raise(_ atomic: borrowing Atomic<Int64>, to value: Int64) {
        var seen = atomic.load(ordering: .relaxed)
        while value > seen {
            let (done, now) = atomic.compareExchange(expected: seen, desired: value, ordering: .relaxed)
            if done { return }
            seen = now
        }
    }
}

/// A copy of the runner's counters.
public struct RunnerStatistics: Hashable, Sendable {
    /// Ticks completed (each tick steps every channel at least once).
    public let ticks: UInt64
    /// Wake-ups by the period timer.
    public let timerWakeups: UInt64
    /// Wake-ups by new input (a publication or an operator action).
    public let inputWakeups: UInt64
    /// Periods missed (the timer expired more than once before the thread woke) plus ticks that took
    /// longer than one period.
    public let overruns: UInt64
    /// The latest a timer wake-up came after its absolute deadline.
    public let worstWakeLateness: Duration
    /// Lateness of the most recent timer wake-up.
    public let lastWakeLateness: Duration
    /// The longest tick (all channels).
    public let worstTickDuration: Duration
    /// Stop frames written through the stop paths.
    public let stopFramesWritten: UInt64
    /// Stop frames that failed or were written only in part.
    public let stopWriteFailures: UInt64
    /// Secondary stops engaged.
    public let secondaryStops: UInt64
    /// Non-urgent commands handed to drivers.
    public let commandsSubmitted: UInt64
    /// poll(2) failures other than EINTR.
    public let pollErrors: UInt64
    /// Steps whose output overflowed a buffer (never expected; the overflowing items were dropped).
    public let outputOverflows: UInt64
}
