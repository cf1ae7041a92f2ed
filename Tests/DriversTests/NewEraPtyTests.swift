import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Testing

/// Acceptance (issue 4): the New Era driver against the simulated pump over REAL pseudo-terminals,
/// both ends hosted in `EndpointHost`s. Safe-mode time-outs are 1 s to keep each test to seconds.
@Suite("New Era driver over real ptys", .serialized)
struct NewEraPtyTests {
    static let session = NewEraSession.Configuration(safeModeTimeoutSeconds: 1, replyTimeout: .milliseconds(200))
    /// How late a real-time host may deliver a deadline on a loaded 2-core CI machine.
    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }
    static let timerSlack = Duration.milliseconds(100)

    @Test("every command: identify, syringe, rate, volume, start, status, stop, clear, watchdog arm/disarm, fast stop")
    func everyCommand() async throws {
        let sim = try PtyPump()
        defer { sim.shutdown() }
        let pump = NewEraPump(path: sim.linkPath, configuration: Self.session)
        defer { pump.close() }

        let identity = try #require(await pump.identify().value)
        #expect(identity == PumpIdentity(family: "newera", model: "NE1000", firmware: "3.928"))
        let syringe = try SyringeCatalogue.syringe(named: "bd plastipak 60ml")
        #expect(await pump.configureSyringe(insideDiameterMillimetres: syringe.insideDiameterMillimetres).value == 26.59)
        #expect(pump.capabilities.maximumRate != nil)
        let rate = try #require(await pump.setRate(VolumeRate(1.23456, .millilitresPerHour)).value)
        // Rounded toward less drug to 4 digits in the unit that keeps the most: 20.57 µL/min = 1.2342 mL/h
        // (compared as printed: the pump's decimal may differ from a Double literal in the last bit).
        #expect(rate.actual.formatted(in: .millilitresPerHour, fractionDigits: 9) == "1.2342 mL/h")
        #expect(rate.actual <= rate.requested)
        #expect(rate.requested == VolumeRate(1.23456, .millilitresPerHour))
        let volume = try #require(await pump.setVolumeToInfuse(Volume(2.5, .millilitres)).value)
        #expect(volume.actual == Volume(2.5, .millilitres))
        #expect(sim.state?.volumeUnit == .microlitres)
        #expect(await pump.start().value?.state == .infusing)
        let status = try #require(await pump.status().value)
        #expect(status.state == .infusing)
        #expect(status.rate?.formatted(in: .millilitresPerHour, fractionDigits: 9) == "1.2342 mL/h")
        #expect(status.volumeInfused != nil)
        #expect(pump.lastStatus?.state == .infusing)
        #expect(await pump.stop().value?.state.isKnownStopped == true)
        #expect(await pump.clearVolume().value == Volume(0, .microlitres))
        #expect(await pump.disarmWatchdog().value == .zero)
        #expect(sim.state?.mode == .basic)
        #expect(await pump.armWatchdog(timeout: .seconds(2)).value == .seconds(2))
        #expect(sim.state?.mode == .safe)
        if case .refused = await pump.armWatchdog(timeout: .milliseconds(500)) {} else { Issue.record("0.5 s must be refused") }
        // Refusal: a rate the syringe cannot do.
        if case .refused(let refusal) = await pump.setRate(.millilitresPerHour(9000)) {
            #expect(refusal.code == "?OOR")
        } else {
            Issue.record("9000 mL/h must be refused with ?OOR")
        }
        // Fast stop: the pre-encoded frame stops the pump.
        #expect(await pump.start().value?.state == .infusing)
        #expect(pump.sendStopNow())
        #expect(await eventually { sim.state?.prompt.isPumping == false })
        // Uncertain: the pump goes deaf.
        _ = sim.inject("silence", ["2s"])
        if case .uncertain = await pump.identify() {} else { Issue.record("no reply must be uncertain") }
    }

    @Test("watchdog: the host goes silent, the pump stops within its time-out, the driver on return reports alarm T")
    func watchdog() async throws {
        let sim = try PtyPump()
        defer { sim.shutdown() }
        let first = NewEraPump(path: sim.linkPath, configuration: Self.session)
        #expect(await first.setRate(.millilitresPerHour(10)).value != nil)
        #expect(await first.start().value?.state == .infusing)
        first.close()  // the host goes silent (and closes the port)
        // The stop event (recorded by the host just after the state changes) is the one to wait for.
        #expect(await eventually(.seconds(3)) { sim.timedEvents.get.contains { $0.event == .stopped("watchdog") } })
        #expect(sim.state?.prompt == .stopped)
        #expect(sim.state?.alarm == .safeModeTimeout)
        // Measured from the last packet the pump received (its watchdog's reference; the driver's last
        // heartbeat, up to a third of the time-out before the close) to the moment the pump's host delivered
        // the stop, both on the host's clock. At or after 1 s by construction; the margin above is the
        // simulator host's timer wake-up on a loaded machine, not the pump's logic (exact in virtual time:
        // NewEraSessionTests "watchdog").
        let lastPacket = try #require(sim.state?.lastValidPacketAt)
        let stoppedAt = try #require(sim.timedEvents.get.first { $0.event == .stopped("watchdog") }?.at)
        #expect(stoppedAt - lastPacket >= .seconds(1), "not before the time-out")
        #expect(stoppedAt - lastPacket < .seconds(1) + Self.timerSlack,
                "stopped \(Self.milliseconds(stoppedAt - lastPacket)) ms after the last packet (time-out 1 s)")

        let second = NewEraPump(path: sim.linkPath, configuration: Self.session)
        defer { second.close() }
        let status = try #require(await second.status().value)
        #expect(status.alarms.contains(.communicationTimeout))
        #expect(status.state == .stopped)
        #expect(status.alarms.highestPriority == .high)
    }

    @Test("a stall shows up as a high-priority pump alarm")
    func stall() async throws {
        let sim = try PtyPump()
        defer { sim.shutdown() }
        let pump = NewEraPump(path: sim.linkPath, configuration: Self.session)
        defer { pump.close() }
        let log = PumpEventLog(pump)
        defer { log.cancel() }
        #expect(await pump.setRate(.millilitresPerHour(10)).value != nil)
        #expect(await pump.start().value?.state == .infusing)
        let injectedAt = Date()
        #expect(sim.inject("stall") != nil)
        #expect(await eventually { log.alarms.last?.contains(.occlusion) == true })
        #expect(Date().timeIntervalSince(injectedAt) < 1)
        #expect(log.alarms.last?.highestPriority == .high)
        #expect(await pump.status().value?.alarms.contains(.occlusion) == true)
    }

    @Test("unplug is reported within 1 s and the driver reconnects (and re-arms safe mode) when the device comes back")
    func unplugAndReconnect() async throws {
        let sim = try PtyPump()
        defer { sim.shutdown() }
        let pump = NewEraPump(path: sim.linkPath, configuration: Self.session, reconnectInterval: .milliseconds(50))
        defer { pump.close() }
        let log = PumpEventLog(pump)
        defer { log.cancel() }
        #expect(await pump.identify().value != nil)
        let state = sim.unplug()
        let unpluggedAt = SystemMonotonicClock().now()
        #expect(await eventually { log.connections.contains { $0.0 == .disconnected } })
        let reported = try #require(log.connections.first { $0.0 == .disconnected })
        #expect(reported.1 - unpluggedAt < .seconds(1))
        if case .uncertain = await pump.status() {} else { Issue.record("while unplugged: uncertain") }

        // Plugged back in (same pump, new pty node behind the same symlink), with safe mode switched off
        // meanwhile: the driver must re-arm it.
        var replugged = try #require(state)
        var effects = EndpointEffects<NewEraSimulatedPump.Event>()
        replugged.receive(try NewEra.Framing.safePacket(NewEra.CommandPacket(address: .zero, .setSafeMode(timeoutSeconds: 0))),
                          at: SystemMonotonicClock().now(), effects: &effects)
        #expect(replugged.mode == .basic)
        try sim.plugIn(state: replugged)
        #expect(await eventually { log.connections.last?.0 == .connected })
        #expect(await pump.status().value != nil)
        #expect(sim.state?.mode == .safe)
        #expect(sim.state?.safeModeTimeoutSeconds == 1)
    }

    @Test("random bytes on the line never crash or wedge the driver")
    func garbage() async throws {
        let sim = try PtyPump()
        defer { sim.shutdown() }
        let pump = NewEraPump(path: sim.linkPath, configuration: Self.session)
        defer { pump.close() }
        #expect(await pump.identify().value != nil)
        for _ in 0..<20 {
            _ = sim.inject("garbage", ["100"])
            try await Task.sleep(for: .milliseconds(10))
        }
        // Commands may be disturbed while garbage flies, never wedged: the next ones are confirmed.
        try await Task.sleep(for: .milliseconds(600))
        #expect(await pump.identify().value != nil)
        #expect(await pump.status().value != nil)
    }
}
