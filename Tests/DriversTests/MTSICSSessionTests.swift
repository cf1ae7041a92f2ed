import DeviceIO
import DeviceProtocols
import DeviceSimulators
import Drivers
import InfusionCore
import Testing

/// What the driver session published during a virtual-time test.
final class SessionRecorder {
    var completions: [UInt64: (outcome: MTSICSOutcome, at: MonotonicInstant)] = [:]
    var connections: [DeviceConnection] = []
    var ignored: [String] = []

    func record(_ output: MTSICSSessionOutput, at now: MonotonicInstant) {
        switch output {
        case let .completed(id, _, outcome): completions[id] = (outcome, now)
        case let .connection(state, _): connections.append(state)
        case let .ignoredLine(line, _): ignored.append(line)
        }
    }
}

/// The MT-SICS driver session ⇄ the simulated balance in virtual time, paced at 9600 bit/s.
final class BalanceBench {
    let clock = VirtualClock()
    let network: VirtualNetwork
    let recorder = SessionRecorder()
    let driver: VirtualNetwork.NodeID
    let balance: VirtualNetwork.NodeID
    private var nextID: UInt64 = 1

    init(_ configuration: SimulatedBalance.Configuration = .init(), session: MTSICSSession.Configuration = .init(), connect: Bool = true) {
        let network = VirtualNetwork(clock: clock)
        let recorder = self.recorder
        let clock = self.clock
        self.network = network
        driver = network.add(MTSICSSession(configuration: session)) { recorder.record($0, at: clock.now()) }
        balance = network.add(SimulatedBalance(configuration: configuration))
        if connect { self.connect() }
    }

    func connect() { network.connect(driver, balance, bitsPerSecond: 9600) }

    @discardableResult
    func submit(_ command: MTSICSCommand) -> UInt64 {
        let id = nextID
        nextID += 1
        network.perform(driver, as: MTSICSSession.self) { session, now, effects in session.submit(command, id: id, at: now, effects: &effects) }
        return id
    }

    func run(until id: UInt64, limit: Duration = .seconds(60)) -> (outcome: MTSICSOutcome, at: MonotonicInstant)? {
        let end = clock.now() + limit
        while recorder.completions[id] == nil, let next = network.nextEventTime(), next <= end {
            network.run(until: next)
        }
        return recorder.completions[id]
    }

    /// Submits `command` and runs until it completes.
    func exchange(_ command: MTSICSCommand) -> (outcome: MTSICSOutcome, at: MonotonicInstant)? {
        run(until: submit(command))
    }

    func inject(_ name: String, _ arguments: String...) throws {
        let result = network.perform(balance, as: SimulatedBalance.self) { sim, now, _ in
            Result { () throws(FaultError) -> String in try sim.inject(FaultCommand(name: name, arguments: arguments), at: now) }
        }
        _ = try #require(result).get()
    }

    func deliver(_ millilitres: Double) {
        network.perform(balance, as: SimulatedBalance.self) { sim, now, _ in sim.update(deliveredVolume: .millilitres(millilitres), at: now) }
    }
}

/// Time for `bytes` bytes at 9600 bit/s, 10 bits per byte.
func wire(_ bytes: Int) -> Duration { .nanoseconds(Int64(bytes) * 1_041_666) }

@Suite("MT-SICS session against the simulated balance, in virtual time")
struct MTSICSSessionTests {
    @Test("Every level-0 command gets its reply")
    func everyCommand() throws {
        let bench = BalanceBench()
        #expect(bench.exchange(.serialNumber)?.outcome == .response(.serialNumber("B123456789")))
        #expect(bench.exchange(.balanceData)?.outcome == .response(.information(.balanceData, ["XS204", "220.0000 g"])))
        #expect(bench.exchange(.level)?.outcome == .response(.information(.level, ["01", "2.20", "2.20", "1.00", "1.50"])))
        #expect(bench.exchange(.softwareVersion)?.outcome == .response(.information(.softwareVersion, ["4.10"])))
        #expect(bench.exchange(.softwareIdentification)?.outcome == .response(.information(.softwareIdentification, ["11671158C"])))
        bench.deliver(10)  // 9.98204 g
        bench.network.run(for: .seconds(3))  // settle
        guard case let .response(.weight(stable))? = bench.exchange(.weighStable)?.outcome else { Issue.record("no weight"); return }
        #expect(stable.isStable && abs(stable.value - 9.98204) <= 0.0003 && stable.unit == "g" && stable.fractionDigits == 4)
        guard case let .response(.weight(now))? = bench.exchange(.weighImmediately)?.outcome else { Issue.record("no weight"); return }
        #expect(now.isStable && abs(now.value - 9.98204) <= 0.0003)
        #expect(bench.exchange(.zero)?.outcome == .response(.zero(immediate: false, .done)))
        guard case let .response(.weight(zeroed))? = bench.exchange(.weighImmediately)?.outcome else { Issue.record("no weight"); return }
        #expect(abs(zeroed.value) <= 0.0003)
        #expect(bench.exchange(.zeroImmediately)?.outcome == .response(.zero(immediate: true, .doneWhileStable)))
        #expect(bench.exchange(.reset)?.outcome == .response(.serialNumber("B123456789")))
        #expect(bench.recorder.ignored.isEmpty)
    }

    @Test("SI answers at once: `I4` round trip is exactly the wire time of 4 + 19 bytes")
    func immediateTiming() {
        let bench = BalanceBench()
        let start = bench.clock.now()
        let result = bench.exchange(.serialNumber)
        #expect(result?.at == start + wire(4) + wire(19))  // "I4\r\n", "I4 A \"B123456789\"\r\n"
    }

    @Test("S waits for stability: answered when the settling time after a step has passed, not before")
    func stabilityWait() throws {
        let bench = BalanceBench()
        bench.deliver(1)  // a 1 g step: dynamic for 2 s
        let stepped = bench.clock.now()
        guard case let .response(.weight(dynamic))? = bench.exchange(.weighImmediately)?.outcome else { Issue.record("no weight"); return }
        #expect(!dynamic.isStable)
        let id = bench.submit(.weighStable)
        let result = try #require(bench.run(until: id))
        guard case let .response(.weight(weight)) = result.outcome else { Issue.record("\(result.outcome)"); return }
        #expect(weight.isStable)
        // Answered at the instant it settles, plus the reply's wire time ("S S     0.9982 g\r\n" = 18 bytes).
        #expect(result.at == stepped + .seconds(2) + wire(18))
    }

    @Test("S on a balance that never settles: S I at the balance's time-out, one tick before nothing")
    func stabilityTimeout() throws {
        var configuration = SimulatedBalance.Configuration()
        configuration.stabilityTimeout = .seconds(5)
        let bench = BalanceBench(configuration)
        try bench.inject("unstable")
        let start = bench.clock.now()
        let id = bench.submit(.weighStable)
        let received = start + wire(3)  // "S\r\n"
        bench.network.run(until: received + .seconds(5) + wire(5) - .nanoseconds(1))
        #expect(bench.recorder.completions[id] == nil)
        let result = try #require(bench.run(until: id))
        #expect(result.outcome == .response(.weightNotExecutable))
        #expect(result.at == received + .seconds(5) + wire(5))  // "S I\r\n"
        let zero = try #require(bench.exchange(.zero))
        #expect(zero.outcome == .response(.zero(immediate: false, .notExecutable)))
        try bench.inject("stable")
        #expect(bench.exchange(.zero)?.outcome == .response(.zero(immediate: false, .done)))
    }

    @Test("No reply: completes noReply exactly at the deadline, not a nanosecond earlier; the link is then silent")
    func replyDeadline() throws {
        let bench = BalanceBench(session: MTSICSSession.Configuration(replyTimeout: .seconds(1)))
        try bench.inject("silence", "10s")
        let start = bench.clock.now()
        let id = bench.submit(.weighImmediately)
        bench.network.run(until: start + .seconds(1) - .nanoseconds(1))
        #expect(bench.recorder.completions[id] == nil)
        let result = try #require(bench.run(until: id))
        #expect(result.outcome == .noReply(after: .seconds(1)))
        #expect(result.at == start + .seconds(1))
        #expect(bench.recorder.connections == [.connected, .silent])
        bench.network.run(for: .seconds(10))
        guard case .response(.weight)? = bench.exchange(.weighImmediately)?.outcome else { Issue.record("no weight after the silence"); return }
        #expect(bench.recorder.connections == [.connected, .silent, .connected])
    }

    @Test("S uses the longer deadline: a silent balance fails S after 15 s, SI after 1 s")
    func stableDeadline() throws {
        let bench = BalanceBench()
        try bench.inject("silence")
        let start = bench.clock.now()
        #expect(bench.exchange(.weighStable)?.at == start + .seconds(15))
        let second = bench.clock.now()
        #expect(bench.exchange(.weighImmediately)?.at == second + .seconds(1))
    }

    @Test("Error replies: ES for an unsupported command, EL and ET injected; a read is retried once after ET")
    func errorReplies() throws {
        let bench = BalanceBench(SimulatedBalance.Configuration(unsupportedCommands: [.softwareIdentification]))
        #expect(bench.exchange(.softwareIdentification)?.outcome == .response(.syntaxError))
        try bench.inject("logical-error")
        #expect(bench.exchange(.zero)?.outcome == .response(.logicalError))
        try bench.inject("transmission-error")
        #expect(bench.exchange(.serialNumber)?.outcome == .response(.serialNumber("B123456789")))  // retried
        try bench.inject("transmission-error", "2")
        #expect(bench.exchange(.serialNumber)?.outcome == .response(.transmissionError))
        try bench.inject("transmission-error")
        #expect(bench.exchange(.zero)?.outcome == .response(.transmissionError))  // Z is not retried
    }

    @Test("Limits: S + and Z + over capacity, S - and Z - with the pan off, Z + above the zero range")
    func limits() throws {
        let bench = BalanceBench()
        try bench.inject("overload")
        bench.network.run(for: .seconds(3))
        #expect(bench.exchange(.weighImmediately)?.outcome == .response(.weightOverload))
        #expect(bench.exchange(.weighStable)?.outcome == .response(.weightOverload))
        #expect(bench.exchange(.zero)?.outcome == .response(.zero(immediate: false, .aboveRange)))
        try bench.inject("underload")
        bench.network.run(for: .seconds(3))
        #expect(bench.exchange(.weighImmediately)?.outcome == .response(.weightUnderload))
        #expect(bench.exchange(.zeroImmediately)?.outcome == .response(.zero(immediate: true, .belowRange)))
        try bench.inject("load", "15")
        bench.network.run(for: .seconds(3))
        #expect(bench.exchange(.zero)?.outcome == .response(.zero(immediate: false, .aboveRange)))
        try bench.inject("load", "0")
        bench.network.run(for: .seconds(3))
        #expect(bench.exchange(.zero)?.outcome == .response(.zero(immediate: false, .done)))
    }

    @Test("Requests wait for the link up to the queue time-out, then fail notConnected")
    func notConnected() throws {
        let bench = BalanceBench(session: MTSICSSession.Configuration(queueTimeout: .seconds(2)), connect: false)
        let start = bench.clock.now()
        let lost = bench.submit(.serialNumber)
        let result = try #require(bench.run(until: lost))
        #expect(result.outcome == .notConnected(waited: .seconds(2)) && result.at == start + .seconds(2))
        let waiting = bench.submit(.serialNumber)
        bench.network.run(for: .seconds(1))
        bench.connect()
        #expect(bench.run(until: waiting)?.outcome == .response(.serialNumber("B123456789")))
    }

    @Test("Unplugging fails the outstanding and queued requests with linkLost")
    func unplug() throws {
        let bench = BalanceBench()
        try bench.inject("unstable")
        let first = bench.submit(.weighStable)
        let second = bench.submit(.serialNumber)
        bench.network.run(for: .seconds(1))
        bench.network.disconnect(bench.driver)
        #expect(bench.recorder.completions[first]?.outcome == .linkLost)
        #expect(bench.recorder.completions[second]?.outcome == .linkLost)
        #expect(bench.recorder.connections.last == .disconnected)
    }

    @Test("Garbage and random bytes never wedge the session: the next exchange works")
    func garbage() throws {
        let bench = BalanceBench()
        try bench.inject("garbage")
        bench.network.run(for: .seconds(1))
        #expect(bench.recorder.ignored.count == 1)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let bytes = (0..<Int.random(in: 1...400, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            bench.network.perform(bench.driver, as: MTSICSSession.self) { session, now, effects in session.receive(bytes, at: now, effects: &effects) }
        }
        bench.network.perform(bench.driver, as: MTSICSSession.self) { session, now, effects in session.receive([0x0D, 0x0A], at: now, effects: &effects) }
        #expect(bench.exchange(.serialNumber)?.outcome == .response(.serialNumber("B123456789")))
    }

    @Test("Replies that belong to another command are ignored, not taken as the answer")
    func matching() {
        #expect(MTSICSSessionProbe.belongs(.zero(immediate: false, .done), to: .zeroImmediately) == false)
        #expect(MTSICSSessionProbe.belongs(.serialNumber("X"), to: .reset))
        #expect(MTSICSSessionProbe.belongs(.weightOverload, to: .weighStable))
        #expect(MTSICSSessionProbe.belongs(.information(.level, []), to: .balanceData) == false)
        #expect(MTSICSSessionProbe.belongs(.syntaxError, to: .level))
    }
}

/// Exercises the session's reply matching through its public behaviour: a lone reply line arriving while
/// `command` is outstanding completes it only when it belongs.
enum MTSICSSessionProbe {
    static func belongs(_ response: MTSICSResponse, to command: MTSICSCommand) -> Bool {
        var session = MTSICSSession()
        var effects = EndpointEffects<MTSICSSessionOutput>()
        session.linkUp(at: .origin, effects: &effects)
        session.submit(command, id: 1, at: .origin, effects: &effects)
        var reply = EndpointEffects<MTSICSSessionOutput>()
        session.receive(response.bytes, at: .origin, effects: &reply)
        return reply.outputs.contains { if case .completed(1, _, _) = $0 { true } else { false } }
    }
}
