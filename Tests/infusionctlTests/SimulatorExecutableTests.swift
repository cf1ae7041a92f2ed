import CommandLineTestSupport
import Foundation
import Testing

/// The `infusion-sim` executable as an operator or a script runs it: the device lines it prints, the
/// fault commands typed on its standard input, and the shared simulated world.
@Suite("infusion-sim executable: oximeters, faults on standard input, the shared world", .serialized)
struct SimulatorExecutableTests {
    /// The pty path at the end of a device line, when it is a /dev/pts node.
    static func ptyPath(_ text: Substring) -> String? {
        text.wholeMatch(of: /\/dev\/pts\/\d+/) == nil ? nil : String(text)
    }

    @Test("each --oximeter kind prints exactly \"oximeter0 KIND /dev/pts/N\", a pty that exists; status lists it; quit exits 0",
          arguments: oximeterKinds)
    func deviceLine(_ kind: String) throws {
        let sim = try LiveTool("infusion-sim", ["--oximeter", kind])
        let first = try #require(sim.stdoutLine { !$0.isEmpty }, "\(sim.transcript)")
        let prefix = "oximeter0 \(kind) "
        #expect(first.line.hasPrefix(prefix), "\(first.line)")
        let path = try #require(Self.ptyPath(first.line.dropFirst(prefix.count)), "not \"\(prefix)/dev/pts/N\": \"\(first.line)\"")
        let type = try FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType
        #expect(type == .typeCharacterSpecial, "\(path)")
        sim.send("status")
        #expect(sim.stdoutLine(from: first.index + 1) { $0 == "oximeter0 \(kind) \(path)" } != nil, "\(sim.transcript)")
        // The default patient (no --scenario): SpO2 97 %, pulse 72 bpm, no drug.
        let patient = sim.stdoutLine(from: first.index + 1) { $0.hasPrefix("patient: ") }
        #expect(patient?.line.hasSuffix(", plasma 0 ng/mL") == true, "\(sim.transcript)")
        sim.send("quit")
        #expect(sim.waitForExit(within: .seconds(10)) == 0, "\(sim.transcript)")
        #expect(sim.stdout.filter { $0.hasPrefix("oximeter0 ") }.count == 2, "one line at start, one for status: \(sim.transcript)")
    }

    @Test("several oximeters and --link: \"oximeterN KIND /dev/pts/M (link DIR/oximeterN)\", each link pointing at its pty")
    func linkLines() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sim-link-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let sim = try LiveTool("infusion-sim", ["--oximeter", "nonin-df8", "--oximeter", "contec", "--link", folder.path])
        for (index, kind) in [(0, "nonin-df8"), (1, "contec")] {
            let name = "oximeter\(index)"
            let link = folder.appendingPathComponent(name).path
            let found = sim.stdoutLine { $0.hasPrefix("\(name) ") }
            let line = try #require(found?.line, "\(sim.transcript)")
            let suffix = " (link \(link))"
            #expect(line.hasPrefix("\(name) \(kind) ") && line.hasSuffix(suffix), "\(line)")
            let path = try #require(Self.ptyPath(line.dropFirst("\(name) \(kind) ".count).dropLast(suffix.count)), "\(line)")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == path)
        }
        sim.send("quit")
        #expect(sim.waitForExit(within: .seconds(10)) == 0, "\(sim.transcript)")
    }

    @Test("standard-input errors say what is wrong and what is accepted; help lists each oximeter's faults")
    func commandErrors() throws {
        let sim = try SimulatorProcess(["--oximeter", "masimo", "--oximeter", "contec"])
        _ = try #require(sim.path(of: "oximeter1"))
        #expect(sim.control("oximeter9 probe-off", acknowledgedBy: "error: no device \"oximeter9\": devices are oximeter0, oximeter1"))
        #expect(sim.control("oximeter0", acknowledgedBy: "error: what should oximeter0 do? (type help)"))
        #expect(sim.control("oximeter0 unplug soon", acknowledgedBy: "error: \"soon\" is not a duration (try 10s)"))
        #expect(sim.control("oximeter0 probe-off soon",
                            acknowledgedBy: "error: oximeter0: probe-off: cannot read \"soon\" as a duration; write it like 30s or 2 min"))
        #expect(sim.control("oximeter0 explode", acknowledgedBy: "error: oximeter0: unknown oximeter fault \"explode\"; accepted: "))
        #expect(sim.control("oximeter0 PROBE-OFF 5s", acknowledgedBy: "oximeter0: probe-off for 5 s"), "fault names ignore case")
        let before = sim.tool.stdout.count
        sim.tool.send("help")
        #expect(sim.tool.line(containing: "oximeter1 (contec): ") != nil, "\(sim.tool.transcript)")
        Thread.sleep(forTimeInterval: 0.3)
        let help = Array(sim.tool.stdout.dropFirst(before))
        let masimo = help.drop { !$0.hasPrefix("oximeter0 (masimo)") }.prefix { !$0.hasPrefix("oximeter1") }
        let contec = help.drop { !$0.hasPrefix("oximeter1 (contec)") }
        for fault in ["probe-off", "artifact", "low-perfusion", "out-of-track", "silence", "garbage", "corrupt", "clear"] {
            #expect(masimo.contains { $0.contains(" \(fault) ") || $0.hasSuffix(" \(fault)") } && contec.contains { $0.contains(" \(fault) ") },
                    "\(fault) missing from help:\n\(help.joined(separator: "\n"))")
        }
        #expect(masimo.contains { $0.contains("low-battery") } && !contec.contains { $0.contains("low-battery") }, "\(help)")
    }

    /// The plasma concentration in the last `status` answer ("patient: SpO2 …, pulse …, plasma 12.3 ng/mL").
    static func plasma(_ sim: SimulatorProcess) -> Double? {
        let before = sim.tool.stdout.filter { $0.hasPrefix("patient: ") }.count
        sim.tool.send("status")
        guard let line = sim.tool.line(containing: "patient: ", skipping: before, within: .seconds(5)),
              let match = line.firstMatch(of: /plasma ([0-9.]+) ng\/mL/) else { return nil }
        return Double(match.1)
    }

    @Test("one simulated world through the executable: a New Era pump started with `infusionctl pump start` raises the virtual patient's plasma concentration and pulse rate as the Nonin measures it, and a scripted desaturation from the --scenario file shows in the oximeter's readings (--speed 60)")
    func sharedWorld() throws {
        // Desaturation to 86 % at 7 simulated minutes (7 s at 60×), held 30 min; no noise, so values are exact.
        let (folder, file) = try OximeterCLI.scenario(spo2: 97, pulse: 72, events: """
            [[event]]
            at = "7 min"
            kind = "desaturation"
            to = "86 %"
            onset = "20 s"
            hold = "30 min"
            recovery = "1 min"
            """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let sim = try SimulatorProcess(["--pump", "newera", "--oximeter", "nonin-df2", "--scenario", file, "--speed", "60",
                                        "--concentration", "10 mg/mL"])
        let pump = try #require(sim.path(of: "pump0"))
        let oximeter = try #require(sim.path(of: "oximeter0"))
        #expect(Self.plasma(sim) == 0, "no drug yet\n\(sim.tool.transcript)")
        let watch = try LiveTool("infusionctl", ["oximeter", "watch", "--device", oximeter, "--protocol", "nonin-df2", "--json"])
        let baseline = watch.stdoutLine { OximeterCLI.sample($0) }
        let first = try #require(baseline.flatMap { OximeterCLI.object($0.line) }, "\(watch.transcript)")
        #expect(first["spo2"] as? Double == 97 && first["pulseRate"] as? Double == 72, "drug-free baseline: \(baseline?.line ?? "")")

        // Start the pump through its real driver; basic mode, or the sped-up safe-mode watchdog would stop it at once.
        let start = try CLI.run(["pump", "start", "--device", pump, "--protocol", "newera", "--safe-mode", "0", "--rate", "600 mL/h"])
        #expect(start.status == 0 && start.stdout.contains("started"), "\(start.stdout)\n\(start.stderr)")
        let mark = watch.stdout.count

        // The delivered drug reaches the patient (plasma up) and the response model raises the measured pulse.
        let faster = watch.stdoutLine(from: mark, within: .seconds(15)) {
            OximeterCLI.sample($0) { ($0["pulseRate"] as? Double ?? 0) >= 80 }
        }
        #expect(faster != nil, "the pulse never rose with the drug\n\(watch.transcript)")
        let plasma = try #require(Self.plasma(sim), "\(sim.tool.transcript)")
        #expect(plasma > 1_000, "plasma \(plasma) ng/mL after minutes at 100 mg/min")

        // The scripted desaturation: SpO2 held at exactly 86 %.
        let desaturated = watch.stdoutLine(from: mark, within: .seconds(15)) { OximeterCLI.sample($0) { $0["spo2"] as? Double == 86 } }
        #expect(desaturated != nil, "the scenario's desaturation never reached the oximeter\n\(watch.transcript)")
        if let faster, let desaturated { #expect(faster.index < desaturated.index, "the pulse rose before the 7-min event") }
        watch.interrupt()
        #expect(watch.waitForExit(within: .seconds(10)) == 0)
    }
}

/// One test per oximeter kind, each with its own `infusion-sim` and `infusionctl` processes, waiting on
/// real device rates (about 5 s for DF2/DF7/Contec, 10 s for DF8/Masimo). Serialized: five simulators and
/// five watchers at once would load a 2-core machine that other real-time suites share.
@Suite("infusion-sim: faults typed on standard input reach each kind of simulated oximeter", .serialized)
struct SimulatorFaultCommandTests {
    /// How long to keep each kind silent so that the driver's staleness limit (docs/oximeters.md) passes.
    static func silence(for kind: String) -> String {
        switch kind {
        case "nonin-df8", "masimo": "3.5s"  // staleness 2.5 s, one sample a second
        case "contec": "1s"  // 0.5 s
        default: "2s"  // DF2/DF7: 1 s
        }
    }

    /// The flag out-of-track shows as: Masimo reports a pulse search (docs/oximeters.md, flag mapping).
    static func outOfTrackFlag(of kind: String) -> String { kind == "masimo" ? "searching" : "out of track" }

    @Test("faults typed on standard input reach the device: noise, flags, silence, corruption, unplug and replug, seen by `infusionctl oximeter watch --json` on the --link path", arguments: oximeterKinds)
    func faultsReachTheDevice(_ kind: String) throws {
        let (folder, file) = try OximeterCLI.scenario()
        defer { try? FileManager.default.removeItem(at: folder) }
        let links = folder.appendingPathComponent("dev")
        let sim = try SimulatorProcess(["--oximeter", kind, "--scenario", file, "--link", links.path])
        _ = try #require(sim.path(of: "oximeter0"))
        let link = links.appendingPathComponent("oximeter0").path
        let watch = try LiveTool("infusionctl", ["oximeter", "watch", "--device", link, "--protocol", kind, "--json"])
        func flags(_ line: String) -> [String] { (OximeterCLI.object(line)?["flags"] as? [String]) ?? [] }
        /// The first sample line from `start` on whose flags include all of `wanted`.
        func sample(from start: Int, with wanted: [String]) -> (index: Int, line: String)? {
            watch.stdoutLine(from: start) { line in OximeterCLI.sample(line) { _ in Set(wanted).isSubset(of: flags(line)) } }
        }
        func type(_ command: String, _ acknowledgement: String) {
            #expect(sim.control(command, acknowledgedBy: acknowledgement), "\(command)\n\(sim.tool.transcript)")
        }
        let clean = watch.stdoutLine { OximeterCLI.sample($0) { $0["spo2"] as? Double == 94 && ($0["flags"] as? [String]) == [] } }
        var mark = try #require(clean, "\(kind): no clean sample\n\(watch.transcript)").index + 1

        // Noise on the line: skipped (counted below); the flags that follow are read.
        type("oximeter0 garbage", "oximeter0: garbage: 32 bytes of noise")

        // Low perfusion and, where the format has a battery bit, low battery (Contec refuses it, saying why).
        type("oximeter0 low-perfusion", "oximeter0: low-perfusion until clear")
        var wanted = ["low perfusion"]
        if kind == "contec" {
            type("oximeter0 low-battery 20s", "error: oximeter0: low-battery: a Contec V7.0 real-time packet has no battery bit")
        } else {
            type("oximeter0 low-battery 20s", "oximeter0: low-battery for 20 s")
            wanted.append("low battery")
        }
        let perfusion = sample(from: mark, with: wanted)
        #expect(perfusion != nil, "\(kind): \(wanted) never shown\n\(watch.transcript)")
        mark = (perfusion?.index ?? mark) + 1

        // Motion artifact and out of track, after a clear.
        type("oximeter0 clear", "oximeter0: all faults cleared")
        type("oximeter0 artifact", "oximeter0: artifact until clear")
        type("oximeter0 out-of-track 10s", "oximeter0: out-of-track for 10 s")
        let track = sample(from: mark, with: [OximeterCLI.artifactFlag(of: kind), Self.outOfTrackFlag(of: kind)])
        #expect(track != nil, "\(kind): artifact and out of track never shown\n\(watch.transcript)")
        if let track { #expect(OximeterCLI.object(track.line)?["spo2"] == nil, "out of track: no SpO2 \(track.line)") }
        mark = (track?.index ?? mark) + 1
        type("oximeter0 clear", "oximeter0: all faults cleared")

        // Silence: the driver reports the connection silent and "no data", then connected again with values.
        let duration = Self.silence(for: kind)
        type("oximeter0 silence \(duration)", "oximeter0: silence for")
        let silent = watch.stdoutLine(from: mark) { OximeterCLI.object($0)?["state"] as? String == "silent" }
        #expect(silent != nil, "\(kind): silence never reported\n\(watch.transcript)")
        mark = (silent?.index ?? mark) + 1
        #expect(watch.stdoutLine(from: mark) { OximeterCLI.object($0)?["type"] as? String == "no-data" } != nil, "\(watch.transcript)")
        let back = watch.stdoutLine(from: mark) { OximeterCLI.object($0)?["state"] as? String == "connected" }
        #expect(back != nil, "\(kind): never connected again after the silence\n\(watch.transcript)")
        mark = (back?.index ?? mark) + 1
        #expect(watch.stdoutLine(from: mark) { OximeterCLI.sample($0) { $0["spo2"] as? Double == 94 } } != nil, "\(watch.transcript)")

        // Corrupt frames (long after the noise, so that a locked Nonin decoder meets a bad checksum first):
        // nothing published from them; counted (below).
        type("oximeter0 corrupt 1s", "oximeter0: corrupt for 1 s")

        // Unplug: the driver sees the hang-up; replug: the host plugs a new pty in, the link follows it.
        Thread.sleep(forTimeInterval: 1.2)  // the corruption is over
        mark = watch.stdout.count
        type("oximeter0 unplug", "oximeter0 unplugged")
        let unplugged = watch.stdoutLine(from: mark) { OximeterCLI.object($0)?["state"] as? String == "disconnected (reconnecting)" }
        #expect(unplugged != nil, "\(kind): the unplug was never seen\n\(watch.transcript)")
        mark = (unplugged?.index ?? mark) + 1
        type("oximeter0 replug", "oximeter0 replugged")
        #expect(sim.tool.line(containing: "oximeter0 \(kind) ", skipping: 1) != nil, "a new pty line after the replug\n\(sim.tool.transcript)")
        let replugged = watch.stdoutLine(from: mark) { OximeterCLI.object($0)?["state"] as? String == "connected" }
        #expect(replugged != nil, "\(kind): never reconnected\n\(watch.transcript)\ninfusion-sim:\n\(sim.tool.transcript)")
        mark = (replugged?.index ?? mark) + 1
        #expect(watch.stdoutLine(from: mark) { OximeterCLI.sample($0) { $0["spo2"] as? Double == 94 && $0["valid"] as? Bool == true } } != nil,
                "\(watch.transcript)")

        watch.interrupt()
        #expect(watch.waitForExit(within: .seconds(10)) == 0, "\(watch.transcript)")
        let counters = try #require(OximeterCLI.counters(watch.stderr), "\(watch.transcript)")
        #expect((counters["silences"] ?? 0) >= 1, "\(counters)")
        switch kind {
        case "nonin-df2", "nonin-df7":
            #expect((counters["checksum"] ?? 0) > 0, "corrupt frames fail their checksum: \(counters)")
            #expect((counters["discarded"] ?? 0) > 0, "the noise is skipped: \(counters)")
        case "nonin-df8":
            #expect((counters["discarded"] ?? 0) > 0, "no checksum: corrupt records and noise are skipped bytes: \(counters)")
        case "contec":
            #expect((counters["framing"] ?? 0) > 0, "corrupt packets cannot be framed: \(counters)")
            #expect((counters["discarded"] ?? 0) > 0, "the noise is skipped: \(counters)")
        default:
            // Masimo is read line by line: an unreadable line is a framing error; noise without a line end
            // just precedes the next line, which is still read by its tags (no byte count is kept).
            #expect((counters["framing"] ?? 0) > 0, "corrupt lines cannot be read: \(counters)")
        }
    }
}
