import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Testing

/// The public MT-SICS driver against the simulated balance hosted on a real pseudo-terminal, as
/// `infusion-sim --balance mt-sics` runs it. Short time-outs keep each test well under a second.
final class PTYBalanceRig: Sendable {
    let simulator: EndpointHost<SimulatedBalance>
    let balance: MTSICSBalance
    let pty: PseudoTerminal

    init(_ configuration: SimulatedBalance.Configuration = PTYBalanceRig.fastBalance,
         session: MTSICSSession.Configuration = MTSICSSession.Configuration(replyTimeout: .milliseconds(300),
                                                                            stableReplyTimeout: .seconds(1))) throws {
        let clock = SystemMonotonicClock()
        let pty = try PseudoTerminal()
        self.pty = pty
        simulator = EndpointHost(endpoint: SimulatedBalance(configuration: configuration), name: "balance0", clock: clock,
                                 linkUpOnOpen: false,
                                 open: { () throws(DeviceIOError) -> any ByteLink in DescriptorLink(pseudoTerminal: pty, clock: clock) },
                                 onOutput: { _ in })
        simulator.start()
        balance = MTSICSBalance(path: pty.slavePath, configuration: session, clock: clock, reconnectInterval: .milliseconds(50))
    }

    /// Settles in 50 ms and gives up waiting for stability after 200 ms.
    static let fastBalance = SimulatedBalance.Configuration(settlingTime: .milliseconds(50), stabilityTimeout: .milliseconds(200),
                                                             unsupportedCommands: [.softwareIdentification])

    func inject(_ name: String, _ arguments: String...) throws {
        _ = try simulator.perform { sim, now, _ in
            Result { () throws(FaultError) -> String in try sim.inject(FaultCommand(name: name, arguments: arguments), at: now) }
        }.get()
    }

    func deliver(_ millilitres: Double) {
        simulator.perform { sim, now, _ in sim.update(deliveredVolume: .millilitres(millilitres), at: now) }
    }

    func close() {
        balance.close()
        simulator.stop()
    }
}

/// Expects `body` to throw an `MTSICSBalanceError` of `kind`.
func expectBalanceError(_ kind: MTSICSBalanceError.Kind, _ body: () async throws(MTSICSBalanceError) -> Void,
                        sourceLocation: SourceLocation = #_sourceLocation) async {
    do {
        try await body()
        Issue.record("expected \(kind), got success", sourceLocation: sourceLocation)
    } catch {
        #expect(error.kind == kind, sourceLocation: sourceLocation)
        #expect(!error.description.isEmpty, sourceLocation: sourceLocation)
    }
}

@Suite("MT-SICS driver against the simulated balance over a real pty", .serialized)
struct MTSICSBalancePTYTests {
    @Test("Identity, weights, zero and reset")
    func commands() async throws {
        let rig = try PTYBalanceRig()
        defer { rig.close() }
        let identity = try await rig.balance.identify()
        #expect(identity == MTSICSBalanceIdentity(serialNumber: "B123456789", model: "XS204", capacity: "220.0000 g",
                                                  level: ["01", "2.20", "2.20", "1.00", "1.50"], softwareVersion: "4.10",
                                                  softwareIdentification: nil))  // I5 unsupported here (ES): optional
        rig.deliver(5)  // 4.99102 g (inside the ±10 g zero range)
        try await Task.sleep(for: .milliseconds(80))
        let stable = try await rig.balance.weighStable()
        let stableGrams = try #require(stable.grams)
        #expect(stable.isStable && abs(stableGrams - 4.99102) <= 0.0003)
        let immediate = try #require(try await rig.balance.weighImmediately().grams)
        #expect(abs(immediate - 4.99102) <= 0.0003)
        try await rig.balance.zero()
        let zeroed = try #require(try await rig.balance.weighImmediately().grams)
        #expect(abs(zeroed) <= 0.0003)
        #expect(try await rig.balance.zeroImmediately() == .doneWhileStable)
        #expect(try await rig.balance.reset() == "B123456789")
        #expect(try await rig.balance.serialNumber() == "B123456789")
        #expect(rig.balance.connection == .connected)
    }

    @Test("ES, ET and EL are typed errors")
    func protocolErrors() async throws {
        let rig = try PTYBalanceRig()
        defer { rig.close() }
        await expectBalanceError(.syntaxError) { () throws(MTSICSBalanceError) in _ = try await rig.balance.information(.softwareIdentification) }
        try rig.inject("transmission-error", "2")
        await expectBalanceError(.transmissionError) { () throws(MTSICSBalanceError) in _ = try await rig.balance.weighImmediately() }
        try rig.inject("logical-error")
        await expectBalanceError(.logicalError) { () throws(MTSICSBalanceError) in try await rig.balance.zero() }
        #expect(try await rig.balance.serialNumber() == "B123456789")
    }

    @Test("S I and Z I when the reading never settles")
    func notExecutable() async throws {
        let rig = try PTYBalanceRig()
        defer { rig.close() }
        try rig.inject("unstable")
        await expectBalanceError(.notExecutable) { () throws(MTSICSBalanceError) in _ = try await rig.balance.weighStable() }
        await expectBalanceError(.notExecutable) { () throws(MTSICSBalanceError) in try await rig.balance.zero() }
        #expect(try await rig.balance.weighImmediately().isStable == false)
        #expect(try await rig.balance.zeroImmediately() == .doneWhileDynamic)
    }

    @Test("S +, S -, Z + and Z - at the balance's limits")
    func limits() async throws {
        let rig = try PTYBalanceRig()
        defer { rig.close() }
        try rig.inject("overload")
        await expectBalanceError(.overload) { () throws(MTSICSBalanceError) in _ = try await rig.balance.weighImmediately() }
        await expectBalanceError(.overload) { () throws(MTSICSBalanceError) in _ = try await rig.balance.weighStable() }
        await expectBalanceError(.zeroAboveRange) { () throws(MTSICSBalanceError) in try await rig.balance.zero() }
        try rig.inject("underload")
        await expectBalanceError(.underload) { () throws(MTSICSBalanceError) in _ = try await rig.balance.weighImmediately() }
        await expectBalanceError(.zeroBelowRange) { () throws(MTSICSBalanceError) in _ = try await rig.balance.zeroImmediately() }
    }

    @Test("No reply within the deadline, then the balance answers again")
    func silence() async throws {
        let rig = try PTYBalanceRig()
        defer { rig.close() }
        _ = try await rig.balance.serialNumber()
        try rig.inject("silence")
        let start = ContinuousClock.now
        do {
            _ = try await rig.balance.weighImmediately()
            Issue.record("a silent balance answered")
        } catch {
            guard case let .noReply(after) = error.kind else { Issue.record("\(error)"); return }
            #expect(after >= .milliseconds(300) && after < .milliseconds(800))
        }
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(rig.balance.connection == .silent)
        try rig.inject("silence", "off")
        #expect(try await rig.balance.serialNumber() == "B123456789")
        #expect(rig.balance.connection == .connected)
    }

    @Test("Garbage on the line is skipped; a closed balance fails at once with linkLost")
    func garbageAndClose() async throws {
        let rig = try PTYBalanceRig()
        _ = try await rig.balance.serialNumber()
        try rig.inject("garbage")
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await rig.balance.serialNumber() == "B123456789")
        rig.close()
        await expectBalanceError(.linkLost) { () throws(MTSICSBalanceError) in _ = try await rig.balance.serialNumber() }
    }
}
