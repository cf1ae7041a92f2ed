import CommandLineTestSupport
import Foundation
import Synchronization
import Testing

/// A built tool running with pipes on all three streams, its output collected line by line as it comes.
/// Any thread; the pipes' handlers run on Foundation's queues.
final class LiveTool: Sendable {
    private let process: Process
    private let input: Pipe
    private let lines = Mutex<(out: [String], err: [String], partial: [String: String])>(([], [], [:]))

    init(_ name: String, _ arguments: [String]) throws {
        let process = Process()
        let tool = BuiltTool(name)
        process.executableURL = tool.url ?? tool.candidates.last
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["INFUSIONCONTROL_LOG_LEVEL"] = "error"
        process.environment = environment
        let input = Pipe(), out = Pipe(), err = Pipe()
        process.standardInput = input
        process.standardOutput = out
        process.standardError = err
        self.process = process
        self.input = input
        for (pipe, key) in [(out, "out"), (err, "err")] {
            pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
                let data = handle.availableData
                guard !data.isEmpty else {
                    handle.readabilityHandler = nil
                    return
                }
                self?.lines.withLock { state in
                    var text = (state.partial[key] ?? "") + String(decoding: data, as: UTF8.self)
                    while let end = text.firstIndex(of: "\n") {
                        let line = String(text[..<end])
                        if key == "out" { state.out.append(line) } else { state.err.append(line) }
                        text = String(text[text.index(after: end)...])
                    }
                    state.partial[key] = text
                }
            }
        }
        try process.run()
    }

    var stdout: [String] { lines.withLock { $0.out } }
    var stderr: [String] { lines.withLock { $0.err } }

    /// The first line (after the first `skipping` matches) on stdout or stderr containing `text`, waiting up to `limit`.
    func line(containing text: String, onStandardError: Bool = false, skipping: Int = 0, within limit: Duration = .seconds(20)) -> String? {
        let deadline = ContinuousClock.now + limit
        repeat {
            let found = (onStandardError ? stderr : stdout).filter { $0.contains(text) }
            if found.count > skipping { return found[skipping] }
            Thread.sleep(forTimeInterval: 0.01)
        } while ContinuousClock.now < deadline
        return nil
    }

    func send(_ line: String) { input.fileHandleForWriting.write(Data((line + "\n").utf8)) }
    func interrupt() { process.interrupt() }
    func terminate() { process.terminate() }
    /// Sends `number` (e.g. SIGTERM) to the tool.
    func signal(_ number: Int32) { _ = kill(process.processIdentifier, number) }

    /// Waits for the exit (up to `limit`); returns the status, or nil if it is still running (then killed).
    func waitForExit(within limit: Duration = .seconds(60)) -> Int32? {
        let deadline = ContinuousClock.now + limit
        while process.isRunning, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            process.terminate()
            return nil
        }
        Thread.sleep(forTimeInterval: 0.1)  // the last output
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            try? input.fileHandleForWriting.close()
            process.terminate()
            process.waitUntilExit()
        }
    }
}

/// `infusion-sim` hosting devices on ptys; their paths are read from its "name kind /dev/pts/N" lines.
final class SimulatorProcess: Sendable {
    let tool: LiveTool
    init(_ arguments: [String]) throws { tool = try LiveTool("infusion-sim", arguments) }

    func path(of device: String) -> String? {
        tool.line(containing: device + " ", within: .seconds(20))?.split(separator: " ").last.map(String.init)
    }

    /// Sends a control line to `device` and waits for its acknowledgement ("oximeter0: …").
    @discardableResult
    func control(_ line: String, acknowledgedBy text: String) -> Bool {
        let before = tool.stdout.filter { $0.contains(text) }.count
        tool.send(line)
        return tool.line(containing: text, skipping: before, within: .seconds(10)) != nil
    }

    deinit { tool.send("quit") }
}

@Suite("infusionctl verify, configure and calibrate against infusion-sim over real ptys", .serialized)
struct DeviceWiringCLITests {
    static let setPoints = """
        settling = "1 s"
        window = "2 s"

        [claim]
        minimum_valid_readings = 3

        [[point]]
        spo2 = 85
        pulse_rate = 75

        [[point]]
        spo2 = 92
        pulse_rate = 60

        [[point]]
        spo2 = 97
        pulse_rate = 75
        """

    static func folder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cli-wiring-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try setPoints.write(to: folder.appendingPathComponent("points.toml"), atomically: true, encoding: .utf8)
        return folder
    }

    static func verifyArguments(_ path: String, _ folder: URL, extra: [String] = []) -> [String] {
        ["verify", "oximeter", "--device", path, "--protocol", "nonin-df2", "--setpoints", folder.appendingPathComponent("points.toml").path,
         "--operator", "tech-7", "--oximeter-serial", "501234567", "--simulator", "Index 2 SN 77",
         "--db", folder.appendingPathComponent("records.sqlite").path, "--out", folder.path] + extra
    }

    /// Follows the CLI's set-point announcements: sets the simulated SpO2 simulator to each, then (when
    /// attended) presses Enter. Returns how many points were set.
    static func follow(_ cli: LiveTool, _ sim: SimulatorProcess, points: Int, of total: Int = 3, attended: Bool) -> Int {
        var done = 0
        for index in 0..<points {
            guard let line = cli.line(containing: "set point \(index + 1) of \(total):", onStandardError: true) else { break }
            // "... set the SpO2 simulator to SpO2 85 %, pulse 75 bpm ..."
            let words: [String] = line.split(separator: " ").map { String($0) }
            guard let s = words.lastIndex(of: "SpO2"), s + 1 < words.count,
                  let p = words.firstIndex(of: "pulse"), p + 1 < words.count else { break }
            let spo2: String = words[s + 1], pulse: String = words[p + 1]
            let command: String = "oximeter0 spo2-sim " + spo2 + " " + pulse
            guard sim.control(command, acknowledgedBy: "oximeter0: SpO2 simulator set to") else {
                Issue.record("infusion-sim did not acknowledge \(command) (from \"\(line)\"); its output:\n\(sim.tool.stdout.joined(separator: "\n"))\n\(sim.tool.stderr.joined(separator: "\n"))")
                break
            }
            if attended { cli.send("") }
            done += 1
        }
        return done
    }

    @Test("verify oximeter, attended: the technician sets each point and presses Enter; an accurate oximeter passes, stored and reported")
    func verifyPasses() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let sim = try SimulatorProcess(["--oximeter", "nonin-df2"])
        let path = try #require(sim.path(of: "oximeter0"))
        let cli = try LiveTool("infusionctl", Self.verifyArguments(path, folder))
        #expect(Self.follow(cli, sim, points: 3, attended: true) == 3)
        let status = cli.waitForExit()
        #expect(status == 0, "\(cli.stderr.joined(separator: "\n"))\n\(cli.stdout.joined(separator: "\n"))")
        #expect(cli.stdout.first == "PASS")
        // Progress with time remaining was shown.
        #expect(cli.stderr.contains { $0.contains(" left: ") })
        let list = try CLI.run(["calibrations", "--db", folder.appendingPathComponent("records.sqlite").path])
        #expect(list.stdout.contains("501234567") && list.stdout.contains("PASS"), "\(list.stdout)")
        let reports = try FileManager.default.contentsOfDirectory(atPath: folder.path)
        #expect(reports.contains { $0.hasPrefix("verification-501234567-") && $0.hasSuffix(".html") })
        #expect(reports.contains { $0.hasSuffix("-readings.csv") })
    }

    @Test("verify oximeter, unattended: an oximeter reading 5 points high fails on A_rms; stored as fail")
    func verifyFailsForBiasedOximeter() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let sim = try SimulatorProcess(["--oximeter", "nonin-df2"])
        let path = try #require(sim.path(of: "oximeter0"))
        #expect(sim.control("oximeter0 bias 5", acknowledgedBy: "oximeter0: SpO2 bias"))
        let cli = try LiveTool("infusionctl", Self.verifyArguments(path, folder, extra: ["--unattended"]))
        #expect(Self.follow(cli, sim, points: 3, attended: false) == 3)
        let status = cli.waitForExit()
        #expect(status == 2, "\(cli.stderr.joined(separator: "\n"))")
        #expect(cli.stdout.first == "FAIL")
        #expect(cli.stdout.joined(separator: "\n").contains("A_rms"))
        let list = try CLI.run(["calibrations", "--db", folder.appendingPathComponent("records.sqlite").path])
        #expect(list.stdout.contains("FAIL"), "\(list.stdout)")
    }

    @Test("verify oximeter: Ctrl-C while collecting keeps the partial record, marked incomplete (exit 3)")
    func verifyInterrupted() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let sim = try SimulatorProcess(["--oximeter", "nonin-df2"])
        let path = try #require(sim.path(of: "oximeter0"))
        let cli = try LiveTool("infusionctl", Self.verifyArguments(path, folder, extra: ["--unattended"]))
        #expect(Self.follow(cli, sim, points: 1, attended: false) == 1)
        #expect(cli.line(containing: "collecting at", onStandardError: true) != nil)
        cli.interrupt()
        let status = cli.waitForExit()
        #expect(status == 3, "\(cli.stderr.joined(separator: "\n"))")
        #expect(cli.stdout.first == "INCOMPLETE")
        let list = try CLI.run(["calibrations", "--db", folder.appendingPathComponent("records.sqlite").path, "--json"])
        #expect(list.stdout.contains("incomplete"), "\(list.stdout)")
    }

    @Test("calibrate pump: Ctrl-C (here while the balance settles) stops the run and keeps the partial record, marked incomplete (exit 3)")
    func calibrateInterrupted() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let sim = try SimulatorProcess(["--pump", "newera", "--balance", "mt-sics"])
        let pump = try #require(sim.path(of: "pump0"))
        let balance = try #require(sim.path(of: "balance0"))
        let cli = try LiveTool("infusionctl", ["calibrate", "pump", "--device", pump, "--protocol", "newera", "--balance", balance,
                                               "--rate", "25 mL/h", "--quick", "--operator", "tech-7", "--pump-serial", "NE-4711",
                                               "--db", folder.appendingPathComponent("records.sqlite").path, "--out", folder.path])
        // Progress with the time remaining (run length plus the 30 s settling), then Ctrl-C.
        #expect(cli.line(containing: "left: letting the balance settle", onStandardError: true, within: .seconds(30)) != nil, "\(cli.stderr)")
        cli.interrupt()
        let status = cli.waitForExit()
        #expect(status == 3, "\(cli.stderr.joined(separator: "\n"))")
        #expect(cli.stdout.first == "INCOMPLETE")
        let list = try CLI.run(["calibrations", "--db", folder.appendingPathComponent("records.sqlite").path])
        #expect(list.stdout.contains("NE-4711") && list.stdout.contains("INCOMPLETE"), "\(list.stdout)")
    }

    @Test("calibrate pump: SIGINT or SIGTERM the moment it announces the run stops the pump and keeps the partial record (exit 3); four times")
    func calibrateSignalledAtOnce() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let sim = try SimulatorProcess(["--pump", "newera", "--balance", "mt-sics"])
        let pump = try #require(sim.path(of: "pump0"))
        let balance = try #require(sim.path(of: "balance0"))
        for attempt in 1...4 {
            let signal = attempt.isMultiple(of: 2) ? SIGTERM : SIGINT
            let cli = try LiveTool("infusionctl", ["calibrate", "pump", "--device", pump, "--protocol", "newera", "--balance", balance,
                                                   "--rate", "25 mL/h", "--quick", "--operator", "tech-7", "--pump-serial", "NE-4711",
                                                   "--db", folder.appendingPathComponent("records.sqlite").path, "--out", folder.path])
            try #require(cli.line(containing: "calibrating ", onStandardError: true, within: .seconds(30)) != nil, "\(cli.stderr)")
            cli.signal(signal)
            // A quick run takes minutes: a lost signal leaves it running past this.
            let status = cli.waitForExit(within: .seconds(20))
            let context = "attempt \(attempt) (signal \(signal)): \(cli.stderr.joined(separator: "\n"))"
            #expect(status == 3, "exit \(status.map(String.init) ?? "none: still running 20 s after the signal"); \(context)")
            #expect(cli.stdout.first == "INCOMPLETE", "\(context)")
            let state = try CLI.run(["pump", "status", "--device", pump, "--protocol", "newera", "--json"])
            #expect(state.status == 0 && !state.stdout.contains(#""state":"infusing""#), "the pump after attempt \(attempt): \(state.stdout) \(state.stderr)")
        }
        let list = try CLI.run(["calibrations", "--db", folder.appendingPathComponent("records.sqlite").path])
        #expect(list.stdout.components(separatedBy: "INCOMPLETE").count - 1 == 4, "\(list.stdout)")
    }

    @Test("verify oximeter: SIGINT or SIGTERM the moment it announces the run keeps the partial record (exit 3); four times")
    func verifySignalledAtOnce() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let sim = try SimulatorProcess(["--oximeter", "nonin-df2"])
        let path = try #require(sim.path(of: "oximeter0"))
        for attempt in 1...4 {
            let signal = attempt.isMultiple(of: 2) ? SIGTERM : SIGINT
            // Attended: it waits for Enter at the first set point, so only the signal can end it.
            let cli = try LiveTool("infusionctl", Self.verifyArguments(path, folder))
            try #require(cli.line(containing: "verifying ", onStandardError: true, within: .seconds(30)) != nil, "\(cli.stderr)")
            cli.signal(signal)
            let status = cli.waitForExit(within: .seconds(20))
            let context = "attempt \(attempt) (signal \(signal)): \(cli.stderr.joined(separator: "\n"))"
            #expect(status == 3, "exit \(status.map(String.init) ?? "none: still running 20 s after the signal"); \(context)")
            #expect(cli.stdout.first == "INCOMPLETE", "\(context)")
        }
    }

    @Test("configure newera-address and newera-safe-mode write through the driver and confirm by reading back")
    func configureNewEra() throws {
        let sim = try SimulatorProcess(["--pump", "newera"])
        let pump = try #require(sim.path(of: "pump0"))
        let address = try CLI.run(["configure", "newera-address", "--device", pump, "5"])
        #expect(address.status == 0 && address.stdout.contains("now answers at address 5"), "\(address.stderr)")
        let safe = try CLI.run(["configure", "newera-safe-mode", "--device", pump, "--address", "5", "0"])
        #expect(safe.status == 0 && safe.stdout.contains("basic mode"), "\(safe.stderr)")
        let wrong = try CLI.run(["configure", "newera-safe-mode", "--device", pump, "--address", "0", "--reply-timeout", "0.1 s", "0"])
        #expect(wrong.status == 1 && wrong.stderr.contains("no New Era pump answers at address 0"), "\(wrong.stderr)")
        let baud = try CLI.run(["configure", "newera-baud", "--device", pump, "--address", "5", "9600"])
        #expect(baud.status == 0 && baud.stdout.contains("9600 baud"), "\(baud.stderr)")
    }

    @Test("configure nonin-format switches a simulated DF2 Nonin to DF8 and confirms with DF8 data")
    func configureNonin() throws {
        let sim = try SimulatorProcess(["--oximeter", "nonin-df2"])
        let path = try #require(sim.path(of: "oximeter0"))
        let run = try CLI.run(["configure", "nonin-format", "--device", path, "df8"])
        #expect(run.status == 0 && run.stdout.contains("now sends DF8"), "\(run.stderr)")
    }
}
