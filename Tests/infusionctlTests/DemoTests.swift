import CommandLineTestSupport
import DeviceSimulators
import Foundation
import InfusionCore
import Testing

/// The shipped demo scenario files, read from the source tree.
enum ShippedDemos {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/infusionctl/Resources/demo")
    static let names = ["uneventful", "desaturation", "probe-off", "occlusion", "controller-killed"]

    static func path(_ name: String) -> String { directory.appendingPathComponent("\(name).toml").path }
}

@Suite("infusionctl demo: scenario files")
struct DemoScenarioLoaderTests {
    @Test("every shipped scenario loads, and the folder holds exactly the listed ones")
    func shippedLoad() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: ShippedDemos.directory.path).filter { $0.hasSuffix(".toml") }
        #expect(Set(files) == Set(ShippedDemos.names.map { "\($0).toml" }))
        for name in ShippedDemos.names {
            let scenario = try DemoScenario.load(contentsOfFile: ShippedDemos.path(name))
            #expect(scenario.name == name)
            #expect(!scenario.description.isEmpty)
            #expect(scenario.devices.pump == "newera")
            #expect(scenario.speed >= 60)
        }
        let killed = try DemoScenario.load(contentsOfFile: ShippedDemos.path("controller-killed"))
        #expect(killed.steps.map(\.action) == [.killController, .restartController])
        #expect(killed.expectation.exitCodes == [7])
        #expect(killed.expectation.recovered == true)
        let desaturation = try DemoScenario.load(contentsOfFile: ShippedDemos.path("desaturation"))
        #expect(desaturation.steps.map(\.action) == [.operatorCommand("ack", reason: "SpO2 86 %: airway checked, oxygen on"),
                                                       .operatorCommand("resume", reason: "SpO2 back to 97 %")])
        #expect(desaturation.patient.timeline.events.count == 1)
        let uneventful = try DemoScenario.load(contentsOfFile: ShippedDemos.path("uneventful"))
        #expect(uneventful.program.duration == .seconds(40 * 60))
        #expect(uneventful.program.dose == "0.35 mg/kg/h")
    }

    static let broken = """
        format = 1

        [demo]
        title = "Broken"
        description = "every mistake once"
        speed = 80

        [program]
        profile = "ketamine-chronic-pain"
        drug = "Ketamine"
        concentration = "1 mg/mL"
        weight = 80
        dose = "0.35 mg/kg/h"
        duration = "40 min"

        [devices]
        pump = "graseby"
        oximeter = "nonin-df8"

        [patient]
        weight = "80 kg"
        spo2 = "97 %"
        pulse_rate = "72 bpm"

        [[step]]
        at = "4 min"
        action = "oximeter-fault"
        fault = "probe-of"

        [[step]]
        when = "stoped-by-supervisor"
        action = "operator"
        command = "ack"

        [[step]]
        at = "5 min"
        action = "restart-controller"

        [expect]
        exit_codes = [0]
        sumary = "typo"
        """

    @Test("a broken file is refused whole, with FILE:LINE for every problem")
    func brokenFile() throws {
        let error = try #require(throws: ConfigLoadError.self) {
            try DemoScenario.load(text: Self.broken, source: "broken.toml", name: "broken", baseDirectory: nil)
        }
        let text = error.description
        #expect(text.contains("broken.toml:12: program.weight"), "weight without a unit\n\(text)")
        #expect(text.contains("broken.toml:17: devices.pump") && text.contains("graseby"), "unknown pump\n\(text)")
        #expect(text.contains("broken.toml:31: step[1].when") && text.contains("stoped-by-supervisor"), "unknown condition\n\(text)")
        #expect(text.contains("broken.toml:37: step[2].action") && text.contains("kill-controller"), "restart without kill\n\(text)")
        #expect(text.contains("broken.toml:41: expect.sumary") && text.contains("did you mean \"summary\""), "misspelt key\n\(text)")
        #expect(text.contains("missing required key \"summary\""), "missing summary\n\(text)")
        // The oximeter fault is checked against the chosen simulated oximeter's faults.
        #expect(text.contains("broken.toml:28: step[0].fault") && text.contains("probe-off"), "unknown fault\n\(text)")
    }

    @Test("a referenced patient scenario is read relative to the demo file; a missing one is reported at its line")
    func patientReference() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("demo-ref-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let patient = """
            format = 1
            [scenario]
            name = "Referenced patient"
            [patient]
            weight = "60 kg"
            spo2 = "96 %"
            pulse_rate = "80 bpm"
            [[event]]
            at = "3 min"
            kind = "probe_off"
            duration = "1 min"
            """
        try patient.write(to: folder.appendingPathComponent("patient.toml"), atomically: true, encoding: .utf8)
        var demo = try String(contentsOfFile: ShippedDemos.path("uneventful"), encoding: .utf8)
        let patientTable = try #require(demo.range(of: "[patient]"))
        let expectTable = try #require(demo.range(of: "[expect]"))
        demo.replaceSubrange(patientTable.lowerBound..<expectTable.lowerBound, with: "")
        demo = demo.replacingOccurrences(of: "speed = 160", with: "speed = 160\npatient_scenario = \"patient.toml\"")
        let file = folder.appendingPathComponent("mine.toml")
        try demo.write(to: file, atomically: true, encoding: .utf8)
        let scenario = try DemoScenario.load(contentsOfFile: file.path)
        #expect(scenario.name == "mine")
        #expect(scenario.patient.name == "Referenced patient")
        #expect(scenario.patient.timeline.events.count == 1)

        let missing = demo.replacingOccurrences(of: "patient.toml", with: "nowhere.toml")
        let error = try #require(throws: ConfigLoadError.self) {
            try DemoScenario.load(text: missing, source: "mine.toml", name: "mine", baseDirectory: folder.path)
        }
        let line = missing.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains("nowhere.toml") }.map { $0 + 1 }
        #expect(error.description.contains("mine.toml:\(line ?? 0): demo.patient_scenario"), "\(error)")
    }
}

@Suite("infusionctl demo: command line")
struct DemoListTests {
    @Test("--list prints every shipped scenario with its description, the default marked")
    func list() throws {
        let run = try CLI.run(["demo", "--list"])
        #expect(run.status == 0, "\(run.stderr)")
        for name in ShippedDemos.names {
            let scenario = try DemoScenario.load(contentsOfFile: ShippedDemos.path(name))
            #expect(run.stdout.contains("  \(name)"), "\(name) missing:\n\(run.stdout)")
            #expect(run.stdout.contains(scenario.description))
        }
        #expect(run.stdout.contains("(default)"))
    }

    @Test("an unknown scenario is a usage error naming the shipped ones; a broken file shows FILE:LINE")
    func unknownScenario() throws {
        let run = try CLI.run(["demo", "--scenario", "nonesuch"])
        #expect(run.status == 64)
        #expect(run.stderr.contains("no demo scenario \"nonesuch\""))
        #expect(run.stderr.contains("uneventful"))

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("broken-\(UUID().uuidString).toml")
        try DemoScenarioLoaderTests.broken.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let broken = try CLI.run(["demo", "--scenario", file.path])
        #expect(broken.status == 64)
        #expect(broken.stderr.contains("\(file.path):12: program.weight"), "\(broken.stderr)")
    }
}

/// Every shipped scenario, played for real: the simulated devices on ptys in the demo process, the
/// controller (`infusionctl run`) as its child, at a high speed so each takes seconds.
@Suite("infusionctl demo: every shipped scenario reaches its expected outcome", .serialized)
struct DemoScenarioPlayTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var speed: Int
        /// The validated program as the session-start line shows it: drug, dose rate, the pump rate
        /// `run` computed and the planned duration.
        var program: String
        /// Text the summary must show.
        var summary: [String]
        /// Text the HTML report must contain.
        var report: [String]
        var testDescription: String { name }
    }

    /// 80x, the shipped default: at 120x and above `run` loses pump status on a busy machine (it polls
    /// the pump at most every 20 ms of REAL time, 2.4 s of controller time at 120x, against a 5 s
    /// staleness limit of controller time), so the uneventful session takes about 30 s here.
    static let cases: [Case] = [
        Case(name: "uneventful", speed: 80, program: "Ketamine 0.35 mg/kg/h at 28 mL/h for 40 min", summary: ["ok   session outcome: completed", "ok   recorded session state: completed"],
             report: ["state state-completed"]),
        Case(name: "desaturation", speed: 80, program: "Ketamine 0.3 mg/kg/h at 21 mL/h for 20 min", summary: ["ok   alarm spo2-low raised", "stopped-by-supervisor -> acknowledged -> infusing -> complete"],
             report: ["state state-completed", "spo2-low"]),
        Case(name: "probe-off", speed: 80, program: "Ketamine 0.35 mg/kg/h at 28 mL/h for 20 min", summary: ["ok   alarm monitoring-lost raised", "ended-after-supervisor-stop"],
             report: ["state state-stopped", "monitoring-lost"]),
        Case(name: "occlusion", speed: 80, program: "Ketamine 0.35 mg/kg/h at 28 mL/h for 20 min", summary: ["ok   alarm pump-alarm raised", "ended-after-supervisor-stop"],
             report: ["state state-stopped", "pump-alarm"]),
        Case(name: "controller-killed", speed: 80, program: "Ketamine 0.35 mg/kg/h at 28 mL/h for 20 min", summary: ["ok   the pump stopped itself", "ok   the restarted controller recovered",
                                                               "killed(9), 7"],
             report: ["state state-interrupted", "was <b>interrupted</b>"]),
    ]

    @Test("demo --scenario NAME --speed N exits 0 with the expected summary, and its report shows the outcome", arguments: cases)
    func play(_ scenario: Case) throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("demo-\(scenario.name)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let started = ContinuousClock.now
        let run = try CLI.run(["demo", "--scenario", scenario.name, "--speed", "\(scenario.speed)", "--out", out.path])
        let elapsed = ContinuousClock.now - started
        let logs = (try? FileManager.default.contentsOfDirectory(atPath: out.path))?.filter { $0.hasSuffix(".log") }
            .compactMap { try? String(contentsOfFile: out.appendingPathComponent($0).path, encoding: .utf8) }.joined(separator: "\n") ?? ""
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)\ncontroller logs:\n\(logs)")
        #expect(run.stdout.contains("Outcome: as expected."))
        // `make demo` shows the program `run` validated: its session-start line, at the start of the session.
        let startLines = run.stdout.components(separatedBy: "\n").filter { $0.contains("session 1 started: ") }
        #expect(startLines.first?.hasPrefix("[00:0") == true, "\(startLines)")
        #expect(startLines.first?.hasSuffix("] session 1 started: \(scenario.program)") == true, "\(startLines)\n\(run.stdout)")
        for text in scenario.summary { #expect(run.stdout.contains(text), "summary lacks \"\(text)\":\n\(run.stdout)") }
        #expect(run.stdout.contains("ok   the simulated pump is stopped at the end"))
        let reportPath = out.appendingPathComponent("report.html").path
        #expect(run.stdout.contains("report: \(reportPath)"))
        let html = try String(contentsOfFile: reportPath, encoding: .utf8)
        for text in scenario.report { #expect(html.contains(text), "the report lacks \"\(text)\"") }
        #expect(elapsed < .seconds(45), "took \(elapsed)")
    }
}
