import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Records
import Testing
@testable import Calibration

// MARK: - A minimal pump pair, until the New Era driver and simulator land on main
//
// NOTE: stand-ins for the New Era driver (issue 4) and its simulator, which were not on main when this
// was written. Line protocol: "RAT <mL/h>" / "RUN" / "STP", each answered "OK" (or "NA" when refused).
// Replace with the New Era session and simulator when they land.

/// A simulated pump that delivers at its set rate while running; integrates every 100 ms.
struct LinePumpSimulator: SimulatedDevice, DeliveringDevice {
    typealias Output = String
    static let kind = "line-pump"
    static let faultHelp: [String] = []

    var rate = 0.0  // mL/h
    var running = false
    var delivered = 0.0  // mL
    var lastUpdate: MonotonicInstant?
    var buffer: [UInt8] = []

    var totalVolumeDelivered: Volume { .millilitres(delivered) }
    var nextDeadline: MonotonicInstant? { running ? lastUpdate.map { $0 + .milliseconds(100) } : nil }

    mutating func integrate(to now: MonotonicInstant) {
        if running, let lastUpdate, now > lastUpdate { delivered += rate * (now - lastUpdate).hours }
        lastUpdate = now
    }

    mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<String>) { integrate(to: now) }
    mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<String>) { integrate(to: now) }
    mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<String>) { integrate(to: now) }

    mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<String>) {
        integrate(to: now)
        buffer += bytes
        while let end = buffer.firstIndex(of: 0x0D) {
            let line = String(decoding: buffer[..<end], as: UTF8.self)
            buffer.removeSubrange(...end)
            var reply = "OK"
            if line.hasPrefix("RAT "), let value = Double(line.dropFirst(4)), value > 0 { rate = value }
            else if line == "RUN", rate > 0 { running = true }
            else if line == "STP" { running = false }
            else { reply = "NA" }
            effects.send(Array((reply + "\r").utf8))
            effects.emit("\(line) -> \(reply)")
        }
    }

    mutating func inject(_ fault: FaultCommand, at now: MonotonicInstant) throws(FaultError) -> String {
        throw FaultError("no faults")
    }
}

/// The driver side of the line pump: one outstanding command, 1 s deadline.
struct LinePumpSession: LinkEndpoint {
    enum Output: Sendable, Equatable { case done(id: UInt64, ok: Bool?) }  // nil: no reply
    var outstanding: (id: UInt64, deadline: MonotonicInstant)?
    var buffer: [UInt8] = []
    var nextDeadline: MonotonicInstant? { outstanding?.deadline }

    mutating func submit(_ line: String, id: UInt64, at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        outstanding = (id, now + .seconds(1))
        effects.send(Array((line + "\r").utf8))
    }
    mutating func linkUp(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {}
    mutating func linkDown(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {}
    mutating func receive(_ bytes: [UInt8], at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        buffer += bytes
        while let end = buffer.firstIndex(of: 0x0D) {
            let line = String(decoding: buffer[..<end], as: UTF8.self)
            buffer.removeSubrange(...end)
            if let current = outstanding { outstanding = nil; effects.emit(.done(id: current.id, ok: line == "OK")) }
        }
    }
    mutating func tick(at now: MonotonicInstant, effects: inout EndpointEffects<Output>) {
        if let current = outstanding, now >= current.deadline { outstanding = nil; effects.emit(.done(id: current.id, ok: nil)) }
    }
}

// MARK: - The virtual rig: pump driver ⇄ simulated pump, balance driver ⇄ simulated balance, world coupling

/// Completions published by the two drivers.
final class RigOutbox {
    var balance: [UInt64: MTSICSOutcome] = [:]
    var pump: [UInt64: Bool?] = [:]
    var pumpLog: [String] = []
}

/// Everything on one `VirtualNetwork`, driven from the runner's task only (hence `@unchecked Sendable`:
/// the network is single-threaded and only the test's task touches it, one call at a time).
final class VirtualCalibrationRig: @unchecked Sendable {
    typealias Pump = ScaledDelivery<LinePumpSimulator>
    let clock = VirtualClock(start: .origin + .seconds(1000))
    let network: VirtualNetwork
    let outbox = RigOutbox()
    let balanceDriver: VirtualNetwork.NodeID
    let balanceSim: VirtualNetwork.NodeID
    let pumpDriver: VirtualNetwork.NodeID
    let pumpSim: VirtualNetwork.NodeID
    private var nextID: UInt64 = 1
    private var couplingDue: MonotonicInstant

    /// `deliveryFactor`: what the pump really delivers ÷ what it is commanded (0.94: 6 % short).
    init(deliveryFactor: Double) {
        let network = VirtualNetwork(clock: clock)
        let outbox = self.outbox
        self.network = network
        balanceDriver = network.add(MTSICSSession()) { output in
            if case let .completed(id, _, outcome) = output { outbox.balance[id] = outcome }
        }
        balanceSim = network.add(SimulatedBalance())
        pumpDriver = network.add(LinePumpSession()) { output in
            if case let .done(id, ok) = output { outbox.pump[id] = ok }
        }
        pumpSim = network.add(ScaledDelivery(LinePumpSimulator(), factor: deliveryFactor)) { outbox.pumpLog.append($0) }
        network.connect(balanceDriver, balanceSim, bitsPerSecond: 9600)
        network.connect(pumpDriver, pumpSim, bitsPerSecond: 19200)
        // The shared world: every second the balance weighs what the pump actually delivered.
        couplingDue = clock.now()
        let (pumpID, balanceID) = (pumpSim, balanceSim)
        network.addTimer(deadline: { [unowned self] in couplingDue }, tick: { [unowned self] now in
            let delivered = network.perform(pumpID, as: Pump.self) { pump, _, _ in pump.totalVolumeDelivered } ?? .zero
            network.perform(balanceID, as: SimulatedBalance.self) { balance, now, _ in balance.update(deliveredVolume: delivered, at: now) }
            couplingDue = now + .seconds(1)
        })
    }

    /// What the simulated pump itself believes it delivered, and what actually left it.
    var pumpVolumes: (believed: Volume, actual: Volume) {
        network.perform(pumpSim, as: Pump.self) { pump, _, _ in (pump.device.totalVolumeDelivered, pump.totalVolumeDelivered) }
            ?? (.zero, .zero)
    }

    func balanceExchange(_ command: MTSICSCommand) -> MTSICSOutcome {
        let id = takeID()
        network.perform(balanceDriver, as: MTSICSSession.self) { session, now, effects in session.submit(command, id: id, at: now, effects: &effects) }
        while outbox.balance[id] == nil, let next = network.nextEventTime() { network.run(until: next) }
        return outbox.balance[id] ?? .linkLost
    }

    func pumpCommand(_ line: String) -> Bool? {
        let id = takeID()
        network.perform(pumpDriver, as: LinePumpSession.self) { session, now, effects in session.submit(line, id: id, at: now, effects: &effects) }
        while outbox.pump[id] == nil, let next = network.nextEventTime() { network.run(until: next) }
        return outbox.pump[id] ?? nil
    }

    private func takeID() -> UInt64 {
        defer { nextID += 1 }
        return nextID
    }
}

/// The balance driver session as the runner's balance, in virtual time.
struct VirtualBalance: CalibrationBalance {
    let rig: VirtualCalibrationRig
    func zero() async throws {
        let outcome = rig.balanceExchange(.zero)
        if let kind = MTSICSBalanceError.Kind(outcome: outcome) { throw MTSICSBalanceError(device: "balance0", command: .zero, kind: kind) }
    }
    func weigh(_ mode: WeighingMode) async -> BalanceReading {
        BalanceReading(mtsicsOutcome: rig.balanceExchange(mode.mtsicsCommand), device: "balance0", command: mode.mtsicsCommand)
    }
}

/// The line-pump driver session as the runner's pump, in virtual time.
struct VirtualPump: CalibrationPump {
    let rig: VirtualCalibrationRig
    func start(at rate: VolumeRate) async throws {
        guard rig.pumpCommand("RAT \(rate.millilitresPerHour)") == true, rig.pumpCommand("RUN") == true else {
            throw CalibrationPumpError("the pump did not confirm the rate and start")
        }
    }
    func stop() async { _ = rig.pumpCommand("STP") }
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
        guard case let .response(.serialNumber(balanceSerial)) = rig.balanceExchange(.serialNumber),
              case let .response(.information(_, data)) = rig.balanceExchange(.balanceData) else {
            Issue.record("balance identity")
            throw CancellationError()
        }
        let liquid = try TestLiquid.water(celsius: 20)
        let plan = PumpCalibrationPlan(setRate: .millilitresPerHour(25), method: .standard(), density: liquid.density)
        let runner = PumpCalibrationRunner(balance: VirtualBalance(rig: rig), pump: VirtualPump(rig: rig), clock: rig.clock) { until in
            rig.network.run(until: until)
        }
        var last: CalibrationProgress?
        let run = try #require(await runner.run(try PumpCalibrationWorkflow(plan: plan)) { last = $0 })
        #expect(last?.phase.isFinal == true && last?.remaining == .zero)
        let record = try PumpCalibrationRecord(
            pump: try DeviceIdentity(kind: .pump, manufacturer: "Test", model: "LinePump", serialNumber: serial, protocolName: "line-pump"),
            balance: try DeviceIdentity(kind: .balance, manufacturer: "Mettler Toledo", model: data.first ?? "?", serialNumber: balanceSerial,
                                        protocolName: "mt-sics"),
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

        let (good, goodRig) = try await Self.calibrate(deliveryFactor: 1.0, serial: "PUMP-GOOD", store: store, reports: folder)
        #expect(good.verdict.outcome == .pass, "\(good.verdict)")
        #expect(!good.isIncomplete && good.run.samples.count == 241)
        #expect(good.run.samples.allSatisfy { $0.grams != nil })
        let goodError = try #require(good.run.result?.analysis.overallError.percent)
        #expect(abs(goodError) < 0.1)
        // The pump ran two hours at 25 mL/h: 50 mL (plus the last interval's few seconds before the stop).
        #expect(abs(goodRig.pumpVolumes.actual.millilitres - 50) < 0.1)

        let (short, shortRig) = try await Self.calibrate(deliveryFactor: 0.94, serial: "PUMP-SHORT", store: store, reports: folder)
        #expect(short.verdict.outcome == .fail, "\(short.verdict)")
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
        print("virtual calibration: accurate pump \(good.verdict.outcome) overall error \(goodError) %; 6 % short pump \(short.verdict.outcome) overall error \(shortError) %")
    }

    @Test("A balance that overloads mid-run aborts the run as incomplete, with the pump stopped and the samples kept")
    func overloadMidRun() async throws {
        let rig = VirtualCalibrationRig(deliveryFactor: 1)
        let plan = PumpCalibrationPlan(setRate: .millilitresPerHour(25), method: .quick())
        let runner = PumpCalibrationRunner(balance: VirtualBalance(rig: rig), pump: VirtualPump(rig: rig), clock: rig.clock) { until in
            rig.network.run(until: until)
        }
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
        #expect(rig.outbox.pumpLog.last == "STP -> OK")
    }
}
