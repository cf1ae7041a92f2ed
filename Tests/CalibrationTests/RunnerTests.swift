import Foundation
import InfusionCore
import Synchronization
import Testing
@testable import Calibration

/// In-test device doubles behind the abstract interfaces (not simulators: numbers only).
final class FakeRig: Sendable {
    struct State {
        var pumpStart: MonotonicInstant?
        var stops = 0
        var generator = SplitMix64(seed: 7)
        var refuseZero = false
    }

    let clock = VirtualClock(start: MonotonicInstant(nanoseconds: 1_000_000_000))
    let delivery: SyntheticDelivery
    let state = Mutex(State())

    init(delivery: SyntheticDelivery, refuseZero: Bool = false) {
        self.delivery = delivery
        state.withLock { $0.refuseZero = refuseZero }
    }
}

struct FakeZeroRefused: Error, CustomStringConvertible {
    var description: String { "zero refused (Z I): the reading is not stable; shield the balance from drafts" }
}

struct FakeBalance: CalibrationBalance {
    let rig: FakeRig
    func zero() async throws {
        rig.clock.advance(by: .seconds(1))
        if rig.state.withLock({ $0.refuseZero }) { throw FakeZeroRefused() }
    }

    func weigh(_ mode: WeighingMode) async -> BalanceReading {
        rig.clock.advance(by: .milliseconds(120))
        let now = rig.clock.now()
        return rig.state.withLock { state in
            let t = state.pumpStart.map { now - $0 } ?? .zero
            return .weight(grams: rig.delivery.reading(at: t, using: &state.generator), stable: mode == .stable)
        }
    }
}

struct FakePump: CalibrationPump {
    let rig: FakeRig
    func start(at rate: VolumeRate) async throws {
        rig.clock.advance(by: .milliseconds(300))
        let now = rig.clock.now()
        rig.state.withLock { $0.pumpStart = now }
    }

    func stop() async { rig.state.withLock { $0.stops += 1 } }
}

@Suite("Pump calibration runner over the abstract device interfaces, in virtual time")
struct RunnerTests {
    static func runner(_ rig: FakeRig, cancelAfter: Duration? = nil) -> PumpCalibrationRunner<FakeBalance, FakePump> {
        let clock = rig.clock
        let origin = clock.now()
        return PumpCalibrationRunner(balance: FakeBalance(rig: rig), pump: FakePump(rig: rig), clock: clock) { until in
            // Task.sleep throws CancellationError when the task is cancelled; model Ctrl-C at `cancelAfter`.
            if let cancelAfter, until - origin > cancelAfter {
                clock.advance(to: origin + cancelAfter)
                throw CancellationError()
            }
            clock.advance(to: until)
        }
    }

    @Test("A quick calibration through the runner passes for an accurate pump and stops it once")
    func quickRun() async throws {
        let rig = FakeRig(delivery: SyntheticDelivery(rate: 5))
        let workflow = try PumpCalibrationWorkflow(plan: PumpCalibrationPlan(setRate: .millilitresPerHour(5), method: .quick()))
        var updates = 0
        let run = try #require(await Self.runner(rig).run(workflow) { _ in updates += 1 })
        #expect(run.verdict.outcome == .pass && run.samples.count == 61 && !run.isIncomplete)
        #expect(rig.state.withLock { $0.stops } == 1)
        #expect(updates > 61)
    }

    @Test("The runner reports a pump 6 % short as a failure of about −6 %")
    func shortPump() async throws {
        let rig = FakeRig(delivery: SyntheticDelivery(rate: 25, deliveryFactor: 0.94))
        let workflow = try PumpCalibrationWorkflow(plan: PumpCalibrationPlan(setRate: .millilitresPerHour(25), method: .standard()))
        let run = try #require(await Self.runner(rig).run(workflow))
        #expect(run.verdict.outcome == .fail)
        #expect(abs(try #require(run.result?.analysis.overallError.percent) + 6) < 0.05)
    }

    @Test("Cancellation interrupts cleanly: the pump is stopped and the partial run is incomplete")
    func cancellation() async throws {
        let rig = FakeRig(delivery: SyntheticDelivery(rate: 25))
        let workflow = try PumpCalibrationWorkflow(plan: PumpCalibrationPlan(setRate: .millilitresPerHour(25), method: .standard()))
        let run = try #require(await Self.runner(rig, cancelAfter: .seconds(600)).run(workflow))
        #expect(run.isIncomplete && run.verdict.outcome == .incomplete)
        #expect(run.interruption?.reason == "cancelled by the operator")
        #expect(run.samples.count == 19)  // pump started at 31.3 s; samples at 31.3 + 30k s up to 600 s
        #expect(rig.state.withLock { $0.stops } == 1)
    }

    @Test("A balance that refuses to zero aborts before the pump starts, with the balance's message")
    func zeroRefused() async throws {
        let rig = FakeRig(delivery: SyntheticDelivery(rate: 25), refuseZero: true)
        let workflow = try PumpCalibrationWorkflow(plan: PumpCalibrationPlan(setRate: .millilitresPerHour(25), method: .quick()))
        let run = try #require(await Self.runner(rig).run(workflow))
        #expect(run.isIncomplete && run.samples.isEmpty)
        #expect(run.interruption?.reason.contains("could not be zeroed: zero refused (Z I)") == true)
        #expect(rig.state.withLock { $0.pumpStart == nil && $0.stops == 0 })
    }
}
