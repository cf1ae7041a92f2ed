import CommandLineTestSupport
import Foundation
import InfusionCore
import Testing
@testable import Records
#if canImport(Glibc)
import Glibc
#endif

/// Runs the `records-crash-writer` executable and kills it with SIGKILL.
enum CrashWriter {
    /// The executable next to the test bundle (SwiftPM builds it: the test target depends on it).
    static var executable: URL? { BuiltTool("records-crash-writer").url }

    /// What the writer printed, filled by a reader thread. `sessionStarted` is signalled once the session line
    /// has arrived; `finished` once both pipes reached end of file.
    final class Output: @unchecked Sendable {
        private let lock = NSLock()
        private var stdoutData = Data()
        private var stderrData = Data()
        private var sawSession = false
        let sessionStarted = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)

        func appendStdout(_ data: Data) {
            let signal: Bool = lock.withLock {
                stdoutData.append(data)
                guard !sawSession, String(decoding: stdoutData, as: UTF8.self).contains("session ") else { return false }
                sawSession = true
                return true
            }
            if signal { sessionStarted.signal() }
        }

        func setStderr(_ data: Data) { lock.withLock { stderrData = data } }
        var stdout: Data { lock.withLock { stdoutData } }
        var stderr: Data { lock.withLock { stderrData } }
    }

    struct Run {
        /// The session id the writer reported, if it got that far.
        var session: SessionID?
        /// Acknowledged events: sequence → index in the writer's loop.
        var acked: [Int64: Int]
        var stderr: String
        var terminatedBySignal: Bool
    }

    /// When to kill the writer.
    enum KillMoment {
        /// This long after it started: may hit opening, migration or the session's start.
        case afterStart(Duration)
        /// This long after it acknowledged its session (so every machine, fast or slow, kills it mid-stream).
        case afterSession(Duration)
    }

    /// Starts the writer on `database`, kills it with SIGKILL at `moment`, and returns what it acknowledged.
    static func runAndKill(database: String, at moment: KillMoment) throws -> Run {
        let process = Process()
        process.executableURL = executable
        process.arguments = [database, RecordFixtures.libraryURL.path]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let output = Output()
        try process.run()
        DispatchQueue.global().async {
            // Drain both pipes continuously so the writer never blocks on a full pipe.
            let group = DispatchGroup()
            DispatchQueue.global().async(group: group) { output.setStderr(err.fileHandleForReading.readDataToEndOfFile()) }
            while true {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                output.appendStdout(chunk)
            }
            group.wait()
            output.finished.signal()
        }
        switch moment {
        case let .afterStart(delay):
            Thread.sleep(forTimeInterval: delay.seconds)
        case let .afterSession(delay):
            // A writer that cannot start within 20 s is killed anyway; the test then reports what it printed.
            _ = output.sessionStarted.wait(timeout: .now() + 20)
            Thread.sleep(forTimeInterval: delay.seconds)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        output.finished.wait()

        var run = Run(session: nil, acked: [:], stderr: String(decoding: output.stderr, as: UTF8.self),
                      terminatedBySignal: process.terminationReason == .uncaughtSignal)
        // Only complete lines count: a line cut by the kill was never fully acknowledged.
        let text = String(decoding: output.stdout, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if !text.hasSuffix("\n") { lines.removeLast() }
        for line in lines {
            let fields = line.split(separator: " ")
            if fields.count == 2, fields[0] == "session", let id = SessionID(parsing: String(fields[1])) {
                run.session = id
            } else if fields.count == 3, fields[0] == "ack", let sequence = Int64(fields[1]), let index = Int(fields[2]) {
                run.acked[sequence] = index
            }
        }
        return run
    }
}

@Suite("Crash test: SIGKILL at random moments loses nothing acknowledged", .serialized, .temporaryFolder)
struct CrashTests {
    @Test("≥ 30 kills: every acknowledged event is in the database, which opens cleanly; the session is then marked interrupted")
    func killRepeatedly() throws {
        let path = try RecordFixtures.temporaryDatabase("crash.sqlite")
        var generator = SystemRandomNumberGenerator()
        let clock = SystemMonotonicClock()
        let began = clock.now()
        var runs = 0, totalAcked = 0, totalVerified = 0, killedBeforeSession = 0, maxAcked = 0
        var sessionsSeen: Set<SessionID> = []

        while runs < 30 || (runs < 60 && clock.now() - began < .seconds(20)) {
            runs += 1
            // Mostly mid-stream kills; every fifth run early, to hit opening, migration and session start.
            let moment: CrashWriter.KillMoment = runs % 5 == 0
                ? .afterStart(.milliseconds(Int64.random(in: 0...60, using: &generator)))
                : .afterSession(.milliseconds(Int64.random(in: 0...300, using: &generator)))
            let run = try CrashWriter.runAndKill(database: path, at: moment)
            if case .afterSession = moment { #expect(run.session != nil, "run \(runs): the writer never acknowledged its session: \(run.stderr)") }
            #expect(run.terminatedBySignal, "run \(runs): the writer should have been killed, not exited: \(run.stderr)")
            #expect(!run.stderr.contains("records-crash-writer:"), "run \(runs): the writer reported an error: \(run.stderr)")
            totalAcked += run.acked.count
            maxAcked = max(maxAcked, run.acked.count)

            // The database opens cleanly (the full integrity check passes) after every kill.
            let store = try RecordStore.open(path: path, integrityCheck: .full)
            if let session = run.session {
                #expect(!sessionsSeen.contains(session))
                sessionsSeen.insert(session)
                let events = try store.events(of: session)
                let byIndex = Dictionary(events.map { ($0.sequence, $0) }, uniquingKeysWith: { first, _ in first })
                for (sequence, index) in run.acked {
                    guard let event = byIndex[sequence] else {
                        Issue.record("run \(runs): acknowledged event \(sequence) of session \(session) is missing")
                        continue
                    }
                    #expect(event.message == "crash-test event \(index)")
                    totalVerified += 1
                }
                #expect(events.map(\.sequence) == Array(1...Int64(events.count)), "no gaps")
                // At most one commit can have landed after the last acknowledgement (killed between the
                // commit and the print); a batch commits one event.
                let lastAcked = run.acked.keys.max() ?? 1
                #expect(Int64(events.count) <= lastAcked + 1)
                #expect(try store.session(session)?.state == .running)
            } else {
                killedBeforeSession += 1
                #expect(run.acked.isEmpty)
            }

            // Recovery, as the restarted process does it.
            let recovered = try store.recoverUnfinishedSessions(detectedAt: Date())
            if let session = run.session { #expect(recovered.map(\.id).contains(session)) }
            for record in recovered {
                #expect(record.state == .interrupted)
                #expect(try store.events(of: record.id).last?.kind == .sessionStateChange)
            }
            #expect(try store.unfinishedSessions().isEmpty)
            try store.close()
        }

        let final = try RecordStore.open(path: path, integrityCheck: .full)
        let states = Set(try final.sessions().map(\.session.state))
        #expect(states.isSubset(of: [.interrupted]))
        print("crash test: \(runs) SIGKILLs in \((clock.now() - began).humanReadable); \(totalAcked) events acknowledged, \(totalVerified) verified present (most in one run \(maxAcked)); \(killedBeforeSession) kills before the session was acknowledged; \(sessionsSeen.count) sessions marked interrupted")
        #expect(runs >= 30)
        #expect(totalVerified == totalAcked)
        #expect(totalAcked > 100, "the writer should acknowledge events between kills")
        #expect(sessionsSeen.count >= runs * 4 / 5, "every mid-stream run acknowledged its session before the kill")
    }
}
