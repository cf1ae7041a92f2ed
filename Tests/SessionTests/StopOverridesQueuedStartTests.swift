import Drivers
import Foundation
import InfusionCore
import Session
import Supervisor
import Synchronization
import Testing

/// A stop the supervisor writes while a start sequence (volume limit, rate, RUN) is being sent must
/// cancel the rest of that sequence: nothing may restart the pump after a stop without a person.
@Suite("Session: a stop overrides a start still in progress")
struct StopOverridesQueuedStartTests {
    /// A pump that records every call and holds `setVolumeToInfuse` until the test releases it.
    final class GatedPump: InfusionPump, @unchecked Sendable {
        // @unchecked: `calls` and `gate` are Mutex-protected; everything else is immutable.
        let name = "gated-pump"
        let safety = PumpSafetyFeatures(stopsWhenControllerSilent: true, explanation: "test")
        let capabilities = PumpCapabilities()
        let calls = Mutex<[String]>([])
        private let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)
        private let entered = Mutex(false)
        let events: AsyncStream<PumpEvent>
        init() { events = AsyncStream { _ in } }

        var reachedGate: Bool { entered.withLock { $0 } }
        func release() { gate.withLock { $0?.resume(); $0 = nil } }
        private func note(_ call: String) { calls.withLock { $0.append(call) } }

        func setVolumeToInfuse(_ volume: Volume) async -> PumpCommandOutcome<Rounded<Volume>> {
            note("volume")
            await withCheckedContinuation { continuation in
                gate.withLock { $0 = continuation }
                entered.withLock { $0 = true }
            }
            return .uncertain(reason: "test")
        }
        func setRate(_ rate: VolumeRate) async -> PumpCommandOutcome<Rounded<VolumeRate>> { note("rate"); return .uncertain(reason: "test") }
        func start() async -> PumpCommandOutcome<PumpStatus> { note("start"); return .uncertain(reason: "test") }
        func stop() async -> PumpCommandOutcome<PumpStatus> { note("stop"); return .uncertain(reason: "test") }
        func status() async -> PumpCommandOutcome<PumpStatus> { .uncertain(reason: "test") }
        func identify() async -> PumpCommandOutcome<PumpIdentity> { .uncertain(reason: "test") }
        func configureSyringe(insideDiameterMillimetres: Double) async -> PumpCommandOutcome<Double> { .uncertain(reason: "test") }
        var lastStatus: PumpStatus? { nil }
        func clearVolume() async -> PumpCommandOutcome<Volume> { .uncertain(reason: "test") }
        func armWatchdog(timeout: Duration) async -> PumpCommandOutcome<Duration> { .uncertain(reason: "test") }
        func disarmWatchdog() async -> PumpCommandOutcome<Duration> { .uncertain(reason: "test") }
        func sendStopNow() -> Bool { note("stop-frame"); return true }
        func close() {}
    }

    final class SilentOximeter: PulseOximeter, @unchecked Sendable {
        let name = "silent-oximeter"
        let samples = AsyncStream<VitalSample> { _ in }
        let events = AsyncStream<OximeterOutput> { _ in }
        let connection = DeviceConnection.disconnected
        let counters = OximeterCounters()
        let latestSample: VitalSample? = nil
        func setSampleHandler(_ handler: (@Sendable (VitalSample) -> Void)?) {}
        func close() {}
    }

    @Test("a stop written after a start was decided cancels the rate and RUN still to be sent")
    func stopCancelsQueuedStart() throws {
        let pump = GatedPump()
        let wiring = try ChannelWiring(pump: pump, oximeter: SilentOximeter(), statusInterval: .seconds(60))
        defer { wiring.close() }
        let runner = try SupervisorRunner(
            configuration: .init(period: .seconds(1), realTimePriority: nil, lockMemory: false),
            channels: [wiring.channelSetup(configuration: ChannelConfiguration(channel: 0, program: try Programs.ketamine(), pumpHasWatchdog: true))],
            decisions: DecisionRing(capacity: 64))
        wiring.connect(to: runner.channels[0])  // the runner is never started: this test plays its thread

        // The supervisor's thread decides a start, then (a moment later) a stop.
        wiring.commands.submit(.start(rate: .millilitresPerHour(28), volumeLimit: .millilitres(18.67)), at: SystemMonotonicClock().now())
        #expect(waitUntil(.seconds(2)) { pump.reachedGate }, "the start sequence should be under way")
        #expect(wiring.stopPath.sendStop() == .written)
        pump.release()
        usleep(200_000)
        let calls = pump.calls.withLock { $0 }
        #expect(calls == ["volume", "stop-frame"], "after the stop, neither the rate nor RUN may be sent: \(calls)")

        // A start decided after the stop goes through whole.
        wiring.commands.submit(.start(rate: .millilitresPerHour(28), volumeLimit: .millilitres(18.67)), at: SystemMonotonicClock().now())
        #expect(waitUntil(.seconds(2)) { pump.calls.withLock { $0.count } == 3 })
        pump.release()
        #expect(waitUntil(.seconds(2)) { pump.calls.withLock { $0.last } == "start" }, "\(pump.calls.withLock { $0 })")
        #expect(pump.calls.withLock { $0 } == ["volume", "stop-frame", "volume", "rate", "start"])
    }
}
