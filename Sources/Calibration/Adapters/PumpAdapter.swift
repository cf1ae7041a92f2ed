import Drivers
import InfusionCore
import Logging

/// Why the pump under test could not be started for a calibration.
public struct CalibrationPumpError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What happened and what to do next.
    public var description: String

    /// An error with its message.
    public init(_ description: String) { self.description = description }
}

/// Any `InfusionPump` driver as the calibration runner's pump: `start(at:)` sets the rate (which must be
/// confirmed and not rounded by more than 0.1 %, or the test would measure another rate) and starts it
/// (confirmed when the pump reports infusing); `stop()` stops it and logs when the stop is not confirmed.
///
/// Sendable; the runner calls it from its task. The pump driver owns its port.
public struct InfusionPumpUnderTest: CalibrationPump {
    /// The pump driver.
    public let pump: any InfusionPump
    private let logger = Logger(label: "infusion.calibration.pump-adapter")

    /// Wraps `pump`.
    public init(_ pump: any InfusionPump) { self.pump = pump }

    /// Sets the rate and starts the pump; throws `CalibrationPumpError` when either is refused or uncertain.
    public func start(at rate: VolumeRate) async throws {
        switch await pump.setRate(rate) {
        case let .confirmed(rounded):
            let requested = rounded.requested.millilitresPerHour
            guard requested > 0, abs(rounded.actual.millilitresPerHour - requested) / requested <= 0.001 else {
                throw CalibrationPumpError("\(pump.name) set \(rounded.actual) instead of \(rate) (its resolution): choose a test rate the pump can set exactly")
            }
        case let .refused(refusal):
            throw CalibrationPumpError("\(pump.name) refused the rate \(rate) (\(refusal.code)): \(refusal.description)")
        case let .uncertain(reason):
            throw CalibrationPumpError("\(pump.name) did not confirm the rate \(rate): \(reason); check the link and repeat")
        }
        switch await pump.start() {
        case .confirmed:
            return
        case let .refused(refusal):
            throw CalibrationPumpError("\(pump.name) refused to start (\(refusal.code)): \(refusal.description)")
        case let .uncertain(reason):
            _ = pump.sendStopNow()
            throw CalibrationPumpError("\(pump.name) did not confirm it started: \(reason); a stop was sent; check the pump")
        }
    }

    /// Stops the pump (also after cancellation); logs an error when the stop is not confirmed.
    public func stop() async {
        switch await pump.stop() {
        case .confirmed: return
        case let .refused(refusal):
            logger.error("the pump refused to stop after the calibration: stop it by hand", metadata: ["pump": "\(pump.name)", "code": "\(refusal.code)"])
        case let .uncertain(reason):
            _ = pump.sendStopNow()
            logger.error("the pump did not confirm the stop after the calibration: check it is stopped", metadata: ["pump": "\(pump.name)", "reason": "\(reason)"])
        }
    }
}
