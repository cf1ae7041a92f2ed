#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A point on a monotonic time line, in nanoseconds from an arbitrary origin. Never goes backwards on
/// the clock that produced it; comparable only with instants from the same clock.
///
/// A plain 8-byte value: reading, comparing and subtracting instants never allocates, so the
/// supervisor's real-time tick can use them freely.
public struct MonotonicInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Nanoseconds since the clock's origin.
    public var nanoseconds: Int64

    /// An instant `nanoseconds` after the clock's origin.
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// The clock's origin.
    public static let origin = MonotonicInstant(nanoseconds: 0)

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// The instant `duration` later (saturating).
    public static func + (lhs: Self, rhs: Duration) -> Self {
        Self(nanoseconds: lhs.nanoseconds.addingReportingOverflow(rhs.nanoseconds).overflow ? .max : lhs.nanoseconds + rhs.nanoseconds)
    }

    /// The instant `duration` earlier (saturating).
    public static func - (lhs: Self, rhs: Duration) -> Self {
        Self(nanoseconds: lhs.nanoseconds.subtractingReportingOverflow(rhs.nanoseconds).overflow ? .min : lhs.nanoseconds - rhs.nanoseconds)
    }

    /// The time from `rhs` to `lhs` (negative when `lhs` is earlier).
    public static func - (lhs: Self, rhs: Self) -> Duration { .nanoseconds(lhs.nanoseconds &- rhs.nanoseconds) }

    public var description: String { "t+\(Duration.nanoseconds(nanoseconds).humanReadable)" }
}

/// The one clock seam (DESIGN.md principle 5). Every timed behaviour takes its time from an injected
/// `MonotonicClock`: production uses `SystemMonotonicClock`, tests and the demo a `VirtualClock`.
///
/// Implementations must be safe to call from any thread, must never go backwards, and `now()` must not
/// allocate or block (the supervisor calls it in its real-time tick).
public protocol MonotonicClock: Sendable {
    /// The current instant on this clock.
    func now() -> MonotonicInstant

    /// How long to wait in real (wall) time for `duration` to pass on this clock. Threads that sleep,
    /// poll or time out use this, so the same code runs at real speed on the system clock and N times
    /// faster on a `ScaledClock`. Default: `duration` itself.
    func realDuration(of duration: Duration) -> Duration
}

extension MonotonicClock {
    public func realDuration(of duration: Duration) -> Duration { duration }
}

/// The system's monotonic clock (`CLOCK_MONOTONIC`): unaffected by wall-clock changes, NTP steps or
/// time-zone changes. Any thread; no allocation.
public struct SystemMonotonicClock: MonotonicClock {
    /// Creates a handle to the system's monotonic clock.
    public init() {}

    public func now() -> MonotonicInstant {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return MonotonicInstant(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }
}

/// A clock that only moves when told to, for deterministic tests and scaled-time simulation. A 4-hour
/// session runs in as long as the computation takes.
///
/// Thread-safe: `now()` and `advance(by:)` may be called from any thread (the time is an atomic).
public final class VirtualClock: MonotonicClock {
    private let current: Atomic<Int64>

    /// A virtual clock starting at `start`.
    public init(start: MonotonicInstant = .origin) { current = Atomic(start.nanoseconds) }

    public func now() -> MonotonicInstant { MonotonicInstant(nanoseconds: current.load(ordering: .acquiring)) }

    /// Moves time forward by `duration`; a negative duration is ignored (the clock is monotonic).
    public func advance(by duration: Duration) {
        let step = duration.nanoseconds
        guard step > 0 else { return }
        current.wrappingAdd(step, ordering: .acquiringAndReleasing)
    }

    /// Moves time forward to `instant`; an earlier instant is ignored.
    public func advance(to instant: MonotonicInstant) {
        var seen = current.load(ordering: .acquiring)
        while seen < instant.nanoseconds {
            let (exchanged, original) = current.compareExchange(
                expected: seen, desired: instant.nanoseconds, ordering: .acquiringAndReleasing)
            if exchanged { return }
            seen = original
        }
    }
}

/// A clock that runs `speed` times faster than the system's monotonic clock, from the moment it is
/// created: the simulated demo plays a 40-minute session in well under a minute over real
/// pseudo-terminals, with every timing rule (hold times, keep-alives, watchdogs) scaled alike.
///
/// Immutable and thread-safe; `now()` does not allocate.
public struct ScaledClock: MonotonicClock {
    /// How many seconds of this clock pass per real second (≥ 1 in practice).
    public let speed: Double
    private let base: SystemMonotonicClock
    private let realStart: MonotonicInstant
    private let virtualStart: MonotonicInstant

    /// A clock starting at `start` and running `speed` times faster than real time. A speed that is not
    /// finite and positive is treated as 1.
    public init(speed: Double, start: MonotonicInstant = .origin) {
        self.speed = speed.isFinite && speed > 0 ? speed : 1
        base = SystemMonotonicClock()
        realStart = base.now()
        virtualStart = start
    }

    public func now() -> MonotonicInstant {
        let elapsed = Double(base.now().nanoseconds &- realStart.nanoseconds) * speed
        return MonotonicInstant(nanoseconds: virtualStart.nanoseconds &+ Int64(elapsed))
    }

    public func realDuration(of duration: Duration) -> Duration {
        .nanoseconds(Int64(Double(duration.nanoseconds) / speed))
    }
}
