import DeviceIO
import DeviceProtocols
import DeviceSimulators
@testable import Drivers
import Foundation
import InfusionCore
import Testing

/// The Alaris session endpoint against the Alaris simulator in virtual time, paced at 38400 baud.
final class AlarisHarness {
    let clock = VirtualClock()
    let network: VirtualNetwork
    let driver: VirtualNetwork.NodeID
    let pump: VirtualNetwork.NodeID
    private let log = OutputLog<AlarisSessionOutput>()
    var nextID: UInt64 = 1

    init(simulator: AlarisSimulator = AlarisSimulator(), configuration: AlarisSessionConfiguration = AlarisSessionConfiguration()) {
        network = VirtualNetwork(clock: clock)
        let log = self.log
        let clock = self.clock
        driver = network.add(AlarisSession(configuration: configuration)) { log.items.append((clock.now(), $0)) }
        pump = network.add(simulator)
        network.connect(driver, pump, bitsPerSecond: 38_400)
    }

    var outputs: [(MonotonicInstant, AlarisSessionOutput)] { log.items }

    var now: MonotonicInstant { clock.now() }

    /// Submits `request` and runs until it completes (at most `limit`); returns the result and when.
    func run(_ request: AlarisRequest, limit: Duration = .seconds(5)) -> (ClinicalPumpResult, MonotonicInstant)? {
        let id = nextID
        nextID += 1
        let before = completions.count
        network.perform(driver, as: AlarisSession.self) { session, now, effects in
            session.submit(request, id: id, at: now, effects: &effects)
        }
        let end = now + limit
        while now < end {
            if let found = completions.dropFirst(before).first(where: { $0.id == id }) { return (found.result, found.at) }
            guard let next = network.nextEventTime(), next <= end else { break }
            network.run(until: next)
        }
        return completions.dropFirst(before).first(where: { $0.id == id }).map { ($0.result, $0.at) }
    }

    var completions: [(id: UInt64, result: ClinicalPumpResult, at: MonotonicInstant)] {
        outputs.compactMap { if case let .completed(id, result) = $0.1 { (id, result, $0.0) } else { nil } }
    }

    var alarmChanges: [(MonotonicInstant, PumpAlarms)] {
        outputs.compactMap { if case let .alarms(set, at) = $0.1 { (at, set) } else { nil } }
    }

    var connections: [DeviceConnection] {
        outputs.compactMap { if case let .connection(state, _) = $0.1 { state } else { nil } }
    }

    func session<R>(_ read: (AlarisSession) -> R) -> R? {
        network.perform(driver, as: AlarisSession.self) { session, _, _ in read(session) }
    }

    func simulator<R>(_ body: (inout AlarisSimulator, MonotonicInstant) -> R) -> R? {
        network.perform(pump, as: AlarisSimulator.self) { sim, now, _ in body(&sim, now) }
    }

    func inject(_ name: String, _ arguments: String...) {
        _ = simulator { sim, now in try? sim.inject(FaultCommand(name: name, arguments: arguments), at: now) }
    }
}

/// Outputs collected in a virtual-time test (single thread).
final class OutputLog<T> {
    var items: [(MonotonicInstant, T)] = []
}

@Suite("Alaris driver against the simulator (virtual time)")
struct AlarisDriverVirtualTests {
    @Test("connect reads the serial number, takes the lease with the derived code and keeps renewing it")
    func connectAndLease() {
        let h = AlarisHarness()
        h.network.run(for: .seconds(5))
        #expect(h.session { $0.serialNumber } == "8002-51740")
        #expect(h.session { $0.leaseHeld } == true)
        #expect(h.simulator { sim, _ in sim.remoteControl } == true)
        #expect(h.connections == [.connected])
        #expect(h.alarmChanges.isEmpty)
        // Lease renewed about once a second: the pump never lapsed (its lease lasts 3 s).
        #expect(h.session { $0.statistics.failures } == 0)
        let statuses: [PumpStatus] = h.outputs.compactMap { if case let .status(s) = $0.1 { s } else { nil } }
        #expect(statuses.count >= 4)
    }

    @Test("every message kind: identify, rate (rounded toward less), VTBI, start, status, stop")
    func everyMessageKind() throws {
        let h = AlarisHarness()
        h.network.run(for: .seconds(2))
        let identity = try #require(h.run(.identify)?.0)
        #expect(identity == .identity(PumpIdentity(family: "alaris", model: "Asena", firmware: "Asena Rev 2.1.5", serialNumber: "8002-51740")))

        let rate = try #require(h.run(.setRate(.millilitresPerHour(12.3456)))?.0)
        guard case let .rate(rounded) = rate else { Issue.record("rate not confirmed: \(rate)"); return }
        #expect(rounded.actual == .millilitresPerHour(12.34))
        #expect(rounded.requested == .millilitresPerHour(12.3456))
        #expect(h.simulator { sim, _ in sim.rate } == .millilitresPerHour(12.34))

        let vtbi = try #require(h.run(.setVolumeToInfuse(.millilitres(5.0004)))?.0)
        guard case let .volume(volume) = vtbi else { Issue.record("VTBI not confirmed: \(vtbi)"); return }
        #expect(volume.actual == .millilitres(5))

        let started = try #require(h.run(.start)?.0)
        guard case let .status(running) = started else { Issue.record("start not confirmed: \(started)"); return }
        #expect(running.state == .infusing)
        #expect(h.simulator { sim, _ in sim.isInfusing } == true)

        h.network.run(for: .seconds(60))
        let polled = try #require(h.run(.status)?.0)
        guard case let .status(status) = polled else { Issue.record("status not confirmed: \(polled)"); return }
        #expect(status.state == .infusing)
        #expect(status.rate == .millilitresPerHour(12.34))
        let infused = try #require(status.volumeInfused?.millilitres)
        #expect(abs(infused - 12.34 / 60) < 0.002)

        let stopped = try #require(h.run(.stop)?.0)
        guard case let .status(after) = stopped else { Issue.record("stop not confirmed: \(stopped)"); return }
        #expect(after.state == .stopped)
        #expect(h.simulator { sim, _ in sim.isInfusing } == false)
    }

    @Test("a start refused by the pump (no rate) is reported as refused, not assumed")
    func startRefused() throws {
        let h = AlarisHarness()
        h.network.run(for: .seconds(2))
        let result = try #require(h.run(.start)?.0)
        guard case let .refused(refusal) = result else { Issue.record("expected refusal, got \(result)"); return }
        #expect(refusal.code == "INF_START^REFUSED^NO_RATE")
    }

    @Test("pump alarms in the status line are published (occlusion)")
    func occlusion() throws {
        let h = AlarisHarness()
        h.network.run(for: .seconds(2))
        _ = h.run(.setRate(.millilitresPerHour(5)))
        _ = h.run(.start)
        h.inject("stall")
        h.network.run(for: .milliseconds(1100))
        #expect(h.alarmChanges.last?.1 == [.occlusion])
        let statuses: [PumpStatus] = h.outputs.compactMap { if case let .status(s) = $0.1 { s } else { nil } }
        #expect(statuses.last?.state == .stopped)
    }

    @Test("the pump leaving remote control is reported as .remoteControlLost within 2 s, and control commands are refused")
    func remoteDropped() throws {
        let h = AlarisHarness()
        h.network.run(for: .seconds(2))
        let dropped = h.now
        h.inject("drop-remote", "10s")
        h.network.run(for: .seconds(2))
        let lost = try #require(h.alarmChanges.first { $0.1.contains(.remoteControlLost) })
        #expect(lost.0 - dropped <= .seconds(2))
        let result = try #require(h.run(.setRate(.millilitresPerHour(1)))?.0)
        guard case .refused = result else { Issue.record("expected refusal, got \(result)"); return }
        // The pump accepts the lease again after 10 s: the alarm clears.
        h.network.run(for: .seconds(10))
        #expect(h.alarmChanges.last?.1 == [])
    }

    @Test("a pump that stops answering: lease lost exactly 1.5 s after the last confirmed renewal (one tick under/over)")
    func leaseLapseTiming() throws {
        let h = AlarisHarness()
        h.network.run(for: .milliseconds(3_050))
        let confirmed = try #require(h.session { $0.leaseConfirmedAt } ?? nil)
        h.inject("silence", "30s")
        let expiry = confirmed + .milliseconds(1500)
        h.network.run(until: expiry - .nanoseconds(1))
        #expect(!(h.alarmChanges.last?.1.contains(.remoteControlLost) ?? false))
        h.network.run(until: expiry)
        let lost = try #require(h.alarmChanges.last)
        #expect(lost.1.contains(.remoteControlLost))
        #expect(lost.0 == expiry)
        #expect(expiry - confirmed <= .seconds(2))
    }

    @Test("bad CRCs are retried once per command, then surface as a technical alarm (.deviceFault, connection silent); cleared when replies are good again")
    func badCRCStorm() throws {
        let h = AlarisHarness()
        h.network.run(for: .seconds(2))
        h.inject("nak-storm", "3s")
        let sent = h.now
        let (result, at) = try #require(h.run(.status))
        guard case .uncertain = result else { Issue.record("expected uncertain, got \(result)"); return }
        // Two attempts of 0.5 s each, possibly queued behind one lease exchange (also 2 × 0.5 s).
        #expect(at - sent <= .seconds(2))
        #expect(h.session { $0.statistics.retries }! >= 1)
        #expect(h.alarmChanges.contains { $0.1.contains(.deviceFault) })
        #expect(h.connections.contains(.silent))
        h.network.run(for: .seconds(4))
        #expect(h.alarmChanges.last.map { !$0.1.contains(.deviceFault) } == true)
        #expect(h.connections.last == .connected)
        let after = try #require(h.run(.status)?.0)
        guard case .status = after else { Issue.record("status after the storm: \(after)"); return }
    }

    @Test("a link loss completes the request in flight as uncertain and reports disconnected")
    func linkLoss() throws {
        let h = AlarisHarness()
        h.network.run(for: .seconds(2))
        let id: UInt64 = 99
        h.network.perform(h.driver, as: AlarisSession.self) { s, now, e in s.submit(.status, id: id, at: now, effects: &e) }
        h.network.disconnect(h.driver)
        #expect(h.completions.contains { if $0.id == id, case .uncertain = $0.result { true } else { false } })
        #expect(h.connections.last == .disconnected)
        #expect(h.alarmChanges.last?.1.contains(.remoteControlLost) == true)
    }

    @Test("random bytes never crash or wedge the session")
    func randomBytes() throws {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<20 {
            var session = AlarisSession()
            var effects = EndpointEffects<AlarisSessionOutput>()
            var now = MonotonicInstant.origin
            session.linkUp(at: now, effects: &effects)
            for step in 0..<200 {
                let count = Int.random(in: 0...40, using: &generator)
                var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
                if step % 7 == 0 { bytes += Array("!INST_SERIALNO^8002-51740|".utf8) }
                session.receive(bytes, at: now, effects: &effects)
                if step % 13 == 0 { session.submit(.status, id: UInt64(step), at: now, effects: &effects) }
                now = now + .milliseconds(Int64.random(in: 0...300, using: &generator))
                if let deadline = session.nextDeadline, deadline <= now { session.tick(at: now, effects: &effects) }
            }
            _ = round
        }
        // Not wedged: after noise, the session still completes an exchange with the simulator.
        let h = AlarisHarness()
        h.network.run(for: .seconds(2))
        h.inject("garbage")
        h.inject("garbage", "2s")
        h.network.run(for: .seconds(3))
        let result = try #require(h.run(.status)?.0)
        guard case .status = result else { Issue.record("not recovered: \(result)"); return }
    }
}

@Suite("Alaris driver against the simulator over a real pty")
struct AlarisDriverPTYTests {
    @Test("rate, start, status, fast stop, stop and identify over a pseudo-terminal (EndpointHost both sides)")
    func overPTY() async throws {
        let clock = SystemMonotonicClock()
        let pty = try PseudoTerminal()
        let simulator = EndpointHost(endpoint: AlarisSimulator(), name: "sim-alaris", clock: clock, linkUpOnOpen: false,
                                     open: { () throws(DeviceIOError) -> any ByteLink in DescriptorLink(pseudoTerminal: pty, clock: clock) },
                                     onOutput: { _ in })
        simulator.start()
        defer { simulator.stop() }
        let pump = AlarisPump(name: "pump0", path: pty.slavePath, clock: clock)
        defer { pump.close() }
        #expect(pump.safety.stopsWhenControllerSilent == false)
        #expect(await waitForConnection(pump.events))

        let identity = await pump.identify()
        #expect(identity.value?.serialNumber == "8002-51740")
        // The lease is taken right after the serial number is read.
        let deadline = Date().addingTimeInterval(2)
        while simulator.perform({ sim, _, _ in sim.remoteControl }) == false, Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let rate = await pump.setRate(.millilitresPerHour(3.999))
        #expect(rate.value?.actual == .millilitresPerHour(3.99))
        let started = await pump.start()
        #expect(started.value?.state == .infusing)
        #expect(pump.sendStopNow())
        let stopDeadline = Date().addingTimeInterval(1)
        while simulator.perform({ sim, _, _ in sim.isInfusing }), Date() < stopDeadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(simulator.perform { sim, _, _ in sim.isInfusing } == false)
        let stopped = await pump.stop()
        #expect(stopped.value?.state == .stopped)
        let status = await pump.status()
        #expect(status.value?.rate == .millilitresPerHour(3.99))
        #expect(pump.lastStatus != nil)
    }

    @Test("a pump that goes silent is reported as .remoteControlLost within 2 s over a real pty")
    func silenceOverPTY() async throws {
        let clock = SystemMonotonicClock()
        let pty = try PseudoTerminal()
        let simulator = EndpointHost(endpoint: AlarisSimulator(), name: "sim-alaris", clock: clock, linkUpOnOpen: false,
                                     open: { () throws(DeviceIOError) -> any ByteLink in DescriptorLink(pseudoTerminal: pty, clock: clock) },
                                     onOutput: { _ in })
        simulator.start()
        defer { simulator.stop() }
        let pump = AlarisPump(name: "pump0", path: pty.slavePath, clock: clock)
        defer { pump.close() }
        #expect(await waitForConnection(pump.events))
        let lost = Task { () -> MonotonicInstant? in
            for await event in pump.events {
                if case let .alarms(set, at) = event, set.contains(.remoteControlLost) { return at }
            }
            return nil
        }
        try await Task.sleep(for: .milliseconds(300))
        let silenced = clock.now()
        _ = simulator.perform { sim, now, _ in try? sim.inject(FaultCommand(name: "silence", arguments: ["10s"]), at: now) }
        let timeout = Task { try await Task.sleep(for: .seconds(3)); lost.cancel() }
        let at = try #require(await lost.value)
        timeout.cancel()
        #expect(at - silenced <= .seconds(2))
    }
}

/// Waits (at most 3 s) for a `.connection(.connected)` event.
func waitForConnection(_ events: AsyncStream<PumpEvent>) async -> Bool {
    let waiter = Task { () -> Bool in
        for await event in events {
            if case .connection(.connected, _) = event { return true }
        }
        return false
    }
    let timeout = Task { try await Task.sleep(for: .seconds(3)); waiter.cancel() }
    let result = await waiter.value
    timeout.cancel()
    return result
}
