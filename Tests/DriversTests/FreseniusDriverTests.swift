import DeviceIO
import DeviceProtocols
import DeviceSimulators
@testable import Drivers
import Foundation
import InfusionCore
import Testing

/// The Fresenius session endpoint against the Fresenius rack simulator in virtual time, at 19200 baud.
final class FreseniusHarness {
    let clock = VirtualClock()
    let network: VirtualNetwork
    let driver: VirtualNetwork.NodeID
    let rack: VirtualNetwork.NodeID
    private let log = OutputLog<FreseniusSessionOutput>()
    var nextID: UInt64 = 1

    init(modules: Int = 2, slots: [Int] = [1, 2], simulator: FreseniusSimulator.Configuration? = nil) {
        network = VirtualNetwork(clock: clock)
        let log = self.log
        let clock = self.clock
        driver = network.add(FreseniusSession(configuration: FreseniusSessionConfiguration(modules: slots))) { log.items.append((clock.now(), $0)) }
        rack = network.add(FreseniusSimulator(configuration: simulator ?? .init(modules: modules)))
        network.connect(driver, rack, bitsPerSecond: 19_200)
    }

    var outputs: [(MonotonicInstant, FreseniusSessionOutput)] { log.items }
    var now: MonotonicInstant { clock.now() }

    func run(_ request: FreseniusRequest, slot: Int = 1, limit: Duration = .seconds(8)) -> (ClinicalPumpResult, MonotonicInstant)? {
        let id = nextID
        nextID += 1
        network.perform(driver, as: FreseniusSession.self) { session, now, effects in
            session.submit(request, slot: slot, id: id, at: now, effects: &effects)
        }
        let end = now + limit
        while now < end {
            if let found = completion(id) { return found }
            guard let next = network.nextEventTime(), next <= end else { break }
            network.run(until: next)
        }
        return completion(id)
    }

    func completion(_ id: UInt64) -> (ClinicalPumpResult, MonotonicInstant)? {
        for (at, output) in outputs { if case let .completed(found, result) = output, found == id { return (result, at) } }
        return nil
    }

    func alarms(slot: Int) -> [(MonotonicInstant, PumpAlarms)] {
        outputs.compactMap { if case let .alarms(s, set, at) = $0.1, s == slot { (at, set) } else { nil } }
    }

    func connections(slot: Int) -> [(MonotonicInstant, DeviceConnection)] {
        outputs.compactMap { if case let .connection(s, state, at) = $0.1, s == slot { (at, state) } else { nil } }
    }

    func statuses(slot: Int) -> [PumpStatus] {
        outputs.compactMap { if case let .status(s, status) = $0.1, s == slot { status } else { nil } }
    }

    func session<R>(_ read: (FreseniusSession) -> R) -> R? {
        network.perform(driver, as: FreseniusSession.self) { session, _, _ in read(session) }
    }

    func simulator<R>(_ read: (FreseniusSimulator) -> R) -> R? {
        network.perform(rack, as: FreseniusSimulator.self) { sim, _, _ in read(sim) }
    }

    @discardableResult
    func inject(_ name: String, _ arguments: String...) -> String? {
        network.perform(rack, as: FreseniusSimulator.self) { sim, now, _ in try? sim.inject(FaultCommand(name: name, arguments: arguments), at: now) } ?? nil
    }
}

@Suite("Fresenius driver against the rack simulator (virtual time)")
struct FreseniusDriverVirtualTests {
    @Test("connect: base session, module bitmap, module sessions in remote mode; ENQ answered with DC4")
    func connect() {
        let h = FreseniusHarness()
        h.network.run(for: .seconds(3))
        #expect(h.connections(slot: 1).map(\.1) == [.connected])
        #expect(h.connections(slot: 2).map(\.1) == [.connected])
        #expect(h.simulator { $0.baseSession } == true)
        #expect(h.simulator { $0.module(1)?.mode } == .remote)
        #expect(h.simulator { $0.module(2)?.session } == true)
        #expect(h.session { $0.rack?.slots } == [1, 2])
        #expect(h.session { $0.statistics.keepAlivesAnswered }! >= 5)
        #expect(h.alarms(slot: 1).last.map { $0.1.isEmpty } ?? true)
        #expect(h.statuses(slot: 2).count >= 1)
    }

    @Test("every message kind: identify (LF), rate (PR rounded toward less, read back), start refused, keypad start seen, pause (PO), status (LE), clear volume (RV)")
    func everyMessageKind() throws {
        let h = FreseniusHarness()
        h.network.run(for: .seconds(2))
        let identity = try #require(h.run(.identify)?.0)
        #expect(identity == .identity(PumpIdentity(family: "fresenius", model: "AGILIA SP", firmware: "unknown")))

        let rate = try #require(h.run(.setRate(.millilitresPerHour(36.09)), slot: 2)?.0)
        guard case let .rate(rounded) = rate else { Issue.record("rate not confirmed: \(rate)"); return }
        #expect(rounded.actual == .millilitresPerHour(36))
        #expect(h.simulator { $0.module(2)?.rate } == .millilitresPerHour(36))

        let start = try #require(h.run(.start, slot: 2)?.0)
        guard case let .refused(refusal) = start else { Issue.record("start: \(start)"); return }
        #expect(refusal.code == "no-start-command")

        h.inject("keypad-start", "2")
        h.network.run(for: .seconds(10))
        let status = try #require(h.run(.status, slot: 2)?.0)
        guard case let .status(running) = status else { Issue.record("status: \(status)"); return }
        #expect(running.state == .infusing)
        #expect(running.rate == .millilitresPerHour(36))
        #expect(abs((running.volumeInfused?.millilitres ?? 0) - 0.1) < 0.01)

        let stop = try #require(h.run(.stop, slot: 2)?.0)
        guard case let .status(paused) = stop else { Issue.record("stop: \(stop)"); return }
        #expect(paused.state == .paused)
        #expect(h.simulator { $0.module(2)?.isInfusing } == false)

        let cleared = try #require(h.run(.clearVolume, slot: 2)?.0)
        #expect(cleared == .volumeCleared(.zero))
        #expect(h.simulator { $0.module(2)?.volumeInfused } == .zero)
    }

    @Test("keep-alive loss (no ENQ) reported exactly at the time-out after the last ENQ (one tick under/over), within 2 s")
    func keepAliveLossTiming() throws {
        let h = FreseniusHarness()
        h.network.run(for: .milliseconds(2_600))
        h.inject("silence", "10s")
        let last = try #require(h.session { $0.lastKeepAlive } ?? nil)
        let expiry = last + .milliseconds(1500)
        h.network.run(until: expiry - .nanoseconds(1))
        #expect(!(h.alarms(slot: 1).last?.1.contains(.remoteControlLost) ?? false))
        h.network.run(until: expiry)
        let lost = try #require(h.alarms(slot: 1).last)
        #expect(lost.1.contains(.remoteControlLost))
        #expect(lost.0 == expiry)
        #expect(h.alarms(slot: 2).last?.1.contains(.remoteControlLost) == true)
        #expect(h.connections(slot: 1).last?.1 == .silent)
        // ENQs resume after the silence: the sessions are reopened and the alarm clears.
        h.network.run(for: .seconds(12))
        #expect(h.alarms(slot: 1).last?.1.isEmpty == true)
        #expect(h.connections(slot: 1).last?.1 == .connected)
    }

    @Test("the pump dropping the session (its DC4s lost) is reported and the session reopened (DC, MO;2); the module keeps infusing")
    func pumpSideLapse() throws {
        let h = FreseniusHarness()
        h.network.run(for: .seconds(2))
        _ = h.run(.setRate(.millilitresPerHour(10)))
        h.inject("keypad-start", "1")
        let lossStart = h.now
        h.inject("keepalive-loss", "2s")
        h.network.run(for: .seconds(4))
        let lost = try #require(h.alarms(slot: 1).first { $0.1.contains(.remoteControlLost) })
        // The pump lapses 1.5 s after the last DC4 it counted; the next poll (1 s) sees I;1E or m1.
        #expect(lost.0 - lossStart <= .milliseconds(1500) + .seconds(1) + .milliseconds(100))
        #expect(h.simulator { $0.module(1)?.isInfusing } == true)  // keep-infusing (default)
        h.network.run(for: .seconds(3))
        #expect(h.alarms(slot: 1).last?.1.isEmpty == true)
        #expect(h.simulator { $0.module(1)?.mode } == .remote)
        #expect(h.session { $0.statistics.reconnections }! >= 1)
    }

    @Test("NAKs are retried a bounded number of times (3 sends), then surface as a technical alarm; cleared afterwards")
    func nakStorm() throws {
        let h = FreseniusHarness()
        h.network.run(for: .seconds(2))
        h.inject("nak-storm", "2s")
        let (result, _) = try #require(h.run(.status))
        guard case .uncertain = result else { Issue.record("expected uncertain, got \(result)"); return }
        #expect(h.session { $0.statistics.naksReceived }! >= 3)
        #expect(h.alarms(slot: 1).contains { $0.1.contains(.deviceFault) })
        #expect(h.connections(slot: 1).contains { $0.1 == .silent })
        h.network.run(for: .seconds(4))
        #expect(h.alarms(slot: 1).last?.1.isEmpty == true)
        #expect(h.connections(slot: 1).last?.1 == .connected, "the module answers again: connected, not left silent")
        let after = try #require(h.run(.status)?.0)
        guard case .status = after else { Issue.record("after the storm: \(after)"); return }
    }

    @Test("a frame with a bad checksum is answered NAK 2; the pump's re-sent reply is accepted")
    func badChecksumFromPump() {
        var session = FreseniusSession(configuration: FreseniusSessionConfiguration(modules: [1]))
        var effects = EndpointEffects<FreseniusSessionOutput>()
        let t = MonotonicInstant.origin
        session.linkUp(at: t, effects: &effects)
        #expect(effects.outgoing.last == [0x02, 0x30, 0x44, 0x43, 0x34, 0x38, 0x03])  // 0DC: 0xFF - 0xB7 = 0x48
        var corrupt = (try? FreseniusReply(origin: .base, body: .correct(data: nil)).frame().bytes) ?? []
        corrupt[corrupt.count - 2] ^= 0x01
        effects = EndpointEffects()
        session.receive(corrupt, at: t + .milliseconds(10), effects: &effects)
        #expect(effects.outgoing == [[0x15, 0x32]])
        effects = EndpointEffects()
        session.receive((try? FreseniusReply(origin: .base, body: .correct(data: nil)).frame().bytes) ?? [], at: t + .milliseconds(20), effects: &effects)
        #expect(effects.outgoing.first == [0x06])
        #expect(effects.outgoing.count == 2)  // ACK, then the next command (0LE;b)
        #expect(session.statistics.naksSent == 1)
        // The pump's keep-alive is answered at once.
        effects = EndpointEffects()
        session.receive([0x05], at: t + .milliseconds(30), effects: &effects)
        #expect(effects.outgoing == [[0x14]])
    }

    @Test("a module removed from the rack is reported as that pump disconnected (bitmap), the other unaffected; inserted again it reconnects")
    func moduleRemoved() throws {
        let h = FreseniusHarness()
        h.network.run(for: .seconds(2))
        let removed = h.now
        h.inject("remove-module", "2")
        h.network.run(for: .seconds(2))
        let gone = try #require(h.connections(slot: 2).last)
        #expect(gone.1 == .disconnected)
        #expect(gone.0 - removed <= .seconds(2))
        #expect(h.connections(slot: 1).map(\.1) == [.connected])
        h.inject("insert-module", "2")
        h.network.run(for: .seconds(3))
        #expect(h.connections(slot: 2).last?.1 == .connected)
        #expect(h.simulator { $0.module(2)?.mode } == .remote)
    }

    @Test("error 0E (module unreachable) on a command reports the module disconnected and the command refused")
    func moduleUnreachable() throws {
        let h = FreseniusHarness()
        h.network.run(for: .milliseconds(2_050))
        h.inject("remove-module", "2")
        let result = try #require(h.run(.status, slot: 2)?.0)
        guard case let .refused(refusal) = result else { Issue.record("expected refusal: \(result)"); return }
        #expect(refusal.code == "I;0E")
        #expect(h.connections(slot: 2).last?.1 == .disconnected)
    }

    @Test("a spontaneous alarm event is acknowledged (origin + E) and published")
    func spontaneousEvent() throws {
        let h = FreseniusHarness()
        h.network.run(for: .seconds(2))
        _ = h.run(.setRate(.millilitresPerHour(5)))
        h.inject("keypad-start", "1")
        h.network.run(for: .seconds(1))
        let raised = h.now
        h.inject("stall", "1")
        h.network.run(for: .milliseconds(50))
        #expect(h.session { $0.statistics.eventsAcknowledged } == 1)
        let alarm = try #require(h.alarms(slot: 1).last)
        #expect(alarm.1 == [.occlusion])
        #expect(alarm.0 - raised < .milliseconds(50))
        h.network.run(for: .seconds(3))
        #expect(h.session { $0.statistics.eventsAcknowledged } == 1)  // acknowledged once: not re-sent
    }

    @Test("random bytes never crash or wedge the session")
    func randomBytes() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            var session = FreseniusSession(configuration: FreseniusSessionConfiguration(modules: [1, 2, 3]))
            var effects = EndpointEffects<FreseniusSessionOutput>()
            var now = MonotonicInstant.origin
            session.linkUp(at: now, effects: &effects)
            for step in 0..<200 {
                var bytes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                if step % 5 == 0 { bytes += [0x02, 0x31, 0x43, 0x3B, 0x64] }
                session.receive(bytes, at: now, effects: &effects)
                if step % 11 == 0 { session.submit(.status, slot: 1 + step % 3, id: UInt64(step), at: now, effects: &effects) }
                now = now + .milliseconds(Int64.random(in: 0...400, using: &generator))
                if let deadline = session.nextDeadline, deadline <= now { session.tick(at: now, effects: &effects) }
            }
        }
        let h = FreseniusHarness()
        h.network.run(for: .seconds(2))
        h.inject("garbage")
        h.inject("garbage", "2s")
        h.network.run(for: .seconds(4))
        let result = try #require(h.run(.status)?.0)
        guard case .status = result else { Issue.record("not recovered: \(result)"); return }
    }
}

@Suite("Fresenius driver against the rack simulator over a real pty")
struct FreseniusDriverPTYTests {
    @Test("two modules share one port (7E1): rate, status, stop on each; fast stop; module removal seen as disconnected")
    func overPTY() async throws {
        let clock = SystemMonotonicClock()
        let pty = try PseudoTerminal()
        let simulator = EndpointHost(endpoint: FreseniusSimulator(configuration: .init(modules: 2)), name: "sim-fresenius", clock: clock,
                                     linkUpOnOpen: false,
                                     open: { () throws(DeviceIOError) -> any ByteLink in DescriptorLink(pseudoTerminal: pty, clock: clock) },
                                     onOutput: { _ in })
        simulator.start()
        defer { simulator.stop() }
        let rack = FreseniusRack(name: "rack0", path: pty.slavePath, configuration: FreseniusSessionConfiguration(modules: [1, 2]), clock: clock)
        defer { rack.close() }
        let one = try #require(rack.pump(slot: 1))
        let two = try #require(rack.pump(slot: 2))
        #expect(one.safety.stopsWhenControllerSilent == false)
        #expect(await waitForConnection(one.events))
        #expect(await waitForConnection(two.events))

        #expect(await one.setRate(.millilitresPerHour(12.34)).value?.actual == .millilitresPerHour(12.3))
        #expect(await two.setRate(.millilitresPerHour(2)).value?.actual == .millilitresPerHour(2))
        _ = simulator.perform { sim, now, _ in try? sim.inject(FaultCommand(name: "keypad-start", arguments: ["1"]), at: now) }
        #expect(one.sendStopNow())
        let deadline = Date().addingTimeInterval(1)
        while simulator.perform({ sim, _, _ in sim.module(1)?.isInfusing ?? false }), Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(simulator.perform { sim, _, _ in sim.module(1)?.isInfusing } == false)
        #expect(await one.stop().value?.state == .paused)
        #expect(await two.status().value?.rate == .millilitresPerHour(2))

        let removed = Task { () -> Bool in
            for await event in two.events { if case .connection(.disconnected, _) = event { return true } }
            return false
        }
        _ = simulator.perform { sim, now, _ in try? sim.inject(FaultCommand(name: "remove-module", arguments: ["2"]), at: now) }
        let timeout = Task { try await Task.sleep(for: .seconds(3)); removed.cancel() }
        #expect(await removed.value)
        timeout.cancel()
        #expect(await one.status().value != nil)
    }
}

@Suite("Pump factory")
struct PumpFactoryTests {
    @Test("unknown protocols and impossible Fresenius slots are refused with what is accepted")
    func refusals() {
        #expect(throws: PumpFactoryError.self) { try makePump(protocol: "baxter", device: "/nonexistent") }
        #expect(throws: PumpFactoryError.self) { try makePump(protocol: "fresenius", device: "/nonexistent", options: .init(module: 6)) }
    }

    @Test("makes an Alaris pump and a Fresenius module that report no pump-side stop")
    func makes() throws {
        let alaris = try makePump(protocol: "alaris", device: "/nonexistent/pump0")
        let fresenius = try makePump(protocol: "FRESENIUS", device: "/nonexistent/pump1", options: .init(name: "pump1", module: 3))
        #expect(alaris.safety.stopsWhenControllerSilent == false)
        #expect(fresenius.safety.stopsWhenControllerSilent == false)
        #expect(fresenius.name == "pump1 module 3")
        #expect(fresenius.sendStopNow() == false)  // no port: nothing written
        alaris.close()
        fresenius.close()
    }
}
