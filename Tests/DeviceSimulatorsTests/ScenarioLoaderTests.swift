import Foundation
import InfusionCore
import Testing
@testable import DeviceSimulators

@Suite("Scenario files")
struct ScenarioLoaderTests {
    static let valid = """
        format = 1

        [scenario]
        name = "test"
        duration = "30 min"

        [patient]
        weight = "80 kg"
        spo2 = "97 %"
        pulse_rate = "72 bpm"

        [[event]]
        at = "12 min"
        kind = "probe_off"
        duration = "45 s"
        """

    /// Loads `text` and returns the issues it was refused for (recording a failure if it was accepted).
    func issues(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> [ScenarioIssue] {
        do {
            _ = try Scenario.load(text: text, source: "test.toml")
            Issue.record("the scenario was accepted", sourceLocation: sourceLocation)
            return []
        } catch {
            #expect(error.description.hasPrefix("scenario refused"), sourceLocation: sourceLocation)
            return error.issues
        }
    }

    func replacing(_ old: String, with new: String) -> String {
        Self.valid.replacingOccurrences(of: old, with: new)
    }

    @Test("the example scenarios load with the documented content")
    func examples() throws {
        let uneventful = try Scenario.load(contentsOfFile: ScenarioFiles.path("uneventful.toml"))
        #expect(uneventful.patient.weight == .kilograms(80))
        #expect(uneventful.patient.baselineSpO2 == .percent(97))
        #expect(uneventful.patient.baselinePulseRate == .beatsPerMinute(72))
        #expect(uneventful.patient.baselinePerfusionIndex == .percent(3.5))
        #expect(uneventful.patient.noiseSeed == 1)
        #expect(uneventful.duration == .seconds(3600))
        #expect(uneventful.timeline.events.isEmpty)

        let desaturation = try Scenario.load(contentsOfFile: ScenarioFiles.path("desaturation.toml"))
        let events = desaturation.timeline.events
        #expect(events.count == 6)
        #expect(events.first == ScriptedEvent(at: .seconds(720), .desaturation(VitalExcursion(
            target: .percent(86), onset: .seconds(40), hold: .seconds(180), recovery: .seconds(30)))))
        #expect(events.map(\.kind.name) == ["desaturation", "pulse_rate", "probe_off", "motion_artifact", "low_perfusion", "out_of_track"])
        #expect(events[2] == ScriptedEvent(at: .seconds(1500), .probeOff(.seconds(45))))
        #expect(events[4] == ScriptedEvent(at: .seconds(1980), .lowPerfusion(.seconds(60), perfusionIndex: .percent(0.2))))
        #expect(desaturation.patient.baselinePerfusionIndex == .percent(3)) // default
        #expect(desaturation.patient.noiseSeed == 12)
        _ = try VirtualPatient(scenario: desaturation)
    }

    @Test("optional keys take their defaults; noise can be turned off")
    func defaults() throws {
        var text = replacing("pulse_rate = \"72 bpm\"", with: "pulse_rate = \"72 bpm\"\nnoise = false")
        text += "\n[[event]]\nat = \"1 min\"\nkind = \"low_perfusion\"\nduration = \"10 s\"\n"
        let scenario = try Scenario.load(text: text, source: "t")
        #expect(scenario.patient.noiseSeed == nil)
        #expect(scenario.timeline.events.map(\.at) == [.seconds(60), .seconds(720)])
        #expect(scenario.timeline.events[0].kind == .lowPerfusion(.seconds(10), perfusionIndex: .percent(0.2)))
        #expect(try Scenario.load(text: Self.valid, source: "t").patient.noiseSeed == 1)
    }

    @Test("unknown keys are refused with the file, line, key and a suggestion")
    func unknownKeys() {
        let misspelt = issues(replacing("weight =", with: "wieght ="))
        #expect(misspelt.contains { $0.key == "patient.wieght" && $0.problem.contains("unknown key") && $0.fix.contains("did you mean \"weight\"") && $0.line == 8 && $0.file == "test.toml" })
        #expect(misspelt.contains { $0.key == "patient.weight" && $0.problem.contains("missing") })

        let table = issues(Self.valid + "\n[devices]\npump = \"newera\"\n")
        #expect(table.contains { $0.key == "devices" && $0.problem.contains("unknown key") && $0.fix.contains("format, scenario, patient, event") })

        let wrongKind = issues(Self.valid + "\nhold = \"1 min\"\n")
        #expect(wrongKind.contains { $0.key == "event[0].hold" && $0.problem.contains("does not apply") && $0.fix.contains("desaturation, pulse_rate") && $0.line == 16 })

        let stray = issues(replacing("name = \"test\"", with: "name = \"test\"\nauthor = \"me\""))
        #expect(stray.contains { $0.key == "scenario.author" })
    }

    @Test("bad units and unit-less numbers are refused with the accepted units")
    func badUnits() {
        let pounds = issues(replacing("\"80 kg\"", with: "\"176 lb\""))
        #expect(pounds.contains { $0.key == "patient.weight" && $0.problem.contains("unknown unit \"lb\"") && $0.fix.contains("kg") })
        let wrongDimension = issues(replacing("\"12 min\"", with: "\"12 kg\""))
        #expect(wrongDimension.contains { $0.key == "event[0].at" && $0.problem.contains("duration") && $0.fix.contains("s, min, h") })
        let bare = issues(replacing("\"12 min\"", with: "12"))
        #expect(bare.contains { $0.key == "event[0].at" && $0.problem.contains("bare") && $0.fix.contains("\"12 s\"") })
        let noUnit = issues(replacing("\"97 %\"", with: "\"97\""))
        #expect(noUnit.contains { $0.key == "patient.spo2" && $0.problem.contains("no unit") })
        let spo2AsPulse = issues(replacing("\"97 %\"", with: "\"97 bpm\""))
        #expect(spo2AsPulse.contains { $0.key == "patient.spo2" && $0.problem.contains("percentage") })
    }

    @Test("negative times and durations are refused")
    func negativeTimes() {
        let at = issues(replacing("\"12 min\"", with: "\"-12 min\""))
        #expect(at.contains { $0.key == "event[0].at" && $0.problem.contains("cannot be negative") && $0.fix.contains("0 or more") })
        let duration = issues(replacing("\"45 s\"", with: "\"-45 s\""))
        #expect(duration.contains { $0.key == "event[0].duration" && $0.problem.contains("negative") })
        let zero = issues(replacing("\"45 s\"", with: "\"0 s\""))
        #expect(zero.contains { $0.key == "event[0].duration" && $0.problem.contains("longer than zero") })
        let empty = issues(Self.valid.replacingOccurrences(of: "kind = \"probe_off\"\nduration = \"45 s\"",
                                                          with: "kind = \"desaturation\"\nto = \"88 %\"\nonset = \"0 s\"\nhold = \"0 s\"\nrecovery = \"0 s\""))
        #expect(empty.contains { $0.key == "event[0].hold" && $0.problem.contains("no length") })
    }

    @Test("values outside plausible ranges, events after the end and unknown kinds are refused")
    func ranges() {
        #expect(issues(replacing("\"97 %\"", with: "\"120 %\"")).contains { $0.key == "patient.spo2" && $0.fix.contains("50 % to 100 %") })
        #expect(issues(replacing("\"80 kg\"", with: "\"0 kg\"")).contains { $0.key == "patient.weight" })
        #expect(issues(replacing("\"12 min\"", with: "\"30 min\"")).contains { $0.key == "event[0].at" && $0.problem.contains("never happen") })
        let kind = issues(replacing("\"probe_off\"", with: "\"probe_of\""))
        #expect(kind.contains { $0.key == "event[0].kind" && $0.fix.contains("probe_off, motion_artifact") })
        #expect(issues(replacing("format = 1", with: "format = 2")).contains { $0.key == "format" })
        #expect(issues(replacing("format = 1", with: "")).contains { $0.key == "format" && $0.problem.contains("missing") })
        let seed = issues(replacing("pulse_rate = \"72 bpm\"", with: "pulse_rate = \"72 bpm\"\nnoise_seed = -3"))
        #expect(seed.contains { $0.key == "patient.noise_seed" })
    }

    @Test("every problem is reported at once, in file order")
    func collectsAll() {
        let text = replacing("\"80 kg\"", with: "\"80 lb\"").replacingOccurrences(of: "\"12 min\"", with: "\"-1 s\"")
            .replacingOccurrences(of: "name = \"test\"", with: "nam = \"test\"")
        let found = issues(text)
        #expect(found.count == 4) // nam unknown, name missing, weight unit, at negative
        #expect(found.map { $0.line ?? 0 } == found.map { $0.line ?? 0 }.sorted())
        #expect(found.allSatisfy { $0.description.hasPrefix("test.toml:") && $0.description.contains("Fix: ") })
    }

    @Test("TOML syntax errors and unreadable files give the location")
    func syntaxAndFiles() {
        let syntax = issues("format = 1\n[scenario\nname = \"x\"\n")
        #expect(syntax.count == 1 && syntax[0].line == 2 && syntax[0].problem.contains("not valid TOML"))
        #expect(issues("format = 1\n").contains { $0.key == "scenario" } )
        do {
            _ = try Scenario.load(contentsOfFile: "/nonexistent/scenario.toml")
            Issue.record("a missing file loaded")
        } catch {
            #expect(error.issues.first?.file == "/nonexistent/scenario.toml")
            #expect(error.issues.first?.fix.contains("path") == true)
        }
    }
}
