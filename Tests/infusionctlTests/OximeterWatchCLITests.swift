import CommandLineTestSupport
import Foundation
import Testing

/// The oximeter kinds `infusion-sim --oximeter` hosts; each is also the `--protocol` name of
/// `infusionctl oximeter watch` for the same device.
let oximeterKinds = ["nonin-df2", "nonin-df7", "nonin-df8", "masimo", "contec"]

/// Shared pieces of the oximeter CLI tests: a scenario file for a patient with known, noise-free vital
/// signs, and reading `watch --json` lines.
enum OximeterCLI {
    /// A temporary folder holding `patient.toml`: a drug-free patient with SpO2 94 %, pulse 78 bpm, PI 2.5 %
    /// and no physiological noise, plus any `[[event]]` tables in `events`. Returns the folder and the file.
    static func scenario(spo2: Int = 94, pulse: Int = 78, events: String = "") throws -> (folder: URL, file: String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cli-oximeter-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("patient.toml")
        try """
            format = 1

            [scenario]
            name = "oximeter CLI test"

            [patient]
            weight = "70 kg"
            spo2 = "\(spo2) %"
            pulse_rate = "\(pulse) bpm"
            perfusion_index = "2.5 %"
            noise = false

            \(events)
            """.write(to: file, atomically: true, encoding: .utf8)
        return (folder, file.path)
    }

    /// The perfusion index each kind reports for that patient: Nonin's formats carry none.
    static func perfusionIndex(of kind: String) -> Double? { kind.hasPrefix("nonin") ? nil : 2.5 }

    /// The flag an artifact shows as: Nonin has an artifact bit; Masimo shows motion as low signal IQ,
    /// Contec as "searching pulse" (docs/oximeters.md, flag mapping).
    static func artifactFlag(of kind: String) -> String {
        switch kind {
        case "masimo": "low signal quality"
        case "contec": "searching"
        default: "artifact"
        }
    }

    /// The flags a probe-off sample has: Nonin's SNSA also means a sensor fault.
    static func probeOffFlags(of kind: String) -> [String] { kind.hasPrefix("nonin") ? ["probe off", "sensor fault"] : ["probe off"] }

    /// One `watch --json` line as an object (nil for anything that is not a JSON object).
    static func object(_ line: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }

    /// True for a `{"type":"sample",...}` line whose object satisfies `match`.
    static func sample(_ line: String, _ match: ([String: Any]) -> Bool = { _ in true }) -> Bool {
        guard let o = object(line), o["type"] as? String == "sample" else { return false }
        return match(o)
    }

    /// The `note: … frames decoded, … samples, … framing errors, … checksum errors, … bytes discarded, … silences`
    /// line `watch` prints to standard error when it ends, as numbers; nil when it is missing.
    static func counters(_ stderr: [String]) -> [String: Int]? {
        guard let line = stderr.last(where: { $0.hasPrefix("note: ") && $0.contains("frames decoded") }) else { return nil }
        let pattern = /note: (\d+) frames decoded, (\d+) samples, (\d+) framing errors, (\d+) checksum errors, (\d+) bytes discarded, (\d+) silences/
        guard let m = line.wholeMatch(of: pattern) else { return nil }
        return ["frames": Int(m.1) ?? -1, "samples": Int(m.2) ?? -1, "framing": Int(m.3) ?? -1, "checksum": Int(m.4) ?? -1,
                "discarded": Int(m.5) ?? -1, "silences": Int(m.6) ?? -1]
    }
}

extension LiveTool {
    /// The first standard-output line from index `start` on that satisfies `match`, with its index,
    /// waiting up to `limit` for it.
    func stdoutLine(from start: Int = 0, within limit: Duration = .seconds(10), where match: (String) -> Bool) -> (index: Int, line: String)? {
        let deadline = ContinuousClock.now + limit
        repeat {
            let lines = stdout
            if start < lines.count, let index = lines[start...].firstIndex(where: match) { return (index, lines[index]) }
            Thread.sleep(forTimeInterval: 0.01)
        } while ContinuousClock.now < deadline
        return nil
    }

    /// Both output streams, for failure messages.
    var transcript: String { "stdout:\n" + stdout.joined(separator: "\n") + "\nstderr:\n" + stderr.joined(separator: "\n") }
}

@Suite("infusionctl oximeter watch against infusion-sim over real ptys", .serialized)
struct OximeterWatchCLITests {
    @Test("--json: sample lines carry the simulated patient's SpO2, pulse rate and PI; a probe-off typed into infusion-sim shows its flag with the values missing; Ctrl-C ends it with exit 0 and the counters on standard error",
          arguments: oximeterKinds)
    func json(_ kind: String) throws {
        let (folder, file) = try OximeterCLI.scenario()
        defer { try? FileManager.default.removeItem(at: folder) }
        let sim = try SimulatorProcess(["--oximeter", kind, "--scenario", file])
        let path = try #require(sim.path(of: "oximeter0"))
        let watch = try LiveTool("infusionctl", ["oximeter", "watch", "--device", path, "--protocol", kind, "--json"])

        // Connected, then live values exactly as the simulator was told.
        let connected = watch.stdoutLine { OximeterCLI.object($0)?["state"] as? String == "connected" }
        #expect(connected.flatMap { OximeterCLI.object($0.line)?["type"] as? String } == "connection", "\(watch.transcript)")
        let first = try #require(watch.stdoutLine { OximeterCLI.sample($0) }, "\(kind): no sample line\n\(watch.transcript)")
        let sample = try #require(OximeterCLI.object(first.line))
        #expect(sample["spo2"] as? Double == 94, "\(first.line)")
        #expect(sample["pulseRate"] as? Double == 78, "\(first.line)")
        #expect(sample["perfusionIndex"] as? Double == OximeterCLI.perfusionIndex(of: kind), "\(first.line)")
        #expect(sample["flags"] as? [String] == [], "\(first.line)")
        #expect(sample["valid"] as? Bool == true, "\(first.line)")
        #expect(sample["time"] is Double && sample["measuredAt"] is Double, "\(first.line)")

        // The fault as an operator types it; the next line shows the flag, values missing (JSON: absent).
        #expect(sim.control("oximeter0 probe-off 30s", acknowledgedBy: "oximeter0: probe-off for 30 s"), "\(sim.tool.transcript)")
        let off = watch.stdoutLine(from: first.index + 1) {
            OximeterCLI.sample($0) { ($0["flags"] as? [String])?.contains("probe off") == true }
        }
        let offSample = try #require(off.flatMap { OximeterCLI.object($0.line) }, "\(kind): probe-off never shown\n\(watch.transcript)")
        #expect(offSample["flags"] as? [String] == OximeterCLI.probeOffFlags(of: kind), "\(off?.line ?? "")")
        #expect(offSample["spo2"] == nil && offSample["pulseRate"] == nil && offSample["perfusionIndex"] == nil, "\(off?.line ?? "")")
        #expect(offSample["valid"] as? Bool == false)

        // Ctrl-C: exit 0, the read counters on standard error, no spurious "disconnected" on the way out.
        let printed = watch.stdout.count
        watch.interrupt()
        #expect(watch.waitForExit(within: .seconds(10)) == 0, "\(watch.transcript)")
        let counters = try #require(OximeterCLI.counters(watch.stderr), "\(kind): no counters\n\(watch.transcript)")
        let sampleLines = watch.stdout.filter { OximeterCLI.sample($0) }.count
        #expect((counters["samples"] ?? 0) >= sampleLines && (counters["frames"] ?? 0) >= (counters["samples"] ?? 0), "\(counters)")
        #expect(counters["checksum"] == 0 && counters["silences"] == 0, "\(counters)")
        #expect(!watch.stdout.dropFirst(printed).contains { $0.contains("disconnected") }, "\(watch.transcript)")
        // Every line is one JSON object with a type.
        #expect(watch.stdout.allSatisfy { OximeterCLI.object($0)?["type"] is String }, "\(watch.transcript)")
    }

    @Test("text: a header, the connection, then about one line a second with SpO2, PR and PI; a probe-off shows \"[probe off…]  NOT VALID\" with dashes for the values; SIGTERM ends it like Ctrl-C",
          arguments: oximeterKinds)
    func text(_ kind: String) throws {
        let (folder, file) = try OximeterCLI.scenario()
        defer { try? FileManager.default.removeItem(at: folder) }
        let sim = try SimulatorProcess(["--oximeter", kind, "--scenario", file])
        let path = try #require(sim.path(of: "oximeter0"))
        let watch = try LiveTool("infusionctl", ["oximeter", "watch", "--device", path, "--protocol", kind])

        let header = watch.stdoutLine { $0.hasPrefix("Watching") }
        #expect(header?.line == "Watching the \(kind) oximeter on \(path) (Ctrl-C to stop)…", "\(watch.transcript)")
        #expect(watch.stdoutLine { $0.wholeMatch(of: /\s*\d+\.\d{3} s  connection: connected/) != nil } != nil, "\(watch.transcript)")
        let pi = OximeterCLI.perfusionIndex(of: kind) == nil ? "--" : "2.50"
        let clean = watch.stdoutLine { $0.hasSuffix("  SpO2 94 %  PR 78 bpm  PI \(pi) %  ok") }
        let line = try #require(clean?.line, "\(kind): no clean sample line\n\(watch.transcript)")
        #expect(line.wholeMatch(of: /\s*\d+\.\d{3} s  SpO2 94 %  PR 78 bpm  PI (--|2\.50) %  ok/) != nil, "\(line)")

        #expect(sim.control("oximeter0 probe-off", acknowledgedBy: "oximeter0: probe-off until clear"), "\(sim.tool.transcript)")
        let flags = OximeterCLI.probeOffFlags(of: kind).joined(separator: ", ")
        let off = watch.stdoutLine(from: (clean?.index ?? 0) + 1) { $0.contains("[probe off") }
        #expect(off?.line.hasSuffix("  SpO2 -- %  PR -- bpm  PI -- %  [\(flags)]  NOT VALID") == true, "\(watch.transcript)")

        watch.terminate()
        #expect(watch.waitForExit(within: .seconds(10)) == 0, "\(watch.transcript)")
        #expect(OximeterCLI.counters(watch.stderr) != nil, "\(watch.transcript)")
    }

    @Test("a device that is not there: a clear error naming the path, exit 1, nothing on standard output")
    func missingDevice() throws {
        for kind in oximeterKinds {
            let run = try CLI.run(["oximeter", "watch", "--device", "/nonexistent/oximeter0", "--protocol", kind])
            #expect(run.status == 1, "\(kind): \(run.stderr)")
            #expect(run.stdout.isEmpty, "\(kind): \(run.stdout)")
            #expect(run.stderr.hasPrefix("error: cannot open the oximeter on /nonexistent/oximeter0: "), "\(run.stderr)")
            #expect(run.stderr.contains("does not exist") && run.stderr.contains("plugged in"), "\(run.stderr)")
        }
        // A path that exists but is not a serial port.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-tty-\(UUID().uuidString)")
        try "x".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let notTTY = try CLI.run(["oximeter", "watch", "--device", file.path, "--protocol", "masimo", "--json"])
        #expect(notTTY.status == 1 && notTTY.stdout.isEmpty, "\(notTTY.stderr)")
        #expect(notTTY.stderr.contains("\(file.path) is not a serial port or pseudo-terminal"), "\(notTTY.stderr)")
    }

    @Test("usage errors: an unknown protocol is refused with the list of protocols (exit 64); --device and --protocol are required")
    func usage() throws {
        let unknown = try CLI.run(["oximeter", "watch", "--device", "/dev/null", "--protocol", "nonin"])
        #expect(unknown.status == 64, "\(unknown.stderr)")
        #expect(unknown.stderr.contains("unknown oximeter protocol \"nonin\": use one of nonin-df2, nonin-df7, nonin-df8, masimo, contec"),
                "\(unknown.stderr)")
        let noProtocol = try CLI.run(["oximeter", "watch", "--device", "/dev/null"])
        #expect(noProtocol.status == 64 && noProtocol.stderr.contains("--protocol"), "\(noProtocol.stderr)")
        let noDevice = try CLI.run(["oximeter", "watch", "--protocol", "masimo"])
        #expect(noDevice.status == 64 && noDevice.stderr.contains("--device"), "\(noDevice.stderr)")
    }
}
