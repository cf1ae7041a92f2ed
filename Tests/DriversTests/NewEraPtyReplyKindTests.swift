import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import Foundation
import InfusionCore
import Testing

/// Acceptance (issue 4, "the driver against the simulator over real ptys for every command and reply
/// kind"): the reply kinds the other pty suites do not reach — the power-reset alarm, ?NA, ?COM, pause P,
/// withdraw W, purge X, the program alarms E and O, and ?IGN (from a scripted pump: the simulator never
/// sends it) — each through `NewEraPump` on a real pseudo-terminal.
@Suite("New Era reply kinds over real ptys", .serialized)
struct NewEraPtyReplyKindTests {
    static let session = NewEraSession.Configuration(safeModeTimeoutSeconds: 1, replyTimeout: .milliseconds(200))

    @Test("power reset A?R: the power-up report is acknowledged and not latched; a reset during the session is a high-priority powerReset")
    func powerReset() async throws {
        let sim = try PtyPump()
        defer { sim.shutdown() }
        let pump = NewEraPump(path: sim.linkPath, configuration: Self.session)
        defer { pump.close() }
        let log = PumpEventLog(pump)
        defer { log.cancel() }
        let first = try #require(await pump.status().value)
        // The handshake's SAF got the power-up A?R over the pty, was sent again and confirmed.
        #expect(sim.events.get.contains(.reply("00A?R")))
        #expect(first.alarms.isEmpty, "the expected power-up report is not an alarm")
        #expect(sim.state?.alarm == nil, "acknowledged")
        #expect(await pump.setRate(.millilitresPerHour(10)).value != nil)
        #expect(await pump.start().value?.state == .infusing)

        #expect(sim.inject("power-reset") != nil)
        #expect(await eventually { log.alarms.last?.contains(.powerReset) == true })
        #expect(log.alarms.last?.highestPriority == .high)
        let status = try #require(await pump.status().value)
        #expect(status.alarms.contains(.powerReset))
        #expect(status.state == .stopped)
        #expect(sim.state?.prompt == .stopped)
    }

    @Test("?NA: the syringe and the volume cannot change while the pump infuses; the refusal says to stop first")
    func notApplicable() async throws {
        let sim = try PtyPump()
        defer { sim.shutdown() }
        let pump = NewEraPump(path: sim.linkPath, configuration: Self.session)
        defer { pump.close() }
        #expect(await pump.setRate(.millilitresPerHour(10)).value != nil)
        #expect(await pump.start().value?.state == .infusing)
        guard case .refused(let syringe) = await pump.configureSyringe(insideDiameterMillimetres: 19.05) else {
            Issue.record("DIA while infusing must be refused")
            return
        }
        #expect(syringe.code == "?NA")
        #expect(syringe.description.contains("stop it first"), "\(syringe.description)")
        #expect(sim.state?.diameter.text == "26.59", "unchanged")
        guard case .refused(let volume) = await pump.setVolumeToInfuse(Volume(5, .millilitres)) else {
            Issue.record("VOL while infusing must be refused")
            return
        }
        #expect(volume.code == "?NA")
        #expect(sim.state?.prompt == .infusing, "a refusal does not stop the pump")
    }

    @Test("pause P then stop S: the first stop of a running pump pauses it, the second stops it")
    func pauseThenStop() async throws {
        let sim = try PtyPump()
        defer { sim.shutdown() }
        let pump = NewEraPump(path: sim.linkPath, configuration: Self.session)
        defer { pump.close() }
        #expect(await pump.setRate(.millilitresPerHour(10)).value != nil)
        #expect(await pump.start().value?.state == .infusing)
        let paused = try #require(await pump.stop().value)
        #expect(paused.state == .paused)
        #expect(paused.state.isKnownStopped)
        #expect(sim.state?.prompt == .paused)
        #expect(await pump.status().value?.state == .paused)
        let stopped = try #require(await pump.stop().value)
        #expect(stopped.state == .stopped)
        #expect(sim.state?.prompt == .stopped)
    }

    /// Safe mode with a heartbeat only every 10 s, so that no heartbeat takes the corrupted packets
    /// meant for the command under test.
    static let quiet = NewEraSession.Configuration(safeModeTimeoutSeconds: 30, replyTimeout: .milliseconds(200),
                                                   maxAttempts: 3, pollInterval: .seconds(10))

    @Test("?COM: a packet garbled on the way is sent again and confirmed; garbled on every attempt, it is refused with ?COM")
    func corruptPackets() async throws {
        let sim = try PtyPump()
        defer { sim.shutdown() }
        let pump = NewEraPump(path: sim.linkPath, configuration: Self.quiet)
        defer { pump.close() }
        #expect(await pump.identify().value != nil)
        func corrupted() -> Int { sim.events.get.filter { if case .ignored(let text) = $0 { text.contains("corrupt") } else { false } }.count }

        #expect(sim.inject("corrupt", ["2"]) != nil)
        #expect(await pump.identify().value == PumpIdentity(family: "newera", model: "NE1000", firmware: "3.928"))
        #expect(corrupted() == 2, "two ?COM answers, then the third attempt went through")
        #expect(sim.events.get.filter { $0 == .reply("00S?COM") }.count == 2)

        #expect(sim.inject("corrupt", ["3"]) != nil)
        guard case .refused(let refusal) = await pump.setRate(.millilitresPerHour(12)) else {
            Issue.record("garbled 3 times out of 3 attempts must be refused")
            return
        }
        #expect(refusal.code == "?COM")
        #expect(refusal.description.contains("baud rate"), "\(refusal.description)")
        // The host records a packet's events after sending its reply: the third may lag the refusal.
        #expect(await eventually(.seconds(2)) { corrupted() == 5 })
        #expect(sim.state?.rate.volumeRate != .millilitresPerHour(12), "never obeyed")
        #expect(await pump.setRate(.millilitresPerHour(12)).value != nil, "the line is clean again")
    }

    @Test("withdraw W and purge X: a pump set withdrawing or purging by hand is reported so, and stops on request")
    func withdrawAndPurge() async throws {
        // Half-full syringe so that it can withdraw; basic mode at power-up, as a technician would leave it.
        let sim = try PtyPump(.init(contents: Volume(30, .millilitres)))
        defer { sim.shutdown() }
        do {
            let line = try RawNewEraLine(path: sim.linkPath)
            defer { line.close() }
            #expect(try line.exchange("0") == "00A?R", "the power-up alarm, acknowledged")
            #expect(try line.exchange("0DIRWDR") == "00S")
            #expect(try line.exchange("0RAT10MH") == "00S")
            #expect(try line.exchange("0RUN") == "00W")
        }
        let pump = NewEraPump(path: sim.linkPath, configuration: Self.session)
        defer { pump.close() }
        let withdrawing = try #require(await pump.status().value)
        #expect(withdrawing.state == .withdrawing)
        #expect(withdrawing.rate == .millilitresPerHour(10))
        #expect(sim.state?.prompt == .withdrawing)
        #expect(await pump.stop().value?.state == .paused)
        #expect(await pump.stop().value?.state == .stopped)
        #expect(sim.state?.prompt == .stopped)

        let purgeSim = try PtyPump()
        defer { purgeSim.shutdown() }
        do {
            let line = try RawNewEraLine(path: purgeSim.linkPath)
            defer { line.close() }
            #expect(try line.exchange("0") == "00A?R")
            #expect(try line.exchange("0PUR") == "00X")
        }
        let purger = NewEraPump(path: purgeSim.linkPath, configuration: Self.session)
        defer { purger.close() }
        let purging = try #require(await purger.status().value)
        #expect(purging.state == .purging)
        #expect(purgeSim.state?.prompt == .purging)
        #expect(await purger.stop().value?.state == .paused)
        #expect(purgeSim.state?.prompt.isPumping == false)
    }

    @Test("program error A?E and phase out of range A?O: typed, high-priority pump alarms, while pumping and at the next start",
          arguments: [("program-error", PumpAlarms.programError), ("phase-out-of-range", PumpAlarms.outOfRange)])
    func programAlarms(fault: String, expected: PumpAlarms) async throws {
        let sim = try PtyPump()
        defer { sim.shutdown() }
        let pump = NewEraPump(path: sim.linkPath, configuration: Self.session)
        defer { pump.close() }
        let log = PumpEventLog(pump)
        defer { log.cancel() }
        #expect(await pump.setRate(.millilitresPerHour(10)).value != nil)
        #expect(await pump.start().value?.state == .infusing)
        #expect(sim.inject(fault) != nil)
        #expect(await eventually { log.alarms.last?.contains(expected) == true })
        #expect(log.alarms.last == expected)
        #expect(log.alarms.last?.highestPriority == .high)
        let status = try #require(await pump.status().value)
        #expect(status.alarms == expected)
        #expect(status.state == .stopped)

        // Armed while stopped: a confirmed start clears the latched alarm, then the program fails again.
        #expect(sim.inject(fault) != nil)
        let before = log.alarms.count
        #expect(await pump.start().value?.state == .infusing)
        #expect(await eventually { log.alarms.count >= before + 2 })
        #expect(Array(log.alarms.dropFirst(before).prefix(2)) == [[], expected], "cleared by the start, then raised again")
        #expect(await pump.status().value?.alarms == expected)
        #expect(sim.state?.prompt == .stopped)
    }

    @Test("?IGN from a (scripted) pump over a pty is a refusal with the pump's code and what to do")
    func ignored() async throws {
        let peer = try ScriptedNewEraPeer { packet in
            let body: NewEra.Reply.Body = switch packet.command {
            case .queryVersion: .error(.ignored)
            case .queryDispensed: .data("I0.000W0.000ML")
            case .queryRate: .data("10.00MH")
            default: .none
            }
            return NewEra.Reply(address: .zero, status: .prompt(.stopped), body: body)
        }
        defer { peer.stop() }
        let pump = NewEraPump(path: peer.path, configuration: .init(safeModeTimeoutSeconds: 0, replyTimeout: .milliseconds(200)))
        defer { pump.close() }
        guard case .refused(let refusal) = await pump.identify() else {
            Issue.record("?IGN must be a refusal")
            return
        }
        #expect(refusal.code == "?IGN")
        #expect(refusal.description.contains("send it again"), "\(refusal.description)")
        #expect(peer.received.contains("0VER"))
        #expect(peer.received.filter { $0 == "0VER" }.count == 1, "refused, not retried behind the caller's back")
        let status = try #require(await pump.status().value, "the session carries on")
        #expect(status.state == .stopped)
        #expect(status.rate == .millilitresPerHour(10))
    }
}

/// A technician's terminal on a New Era line: sends commands in basic framing (or given bytes) and reads
/// each reply. Owns its serial port; one thread.
struct RawNewEraLine {
    let port: SerialPort

    init(path: String) throws {
        port = try SerialPort(path: path, settings: SerialSettings(baudRate: .b19200))
    }

    /// Sends `command` + CR and returns the reply's text, or nil if none came within `timeout`.
    func exchange(_ command: String, timeout: Duration = .seconds(2)) throws -> String? {
        try exchange(Array((command + "\r").utf8), timeout: timeout)
    }

    /// Sends `bytes` and returns the reply's text, or nil if none came within `timeout`.
    func exchange(_ bytes: [UInt8], timeout: Duration = .seconds(2)) throws -> String? {
        try port.write(bytes, timeout: .seconds(1))
        let clock = SystemMonotonicClock()
        var decoder = NewEra.ReplyDecoder()
        let end = clock.now() + timeout
        while clock.now() < end {
            var chunk: [UInt8] = []
            do throws(DeviceIOError) {
                chunk = try port.read(upTo: 64, timeout: .milliseconds(50))
            } catch {
                if case .readTimedOut = error { continue }
                throw error
            }
            for case .success(let reply) in decoder.decode(chunk, at: clock.now()) { return reply.message.text }
        }
        return nil
    }

    func close() { port.close() }
}

/// A scripted New Era pump on a real pty: decodes each command packet the driver sends to the slave and
/// answers with `answer`'s reply in the packet's framing (SAF in the framing it asks for). For replies
/// the simulator never gives. Runs one reader thread until `stop()`.
final class ScriptedNewEraPeer: Sendable {
    let path: String
    private let pty: PseudoTerminal
    private let log = Shared<[String]>([])
    private let running = Shared(true)
    private let done = DispatchSemaphore(value: 0)

    init(answer: @escaping @Sendable (NewEra.CommandPacket) -> NewEra.Reply?) throws {
        pty = try PseudoTerminal()
        path = pty.slavePath
        let pty = self.pty, log = self.log, running = self.running, done = self.done
        Thread {
            let clock = SystemMonotonicClock()
            var decoder = NewEra.CommandDecoder()
            while running.get {
                let bytes: [UInt8]
                do {
                    bytes = try pty.read(upTo: 256, timeout: .milliseconds(20))
                } catch {
                    Thread.sleep(forTimeInterval: 0.005)  // time-out, or no slave open yet
                    continue
                }
                for case .success(let received) in decoder.decode(bytes, at: clock.now()) {
                    log.update { $0.append(received.message.text) }
                    guard let reply = answer(received.message) else { continue }
                    var framing = received.framing
                    if case .setSafeMode(let seconds) = received.message.command { framing = seconds > 0 ? .safe : .basic }
                    if let frame = try? NewEra.Framing.encode(reply, mode: framing) { try? pty.write(frame, timeout: .seconds(1)) }
                }
            }
            done.signal()
        }.start()
    }

    /// The packets received so far, as text ("0VER").
    var received: [String] { log.get }

    func stop() {
        running.update { $0 = false }
        done.wait()
        pty.close()
    }
}
