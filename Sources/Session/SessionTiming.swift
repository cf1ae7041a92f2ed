import Drivers
import InfusionCore

/// Device and session timing for a controller clock running `speed` times real time (`ScaledClock`,
/// simulated devices only; 1 in production). Driver time-outs are on the controller clock, so at high
/// speed they are raised to keep a floor in REAL time (a loaded machine must not miss a reply because
/// 400 ms of scaled time is 7 ms of real time); the pump's own watchdog and the supervisor's
/// device-timing limits (`deviceTimingLimitFloor`) are raised the same way.
/// At speed 1 every value is the production default. Pure; any thread.
public struct SessionTiming: Hashable, Sendable {
    /// Controller seconds per real second (≥ 1; anything else counts as 1).
    public let speed: Double

    /// Timing for `speed`.
    public init(speed: Double) { self.speed = speed.isFinite && speed >= 1 ? speed : 1 }

    /// The pump's own communication watchdog (New Era safe mode), whole seconds 1…255: 5 s at speed 1,
    /// at least 1.5 s of real time at higher speeds.
    public var watchdogTimeoutSeconds: UInt8 {
        UInt8(clamping: Int(max(5, (1.5 * speed).rounded(.up))))
    }

    /// The New Era driver's settings: safe mode armed with `watchdogTimeoutSeconds`, replies awaited at
    /// least 250 ms of real time, status polls at most every 400 ms of controller time and at least
    /// 20 ms of real time apart, the link awaited at least 2 s of real time.
    public var newEra: NewEraSession.Configuration {
        NewEraSession.Configuration(
            safeModeTimeoutSeconds: watchdogTimeoutSeconds,
            replyTimeout: scaled(.milliseconds(400), realFloor: .milliseconds(250)),
            pollInterval: scaled(.milliseconds(400), realFloor: .milliseconds(20)),
            connectTimeout: scaled(.seconds(2), realFloor: .seconds(2)))
    }

    /// How often (REAL time) the session asks the pump for a full status: one second of controller time,
    /// but not more often than every 50 ms of real time.
    public var statusInterval: Duration {
        max(Duration.nanoseconds(Int64(1e9 / speed)), .milliseconds(50))
    }

    /// The floor under the supervisor's device-timing limits (pump-status and sample freshness, the
    /// stop-confirmation deadline, the rate-agreement hold; `SupervisorLimits.raisingDeviceTimingLimits`):
    /// 250 ms of real time in controller time at speeds above 1 (20 s at 80×), zero at speed 1 (the
    /// profile's limits unchanged). 250 ms covers a status poll (every 50 ms of real time at most) plus
    /// a reply delayed by a loaded machine, with room to spare.
    public var deviceTimingLimitFloor: Duration {
        speed > 1 ? .nanoseconds(Int64(0.25e9 * speed)) : .zero
    }

    /// `duration` of controller time, or `realFloor` of real time expressed in controller time, whichever
    /// is longer.
    public func scaled(_ duration: Duration, realFloor: Duration) -> Duration {
        max(duration, .nanoseconds(Int64(Double(realFloor.nanoseconds) * speed)))
    }
}
