import DeviceIO
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Synchronization
import Testing
@testable import Calibration

/// `OximeterVerificationRunner` with the production Nonin driver over a real pty, the simulated Nonin's
/// SpO2 simulator commanded at each set point (the remote-controlled simulator path).
@Suite("Oximeter verification runner: Nonin driver ⇄ simulated Nonin over a real pty")
struct OximeterRunnerPTYTests {
    static let plan = OximeterVerificationPlan(
        setPoints: [OximeterSetPoint(spo2: .percent(88), pulseRate: .beatsPerMinute(70)),
                    OximeterSetPoint(spo2: .percent(95), pulseRate: .beatsPerMinute(110))],
        settlingTime: .milliseconds(700), collectionWindow: .milliseconds(1500),
        claim: OximeterClaim(minimumValidReadings: 2))

    /// Counts the set points applied.
    final class Counter: Sendable {
        private let value = Mutex(0)
        func increment() { value.withLock { $0 += 1 } }
        var count: Int { value.withLock { $0 } }
    }

    static func runner(_ sim: PTYSimulator<SimulatedNonin<NoninDF2Kind>>, oximeter: any PulseOximeter,
                       applied: Counter = Counter()) -> OximeterVerificationRunner {
        let clock = SystemMonotonicClock()
        return OximeterVerificationRunner(oximeter: oximeter, clock: clock, pollInterval: .milliseconds(50), applySetPoint: { _, point in
            let arguments = [String(Int(point.spo2.percent)), String(Int(point.pulseRate.beatsPerMinute))]
            _ = sim.hosted.inject(FaultCommand(name: "spo2-sim", arguments: arguments))
            applied.increment()
        }, sleep: { until in
            let wait = until - clock.now()
            if wait > .zero { try await Task.sleep(for: wait) }
        })
    }

    @Test("An accurate oximeter passes with zero bias at every set point, readings collected in each window")
    func passes() async throws {
        let sim = PTYSimulator(SimulatedNonin<NoninDF2Kind>(), role: .oximeter)
        let oximeter = makePulseOximeter(protocol: .noninDF2, path: sim.path)
        defer { oximeter.close() }
        var phases: [CalibrationPhase] = []
        let workflow = try OximeterVerificationWorkflow(plan: Self.plan)
        let finished = await Self.runner(sim, oximeter: oximeter).run(workflow) { progress in
            if phases.last != progress.phase { phases.append(progress.phase) }
        }
        let run = try #require(finished)
        #expect(run.verdict.outcome == .pass, "\(run.verdict)")
        #expect(!run.isIncomplete && run.collections.count == 2 && run.collections.allSatisfy { $0.isComplete && $0.readings.count >= 2 })
        let analysis = try #require(run.result?.analysis)
        #expect(analysis.arms == .percent(0) && analysis.points.count == 2)
        #expect(phases.contains(.settling) && phases.contains(.sampling) && phases.last == .done)
    }

    @Test("Cancelling the task during the second set point keeps the first as a complete collection, marked incomplete")
    func cancelled() async throws {
        let sim = PTYSimulator(SimulatedNonin<NoninDF2Kind>(), role: .oximeter)
        let oximeter = makePulseOximeter(protocol: .noninDF2, path: sim.path)
        defer { oximeter.close() }
        let applied = Counter()
        let runner = Self.runner(sim, oximeter: oximeter, applied: applied)
        let workflow = try OximeterVerificationWorkflow(plan: Self.plan)
        let task = Task { await runner.run(workflow) }
        let deadline = ContinuousClock.now + .seconds(10)
        while applied.count < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        task.cancel()
        let run = try #require(await task.value)
        #expect(run.isIncomplete && run.verdict.outcome == .incomplete)
        #expect(run.interruption?.requestedByOperator == true)
        #expect(run.collections.first?.isComplete == true && (run.collections.first?.readings.count ?? 0) >= 2)
    }
}
