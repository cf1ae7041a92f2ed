#if canImport(Glibc)
import Glibc
#endif
import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Synchronization
import Testing

// Issue 8 acceptance, "driver against simulator over REAL ptys for every message kind": the real Alaris
// and Fresenius drivers on the slave of a pseudo-terminal, the simulators in an `EndpointHost` on its
// master, both on real threads. The protocol timers (lease, keep-alive, reply time-outs) run on a
// `ScaledClock` at 5× so the time-outs fire in a fraction of a real second; limits such as "within 2 s"
// are asserted in that clock's (protocol) time, taken from the drivers' own event stamps.

/// A simulated device on the master of a fresh pseudo-terminal; the driver opens `path`.
final class PTYSimulator<Device: SimulatedDevice>: Sendable {
    let host: EndpointHost<Device>
    let path: String

    init(_ device: Device, clock: any MonotonicClock) throws {
        let pty = try PseudoTerminal()
        path = pty.slavePath
        host = EndpointHost(endpoint: device, name: "sim \(Device.kind)", clock: clock, linkUpOnOpen: false,
                            open: { () throws(DeviceIOError) -> any ByteLink in DescriptorLink(pseudoTerminal: pty, clock: clock) },
                            onOutput: { _ in })
        host.start()
    }

    /// Reads the simulator's state (under the host's lock).
    func read<R>(_ body: (Device) -> R) -> R { host.perform { device, _, _ in body(device) } }

    /// Injects a fault; nil when the simulator refused it.
    @discardableResult
    func inject(_ name: String, _ arguments: String...) -> String? {
        host.perform { device, now, _ in try? device.inject(FaultCommand(name: name, arguments: arguments), at: now) }
    }

    func stop() { host.stop() }
}

/// Every event a pump published, in order (one consumer of its stream).
final class ClinicalEventLog: Sendable {
    let events: Shared<[PumpEvent]>
    private let task: Task<Void, Never>

    init(_ stream: AsyncStream<PumpEvent>) {
        let events = Shared<[PumpEvent]>([])
        self.events = events
        task = Task { for await event in stream { events.update { $0.append(event) } } }
    }

    deinit { task.cancel() }

    var alarms: [(set: PumpAlarms, at: MonotonicInstant)] {
        events.get.compactMap { if case let .alarms(set, at) = $0 { (set, at) } else { nil } }
    }

    var connections: [(state: DeviceConnection, at: MonotonicInstant)] {
        events.get.compactMap { if case let .connection(state, at) = $0 { (state, at) } else { nil } }
    }

    var isConnected: Bool { connections.last?.state == .connected }

    /// The first alarm change at or after `since` that contains `alarm`.
    func first(_ alarm: PumpAlarms, since: MonotonicInstant) -> MonotonicInstant? {
        alarms.first { $0.at >= since && $0.set.isSuperset(of: alarm) }?.at
    }
}

/// True when `rate` is `millilitresPerHour` to within a nanolitre per hour (rates read back from hex
/// units of 0.1 mL/h are not bit-identical to decimal literals).
func isRate(_ rate: VolumeRate?, _ millilitresPerHour: Double) -> Bool {
    rate.map { abs($0.millilitresPerHour - millilitresPerHour) < 1e-6 } ?? false
}

/// Writes `bytes` to the pty slave at `path` through a descriptor of its own (a second writer on the line).
func writeRaw(_ bytes: [UInt8], toSlave path: String) -> Bool {
    let fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
}

@Suite("Alaris driver against the simulator over a real pty: every message kind and fault", .serialized)
struct AlarisPTYMessageTests {
    static let speed = 5.0

    /// The simulator, the driver on the slave, its event log; the driver is connected and holds the lease.
    func connected(_ simulator: AlarisSimulator = AlarisSimulator()) async throws
        -> (PTYSimulator<AlarisSimulator>, AlarisPump, ClinicalEventLog, ScaledClock)
    {
        let clock = ScaledClock(speed: Self.speed)
        let sim = try PTYSimulator(simulator, clock: clock)
        let pump = AlarisPump(name: "pump0", path: sim.path, clock: clock)
        let log = ClinicalEventLog(pump.events)
        #expect(await eventually(.seconds(5)) { log.isConnected }, "the Alaris driver should connect")
        #expect(await eventually(.seconds(5)) { sim.read { $0.remoteControl } }, "the driver should take the remote-control lease")
        return (sim, pump, log, clock)
    }

    @Test("serial number and protocol, lease (REMOTE_CTRL/REMOTE_CFG) held, start refused without a rate, VTBI, rate, start, volume infused, status, stop; clearing the counter refused")
    func everyMessageKind() async throws {
        let (sim, pump, log, _) = try await connected()
        defer {
            pump.close()
            sim.stop()
        }
        let identity = try #require(await pump.identify().value)
        #expect(identity.serialNumber == "8002-51740")
        #expect(identity.firmware == "Asena Rev 2.1.5")

        // Refused by the pump itself (no rate set yet): reported as refused, not assumed.
        guard case .refused = await pump.start() else { Issue.record("a start without a rate should be refused"); return }
        #expect(sim.read { $0.isInfusing } == false)

        #expect(await pump.setVolumeToInfuse(.millilitres(5.0004)).value?.actual == .millilitres(5))
        #expect(await pump.setRate(.millilitresPerHour(12.3456)).value?.actual == .millilitresPerHour(12.34))
        #expect(sim.read { $0.rate } == .millilitresPerHour(12.34))
        let started = try #require(await pump.start().value)
        #expect(started.state == .infusing)
        #expect(sim.read { $0.isInfusing })

        // 2 real seconds = 10 s of pump time: about 0.034 mL at 12.34 mL/h, read through INF_VI.
        try await Task.sleep(for: .seconds(2))
        let status = try #require(await pump.status().value)
        #expect(status.state == .infusing)
        #expect(status.rate == .millilitresPerHour(12.34))
        let infused = try #require(status.volumeInfused?.millilitres, "the status should carry the volume infused")
        let counted = sim.read { $0.totalVolumeDelivered.millilitres }
        #expect(infused > 0.02 && infused <= counted + 0.001, "volume infused \(infused) mL; the pump counted \(counted) mL")

        // The lease was renewed all along (the simulated pump's lease lasts 3 s): never lost.
        #expect(sim.read { $0.remoteControl })
        #expect(!log.alarms.contains { $0.set.contains(.remoteControlLost) })

        let stopped = try #require(await pump.stop().value)
        #expect(stopped.state == .stopped)
        #expect(sim.read { $0.isInfusing } == false)
        guard case .refused(let refusal) = await pump.clearVolume() else { Issue.record("clearing the counter should be refused"); return }
        #expect(refusal.code == "no-clear-volume")
    }

    @Test("a partial frame on the line is discarded by ESC and by the next '!': the fast stop (INF_STOP) still stops the pump")
    func escapeAndInterruptedFrames() async throws {
        let (sim, pump, _, _) = try await connected()
        defer {
            pump.close()
            sim.stop()
        }
        #expect(await pump.setRate(.millilitresPerHour(5)).value != nil)
        #expect(await pump.start().value?.state == .infusing)
        // A partial rate command aborted by ESC, then another partial frame left open.
        #expect(writeRaw(Array("!INF_RATE^900".utf8) + [AlarisFrame.escape] + Array("!INF_RATE^9".utf8), toSlave: sim.path))
        #expect(pump.sendStopNow())
        #expect(await eventually(.seconds(5)) { !sim.read { $0.isInfusing } }, "the stop frame should stop the pump")
        #expect(sim.read { $0.rate } == .millilitresPerHour(5), "neither partial rate command may take effect")
        // The line is in sync afterwards.
        #expect(await pump.status().value?.state == .stopped)
    }

    @Test("an occlusion at the pump is published as a pump alarm")
    func occlusionAlarm() async throws {
        let (sim, pump, log, clock) = try await connected()
        defer {
            pump.close()
            sim.stop()
        }
        #expect(await pump.setRate(.millilitresPerHour(5)).value != nil)
        #expect(await pump.start().value?.state == .infusing)
        let raised = clock.now()
        #expect(sim.inject("occlusion") != nil)
        #expect(await eventually(.seconds(5)) { log.first(.occlusion, since: raised) != nil }, "the occlusion should be published")
        #expect(sim.read { $0.isInfusing } == false)
    }

    @Test("the pump leaving remote control (lapsed lease) is reported as .remoteControlLost within 2 s; the lease is taken again after")
    func leaseLapse() async throws {
        let (sim, pump, log, clock) = try await connected()
        defer {
            pump.close()
            sim.stop()
        }
        let dropped = clock.now()
        #expect(sim.inject("drop-remote", "4s") != nil)
        #expect(await eventually(.seconds(5)) { log.first(.remoteControlLost, since: dropped) != nil })
        let lost = try #require(log.first(.remoteControlLost, since: dropped))
        #expect(lost - dropped <= .seconds(2), "lease loss reported \(lost - dropped) after the pump dropped it")
        guard case .refused = await pump.setRate(.millilitresPerHour(1)) else { Issue.record("control commands should be refused without the lease"); return }
        // After 4 s (pump time) the pump accepts the lease again and the alarm clears.
        #expect(await eventually(.seconds(5)) { log.alarms.last.map { !$0.set.contains(.remoteControlLost) } == true })
        #expect(sim.read { $0.remoteControl })
    }

    @Test("bad CRCs: each command retried a bounded number of times, then a technical alarm (.deviceFault, connection silent); cleared afterwards")
    func badCRCStorm() async throws {
        let (sim, pump, log, clock) = try await connected()
        defer {
            pump.close()
            sim.stop()
        }
        let before = clock.now()
        #expect(sim.inject("bad-crc", "3s") != nil)
        guard case .uncertain = await pump.status() else { Issue.record("a status through a bad-CRC storm should be uncertain"); return }
        // Two attempts of 0.5 s each, possibly queued behind one lease exchange (also 2 × 0.5 s): bounded.
        // Timed by the driver's own stamp on the alarm (pump time).
        #expect(await eventually(.seconds(5)) { log.first(.deviceFault, since: before) != nil })  // events arrive through a stream
        let fault = try #require(log.first(.deviceFault, since: before), "a technical alarm should follow the failed attempts")
        #expect(fault - before <= .seconds(2), "gave up after \(fault - before)")
        #expect(await eventually(.seconds(5)) { log.connections.contains { $0.at >= before && $0.state == .silent } })
        // Good replies again: the alarm clears and the link is connected.
        #expect(await eventually(.seconds(5)) { log.alarms.last.map { !$0.set.contains(.deviceFault) } == true && log.isConnected })
        #expect(await pump.status().value != nil)
    }
}

@Suite("Fresenius driver against the rack simulator over a real pty: every message kind and fault", .serialized)
struct FreseniusPTYMessageTests {
    static let speed = 5.0

    struct Rig {
        let sim: PTYSimulator<FreseniusSimulator>
        let rack: FreseniusRack
        let pumps: [Int: FreseniusPump]
        let logs: [Int: ClinicalEventLog]
        let clock: ScaledClock

        func close() {
            rack.close()
            sim.stop()
        }
    }

    /// A rack of `modules` modules, the driver on the slave for all of them, every module connected.
    func connected(modules: Int = 2) async throws -> Rig {
        let clock = ScaledClock(speed: Self.speed)
        let sim = try PTYSimulator(FreseniusSimulator(configuration: .init(modules: modules)), clock: clock)
        let slots = Array(1...modules)
        let rack = FreseniusRack(name: "rack0", path: sim.path, configuration: FreseniusSessionConfiguration(modules: slots), clock: clock)
        var pumps: [Int: FreseniusPump] = [:]
        var logs: [Int: ClinicalEventLog] = [:]
        for slot in slots {
            let pump = try #require(rack.pump(slot: slot))
            pumps[slot] = pump
            logs[slot] = ClinicalEventLog(pump.events)
        }
        let rig = Rig(sim: sim, rack: rack, pumps: pumps, logs: logs, clock: clock)
        #expect(await eventually(.seconds(5)) { logs.values.allSatisfy { $0.isConnected } }, "every module should connect")
        return rig
    }

    @Test("rack of 5 modules: ENQ/DC4 keep-alive, DC and MO;2 sessions, LF, PR in hex units read back, start refused with what to do, keypad start seen, LE volume, PO pause, RV clear")
    func everyMessageKind() async throws {
        let rig = try await connected(modules: 5)
        defer { rig.close() }
        // Sessions (DC) in remote mode (MO;2) on every module, kept open by the DC4 answers to the ENQs.
        for slot in 1...5 {
            #expect(rig.sim.read { $0.module(slot)?.session } == true, "module \(slot) session")
            #expect(rig.sim.read { $0.module(slot)?.mode } == .remote, "module \(slot) mode")
        }
        let enquiries = rig.sim.read { $0.keepAlivesSent }
        try await Task.sleep(for: .milliseconds(600))  // 3 s of rack time: several ENQs, sessions still open
        #expect(rig.sim.read { $0.keepAlivesSent } > enquiries)
        #expect(rig.sim.read { sim in (1...5).allSatisfy { sim.module($0)?.session == true } })

        let three = try #require(rig.pumps[3])
        #expect(await three.identify().value?.model == "AGILIA SP")
        // A different rate on each module (PR in hex units of 0.1 mL/h; rounded toward less), read back.
        for slot in 1...5 {
            let pump = try #require(rig.pumps[slot])
            let rate = VolumeRate.millilitresPerHour(Double(slot) * 1.25 + 0.04)
            let expected = (Double(slot) * 12.5 + 0.4).rounded(.down) / 10
            let confirmed = await pump.setRate(rate).value?.actual
            #expect(isRate(confirmed, expected), "module \(slot): \(String(describing: confirmed))")
            #expect(isRate(rig.sim.read { $0.module(slot)?.rate }, expected), "module \(slot)")
        }

        let two = try #require(rig.pumps[2])
        guard case .refused(let refusal) = await two.start() else { Issue.record("a remote start should be refused"); return }
        #expect(refusal.code == "no-start-command")
        #expect(refusal.description.contains("keypad"), "the refusal should say to start at the pump: \(refusal.description)")
        #expect(rig.sim.read { $0.module(2)?.isInfusing } == false)

        #expect(rig.sim.inject("keypad-start", "2") != nil)
        try await Task.sleep(for: .seconds(1))  // 5 s of rack time at 2.5 mL/h
        let running = try #require(await two.status().value)
        #expect(running.state == .infusing)
        #expect(isRate(running.rate, 2.5))
        let infused = try #require(running.volumeInfused?.millilitres)
        #expect(infused > 0 && infused <= (rig.sim.read { $0.module(2)?.volumeInfused.millilitres } ?? 0) + 0.001)

        #expect(await two.stop().value?.state == .paused)
        #expect(rig.sim.read { $0.module(2)?.isInfusing } == false)
        #expect(await two.clearVolume().value == .zero)
        #expect(rig.sim.read { $0.module(2)?.volumeInfused } == .zero)
        // The other modules were not touched.
        #expect(rig.sim.read { $0.module(4)?.isInfusing } == false)
        let four = await rig.pumps[4]?.status().value
        #expect(isRate(four?.rate, 5), "module 4: \(String(describing: four))")
    }

    @Test("a spontaneous alarm event (DE) is acknowledged on its first send and published as that module's alarm")
    func spontaneousEvent() async throws {
        let rig = try await connected(modules: 2)
        defer { rig.close() }
        let one = try #require(rig.pumps[1])
        #expect(await one.setRate(.millilitresPerHour(5)).value != nil)
        #expect(rig.sim.inject("keypad-start", "1") != nil)
        let raised = rig.clock.now()
        #expect(rig.sim.inject("stall", "1") != nil)
        #expect(await eventually(.seconds(5)) { rig.logs[1]?.first(.occlusion, since: raised) != nil }, "the occlusion should be published")
        let published = try #require(rig.logs[1]?.first(.occlusion, since: raised))
        #expect(published - raised < .seconds(1))
        // An unacknowledged event is re-sent every second (rack time): wait 2.5 s of it.
        try await Task.sleep(for: .milliseconds(500))
        #expect(rig.sim.read { $0.eventFramesSent } == 1, "the event should be acknowledged on its first send")
        #expect(rig.logs[2]?.alarms.contains { $0.set.contains(.occlusion) } == false, "module 2 has no alarm")
    }

    @Test("keep-alive loss (the rack goes silent: no ENQ) is reported as .remoteControlLost within 2 s; sessions reopen after")
    func keepAliveLoss() async throws {
        let rig = try await connected(modules: 2)
        defer { rig.close() }
        let silenced = rig.clock.now()
        #expect(rig.sim.inject("silence", "4s") != nil)
        #expect(await eventually(.seconds(5)) { rig.logs.values.allSatisfy { $0.first(.remoteControlLost, since: silenced) != nil } })
        for slot in [1, 2] {
            let lost = try #require(rig.logs[slot]?.first(.remoteControlLost, since: silenced))
            #expect(lost - silenced <= .seconds(2), "module \(slot): reported \(lost - silenced) after the silence began")
        }
        #expect(rig.logs[1]?.connections.contains { $0.at >= silenced && $0.state == .silent } == true)
        #expect(await eventually(.seconds(5)) {
            rig.logs.values.allSatisfy { $0.isConnected && $0.alarms.last.map { !$0.set.contains(.remoteControlLost) } == true }
        }, "the sessions should reopen when the rack talks again")
    }

    @Test("a NAK storm: each frame sent a bounded number of times (3), then a technical alarm (.deviceFault, silent); cleared afterwards")
    func nakStorm() async throws {
        let rig = try await connected(modules: 1)
        defer { rig.close() }
        let one = try #require(rig.pumps[1])
        let before = rig.clock.now()
        #expect(rig.sim.inject("nak-storm", "2s") != nil)
        guard case .uncertain = await one.status() else { Issue.record("a status through a NAK storm should be uncertain"); return }
        // 3 sends, each NAKed at once: bounded by 3 reply time-outs (1 s each) plus one request ahead of it.
        // Timed by the driver's own stamp on the alarm (rack time).
        #expect(await eventually(.seconds(5)) { rig.logs[1]?.first(.deviceFault, since: before) != nil })  // events arrive through a stream
        let fault = try #require(rig.logs[1]?.first(.deviceFault, since: before), "a technical alarm should follow the NAKs")
        #expect(fault - before <= .seconds(4), "gave up after \(fault - before)")
        #expect(await eventually(.seconds(5)) { rig.logs[1]?.connections.contains { $0.at >= before && $0.state == .silent } == true })
        #expect(await eventually(.seconds(5)) { rig.logs[1]?.alarms.last.map { $0.set.isEmpty } == true && rig.logs[1]?.isConnected == true })
        #expect(await one.status().value != nil)
    }

    @Test("a reply with a bad checksum is answered NAK 2 and the pump's correct re-send is accepted")
    func badChecksumFromThePump() async throws {
        let rig = try await connected(modules: 1)
        defer { rig.close() }
        let one = try #require(rig.pumps[1])
        #expect(await one.setRate(.millilitresPerHour(7)).value != nil)
        #expect(rig.sim.inject("corrupt-replies", "1") != nil)
        let status = try #require(await one.status().value, "the re-sent reply should complete the request")
        #expect(isRate(status.rate, 7))
        #expect(rig.sim.read { $0.naksReceived } == 1, "the driver should NAK the corrupted reply once")
        #expect(rig.logs[1]?.alarms.contains { $0.set.contains(.deviceFault) } == false)
    }

    @Test("a module removed from the rack is reported as that pump disconnected (error 0E refuses its commands), the others unaffected; inserted again it reconnects")
    func moduleRemoved() async throws {
        let rig = try await connected(modules: 3)
        defer { rig.close() }
        let removed = rig.clock.now()
        #expect(rig.sim.inject("remove-module", "2") != nil)
        #expect(await eventually(.seconds(5)) { rig.logs[2]?.connections.last?.state == .disconnected })
        let gone = try #require(rig.logs[2]?.connections.last)
        #expect(gone.at - removed <= .seconds(2))
        guard case .refused(let refusal) = await rig.pumps[2]?.status() else { Issue.record("a removed module's commands should be refused"); return }
        #expect(refusal.code == "I;0E")
        #expect(await rig.pumps[1]?.status().value != nil)
        #expect(await rig.pumps[3]?.status().value != nil)
        #expect(rig.logs[1]?.connections.map { $0.state } == [.connected])
        #expect(rig.logs[3]?.connections.map { $0.state } == [.connected])
        #expect(rig.sim.inject("insert-module", "2") != nil)
        #expect(await eventually(.seconds(5)) { rig.logs[2]?.isConnected == true }, "the module should reconnect")
        #expect(await eventually(.seconds(5)) { rig.sim.read { $0.module(2)?.mode } == .remote })
    }
}
