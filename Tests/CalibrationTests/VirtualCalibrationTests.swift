import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Records
import Testing
@testable import Calibration

// MARK: - The virtual rig: the real New Era and MT-SICS drivers ⇄ their simulators, world coupling

/// Everything on one `VirtualNetwork`: `NewEraPump` (its `NewEraSession`) ⇄ `NewEraSimulatedPump` at
/// 19200 bit/s (its `accuracy` set to the delivery factor), `MTSICSBalance` (its `MTSICSSession`) ⇄ `SimulatedBalance` at 9600 bit/s, and the shared
/// world (every second the balance weighs what the pump actually delivered). The driver classes are the
/// production ones, run by `VirtualEndpointRunner`s. Driven from the test's task only, one call at a time
/// (hence `@unchecked Sendable`: the network is single-threaded).
final class VirtualCalibrationRig: @unchecked Sendable {
    typealias Pump = NewEraSimulatedPump
    let clock = VirtualClock(start: .origin + .seconds(1000))
    let network: VirtualNetwork
    let pump: NewEraPump
    let balance: MTSICSBalance
    let balanceSim: VirtualNetwork.NodeID
    let pumpSim: VirtualNetwork.NodeID
    /// Commands the simulated pump obeyed, in order ("0RAT25.00MH", "0STP"; status queries left out).
    let pumpCommands = CommandLog()
    private var couplingDue: MonotonicInstant

    /// `deliveryFactor`: what the pump really delivers ÷ what it is commanded (0.94: 6 % short).
    init(deliveryFactor: Double) {
        let network = VirtualNetwork(clock: clock)
        self.network = network
        let (balance, balanceRunner) = MTSICSBalance.virtual(name: "balance0", network: network)
        self.balance = balance
        balanceSim = network.add(SimulatedBalance())
        network.connect(balanceRunner.node, balanceSim, bitsPerSecond: 9600)
        let (pump, pumpRunner) = NewEraPump.virtual(name: "pump0", network: network)
        self.pump = pump
        couplingDue = clock.now()
        let log = pumpCommands
        var simulated = NewEraSimulatedPump()
        if deliveryFactor != 1 {
            _ = try? simulated.inject(FaultCommand(name: "accuracy", arguments: ["\(deliveryFactor)"]), at: clock.now())
        }
        pumpSim = network.add(simulated) { event in
            if case let .command(text, _) = event, text.count > 1 { log.lines.append(text) }
        }
        network.connect(pumpRunner.node, pumpSim, bitsPerSecond: 19200)
        let (pumpID, balanceID) = (pumpSim, balanceSim)
        network.addTimer(deadline: { [unowned self] in couplingDue }, tick: { [unowned self] now in
            let delivered = network.perform(pumpID, as: Pump.self) { pump, now, _ in
                pump.update(to: now)
                return pump.totalVolumeDelivered
            } ?? .zero
            network.perform(balanceID, as: SimulatedBalance.self) { balance, now, _ in balance.update(deliveredVolume: delivered, at: now) }
            couplingDue = now + .seconds(1)
        })
    }

    /// The simulated pump's state.
    var simulatedPump: NewEraSimulatedPump? { network.perform(pumpSim, as: Pump.self) { pump, _, _ in pump } }

    /// What the simulated pump itself believes it delivered, and what actually left it.
    var pumpVolumes: (believed: Volume, actual: Volume) {
        network.perform(pumpSim, as: Pump.self) { pump, now, _ in
            pump.update(to: now)
            return (Volume(pump.infusedMillilitres, .millilitres), pump.totalVolumeDelivered)
        } ?? (.zero, .zero)
    }

    /// The calibration runner on the production adapters: `MTSICSBalance` as `CalibrationBalance`,
    /// `InfusionPumpUnderTest(NewEraPump)` as `CalibrationPump`; sleeping runs the network.
    func runner() -> PumpCalibrationRunner<MTSICSBalance, InfusionPumpUnderTest> {
        PumpCalibrationRunner(balance: balance, pump: InfusionPumpUnderTest(pump), clock: clock) { [self] until in
            network.run(until: until)
        }
    }
}

/// Lines logged by a simulator.
final class CommandLog {
    var lines: [String] = []
}

/// A timer that fires once.
final class OneShot {
    var due: MonotonicInstant?
    init(at due: MonotonicInstant) { self.due = due }
}

@Suite("Full gravimetric calibration in virtual time: drivers ⇄ simulators, world coupling, storage, reports")
struct VirtualCalibrationTests {
    /// Runs the standard two-hour IEC 60601-2-24 calibration at 25 mL/h and stores and reports it.
    static func calibrate(deliveryFactor: Double, serial: String, store: RecordStore, reports: URL)
        async throws -> (record: PumpCalibrationRecord, rig: VirtualCalibrationRig) {
        let rig = VirtualCalibrationRig(deliveryFactor: deliveryFactor)
        let balanceIdentity = try await rig.balance.identify()
        guard case let .confirmed(pumpIdentity) = await rig.pump.identify() else {
            Issue.record("the simulated New Era pump did not identify itself")
            throw CancellationError()
        }
        #expect(pumpIdentity.model == "NE1000")
        let liquid = try TestLiquid.water(celsius: 20)
        let plan = PumpCalibrationPlan(setRate: .millilitresPerHour(25), method: .standard(), density: liquid.density)
        var last: CalibrationProgress?
        let run = try #require(await rig.runner().run(try PumpCalibrationWorkflow(plan: plan)) { last = $0 })
        #expect(last?.phase.isFinal == true && last?.remaining == .zero)
        let record = try PumpCalibrationRecord(
            pump: try DeviceIdentity(kind: .pump, manufacturer: "New Era", model: pumpIdentity.model, serialNumber: serial, protocolName: "newera"),
            balance: try DeviceIdentity(kind: .balance, manufacturer: "Mettler Toledo", model: balanceIdentity.model,
                                        serialNumber: balanceIdentity.serialNumber, protocolName: "mt-sics"),
            operatorName: "tech-7", performedAt: Date(timeIntervalSince1970: 1_800_000_000), liquid: liquid, run: run)
        try store.save(record)
        let html = reports.appendingPathComponent("\(serial).html"), csv = reports.appendingPathComponent("\(serial)-samples.csv")
        try CalibrationReport.html(record).write(to: html, atomically: true, encoding: .utf8)
        try CalibrationReport.samplesCSV(record).write(to: csv, atomically: true, encoding: .utf8)
        return (record, rig)
    }

    @Test("Passes for an accurate pump and fails for one delivering 6 % less; both stored and reported")
    func acceptance() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("virtual-calibration-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try RecordStore.open(path: folder.appendingPathComponent("records.sqlite").path)

        let wall = ContinuousClock()
        let started = wall.now
        let (good, goodRig) = try await Self.calibrate(deliveryFactor: 1.0, serial: "PUMP-GOOD", store: store, reports: folder)
        #expect(good.verdict.outcome == .pass, "\(good.verdict)")
        #expect(!good.isIncomplete && good.run.samples.count == 241)
        #expect(good.run.samples.allSatisfy { $0.grams != nil })
        let goodError = try #require(good.run.result?.analysis.overallError.percent)
        #expect(abs(goodError) < 0.1)
        // The pump ran two hours at 25 mL/h: 50 mL (plus the last interval's few seconds before the stop).
        #expect(abs(goodRig.pumpVolumes.actual.millilitres - 50) < 0.1)
        #expect(goodRig.clock.now() - (.origin + .seconds(1000)) >= .seconds(7200))
        let goodWall = wall.now - started

        let (short, shortRig) = try await Self.calibrate(deliveryFactor: 0.94, serial: "PUMP-SHORT", store: store, reports: folder)
        #expect(short.verdict.outcome == .fail, "\(short.verdict)")
        #expect(shortRig.simulatedPump?.deliveryFactor == 0.94)
        let shortError = try #require(short.run.result?.analysis.overallError.percent)
        #expect(abs(shortError + 6) < 0.1)
        #expect(abs(shortRig.pumpVolumes.believed.millilitres - 50) < 0.1 && abs(shortRig.pumpVolumes.actual.millilitres - 47) < 0.1)

        // Both records are stored and come back identical.
        let stored = try store.calibrations()
        #expect(stored.map(\.deviceSerial) == ["PUMP-GOOD", "PUMP-SHORT"])
        #expect(stored.map(\.outcome) == [.pass, .fail])
        #expect(try stored[0].pumpCalibrationRecord() == good)
        #expect(try store.calibrations(deviceSerial: "PUMP-SHORT").first?.pumpCalibrationRecord() == short)
        // And reported.
        let report = try String(contentsOf: folder.appendingPathComponent("PUMP-SHORT.html"), encoding: .utf8)
        #expect(report.contains("FAIL") && report.contains("<svg"))
        let csv = try String(contentsOf: folder.appendingPathComponent("PUMP-GOOD-samples.csv"), encoding: .utf8)
        #expect(csv.split(separator: "\n").count >= 242)
        try store.close()
        print("virtual calibration (real New Era + MT-SICS drivers ⇄ simulators): 2 h runs took \(goodWall) and \(wall.now - started - goodWall) of real time")
        print("virtual calibration: accurate pump \(good.verdict.outcome) overall error \(goodError) %; 6 % short pump \(short.verdict.outcome) overall error \(shortError) %")
    }

    @Test("A balance that overloads mid-run aborts the run as incomplete, with the pump stopped and the samples kept")
    func overloadMidRun() async throws {
        let rig = VirtualCalibrationRig(deliveryFactor: 1)
        let plan = PumpCalibrationPlan(setRate: .millilitresPerHour(25), method: .quick())
        let runner = rig.runner()
        let fault = OneShot(at: rig.clock.now() + .seconds(600))
        rig.network.addTimer(deadline: { fault.due }, tick: { _ in
            fault.due = nil
            _ = rig.network.perform(rig.balanceSim, as: SimulatedBalance.self) { balance, now, _ in
                try? balance.inject(FaultCommand(name: "overload"), at: now)
            }
        })
        let run = try #require(await runner.run(try PumpCalibrationWorkflow(plan: plan)))
        #expect(run.isIncomplete && run.verdict.outcome == .incomplete)
        #expect(run.samples.last?.problem == .overload)
        // The runner stopped the real pump: STP obeyed, and the simulated pump is no longer infusing.
        #expect(rig.pumpCommands.lines.last == "0STP")
        #expect(rig.simulatedPump?.prompt.isPumping == false)
    }
}
