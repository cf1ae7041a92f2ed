import Foundation
import Testing
@testable import InfusionCore

@Suite("Drug library: loading")
struct DrugLibraryLoaderTests {
    @Test("the shipped library loads with the ketamine chronic-pain profile of clinical.md §1.3 and §6.3")
    func shippedLibrary() throws {
        let library = try Fixtures.defaultLibrary()
        #expect(library.name == "InfusionControl default drug library")
        let profile = try #require(library.profile(named: "ketamine-chronic-pain"))
        #expect(profile.name == "Ketamine, chronic pain (outpatient infusion suite)")
        #expect(library.profile(named: "Ketamine, chronic pain (outpatient infusion suite)") == profile)
        let ketamine = try #require(profile.drug(named: "ketamine"))
        #expect(ketamine.concentrations == [.milligramsPerMillilitre(1), .milligramsPerMillilitre(2)])
        #expect(ketamine.doseRateUnit == .milligramsPerKilogramPerHour)
        #expect(ketamine.weightRange == BodyWeight.kilograms(30)...BodyWeight.kilograms(200))
        #expect(ketamine.doseRate.softMinimum == .milligramsPerKilogramPerHour(0.1))
        #expect(ketamine.doseRate.softMaximum == .milligramsPerKilogramPerHour(0.5))
        #expect(ketamine.doseRate.hardMaximum == .milligramsPerKilogramPerHour(1.0))
        #expect(ketamine.absoluteRateCap == .milligramsPerHour(100))
        #expect(ketamine.loadingDose.softMaximum == .milligramsPerKilogram(0.35))
        #expect(ketamine.loadingDose.hardMaximum == .milligramsPerKilogram(0.5))
        #expect(ketamine.loadingDuration.hardMinimum == .seconds(60))
        #expect(ketamine.cumulativeDose.softMaximum == .milligramsPerKilogram(2))
        #expect(ketamine.cumulativeDose.hardMaximum == .milligramsPerKilogram(4))
        #expect(ketamine.sessionDuration.softMaximum == .seconds(4 * 3600))
        #expect(ketamine.sessionDuration.hardMaximum == .seconds(6 * 3600))
        let m = profile.monitoring
        #expect(m.spo2PauseBelow == .percent(90) && m.spo2PauseHold == .seconds(15))
        #expect(m.spo2ImmediatePauseBelow == .percent(85))
        #expect(m.pulsePauseAbove == .beatsPerMinute(130) && m.pulsePauseBelow == .beatsPerMinute(45))
        #expect(m.monitoringLossAlarmAfter == .seconds(30) && m.monitoringLossPauseAfter == .seconds(60))
        #expect(m.stopConfirmationDeadline == .seconds(2))
        #expect(profile.startChecks.spo2Minimum == .percent(92))
        #expect(library.sha256 == LibraryChecksum.compute(text: Fixtures.defaultLibraryText))
    }

    @Test("SHA-256 matches the FIPS 180-4 / NIST example vectors")
    func sha256Vectors() {
        #expect(LibraryChecksum.sha256Hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(LibraryChecksum.sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let twoBlocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        #expect(LibraryChecksum.sha256Hex(Array(twoBlocks.utf8)) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(LibraryChecksum.sha256Hex([UInt8](repeating: 0x61, count: 1_000_000))
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("sealing is idempotent and the checksum ignores only the sha256 line")
    func sealing() throws {
        let once = LibraryChecksum.seal(text: Fixtures.defaultLibraryText)
        #expect(once == Fixtures.defaultLibraryText)
        #expect(LibraryChecksum.seal(text: once) == once)
        let edited = Fixtures.defaultLibraryText.replacingOccurrences(of: "version = \"2026.11.0\"", with: "version = \"2026.11.1\"")
        #expect(LibraryChecksum.compute(text: edited) != LibraryChecksum.compute(text: once))
        // A library without any sha256 line gets one under [library].
        let stripped = once.components(separatedBy: "\n").filter { !$0.hasPrefix("sha256") }.joined(separator: "\n")
        let resealed = LibraryChecksum.seal(text: stripped)
        #expect(try DrugLibrary.load(text: resealed, source: "x").sha256 == LibraryChecksum.compute(text: once))
    }

    @Test("checksum mismatch names the line, both hashes and the fix")
    func checksumMismatch() throws {
        let text = Fixtures.variant(replacing: "dose_rate_hard_max = \"1.0 mg/kg/h\"", with: "dose_rate_hard_max = \"10 mg/kg/h\"", seal: false)
        let issues = Fixtures.issues(text)
        let issue = try #require(issues.first { $0.key == "library.sha256" })
        #expect(issue.problem.contains("checksum mismatch"))
        #expect(issue.problem.contains(LibraryChecksum.compute(text: text)))
        #expect(issue.line == Fixtures.line(of: "sha256 =", in: text))
        #expect(issue.fix.contains("infusionctl library seal"))
        #expect(issue.description.hasPrefix("test.toml:"))
    }

    @Test("a missing or repeated checksum is refused")
    func missingChecksum() {
        let lines = Fixtures.defaultLibraryText.components(separatedBy: "\n")
        let without = lines.filter { !$0.hasPrefix("sha256") }.joined(separator: "\n")
        #expect(Fixtures.issues(without).contains { $0.key == "library.sha256" && $0.problem.contains("no sha256") })
        let sealedLine = lines.first { $0.hasPrefix("sha256") } ?? ""
        // A second sha256 line elsewhere (the same key twice in [library] is already a TOML error).
        let twice = Fixtures.defaultLibraryText.replacingOccurrences(of: "[profile.alarms]", with: "[profile.alarms]\n" + sealedLine)
        #expect(Fixtures.issues(twice).contains { $0.problem.contains("more than one sha256") })
        #expect(Fixtures.issues(twice).contains { $0.key == "profile[0].alarms.sha256" && $0.problem.contains("unknown key") })
    }

    @Test("TOML syntax errors name the line")
    func syntaxError() throws {
        let text = Fixtures.variant(replacing: "name = \"Ketamine\"", with: "name = Ketamine")
        let issue = try #require(Fixtures.issues(text).first)
        #expect(issue.problem.contains("not valid TOML"))
        #expect(issue.line == Fixtures.line(of: "name = Ketamine", in: text))
    }

    @Test("unknown keys are refused at every level, with a suggestion", arguments: [
        ("format = 1", "format = 1\ncolour = \"blue\"", "colour"),
        ("version = \"2026.11.0\"", "version = \"2026.11.0\"\nauthor = \"x\"", "library.author"),
        ("care_area = \"Outpatient infusion suite\"", "care_area = \"Outpatient infusion suite\"\ncareArea = \"x\"", "profile[0].careArea"),
        ("spo2_pause_hold = \"15 s\"", "spo2_pause_hold = \"15 s\"\nspo2_pause_hld = \"15 s\"", "profile[0].monitoring.spo2_pause_hld"),
        ("dose_rate_hard_max = \"1.0 mg/kg/h\"", "dose_rate_hard_max = \"1.0 mg/kg/h\"\ndose_rate_hard_maximum = \"1 mg/kg/h\"", "profile[0].drug[0].dose_rate_hard_maximum"),
    ])
    func unknownKeys(old: String, new: String, key: String) throws {
        let text = Fixtures.variant(replacing: old, with: new)
        let issue = try #require(Fixtures.issues(text).first { $0.problem.contains("unknown key") })
        #expect(issue.key == key)
        #expect(issue.line == Fixtures.line(of: key.split(separator: ".").last.map { String($0) + " =" } ?? key, in: text))
        if key.hasSuffix("spo2_pause_hld") { #expect(issue.fix.contains("did you mean \"spo2_pause_hold\"")) }
    }

    @Test("wrong types are refused with the expected form")
    func wrongTypes() throws {
        var issue = try #require(Fixtures.issues(Fixtures.variant(replacing: "weight_min = \"30 kg\"", with: "weight_min = 30")).first)
        #expect(issue.key == "profile[0].drug[0].weight_min")
        #expect(issue.problem.contains("bare integer"))
        #expect(issue.fix.contains("\"30 kg\""))
        issue = try #require(Fixtures.issues(Fixtures.variant(replacing: "name = \"Ketamine\"", with: "name = 3")).first)
        #expect(issue.key == "profile[0].drug[0].name" && issue.problem.contains("must be a string"))
        issue = try #require(Fixtures.issues(Fixtures.variant(replacing: "concentrations = [\"1 mg/mL\", \"2 mg/mL\"]", with: "concentrations = \"1 mg/mL\"")).first)
        #expect(issue.key == "profile[0].drug[0].concentrations")
        issue = try #require(Fixtures.issues(Fixtures.variant(replacing: "format = 1", with: "format = 2")).first)
        #expect(issue.key == "format" && issue.problem.contains("unsupported format"))
    }

    @Test("units of the wrong dimension or unknown units are refused")
    func wrongUnits() throws {
        var issue = try #require(Fixtures.issues(Fixtures.variant(replacing: "dose_rate_hard_max = \"1.0 mg/kg/h\"", with: "dose_rate_hard_max = \"100 mg/h\"")).first)
        #expect(issue.key == "profile[0].drug[0].dose_rate_hard_max" && issue.problem.contains("unknown unit"))
        issue = try #require(Fixtures.issues(Fixtures.variant(replacing: "dose_unit = \"mg/kg/h\"", with: "dose_unit = \"mL/h\"")).first)
        #expect(issue.key == "profile[0].drug[0].dose_unit" && issue.problem.contains("unsupported dosing unit"))
        issue = try #require(Fixtures.issues(Fixtures.variant(replacing: "spo2_pause_hold = \"15 s\"", with: "spo2_pause_hold = \"15\"")).first)
        #expect(issue.problem.contains("no unit"))
    }

    @Test("zero and negative limits are refused", arguments: [
        "dose_rate_hard_max = \"0 mg/kg/h\"", "dose_rate_hard_max = \"-1 mg/kg/h\"", "absolute_rate_cap = \"0 mg/h\"",
        "stop_confirmation_deadline = \"0 s\"",
    ])
    func nonPositive(line: String) throws {
        let key = String(line.split(separator: " ").first ?? "")
        let old: String = switch key {
        case "absolute_rate_cap": "absolute_rate_cap = \"100 mg/h\""
        case "stop_confirmation_deadline": "stop_confirmation_deadline = \"2 s\""
        default: "dose_rate_hard_max = \"1.0 mg/kg/h\""
        }
        let issues = Fixtures.issues(Fixtures.variant(replacing: old, with: line))
        #expect(issues.contains { $0.key?.hasSuffix(key) == true && ($0.problem.contains("greater than zero") || $0.problem.contains("negative")) })
    }

    @Test("soft limits beyond hard limits are refused", arguments: [
        ("dose_rate_soft_max = \"0.5 mg/kg/h\"", "dose_rate_soft_max = \"1.5 mg/kg/h\"", "dose_rate_soft_max is above dose_rate_hard_max"),
        ("dose_rate_soft_min = \"0.1 mg/kg/h\"", "dose_rate_soft_min = \"0.6 mg/kg/h\"", "dose_rate_soft_min is above dose_rate_soft_max"),
        ("loading_dose_soft_max = \"0.35 mg/kg\"", "loading_dose_soft_max = \"0.6 mg/kg\"", "loading_dose_soft_max is above loading_dose_hard_max"),
        ("cumulative_dose_soft_max = \"2 mg/kg\"", "cumulative_dose_soft_max = \"5 mg/kg\"", "cumulative_dose_soft_max is above cumulative_dose_hard_max"),
        ("duration_soft_max = \"4 h\"", "duration_soft_max = \"7 h\"", "duration_soft_max is above duration_hard_max"),
        ("weight_min = \"30 kg\"", "weight_min = \"300 kg\"", "weight_min is above weight_max"),
        ("spo2_immediate_pause_below = \"85 %\"", "spo2_immediate_pause_below = \"95 %\"", "spo2_immediate_pause_below is above spo2_pause_below"),
        ("monitoring_loss_alarm_after = \"30 s\"", "monitoring_loss_alarm_after = \"90 s\"", "monitoring_loss_alarm_after is above monitoring_loss_pause_after"),
    ])
    func softBeyondHard(old: String, new: String, problem: String) throws {
        let text = Fixtures.variant(replacing: old, with: new)
        let issue = try #require(Fixtures.issues(text).first { $0.problem == problem })
        #expect(issue.line == Fixtures.line(of: new, in: text))
        #expect(issue.fix.contains("≤"))
    }

    /// One ordering the loader enforces besides the eight pairs above: a variant of the shipped library
    /// that breaks it, and one exactly at its boundary (equal values), which must load.
    struct Ordering: Sendable, CustomTestStringConvertible {
        var testDescription: String
        /// Replacements that put `key` above the next value in its chain.
        var broken: [(String, String)]
        /// The key the issue must name, in full.
        var key: String
        /// Text on the line the issue must point to (the line of `key`).
        var line: String
        var problem: String
        /// The chain the fix must state, e.g. "pulse_min ≤ pulse_max".
        var rule: String
        /// Why, as the fix explains it.
        var reason: String
        /// Replacements that make the two values equal.
        var boundary: [(String, String)]
        /// The boundary values as loaded.
        var loaded: @Sendable (CareAreaProfile) -> Bool
    }

    static let orderings: [Ordering] = [
        Ordering(
            testDescription: "loading_min_duration_hard ≤ loading_min_duration_soft",
            broken: [("loading_min_duration_hard = \"1 min\"", "loading_min_duration_hard = \"11 min\"")],
            key: "profile[0].drug[0].loading_min_duration_hard", line: "loading_min_duration_hard =",
            problem: "loading_min_duration_hard is above loading_min_duration_soft",
            rule: "loading_min_duration_hard ≤ loading_min_duration_soft", reason: "a soft limit never lies beyond its hard limit",
            boundary: [("loading_min_duration_hard = \"1 min\"", "loading_min_duration_hard = \"10 min\"")],
            loaded: { $0.drugs.first?.loadingDuration.hardMinimum == .seconds(600) && $0.drugs.first?.loadingDuration.softMinimum == .seconds(600) }),
        Ordering(
            testDescription: "dose_rate_hard_min ≤ dose_rate_soft_min",
            broken: [("dose_rate_soft_min = \"0.1 mg/kg/h\"", "dose_rate_hard_min = \"0.2 mg/kg/h\"\ndose_rate_soft_min = \"0.1 mg/kg/h\"")],
            key: "profile[0].drug[0].dose_rate_hard_min", line: "dose_rate_hard_min =",
            problem: "dose_rate_hard_min is above dose_rate_soft_min",
            rule: "dose_rate_hard_min ≤ dose_rate_soft_min ≤ dose_rate_soft_max ≤ dose_rate_hard_max",
            reason: "a soft limit never lies beyond its hard limit",
            boundary: [("dose_rate_soft_min = \"0.1 mg/kg/h\"", "dose_rate_hard_min = \"0.1 mg/kg/h\"\ndose_rate_soft_min = \"0.1 mg/kg/h\"")],
            loaded: {
                $0.drugs.first?.doseRate.hardMinimum == .milligramsPerKilogramPerHour(0.1)
                    && $0.drugs.first?.doseRate.softMinimum == .milligramsPerKilogramPerHour(0.1)
            }),
        Ordering(
            testDescription: "dose_rate_hard_min ≤ dose_rate_soft_max when there is no soft minimum",
            broken: [("dose_rate_soft_min = \"0.1 mg/kg/h\"", "dose_rate_hard_min = \"0.6 mg/kg/h\"")],
            key: "profile[0].drug[0].dose_rate_hard_min", line: "dose_rate_hard_min =",
            problem: "dose_rate_hard_min is above dose_rate_soft_max",
            rule: "dose_rate_hard_min ≤ dose_rate_soft_min ≤ dose_rate_soft_max ≤ dose_rate_hard_max",
            reason: "a soft limit never lies beyond its hard limit",
            boundary: [("dose_rate_soft_min = \"0.1 mg/kg/h\"", "dose_rate_hard_min = \"0.5 mg/kg/h\"")],
            loaded: {
                $0.drugs.first?.doseRate.hardMinimum == .milligramsPerKilogramPerHour(0.5) && $0.drugs.first?.doseRate.softMinimum == nil
            }),
        Ordering(
            testDescription: "start checks: pulse_min ≤ pulse_max",
            broken: [("pulse_min = \"50 bpm\"", "pulse_min = \"130 bpm\"")],
            key: "profile[0].start_checks.pulse_min", line: "pulse_min =",
            problem: "pulse_min is above pulse_max", rule: "pulse_min ≤ pulse_max",
            reason: "otherwise no pulse rate passes the start check",
            boundary: [("pulse_min = \"50 bpm\"", "pulse_min = \"120 bpm\"")],
            loaded: { $0.startChecks.pulseMinimum == .beatsPerMinute(120) && $0.startChecks.pulseMaximum == .beatsPerMinute(120) }),
        Ordering(
            testDescription: "spo2_pause_below ≤ spo2_warning_at_or_below",
            broken: [("spo2_warning_at_or_below = \"90 %\"", "spo2_warning_at_or_below = \"89 %\"")],
            key: "profile[0].monitoring.spo2_pause_below", line: "spo2_pause_below =",
            problem: "spo2_pause_below is above spo2_warning_at_or_below", rule: "spo2_pause_below ≤ spo2_warning_at_or_below",
            reason: "as SpO2 falls the warning comes first, then the pause",
            boundary: [("spo2_pause_below = \"90 %\"", "spo2_pause_below = \"92 %\""),
                       ("spo2_warning_at_or_below = \"90 %\"", "spo2_warning_at_or_below = \"92 %\"")],
            loaded: { $0.monitoring.spo2PauseBelow == .percent(92) && $0.monitoring.spo2WarningAtOrBelow == .percent(92) }),
        Ordering(
            testDescription: "pulse chain: pulse_warning_above ≤ pulse_pause_above",
            broken: [("pulse_warning_above = \"120 bpm\"", "pulse_warning_above = \"140 bpm\"")],
            key: "profile[0].monitoring.pulse_warning_above", line: "pulse_warning_above =",
            problem: "pulse_warning_above is above pulse_pause_above",
            rule: "pulse_pause_below ≤ pulse_warning_above ≤ pulse_pause_above",
            reason: "a rising pulse warns before it pauses, and the low pause limit lies below both",
            boundary: [("pulse_warning_above = \"120 bpm\"", "pulse_warning_above = \"130 bpm\"")],
            loaded: { $0.monitoring.pulseWarningAbove == .beatsPerMinute(130) && $0.monitoring.pulsePauseAbove == .beatsPerMinute(130) }),
        Ordering(
            testDescription: "pulse chain: pulse_pause_below ≤ pulse_warning_above",
            broken: [("pulse_pause_below = \"45 bpm\"", "pulse_pause_below = \"125 bpm\"")],
            key: "profile[0].monitoring.pulse_pause_below", line: "pulse_pause_below =",
            problem: "pulse_pause_below is above pulse_warning_above",
            rule: "pulse_pause_below ≤ pulse_warning_above ≤ pulse_pause_above",
            reason: "a rising pulse warns before it pauses, and the low pause limit lies below both",
            boundary: [("pulse_pause_below = \"45 bpm\"", "pulse_pause_below = \"120 bpm\"")],
            loaded: { $0.monitoring.pulsePauseBelow == .beatsPerMinute(120) && $0.monitoring.pulseWarningAbove == .beatsPerMinute(120) }),
        Ordering(
            testDescription: "invalid_signal_alarm_after ≤ monitoring_loss_pause_after",
            broken: [("invalid_signal_alarm_after = \"0 s\"", "invalid_signal_alarm_after = \"61 s\"")],
            key: "profile[0].monitoring.invalid_signal_alarm_after", line: "invalid_signal_alarm_after =",
            problem: "invalid_signal_alarm_after is above monitoring_loss_pause_after",
            rule: "invalid_signal_alarm_after ≤ monitoring_loss_pause_after",
            reason: "an invalid signal alarms before monitoring loss pauses delivery",
            boundary: [("invalid_signal_alarm_after = \"0 s\"", "invalid_signal_alarm_after = \"60 s\"")],
            loaded: { $0.monitoring.invalidSignalAlarmAfter == .seconds(60) && $0.monitoring.monitoringLossPauseAfter == .seconds(60) }),
    ]

    @Test("an ordering violated is refused with the key, its line and the fix", arguments: orderings)
    func orderingViolated(_ ordering: Ordering) throws {
        let text = Fixtures.variant(replacing: ordering.broken)
        let issues = Fixtures.issues(text)
        #expect(issues.count == 1, "exactly this one problem: \(issues)")
        let issue = try #require(issues.first { $0.problem == ordering.problem }, "\(issues)")
        #expect(issue.key == ordering.key)
        let line = try #require(Fixtures.line(of: ordering.line, in: text))
        #expect(issue.line == line)
        #expect(issue.fix.contains(ordering.rule), "\(issue.fix)")
        #expect(issue.fix.contains(ordering.reason), "\(issue.fix)")
        #expect(issue.description.hasPrefix("test.toml:\(line): \(ordering.key): \(ordering.problem). Fix: "), "\(issue.description)")
    }

    @Test("an ordering met with equal values loads", arguments: orderings)
    func orderingBoundary(_ ordering: Ordering) throws {
        let library = try DrugLibrary.load(text: Fixtures.variant(replacing: ordering.boundary), source: "test.toml")
        let profile = try #require(library.profiles.first)
        #expect(ordering.loaded(profile))
    }

    @Test("clinically meaningless settings are refused")
    func ranges() {
        #expect(Fixtures.issues(Fixtures.variant(replacing: "spo2_pause_hold = \"15 s\"", with: "spo2_pause_hold = \"45 s\"")).contains { $0.problem.contains("10 to 30 s") })
        #expect(Fixtures.issues(Fixtures.variant(replacing: "spo2_min = \"92 %\"", with: "spo2_min = \"120 %\"")).contains { $0.problem.contains("above 100 %") })
        #expect(Fixtures.issues(Fixtures.variant(replacing: "audio_pause_max = \"120 s\"", with: "audio_pause_max = \"10 min\"")).contains { $0.key == "profile[0].alarms.audio_pause_max" })
        #expect(Fixtures.issues(Fixtures.variant(replacing: "end_of_infusion = \"stop\"", with: "end_of_infusion = \"kvo\"")).contains { $0.key == "profile[0].drug[0].end_of_infusion" })
    }

    @Test("duplicate profiles, drugs and concentrations are refused")
    func duplicates() throws {
        let drugStart = try #require(Fixtures.defaultLibraryText.range(of: "[[profile.drug]]"))
        let drugBlock = String(Fixtures.defaultLibraryText[drugStart.lowerBound...])
        let twoDrugs = LibraryChecksum.seal(text: Fixtures.defaultLibraryText + "\n" + drugBlock)
        let drugIssue = try #require(Fixtures.issues(twoDrugs).first { $0.problem.contains("duplicate drug") })
        #expect(drugIssue.key == "profile[0].drug[1].name")
        let lastNameLine = twoDrugs.components(separatedBy: "\n").lastIndex { $0.hasPrefix("name = \"Ketamine\"") }.map { $0 + 1 }
        #expect(drugIssue.line == lastNameLine)

        let profileStart = try #require(Fixtures.defaultLibraryText.range(of: "[[profile]]"))
        let profileBlock = String(Fixtures.defaultLibraryText[profileStart.lowerBound...])
        let twoProfiles = LibraryChecksum.seal(text: Fixtures.defaultLibraryText + "\n" + profileBlock)
        #expect(Fixtures.issues(twoProfiles).contains { $0.problem.contains("duplicate profile") && $0.key == "profile[1].id" })

        let twice = Fixtures.variant(replacing: "concentrations = [\"1 mg/mL\", \"2 mg/mL\"]", with: "concentrations = [\"1 mg/mL\", \"1 mg/mL\"]")
        #expect(Fixtures.issues(twice).contains { $0.problem.contains("listed twice") })
        let duplicateKey = Fixtures.variant(replacing: "weight_min = \"30 kg\"", with: "weight_min = \"30 kg\"\nweight_min = \"31 kg\"")
        #expect(Fixtures.issues(duplicateKey).contains { $0.problem.contains("not valid TOML") })
    }

    @Test("missing required keys and tables are named with how to add them")
    func missingKeys() throws {
        let withoutHardMax = Fixtures.defaultLibraryText.components(separatedBy: "\n").filter { !$0.hasPrefix("dose_rate_hard_max") }.joined(separator: "\n")
        var issue = try #require(Fixtures.issues(LibraryChecksum.seal(text: withoutHardMax)).first)
        #expect(issue.key == "profile[0].drug[0].dose_rate_hard_max" && issue.problem.contains("missing required key"))
        #expect(issue.fix.contains("mg/kg/h"))
        issue = try #require(Fixtures.issues(Fixtures.variant(replacing: "[profile.alarms]\naudio_pause_max = \"120 s\"\nescalate_medium_after = \"120 s\"\n", with: "")).first)
        #expect(issue.key == "profile[0].alarms" && issue.problem.contains("missing table"))
    }

    @Test("every problem in a file is reported at once")
    func collectsAll() {
        var text = Fixtures.defaultLibraryText
        text = text.replacingOccurrences(of: "weight_min = \"30 kg\"", with: "weight_min = 30")
        text = text.replacingOccurrences(of: "pulse_min = \"50 bpm\"", with: "pulse_min = \"50 kg\"")
        text = text.replacingOccurrences(of: "format = 1", with: "format = 1\nextra = true")
        let issues = Fixtures.issues(LibraryChecksum.seal(text: text))
        #expect(issues.count == 3)
        #expect(issues.map(\.line) == issues.map(\.line).sorted { ($0 ?? 0) < ($1 ?? 0) })
    }
}
