#if canImport(Glibc)
import Glibc
#endif
import CommandLineTestSupport
import DeviceSimulators
import Foundation
import InfusionCore
import Records
import Testing

/// Simulated devices hosted in THIS process on real pseudo-terminals (a New Era pump and a Nonin DF8
/// oximeter in one simulated world on a `ScaledClock`), for `infusionctl run` running as a child process
/// at the same `--speed`.
final class HostedBedside: @unchecked Sendable {
    let world: SimulatedWorld
    let pump: PTYHostedDevice<NewEraSimulatedPump>
    let oximeter: PTYHostedDevice<SimulatedNoninDF8>

    init(speed: Double) throws {
        let clock = ScaledClock(speed: speed)
        let patient = try VirtualPatient(scenario: Scenario.load(text: """
            format = 1

            [scenario]
            name = "run test: calm patient"

            [patient]
            weight = "80 kg"
            spo2 = "97 %"
            pulse_rate = "76 bpm"
            noise_seed = 5
            """, source: "run-test"))
        world = SimulatedWorld(model: WorldModel(patient: patient, concentration: .milligramsPerMillilitre(1)), clock: clock)
        pump = PTYHostedDevice(device: NewEraSimulatedPump(), role: .pump, setup: HostedDeviceSetup(name: "pump0", clock: clock))
        oximeter = PTYHostedDevice(device: SimulatedNoninDF8(), role: .oximeter, setup: HostedDeviceSetup(name: "oximeter0", clock: clock))
        world.add(pump)
        world.add(oximeter)
        world.start()
    }

    func paths() throws -> (pump: String, oximeter: String) {
        let deadline = ContinuousClock.now + .seconds(2)
        while ContinuousClock.now < deadline, pump.devicePath == nil || oximeter.devicePath == nil { usleep(2_000) }
        return (try #require(pump.devicePath), try #require(oximeter.devicePath))
    }

    var pumpIsInfusing: Bool { pump.inspect { $0.prompt } == .infusing }

    func stop() { world.stop() }
}

/// A child process whose stdout is read line by line as it comes (so lines printed before a SIGKILL are
/// kept), with stdin open for commands.
final class ChildRun: @unchecked Sendable {
    private let process = Process()
    private let input = Pipe()
    private let lock = NSLock()
    private var pending = Data()
    private var complete: [String] = []
    private var errorText = Data()
    private let drained = DispatchSemaphore(value: 0)

    init(_ arguments: [String]) throws {
        process.executableURL = BuiltTool("infusionctl").url
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        DispatchQueue.global().async { [self] in
            let data = err.fileHandleForReading.readDataToEndOfFile()
            lock.withLock { errorText = data }
        }
        DispatchQueue.global().async { [self] in
            while true {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                lock.withLock {
                    pending.append(chunk)
                    while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                        complete.append(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                        pending.removeSubrange(pending.startIndex...newline)
                    }
                }
            }
            drained.signal()
        }
    }

    /// Complete stdout lines so far.
    var lines: [String] { lock.withLock { complete } }
    var stderr: String { lock.withLock { String(decoding: errorText, as: UTF8.self) } }

    /// Waits (real time) for a line that satisfies `match`.
    func waitForLine(timeout: Duration, _ match: (String) -> Bool) -> String? {
        let deadline = ContinuousClock.now + timeout
        repeat {
            if let line = lines.first(where: match) { return line }
            usleep(5_000)
        } while ContinuousClock.now < deadline && process.isRunning
        return lines.first(where: match)
    }

    func send(_ line: String) { input.fileHandleForWriting.write(Data((line + "\n").utf8)) }

    func kill() { _ = Glibc.kill(process.processIdentifier, SIGKILL) }

    /// Sends `number` (e.g. SIGTERM) to the child.
    func signal(_ number: Int32) { _ = Glibc.kill(process.processIdentifier, number) }

    /// Waits for the exit; kills the child and returns nil after `timeout`. Then waits for stdout to drain.
    func wait(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { usleep(5_000) }
        var status: Int32?
        if process.isRunning {
            kill()
            process.waitUntilExit()
        } else {
            process.waitUntilExit()
            status = process.terminationStatus
        }
        _ = drained.wait(timeout: .now() + 5)
        return status
    }

    var killedBySignal: Bool { process.terminationReason == .uncaughtSignal }
}

/// `infusionctl run` as a clinic's script would run it, against simulated devices on ptys.
@Suite("infusionctl run", .serialized)
struct RunCommandTests {
    static let speed = 30.0

    static func arguments(db: String, pump: String = "/dev/null/pump", oximeter: String = "/dev/null/oximeter",
                          dose: String = "0.35 mg/kg/h", duration: String = "2 min") -> [String] {
        ["run", "--profile", "ketamine-chronic-pain", "--drug", "Ketamine", "--concentration", "1 mg/mL", "--weight", "80 kg",
         "--dose", dose, "--duration", duration, "--patient", "P-042", "--operator", "nurse-7",
         "--pump", pump, "--pump-protocol", "newera", "--oximeter", oximeter, "--oximeter-protocol", "nonin-df8",
         "--db", db, "--speed", String(Int(speed)), "--start-timeout", "10 min", "--json-events"]
    }

    static func temporaryDatabase() -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("run-tests-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent("records.sqlite").path
    }

    static func json(_ line: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }

    @Test("validation first: a hard limit exits 3, an unconfirmed soft limit exits 2, a bad option 64; nothing is opened")
    func validationExitCodes() throws {
        let db = Self.temporaryDatabase()
        let rejected = try BuiltTool("infusionctl").run(Self.arguments(db: db, dose: "2 mg/kg/h"))
        #expect(rejected.status == 3, "\(rejected.stderr)")
        #expect(rejected.stdout.isEmpty, "with --json-events nothing but events goes to stdout")
        #expect(rejected.stderr.contains("REJECTED"))
        let soft = try BuiltTool("infusionctl").run(Self.arguments(db: db, dose: "0.6 mg/kg/h"))
        #expect(soft.status == 2, "\(soft.stderr)")
        #expect(soft.stderr.contains("--confirm-soft-limits"))
        let usage = try BuiltTool("infusionctl").run(Self.arguments(db: db) + ["--speed", "0"])
        #expect(usage.status == 64)
        for cpu in ["-1", "1024", "fast", "1.5"] {
            let badCPU = try BuiltTool("infusionctl").run(Self.arguments(db: db) + ["--realtime-cpu=\(cpu)"])
            #expect(badCPU.status == 64, "--realtime-cpu \(cpu.debugDescription)")
            #expect(badCPU.stderr.contains("--realtime-cpu must be a CPU number (0 to 1023), \"auto\" or \"none\""), "\(badCPU.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: db), "no database is created before the program is valid")
        let help = try BuiltTool("infusionctl").run(["run", "--help"])
        let helpText = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(helpText.contains("Exit codes: 0 program completed; 1 internal or record-store error"))
        #expect(helpText.contains("7 recovered an interrupted session, nothing started; 64 usage error"))
        #expect(helpText.contains("--realtime-cpu <CPU>") && helpText.contains("\"none\" (the default: the kernel places them)"))
    }

    @Test("--json-events: valid JSON lines from session-started to session-ended (completed, exit 0); stdin EOF keeps it running")
    func jsonEventsCompletedSession() throws {
        let bedside = try HostedBedside(speed: Self.speed)
        defer { bedside.stop() }
        let (pump, oximeter) = try bedside.paths()
        let db = Self.temporaryDatabase()
        let child = try ChildRun(Self.arguments(db: db, pump: pump, oximeter: oximeter))
        let status = child.wait(timeout: .seconds(30))
        let lines = child.lines
        #expect(status == 0, "exit \(String(describing: status)); stderr: \(child.stderr.suffix(2000))")
        let events = lines.compactMap(Self.json)
        #expect(events.count == lines.count, "every stdout line is a JSON object: \(lines.filter { Self.json($0) == nil }.prefix(3))")
        for event in events {
            #expect(event["type"] is String && event["t"] is Double && event["wall"] is String)
        }
        #expect(events.first?["type"] as? String == "session-started")
        let last = try #require(events.last)
        #expect(last["type"] as? String == "session-ended")
        #expect(last["outcome"] as? String == "completed")
        #expect(last["exit_code"] as? Double == 0)
        #expect((last["delivered_ml"] as? Double).map { abs($0 - 28.0 * 2 / 60) < 0.1 } == true, "\(last)")
        #expect(events.contains { $0["type"] as? String == "status" && $0["mode"] as? String == "infusing" })
        #expect(events.contains { $0["type"] as? String == "decision" && $0["kind"] as? String == "start-commanded" })
        #expect(events.contains { $0["type"] as? String == "operator-action" && $0["accepted"] as? Bool == true && $0["operator"] as? String == "nurse-7" })
        #expect(!bedside.pumpIsInfusing)
        let store = try RecordStore.open(path: db, createIfMissing: false)
        let sessions = try store.sessions()
        #expect(sessions.count == 1)
        #expect(sessions.first?.session.state == .completed)
        try store.close()
    }

    @Test("stdin commands: an unknown line is refused (recorded), quit with a reason stops delivery and exits 4")
    func quitFromStdin() throws {
        let bedside = try HostedBedside(speed: Self.speed)
        defer { bedside.stop() }
        let (pump, oximeter) = try bedside.paths()
        let db = Self.temporaryDatabase()
        let child = try ChildRun(Self.arguments(db: db, pump: pump, oximeter: oximeter, duration: "20 min"))
        #expect(child.waitForLine(timeout: .seconds(15)) { $0.contains(#""mode":"infusing""#) } != nil, "stderr: \(child.stderr.suffix(2000))")
        child.send("fly away")
        #expect(child.waitForLine(timeout: .seconds(5)) { $0.contains(#""type":"operator-action""#) && $0.contains(#""accepted":false"#) } != nil)
        child.send("quit patient asked to stop")
        let status = child.wait(timeout: .seconds(15))
        #expect(status == 4, "stderr: \(child.stderr.suffix(2000))")
        let events = child.lines.compactMap(Self.json)
        #expect(events.last?["outcome"] as? String == "stopped-by-operator")
        #expect(events.contains { $0["type"] as? String == "operator-action" && $0["reason"] as? String == "patient asked to stop" && $0["accepted"] as? Bool == true })
        #expect(!bedside.pumpIsInfusing)
        let store = try RecordStore.open(path: db, createIfMissing: false)
        let id = try #require(try store.sessions().first?.session.id)
        let loaded = try store.load(id)
        #expect(loaded.session.state == .stopped)
        #expect(loaded.events.contains { $0.kind == .operatorAction && $0.operatorID == "nurse-7" && $0.reason == "patient asked to stop" })
        #expect(loaded.events.contains { $0.kind == .operatorAction && $0.message.contains("fly away") })
        try store.close()
    }

    /// Issue 7's crash test: SIGKILL `run` at random moments, many times. After each kill the database
    /// opens cleanly (full integrity check), every event the child had printed (so: committed) is in it,
    /// and `run` restarted with the same arguments marks the session interrupted, records the pump, exits
    /// 7 and leaves the simulated pump not delivering.
    @Test("crash test: SIGKILL at random moments; printed = recorded; restart recovers (exit 7) and the pump is not delivering")
    func crashTest() throws {
        let db = Self.temporaryDatabase()
        var generator = SplitMix64(seed: UInt64(Date().timeIntervalSince1970))
        let seed = generator.state
        var checkedRecords = 0
        for run in 1...8 {
            let bedside = try HostedBedside(speed: Self.speed)
            defer { bedside.stop() }
            let (pump, oximeter) = try bedside.paths()
            let arguments = Self.arguments(db: db, pump: pump, oximeter: oximeter, duration: "20 min")
            let child = try ChildRun(arguments)
            let startedLine = try #require(child.waitForLine(timeout: .seconds(15)) { $0.contains(#""type":"session-started""#) },
                                           "run \(run): no session-started (stderr: \(child.stderr.suffix(1500)))")
            let delay = 0.1 + Double(generator.next() % 2_400) / 1000  // 0.1 … 2.5 s of real time
            usleep(useconds_t(delay * 1_000_000))
            child.kill()
            _ = child.wait(timeout: .seconds(5))
            #expect(child.killedBySignal, "run \(run) (seed \(seed)): the child should have been killed, not exited")
            let printed = child.lines.compactMap(Self.json)
            let session = try #require((Self.json(startedLine)?["session"] as? Double).map { SessionID(rawValue: Int64($0)) })

            // The database opens cleanly and holds everything that was printed.
            let store = try RecordStore.open(path: db, createIfMissing: false, integrityCheck: .full)
            let loaded = try store.load(session)
            #expect(loaded.session.state == .running, "run \(run): the killed session is still marked running")
            let bySequence = Dictionary(loaded.events.map { ($0.sequence, $0) }, uniquingKeysWith: { first, _ in first })
            for event in printed {
                guard let record = event["record"] as? Double, let type = event["type"] as? String else { continue }
                let stored = bySequence[Int64(record)]
                #expect(stored != nil, "run \(run) (seed \(seed), kill after \(delay) s): printed \(type) record \(Int64(record)) is not in the database")
                guard let stored else { continue }
                checkedRecords += 1
                switch type {
                case "alarm": #expect([.alarmRaised, .alarmChanged, .alarmCleared].contains(stored.kind))
                case "decision":
                    #expect(stored.kind == .supervisorDecision)
                    #expect(stored.message == event["message"] as? String)
                case "operator-action": #expect(stored.kind == .supervisorDecision || stored.kind == .operatorAction)
                case "warning": #expect(stored.kind == .note)
                default: break
                }
            }
            try store.close()

            // Restart with the same arguments: recovery, exit 7, nothing started.
            let restart = try ChildRun(arguments)
            let status = restart.wait(timeout: .seconds(20))
            #expect(status == 7, "run \(run): restart exit \(String(describing: status)); stderr: \(restart.stderr.suffix(1500))")
            let recovered = restart.lines.compactMap(Self.json).first { $0["type"] as? String == "recovered" }
            #expect((recovered?["session"] as? Double).map { Int64($0) } == session.rawValue)
            #expect(recovered?["pump_state"] is String, "the pump's state is read: \(String(describing: recovered))")
            #expect(!bedside.pumpIsInfusing, "run \(run): the simulated pump must not be delivering after recovery")
            usleep(200_000)
            #expect(!bedside.pumpIsInfusing, "run \(run): nothing restarts the pump")
            let after = try RecordStore.open(path: db, createIfMissing: false)
            let reloaded = try after.load(session)
            #expect(reloaded.session.state == .interrupted)
            #expect(reloaded.events.contains { $0.kind == .note && $0.message.hasPrefix("recovery: the pump reports") })
            #expect(try after.unfinishedSessions().isEmpty)
            try after.close()
        }
        #expect(checkedRecords > 0, "some printed records were checked (seed \(seed))")
    }
}

/// A small seeded generator, so a failing crash-test run can be told apart by its seed.
struct SplitMix64 {
    private(set) var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
