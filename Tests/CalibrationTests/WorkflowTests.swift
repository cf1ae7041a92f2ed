import Foundation
import InfusionCore
import Testing
@testable import Calibration

@Suite("Calibration workflows in virtual time")
struct WorkflowTests {
    static func plan(_ method: GravimetricMethod = .standard(), rate: Double = 25) -> PumpCalibrationPlan {
        PumpCalibrationPlan(setRate: .millilitresPerHour(rate), method: method, density: .waterAt20C)
    }

    @Test("A full standard run in virtual time: zero, settle, start, 241 samples, pass, then stop the pump")
    func fullRunAccurate() throws {
        var workflow = try PumpCalibrationWorkflow(plan: Self.plan())
        var driver = PumpWorkflowDriver(delivery: SyntheticDelivery(rate: 25))
        let runMaybe = driver.run(&workflow)
        let run = try #require(runMaybe)
        #expect(workflow.phase == .done)
        #expect(run.samples.count == 241 && run.samples.allSatisfy { $0.grams != nil })
        #expect(run.samples.map(\.index) == Array(0...240))
        #expect(!run.isIncomplete && run.interruption == nil)
        #expect(run.verdict.outcome == .pass)
        #expect(abs(try #require(run.result).analysis.overallError.percent) < 0.05)
        #expect(run.pumpRunTime.map { $0 >= .seconds(7200) } == true)
        // Actions in order: zero, start, 241 reads, stop, finished.
        #expect(driver.actions.first == .zeroBalance)
        #expect(driver.actions[1] == .startPump(.millilitresPerHour(25)))
        #expect(driver.actions.filter { if case .readBalance = $0 { true } else { false } }.count == 241)
        #expect(driver.actions.suffix(2).first == .stopPump)
        if case .finished = driver.actions.last {} else { Issue.record("the last action is not finished") }
        // No more actions once done.
        #expect(workflow.handle(.tick(at: MonotonicInstant(nanoseconds: .max / 2))).isEmpty)
    }

    @Test("A simulated pump 6 % short fails in virtual time with ≈ −6 %")
    func fullRunShort() throws {
        var workflow = try PumpCalibrationWorkflow(plan: Self.plan())
        var driver = PumpWorkflowDriver(delivery: SyntheticDelivery(rate: 25, deliveryFactor: 0.94))
        let runMaybe = driver.run(&workflow)
        let run = try #require(runMaybe)
        #expect(run.verdict.outcome == .fail)
        #expect(abs(try #require(run.result).analysis.overallError.percent + 6) < 0.05)
    }

    @Test("Progress shows the phase, the time remaining and the samples taken")
    func progress() throws {
        var workflow = try PumpCalibrationWorkflow(plan: Self.plan(.quick()))
        var driver = PumpWorkflowDriver(delivery: SyntheticDelivery(rate: 25))
        _ = driver.run(&workflow)
        let log = driver.progressLog
        #expect(log.first?.1.phase == .setup || log.first?.1.phase == .settling)
        let settling = try #require(log.first { $0.1.phase == .settling })
        #expect(settling.1.remaining.map { $0 > .seconds(1800) && $0 <= .seconds(1830) } == true)
        // Halfway through sampling (15 min after pump start) about 15 minutes are left.
        let sampling = log.filter { $0.1.phase == .sampling }
        let start = try #require(sampling.first?.0)
        let halfway = try #require(sampling.first { $0.0 - start >= .seconds(900) })
        #expect(halfway.1.remaining.map { abs(($0 - .seconds(900)).seconds) < 1 } == true)
        #expect(abs(halfway.1.fractionComplete - 0.5) < 0.01)
        #expect(halfway.1.samplesTaken == 30 && halfway.1.samplesExpected == 61)
        #expect(halfway.1.description.contains("sampling 50 %"))
        let last = try #require(log.last)
        #expect(last.1.phase == .done && last.1.remaining == .zero && last.1.fractionComplete == 1)
    }

    @Test("Interruption: a partial run marked incomplete, samples kept, the pump stopped, never a pass")
    func interruption() throws {
        var workflow = try PumpCalibrationWorkflow(plan: Self.plan())
        // Start-up takes 2.5 s (zero) + 30 s (settling); interrupt 45 minutes in.
        var driver = PumpWorkflowDriver(delivery: SyntheticDelivery(rate: 25), interruptAt: .seconds(45 * 60))
        let runMaybe = driver.run(&workflow)
        let run = try #require(runMaybe)
        #expect(workflow.phase == .aborted)
        #expect(run.isIncomplete)
        #expect(run.verdict.outcome == .incomplete)
        #expect(run.result == nil)
        // Samples every 30 s from pump start (at 32.5 s) up to 45 min: indices 0...88.
        #expect(run.samples.count == 89 && run.samples.last?.index == 88)
        #expect(run.flow.compactMap(\.flow).count == 88)
        let interruption = try #require(run.interruption)
        #expect(interruption.requestedByOperator && interruption.phase == .sampling && interruption.reason == "operator pressed Ctrl-C")
        #expect(interruption.elapsed == .seconds(45 * 60))
        #expect(driver.actions.suffix(2).first == .stopPump)
        #expect(run.verdict.reasons.contains { $0.contains("after 89 of 241 samples") })
    }

    @Test("An interruption before the pump starts does not ask to stop it")
    func interruptionInSetup() throws {
        var workflow = try PumpCalibrationWorkflow(plan: Self.plan())
        let t = MonotonicInstant(nanoseconds: 1_000_000_000)
        #expect(workflow.handle(.start(at: t)) == [.zeroBalance])
        let actions = workflow.handle(.interrupt(at: t + .seconds(1), reason: "wrong beaker"))
        #expect(actions.count == 1)
        guard case let .finished(run) = actions.first else {
            Issue.record("expected finished")
            return
        }
        #expect(run.isIncomplete && run.samples.isEmpty && run.interruption?.phase == .setup)
    }

    @Test("A balance overload ends the run as incomplete with the balance's message")
    func overloadAborts() throws {
        var workflow = try PumpCalibrationWorkflow(plan: Self.plan())
        var driver = PumpWorkflowDriver(delivery: SyntheticDelivery(rate: 25))
        driver.reply = { index, _ in index == 50 ? .problem(.overload) : nil }
        let runMaybe = driver.run(&workflow)
        let run = try #require(runMaybe)
        #expect(workflow.phase == .aborted && run.isIncomplete)
        #expect(run.samples.count == 51 && run.samples.last?.problem == .overload)
        let reason = try #require(run.interruption?.reason)
        #expect(reason.contains("sample 50") && reason.contains("balance overload (S +)"))
        #expect(run.interruption?.requestedByOperator == false)
        #expect(driver.actions.contains(.stopPump))
    }

    @Test("A reading without a weight (S I) is recorded missing and sampling goes on")
    func noReply() throws {
        var workflow = try PumpCalibrationWorkflow(plan: Self.plan(.quick()))
        var driver = PumpWorkflowDriver(delivery: SyntheticDelivery(rate: 25))
        // The balance answers "S I" (not executable) for sample 30.
        driver.reply = { index, _ in index == 30 ? .problem(.notExecutable) : nil }
        let runMaybe = driver.run(&workflow)
        let run = try #require(runMaybe)
        #expect(run.samples.count == 61)
        #expect(run.samples[30].problem == .notExecutable && run.samples[30].grams == nil)
        #expect(run.result?.analysis.counts.missingInAnalysis == 1)
        #expect(run.flow[29].flow == nil && run.flow[30].flow == nil)
        #expect(run.verdict.outcome == .pass)  // 1 of 41 missing is within the 10 % allowance
    }

    @Test("Timing: a request unanswered past Δt/4 is recorded as no reply; a late reply is ignored; a skipped slot is not-requested")
    func timeouts() throws {
        let method = GravimetricMethod(samplingInterval: .seconds(30), duration: .seconds(120), analysisStart: .zero, observationWindows: [.seconds(60)])
        var workflow = try PumpCalibrationWorkflow(plan: PumpCalibrationPlan(setRate: .millilitresPerHour(60), method: method, settlingTime: .zero))
        let t0 = MonotonicInstant(nanoseconds: 10_000_000_000)
        #expect(workflow.handle(.start(at: t0)) == [.zeroBalance])
        #expect(workflow.handle(.balanceZeroed(at: t0)) == [.startPump(.millilitresPerHour(60))])
        #expect(workflow.handle(.pumpStarted(at: t0)) == [.readBalance(sample: 0, mode: .immediate)])
        #expect(workflow.handle(.reading(sample: 0, .weight(grams: 0, stable: true), at: t0)).isEmpty)
        #expect(workflow.nextDeadline == t0 + .seconds(30))
        #expect(workflow.handle(.tick(at: t0 + .seconds(30))) == [.readBalance(sample: 1, mode: .immediate)])
        #expect(workflow.nextDeadline == t0 + .seconds(30) + .milliseconds(7500))
        // No answer: at 38 s sample 1 is missing.
        #expect(workflow.handle(.tick(at: t0 + .seconds(38))).isEmpty)
        #expect(workflow.samples.last?.problem == .noReply)
        // The late reply is ignored.
        #expect(workflow.handle(.reading(sample: 1, .weight(grams: 0.5, stable: true), at: t0 + .seconds(39))).isEmpty)
        #expect(workflow.samples.count == 2)
        // Nobody ticks until 70 s: sample 2 (due 60 s, tolerance to 67.5 s) is not requested.
        #expect(workflow.handle(.tick(at: t0 + .seconds(70))).isEmpty)
        #expect(workflow.samples.last?.problem == .notRequested && workflow.samples.last?.index == 2)
        #expect(workflow.handle(.tick(at: t0 + .seconds(90))) == [.readBalance(sample: 3, mode: .immediate)])
        #expect(workflow.handle(.reading(sample: 3, .weight(grams: 1.5, stable: true), at: t0 + .seconds(90))).isEmpty)
        let last = workflow.handle(.tick(at: t0 + .seconds(120)))
        #expect(last == [.readBalance(sample: 4, mode: .immediate)])
        let end = workflow.handle(.reading(sample: 4, .weight(grams: 2.0, stable: true), at: t0 + .seconds(120)))
        #expect(end.first == .stopPump && end.count == 2)
        // 2 of 5 missing: fail on data, with the overall error still computed from 0 g at 0 s to 2.0 g at 120 s.
        let run = try #require(workflow.run)
        #expect(run.verdict.outcome == .fail)
        #expect(approximately(run.result?.analysis.overallError.percent, (2.0 / LiquidDensity.waterAt20C.gramsPerMillilitre * 30 - 60) / 60 * 100))
    }

    @Test("Events out of phase are ignored")
    func outOfPhase() throws {
        var workflow = try PumpCalibrationWorkflow(plan: Self.plan())
        let t = MonotonicInstant(nanoseconds: 0)
        #expect(workflow.handle(.reading(sample: 0, .weight(grams: 1, stable: true), at: t)).isEmpty)
        #expect(workflow.handle(.pumpStarted(at: t)).isEmpty)
        #expect(workflow.handle(.balanceZeroed(at: t)).isEmpty)
        #expect(workflow.phase == .setup)
        #expect(throws: CalibrationInputError.self) { try PumpCalibrationWorkflow(plan: Self.plan(rate: 0)) }
    }

    // MARK: Oximeter

    /// Drives an oximeter verification: applies each set point after `operatorDelay`, then feeds one
    /// reading per second from a simulated oximeter that reads `offset` above the set point and misses
    /// every tenth SpO2.
    static func driveOximeter(_ workflow: inout OximeterVerificationWorkflow, offset: Double = 1,
                              interruptAt: Duration? = nil) -> (OximeterVerificationRun?, [CalibrationProgress]) {
        let clock = VirtualClock(start: MonotonicInstant(nanoseconds: 1_000_000_000))
        let origin = clock.now()
        var progress: [CalibrationProgress] = []
        var pending = workflow.handle(.start(at: clock.now()))
        var current: OximeterSetPoint?
        var second = 0
        while !workflow.phase.isFinal, second < 10_000 {
            for action in pending {
                if case let .applySetPoint(index, point) = action {
                    clock.advance(by: .seconds(5))  // the operator turns the simulator's knob
                    current = point
                    pending = workflow.handle(.setPointApplied(index: index, at: clock.now()))
                    continue
                }
            }
            if pending.contains(where: { if case .applySetPoint = $0 { true } else { false } }) { continue }
            clock.advance(by: .seconds(1))
            second += 1
            if let interruptAt, clock.now() - origin >= interruptAt {
                pending = workflow.handle(.interrupt(at: clock.now(), reason: "simulator battery low"))
                break
            }
            let missing = second.isMultiple(of: 10)
            let sample = VitalSample(arrivedAt: clock.now(), spo2: missing ? nil : current.map { .percent($0.spo2.percent + offset) },
                                     pulseRate: current?.pulseRate)
            pending = workflow.handle(.reading(sample))
            progress.append(workflow.progress(at: clock.now()))
        }
        return (workflow.run, progress)
    }

    @Test("Oximeter verification in virtual time: readings only inside each window, A_rms, pass")
    func oximeterRun() throws {
        var workflow = try OximeterVerificationWorkflow(plan: OximeterVerificationPlan())
        let (maybeRun, progress) = Self.driveOximeter(&workflow)
        let run = try #require(maybeRun)
        #expect(workflow.phase == .done && !run.isIncomplete)
        #expect(run.collections.count == 10 && run.collections.allSatisfy(\.isComplete))
        // 30 s windows at 1 Hz: 30 (or 31 at the boundary) readings, none from the settling time.
        for collection in run.collections {
            #expect((29...31).contains(collection.readings.count))
            #expect(collection.readings.allSatisfy { $0.spo2 == nil || $0.spo2 == .percent(collection.setPoint.spo2.percent + 1) })
        }
        let result = try #require(run.result)
        // Every usable reading is 1 % high: A_rms = 1 %, bias +1 %; the missing SpO2s are counted.
        #expect(approximately(result.analysis.arms?.percent, 1))
        #expect(approximately(result.analysis.meanBias?.percent, 1))
        #expect(result.analysis.excludedReadings > 0)
        #expect(run.verdict.outcome == .pass)
        #expect(progress.contains { $0.phase == .settling } && progress.contains { $0.phase == .sampling })
        let early = try #require(progress.first)
        #expect(early.remaining.map { $0 > .seconds(500) } == true)
    }

    @Test("Oximeter reading 5 % high fails the 4 % A_rms claim")
    func oximeterFails() throws {
        var workflow = try OximeterVerificationWorkflow(plan: OximeterVerificationPlan())
        let run = try #require(Self.driveOximeter(&workflow, offset: 5).0)
        #expect(run.verdict.outcome == .fail)
        #expect(approximately(run.result?.analysis.arms?.percent, 5))
    }

    @Test("Interrupting a verification keeps the readings, analyses completed points, and is incomplete")
    func oximeterInterrupted() throws {
        var workflow = try OximeterVerificationWorkflow(plan: OximeterVerificationPlan())
        let run = try #require(Self.driveOximeter(&workflow, interruptAt: .seconds(200)).0)
        #expect(workflow.phase == .aborted && run.isIncomplete && run.verdict.outcome == .incomplete)
        #expect(run.interruption?.reason == "simulator battery low" && run.interruption?.requestedByOperator == true)
        let complete = run.collections.filter(\.isComplete)
        #expect(complete.count == 3)
        #expect(run.collections.count >= complete.count)
        #expect(run.result?.analysis.points.count == 3)
    }
}

/// Drives a pump workflow in virtual time against a synthetic delivery, carrying out its actions the way
/// the CLI will: zero → `balanceZeroed`, start → `pumpStarted`, read → `reading` after `replyDelay`.
/// `reply` can replace the balance's answer for a sample (faults); `interruptAt` sends an interrupt at
/// that time after the start.
struct PumpWorkflowDriver {
    var delivery: SyntheticDelivery
    var replyDelay: Duration = .milliseconds(150)
    var reply: (Int, Double) -> BalanceReading? = { _, _ in nil }
    var interruptAt: Duration?
    var progressLog: [(Duration, CalibrationProgress)] = []
    var actions: [PumpCalibrationAction] = []

    mutating func run(_ workflow: inout PumpCalibrationWorkflow) -> PumpCalibrationRun? {
        let clock = VirtualClock(start: MonotonicInstant(nanoseconds: 5_000_000_000))
        let origin = clock.now()
        var generator = SplitMix64(seed: delivery.seed)
        var pumpStart: MonotonicInstant?
        var queue: [PumpCalibrationEvent] = [.start(at: clock.now())]
        var steps = 0
        while !workflow.phase.isFinal, steps < 100_000 {
            steps += 1
            if let interruptAt, clock.now() - origin >= interruptAt {
                actions += workflow.handle(.interrupt(at: clock.now(), reason: "operator pressed Ctrl-C"))
                break
            }
            if queue.isEmpty {
                guard let deadline = workflow.nextDeadline else { break }
                if let interruptAt, deadline - origin > interruptAt {
                    clock.advance(to: origin + interruptAt)
                    continue
                }
                clock.advance(to: deadline)
                queue.append(.tick(at: clock.now()))
            }
            let event = queue.removeFirst()
            let produced = workflow.handle(event)
            actions += produced
            for action in produced {
                switch action {
                case .zeroBalance:
                    clock.advance(by: .seconds(2))
                    queue.append(.balanceZeroed(at: clock.now()))
                case .startPump:
                    clock.advance(by: .milliseconds(500))
                    pumpStart = clock.now()
                    queue.append(.pumpStarted(at: clock.now()))
                case let .readBalance(index, _):
                    clock.advance(by: replyDelay)
                    let t = pumpStart.map { clock.now() - $0 } ?? .zero
                    let grams = delivery.reading(at: t, using: &generator)
                    queue.append(.reading(sample: index, reply(index, grams) ?? .weight(grams: grams, stable: true), at: clock.now()))
                case .stopPump, .finished:
                    break
                }
            }
            progressLog.append((clock.now() - origin, workflow.progress(at: clock.now())))
        }
        return workflow.run
    }
}
