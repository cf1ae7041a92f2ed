import Foundation
import Synchronization
import Testing

@Suite("infusionctl devices")
struct DevicesCommandTests {
    @Test("the built tool is found next to the tests")
    func toolFound() {
        #expect(CLI.tool.url != nil, "build infusionctl first: swift build --build-tests")
    }

    @Test("`devices --json` prints a JSON array (here, with no USB bus, usually []) and exits 0")
    func json() throws {
        let run = try CLI.run(["devices", "--json"])
        let output = run.stdout
        #expect(run.status == 0, "stderr: \(run.stderr)")
        let parsed = try JSONSerialization.jsonObject(with: Data(output.utf8))
        guard let array = parsed as? [Any] else {
            Issue.record("not a JSON array: \(output)")
            return
        }
        for element in array {
            let object = element as? [String: Any]
            #expect(object?["status"] is String)
            #expect(object?["access"] is String)
            #expect(object?["sysPath"] is String)
        }
    }

    @Test("`devices --all --json` lists every hardware serial node as valid JSON too")
    func jsonAll() throws {
        let run = try CLI.run(["devices", "--all", "--json"])
        let output = run.stdout
        #expect(run.status == 0)
        #expect(try JSONSerialization.jsonObject(with: Data(output.utf8)) is [Any])
    }

    @Test("`devices` in text says plainly when there is nothing, and exits 0")
    func text() throws {
        let run = try CLI.run(["devices"])
        let output = run.stdout
        #expect(run.status == 0)
        #expect(!output.isEmpty)
        let json = try CLI.run(["devices", "--json"]).stdout
        if json.trimmingCharacters(in: .whitespacesAndNewlines) == "[]" {
            #expect(output.hasPrefix("No pumps, oximeters or serial adapters found."))
            #expect(output.contains("udev/README.md"))
        }
    }
}

/// `infusionctl` running in the background with its output collected as it arrives, for commands that
/// run until interrupted. A test's thread only; a process still running at the end is killed (SIGKILL),
/// so no test leaves one behind or hangs on it.
final class RunningTool {
    /// Output of one stream, appended by a reader thread until end of file.
    final class Stream: Sendable {
        private let data = Mutex(Data())

        init(_ handle: FileHandle) {
            Thread { [self] in
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    data.withLock { $0.append(chunk) }
                }
            }.start()
        }

        /// Everything so far, as UTF-8.
        var text: String { String(decoding: data.withLock { $0 }, as: UTF8.self) }
    }

    let process = Process()
    let stdout: Stream
    let stderr: Stream

    init(_ arguments: [String]) throws {
        let url = try #require(CLI.tool.url, "build infusionctl first: swift build --build-tests")
        process.executableURL = url
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        stdout = Stream(out.fileHandleForReading)
        stderr = Stream(err.fileHandleForReading)
        try process.run()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Waits until `condition` holds (true) or `timeout` passes (false), looking every 5 ms.
    func wait(_ timeout: Duration, until condition: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            if ContinuousClock.now >= deadline { return false }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return true
    }

    /// Sends `signal` and waits up to `timeout` for the process to end; returns how long it took, or
    /// nil when it was still running (it is then killed when this object goes).
    func stop(with signal: Int32, timeout: Duration) -> Duration? {
        let sent = ContinuousClock.now
        kill(process.processIdentifier, signal)
        guard wait(timeout, until: { !process.isRunning }) else { return nil }
        return ContinuousClock.now - sent
    }
}

@Suite("infusionctl devices --watch")
struct DevicesWatchTests {
    static let ready = "Watching for devices being added or removed (Ctrl-C to stop)…"
    static let noHotPlug = "systemd-udevd is not running here, so no hot-plug events will arrive (Ctrl-C to stop)"

    @Test("prints the same list as `devices`, keeps watching, and ends cleanly (exit 0) on SIGINT or SIGTERM",
          arguments: [(SIGINT, false), (SIGTERM, false), (SIGINT, true), (SIGTERM, true)])
    func watch(signal: Int32, json: Bool) throws {
        let format = json ? ["--json"] : []
        let once = try CLI.run(["devices"] + format)
        try #require(once.status == 0, "\(once.stderr)")
        let watch = try RunningTool(["devices", "--watch"] + format)
        // The list first, exactly as a one-shot `devices` prints it; then (text) the watching line, or
        // the note that no events can come where udevd is not running.
        let listed = watch.wait(.seconds(10)) {
            watch.stdout.text.hasPrefix(once.stdout) && (json || watch.stdout.text.contains(Self.ready) || watch.stderr.text.contains(Self.noHotPlug))
        }
        #expect(listed, "stdout:\n\(watch.stdout.text)\nstderr:\n\(watch.stderr.text)\none-shot:\n\(once.stdout)")
        if !json && !watch.stderr.text.contains(Self.noHotPlug) {
            #expect(watch.stdout.text == once.stdout + Self.ready + "\n")
        }
        // It keeps watching.
        #expect(!watch.wait(.milliseconds(300)) { !watch.process.isRunning }, "ended by itself: \(watch.stderr.text)")
        #expect(watch.process.isRunning)

        let took = watch.stop(with: signal, timeout: .seconds(5))
        #expect(took != nil, "still running 5 s after signal \(signal)")
        if let took { #expect(took < .seconds(2), "took \(took) to end") }
        guard took != nil else { return }
        #expect(watch.process.terminationReason == .exit, "killed by signal \(watch.process.terminationStatus)")
        #expect(watch.process.terminationStatus == 0)
        #expect(!watch.stderr.text.contains("error:"), "\(watch.stderr.text)")
        if json {
            // One JSON array, then one JSON object per event (none here): every line is JSON.
            let lines = watch.stdout.text.split(separator: "\n")
            #expect(try JSONSerialization.jsonObject(with: Data((lines.first ?? "").utf8)) is [Any])
            for line in lines.dropFirst() {
                #expect(try JSONSerialization.jsonObject(with: Data(line.utf8)) is [String: Any], "not an event object: \(line)")
            }
        }
    }

    @Test("an interrupt sent the moment the list is out is never lost and never kills it: exit 0, twenty times")
    func interruptRightAfterTheList() throws {
        for attempt in 1...20 {
            let signal = attempt.isMultiple(of: 2) ? SIGINT : SIGTERM
            let watch = try RunningTool(["devices", "--watch", "--json"])
            try #require(watch.wait(.seconds(10)) { watch.stdout.text.contains("\n") }, "no list: \(watch.stderr.text)")
            let took = watch.stop(with: signal, timeout: .seconds(5))
            #expect(took != nil, "attempt \(attempt): signal \(signal) lost, still running after 5 s")
            guard took != nil else { continue }
            #expect(watch.process.terminationReason == .exit, "attempt \(attempt): killed by signal \(watch.process.terminationStatus)")
            #expect(watch.process.terminationStatus == 0, "attempt \(attempt)")
        }
    }
}
