#if canImport(Glibc)
import Glibc
#endif
import CommandLineTestSupport
import Foundation
import Records
import Testing

/// SIGINT and SIGTERM sent to `infusionctl run` at the earliest moment a script can know the session
/// exists: the `session-started` line. Each must end the session the documented way (run --help, docs/
/// run-contract.md): delivery stopped, the operator's end recorded, exit 4. A signal that kills the
/// process, or that is lost so the session keeps infusing, fails.
@Suite("infusionctl run: SIGINT and SIGTERM at the start of a session", .serialized)
struct RunSignalTests {
    /// Real-time pause after `session-started` before the signal, per attempt: mostly none (the race
    /// with installing the handlers), then a few that land while the start checks run or delivery starts.
    static let delays: [Duration] = [.zero, .zero, .zero, .zero, .zero, .zero, .milliseconds(50), .milliseconds(100), .milliseconds(200), .milliseconds(400)]

    @Test("signalled the moment session-started is out: exit 4, recorded as the operator's end, the pump not infusing; ten times",
          arguments: [SIGTERM, SIGINT])
    func signalAtSessionStart(signal: Int32) throws {
        let name = signal == SIGINT ? "SIGINT" : "SIGTERM"
        for (attempt, delay) in Self.delays.enumerated() {
            let bedside = try HostedBedside(speed: RunCommandTests.speed)
            defer { bedside.stop() }
            let (pump, oximeter) = try bedside.paths()
            let db = RunCommandTests.temporaryDatabase()
            defer { try? FileManager.default.removeItem(atPath: (db as NSString).deletingLastPathComponent) }
            let child = try ChildRun(RunCommandTests.arguments(db: db, pump: pump, oximeter: oximeter, duration: "20 min"))
            let started = child.waitForLine(timeout: .seconds(15)) { $0.contains(#""type":"session-started""#) }
            try #require(started != nil, "attempt \(attempt + 1): no session-started; stderr: \(child.stderr.suffix(1500))")
            if delay > .zero { Thread.sleep(forTimeInterval: Double(delay.components.attoseconds) / 1e18) }
            child.signal(signal)
            // The session is 20 min at 30x (40 s): a lost signal leaves it running past this.
            let status = child.wait(timeout: .seconds(15))
            let context = "attempt \(attempt + 1) (\(name) after \(delay)): exit \(status.map(String.init) ?? "none: still running after 15 s, killed")"
                + "\(child.killedBySignal ? " (killed by the signal)" : ""); stderr: \(child.stderr.suffix(1500))"
            #expect(!child.killedBySignal, "\(context)")
            #expect(status == 4, "\(context)")
            let events = child.lines.compactMap(RunCommandTests.json)
            let ended = events.last
            #expect(ended?["type"] as? String == "session-ended", "\(context)")
            #expect(ended?["outcome"] as? String == "stopped-by-operator", "\(context)")
            #expect(ended?["exit_code"] as? Double == 4, "\(context)")
            #expect(!bedside.pumpIsInfusing, "\(context): the simulated pump is infusing")
            usleep(300_000)
            #expect(!bedside.pumpIsInfusing, "\(context): the simulated pump started again")

            let store = try RecordStore.open(path: db, createIfMissing: false)
            defer { try? store.close() }
            #expect(try store.unfinishedSessions().isEmpty, "\(context): the session is left unfinished")
            let sessions = try store.sessions()
            #expect(sessions.count == 1, "\(context)")
            guard let id = sessions.first?.session.id else { continue }
            let loaded = try store.load(id)
            #expect(loaded.session.state == .stopped, "\(context): recorded as \(loaded.session.state)")
            #expect(loaded.events.contains { $0.kind == .operatorAction && $0.operatorID == "nurse-7" && ($0.reason ?? "").hasPrefix(name) },
                    "\(context): the signal is not recorded as the operator's end")
        }
    }
}

/// `infusionctl demo` interrupted at the first line it prints: it asks its controller to quit, ends with
/// its summary (exit 1: not the scenario's outcome) and the simulated pump stopped; it is never killed
/// by the signal and never plays on.
@Suite("infusionctl demo: SIGINT and SIGTERM at once", .serialized)
struct DemoSignalTests {
    @Test("a signal right after the demo's first line: the controller quits (exit 4), the session is recorded stopped, the pump is stopped; six times")
    func signalAtStart() throws {
        for attempt in 1...6 {
            let signal = attempt.isMultiple(of: 2) ? SIGTERM : SIGINT
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("demo-signal-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: out) }
            let demo = try RunningTool(["demo", "--scenario", "uneventful", "--speed", "80", "--out", out.path])
            try #require(demo.wait(.seconds(10)) { demo.stdout.text.contains("Demo: ") }, "no first line: \(demo.stderr.text)")
            // Uneventful at 80x takes 30 s: a lost signal lets it play on past this.
            let took = demo.stop(with: signal, timeout: .seconds(20))
            let context = "attempt \(attempt) (signal \(signal)):\n\(demo.stdout.text)\n\(demo.stderr.text)"
            #expect(took != nil, "still running 20 s after the signal: \(context)")
            guard took != nil else { continue }
            #expect(demo.process.terminationReason == .exit, "killed by the signal: \(context)")
            #expect(demo.process.terminationStatus == 1, "\(context)")
            let text = demo.stdout.text
            #expect(text.contains("interrupted: asking the controller to quit"), "\(context)")
            #expect(text.contains("controller runs ended: 4 "), "\(context)")
            #expect(text.contains("ok   the simulated pump is stopped at the end"), "\(context)")
            let store = try RecordStore.open(path: out.appendingPathComponent("infusioncontrol.sqlite").path, createIfMissing: false)
            defer { try? store.close() }
            #expect(try store.unfinishedSessions().isEmpty, "\(context)")
            #expect(try store.sessions().allSatisfy { $0.session.state == .stopped }, "\(context)")
        }
    }
}
