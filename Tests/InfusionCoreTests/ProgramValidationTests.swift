import Foundation
import Testing
@testable import InfusionCore

/// Builds requests against the shipped library with the acceptance-test baseline:
/// 80 kg, 0.35 mg/kg/h of 1 mg/mL ketamine for 40 min.
struct Scenario {
    var profile: String? = "ketamine-chronic-pain"
    var drug = "Ketamine"
    var concentration: Concentration? = .milligramsPerMillilitre(1)
    var weight: BodyWeight? = .kilograms(80)
    var dose: DoseEntry = .weightBased(.milligramsPerKilogramPerHour(0.35), .milligramsPerKilogramPerHour)
    var duration: Duration = .seconds(40 * 60)
    var loading: LoadingEntry?
    var pump: PumpCapabilities?

    func validate(_ library: DrugLibrary? = nil) throws -> ValidationResult {
        let library = try library ?? Fixtures.defaultLibrary()
        return ProgramValidator.validate(
            ProgramRequest(profile: profile, drug: drug, concentration: concentration, weight: weight, dose: dose,
                           duration: duration, loading: loading, pump: pump),
            library: library)
    }

    static func rate(_ mgPerKgPerHour: Double) -> DoseEntry {
        .weightBased(.milligramsPerKilogramPerHour(mgPerKgPerHour), .milligramsPerKilogramPerHour)
    }
}

extension ValidationResult {
    func has(_ rule: ProgramRule, _ severity: FindingSeverity) -> Bool {
        findings.contains { $0.rule == rule && $0.severity == severity }
    }
}

@Suite("Program validation: the acceptance examples")
struct ProgramAcceptanceTests {
    @Test("80 kg at 0.35 mg/kg/h of 1 mg/mL ketamine validates to 28 mL/h")
    func baseline() throws {
        let result = try Scenario().validate()
        #expect(result.status == .accepted)
        #expect(result.findings.isEmpty)
        let program = try #require(result.acceptedProgram)
        #expect(program.calculation.pumpRate.actual == .millilitresPerHour(28))
        #expect(!program.calculation.pumpRate.wasRounded)
        #expect(abs(program.calculation.vtbi.millilitres - 56.0 / 3.0) < 1e-9)
        #expect(abs(program.calculation.projectedCumulativeDose.milligramsPerKilogram - 0.35 * 40 / 60) < 1e-12)
        #expect(program.maximumPumpRate == .millilitresPerHour(28))
        #expect(program.cumulativeHardLimitVolume == .millilitres(320))  // 4 mg/kg × 80 kg ÷ 1 mg/mL
        #expect(program.librarySHA256 == LibraryChecksum.compute(text: Fixtures.defaultLibraryText))
    }

    @Test("over the soft maximum needs confirmation")
    func overSoft() throws {
        var s = Scenario(); s.dose = Scenario.rate(0.6)
        let result = try s.validate()
        #expect(result.status == .needsConfirmation)
        #expect(result.has(.softMaximum, .soft))
        #expect(result.acceptedProgram == nil)
    }

    @Test("over the hard maximum, over the absolute cap, at 50 or 100 mg/mL, or without a weight is rejected")
    func rejections() throws {
        var s = Scenario(); s.dose = Scenario.rate(1.2)
        #expect(try s.validate().status == .rejected)
        s = Scenario(); s.weight = .kilograms(150); s.dose = Scenario.rate(0.9); s.concentration = .milligramsPerMillilitre(2)
        let capped = try s.validate()
        #expect(capped.status == .rejected && capped.has(.hardMaximum, .hard))
        for c in [50.0, 100.0] {
            s = Scenario(); s.concentration = .milligramsPerMillilitre(c)
            let r = try s.validate()
            #expect(r.status == .rejected && r.has(.drugAndConcentration, .hard))
        }
        s = Scenario(); s.weight = nil
        let noWeight = try s.validate()
        #expect(noWeight.status == .rejected && noWeight.has(.weight, .hard))
    }
}

@Suite("Program validation: each rule on both sides of its limit")
struct ProgramRuleTests {
    @Test("R-DL-09: a care area must be selected and exist")
    func careArea() throws {
        var s = Scenario(); s.profile = nil
        #expect(try s.validate().has(.careArea, .hard))
        s.profile = "intensive-care"
        #expect(try s.validate().has(.careArea, .hard))
        s.profile = "Ketamine, chronic pain (outpatient infusion suite)"
        #expect(try s.validate().status == .accepted)
    }

    @Test("R-DL-01: drug and concentration must be in the library", arguments: [1.0, 2.0, 0.5, 1.5, 5, 10, 50, 100])
    func concentration(mgPerML: Double) throws {
        var s = Scenario(); s.concentration = .milligramsPerMillilitre(mgPerML)
        let r = try s.validate()
        if mgPerML == 1 || mgPerML == 2 { #expect(r.status == .accepted) }
        else { #expect(r.status == .rejected && r.has(.drugAndConcentration, .hard)) }
    }

    @Test("R-DL-01: an unknown drug or no concentration is rejected")
    func unknownDrug() throws {
        var s = Scenario(); s.drug = "Esketamine"
        #expect(try s.validate().has(.drugAndConcentration, .hard))
        s = Scenario(); s.concentration = nil
        #expect(try s.validate().has(.drugAndConcentration, .hard))
        s = Scenario(); s.drug = "KETAMINE"
        #expect(try s.validate().status == .accepted)
    }

    @Test("R-DL-02: weight is required and within 30–200 kg", arguments: [(29.9, false), (30, true), (200, true), (200.1, false)])
    func weight(kg: Double, ok: Bool) throws {
        var s = Scenario(); s.weight = .kilograms(kg); s.dose = Scenario.rate(0.2)
        let r = try s.validate()
        #expect(r.has(.weight, .hard) == !ok)
    }

    @Test("R-DL-03 and R-DL-12: the dose must be in the library's unit, never a bare mL/h")
    func units() throws {
        var s = Scenario(); s.dose = .weightBased(WeightBasedDoseRate(5, .microgramsPerKilogramPerMinute), .microgramsPerKilogramPerMinute)
        #expect(try s.validate().has(.doseUnits, .hard))
        s.dose = .absolute(.milligramsPerHour(28), .milligramsPerHour)
        #expect(try s.validate().has(.doseUnits, .hard))
        s.dose = .volumeRate(.millilitresPerHour(28), .millilitresPerHour)
        #expect(try s.validate().has(.outsideLibrary, .hard))
        s = Scenario(); s.loading = LoadingEntry(dose: WeightBasedDose(200, .microgramsPerKilogram), unit: .microgramsPerKilogram, over: .seconds(600))
        #expect(try s.validate().has(.doseUnits, .hard))
    }

    @Test("R-DL-04: hard maximum 1.0 mg/kg/h", arguments: [(1.0, false), (1.001, true)])
    func hardMaximum(rate: Double, rejected: Bool) throws {
        var s = Scenario(); s.dose = Scenario.rate(rate)
        let r = try s.validate()
        #expect(r.has(.hardMaximum, .hard) == rejected)
        #expect((r.status == .rejected) == rejected)
    }

    @Test("R-DL-04: absolute cap 100 mg/h regardless of weight", arguments: [(125.0, false), (125.1, true)])
    func absoluteCap(kg: Double, rejected: Bool) throws {
        var s = Scenario(); s.weight = .kilograms(kg); s.dose = Scenario.rate(0.8)  // 125 kg × 0.8 = 100 mg/h
        #expect(try s.validate().has(.hardMaximum, .hard) == rejected)
    }

    @Test("R-DL-05: soft maximum 0.5 mg/kg/h", arguments: [(0.5, false), (0.501, true)])
    func softMaximum(rate: Double, soft: Bool) throws {
        var s = Scenario(); s.dose = Scenario.rate(rate)
        let r = try s.validate()
        #expect(r.has(.softMaximum, .soft) == soft)
        #expect(r.status == (soft ? .needsConfirmation : .accepted))
    }

    @Test("R-DL-06: soft minimum 0.1 mg/kg/h; zero is rejected", arguments: [(0.1, 0), (0.099, 1), (0, 2)])
    func minimum(rate: Double, outcome: Int) throws {
        var s = Scenario(); s.dose = Scenario.rate(rate)
        let r = try s.validate()
        switch outcome {
        case 0: #expect(r.status == .accepted)
        case 1: #expect(r.status == .needsConfirmation && r.has(.minimum, .soft))
        default: #expect(r.status == .rejected && r.has(.minimum, .hard))
        }
    }

    @Test("R-DL-06: a hard minimum, when the library has one", arguments: [(0.05, false), (0.049, true)])
    func hardMinimum(rate: Double, rejected: Bool) throws {
        let text = Fixtures.variant(replacing: "dose_rate_soft_min = \"0.1 mg/kg/h\"", with: "dose_rate_hard_min = \"0.05 mg/kg/h\"\ndose_rate_soft_min = \"0.1 mg/kg/h\"")
        let library = try DrugLibrary.load(text: text, source: "variant")
        var s = Scenario(); s.dose = Scenario.rate(rate)
        let r = try s.validate(library)
        #expect(r.has(.minimum, .hard) == rejected)
        #expect(r.has(.minimum, .soft) == !rejected)
    }

    @Test("R-DL-07: loading dose soft 0.35 / hard 0.5 mg/kg", arguments: [(0.35, 0), (0.351, 1), (0.5, 1), (0.501, 2)])
    func loadingDose(dose: Double, outcome: Int) throws {
        var s = Scenario(); s.loading = LoadingEntry(dose: .milligramsPerKilogram(dose), over: .seconds(15 * 60))
        let r = try s.validate()
        #expect(r.has(.loadingDose, .soft) == (outcome == 1))
        #expect(r.has(.loadingDose, .hard) == (outcome == 2))
    }

    @Test("R-DL-07: loading duration hard 60 s / soft 10 min", arguments: [(600.0, 0), (599.0, 1), (60.0, 1), (59.0, 2)])
    func loadingDuration(seconds: Double, outcome: Int) throws {
        var s = Scenario(); s.loading = LoadingEntry(dose: .milligramsPerKilogram(0.2), over: .seconds(seconds))
        let r = try s.validate()
        #expect(r.has(.loadingDose, .soft) == (outcome == 1))
        #expect(r.has(.loadingDose, .hard) == (outcome == 2))
    }

    @Test("R-DL-07: the loading phase is computed and rounded down")
    func loadingPhase() throws {
        var s = Scenario(); s.loading = LoadingEntry(dose: .milligramsPerKilogram(0.3), over: .seconds(10 * 60))
        s.pump = PumpCapabilities(rateResolution: .millilitresPerHour(0.1))
        let program = try #require(try s.validate().acceptedProgram)
        let loading = try #require(program.calculation.loading)
        #expect(loading.pumpRate.requested == .millilitresPerHour(144))  // 24 mg over 10 min
        #expect(loading.volume == .millilitres(24))
        #expect(program.maximumPumpRate == .millilitresPerHour(144))
        #expect(abs(program.calculation.projectedCumulativeDose.milligramsPerKilogram - (0.3 + 0.35 * 40 / 60)) < 1e-12)
    }

    @Test("R-DL-08: projected cumulative dose soft 2 / hard 4 mg/kg")
    func cumulative() throws {
        var s = Scenario(); s.dose = Scenario.rate(0.5); s.duration = .seconds(4 * 3600)  // exactly 2 mg/kg
        #expect(try s.validate().status == .accepted)
        s.loading = LoadingEntry(dose: .milligramsPerKilogram(0.01), over: .seconds(600))  // 2.01 mg/kg, 4 h 10 min
        let soft = try s.validate()
        #expect(soft.has(.cumulativeDose, .soft) && !soft.has(.cumulativeDose, .hard))
        s = Scenario(); s.dose = Scenario.rate(0.8); s.duration = .seconds(5 * 3600)  // exactly 4 mg/kg
        #expect(!(try s.validate().has(.cumulativeDose, .hard)))
        s.loading = LoadingEntry(dose: .milligramsPerKilogram(0.01), over: .seconds(600))  // 4.01 mg/kg
        #expect(try s.validate().has(.cumulativeDose, .hard))
    }

    static let durationCases: [(Double, Int)] = [(14_400, 0), (14_401, 1), (21_600, 1), (21_601, 2), (0, 2)]

    @Test("session duration soft 4 h / hard 6 h, including the loading phase", arguments: durationCases)
    func sessionDuration(seconds: Double, outcome: Int) throws {
        var s = Scenario(); s.dose = Scenario.rate(0.2); s.duration = .seconds(seconds)
        let r = try s.validate()
        #expect(r.findings.contains { $0.severity == .soft && $0.message.contains("duration") } == (outcome == 1))
        #expect(r.findings.contains { $0.severity == .hard && $0.message.contains("duration") } == (outcome == 2))
        s.duration = .seconds(4 * 3600 - 60); s.loading = LoadingEntry(dose: .milligramsPerKilogram(0.1), over: .seconds(120))
        #expect(try s.validate().findings.contains { $0.message.contains("session duration") })
    }

    @Test("the pump's resolution rounds the rate down, and its maximum is a hard limit")
    func pumpLimits() throws {
        var s = Scenario(); s.weight = .kilograms(81.3); s.pump = PumpCapabilities(rateResolution: .millilitresPerHour(0.1), maximumRate: .millilitresPerHour(150))
        let program = try #require(try s.validate().acceptedProgram)
        #expect(program.calculation.pumpRate.requested == .millilitresPerHour(28.455))
        #expect(program.calculation.pumpRate.actual == .millilitresPerHour(28.4))
        #expect(program.calculation.deliveredDoseRate < .milligramsPerKilogramPerHour(0.35))
        s.pump = PumpCapabilities(maximumRate: .millilitresPerHour(20))
        #expect(try s.validate().has(.hardMaximum, .hard))
        s.pump = PumpCapabilities(rateResolution: .millilitresPerHour(100))
        #expect(try s.validate().has(.minimum, .hard))  // rounds to zero
    }
}

@Suite("Program validation: confirmation")
struct ConfirmationTests {
    @Test("a soft finding is accepted only with a reason, which is kept")
    func confirmSoft() throws {
        var s = Scenario(); s.dose = Scenario.rate(0.6)
        let result = try s.validate()
        #expect(throws: ConfirmationError.missingReason) { try result.confirm(SoftLimitConfirmation(reason: "  ")) }
        let program = try result.confirm(SoftLimitConfirmation(reason: "CRPS flare, per Dr. Smith", confirmedBy: "rn-042"))
        #expect(program.confirmation?.reason == "CRPS flare, per Dr. Smith")
        #expect(program.confirmation?.confirmedBy == "rn-042")
        #expect(program.overriddenFindings.map(\.rule) == [.softMaximum])
        #expect(program.calculation.pumpRate.actual == .millilitresPerHour(48))
    }

    @Test("no API accepts a program past a hard limit")
    func hardCannotBeConfirmed() throws {
        var s = Scenario(); s.dose = Scenario.rate(1.2)
        let result = try s.validate()
        #expect(result.acceptedProgram == nil)
        #expect(throws: ConfirmationError.self) { try result.confirm(SoftLimitConfirmation(reason: "I insist")) }
        // Hard and soft together: still rejected.
        s = Scenario(); s.dose = Scenario.rate(0.6); s.weight = nil
        #expect(throws: ConfirmationError.self) { try s.validate().confirm(SoftLimitConfirmation(reason: "x")) }
    }

    @Test("an accepted program has nothing to confirm")
    func nothingToConfirm() throws {
        #expect(throws: ConfirmationError.nothingToConfirm) { try Scenario().validate().confirm(SoftLimitConfirmation(reason: "x")) }
    }
}
