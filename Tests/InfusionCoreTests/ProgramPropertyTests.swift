import Foundation
import PropertyBased
import Testing
@testable import InfusionCore

@Suite("Program validation: properties")
struct ProgramPropertyTests {
    static let concentrations: [Double] = [0.5, 1, 2, 5, 10, 50, 100]
    static let resolutions: [Double?] = [nil, 0.001, 0.01, 0.1, 1]

    /// For random inputs (decimal values as a person would type them), no program that validation lets
    /// through (accepted, or confirmed past soft findings) exceeds a hard limit, and rounding never adds drug.
    @Test("no accepted program exceeds a hard limit, and rounding never adds drug")
    func noAcceptedProgramExceedsAHardLimit() async throws {
        let library = try Fixtures.defaultLibrary()
        let drug = try #require(library.profile(named: "ketamine-chronic-pain")?.drug(named: "Ketamine"))
        await propertyCheck(
            count: 3000,
            input: Gen.int(in: 0...2500),          // weight in 0.1 kg
            Gen.int(in: 0...1500),                 // dose in 0.001 mg/kg/h
            Gen.int(in: 0...(Self.concentrations.count - 1)),
            Gen.int(in: 0...480),                  // duration in minutes
            Gen.int(in: -1...70),                  // loading in 0.01 mg/kg; -1 = none
            Gen.int(in: 0...1200),                 // loading duration in seconds
            Gen.int(in: 0...(Self.resolutions.count - 1))
        ) { weightTenths, doseMilli, concIndex, minutes, loadingHundredths, loadingSeconds, resolutionIndex in
            let weight = BodyWeight.kilograms(Double(weightTenths) / 10)
            let rate = WeightBasedDoseRate.milligramsPerKilogramPerHour(Double(doseMilli) / 1000)
            let resolution = Self.resolutions[resolutionIndex].map { VolumeRate.millilitresPerHour($0) }
            let loading = loadingHundredths < 0 ? nil : LoadingEntry(dose: .milligramsPerKilogram(Double(loadingHundredths) / 100), over: .seconds(loadingSeconds))
            let request = ProgramRequest(
                profile: "ketamine-chronic-pain", drug: "Ketamine",
                concentration: .milligramsPerMillilitre(Self.concentrations[concIndex]), weight: weight,
                dose: .weightBased(rate, .milligramsPerKilogramPerHour), duration: .seconds(minutes * 60),
                loading: loading, pump: PumpCapabilities(rateResolution: resolution))
            let result = ProgramValidator.validate(request, library: library)

            // Rounding never adds drug, whatever the status.
            if let c = result.calculation {
                try Self.checkRounding(c.pumpRate, resolution: resolution)
                if let l = c.loading { try Self.checkRounding(l.pumpRate, resolution: resolution) }
                #expect(c.deliveredDoseRate <= rate)
            }

            let program: ValidatedProgram
            switch result.status {
            case .rejected:
                #expect(result.findings.contains { $0.severity == .hard })
                #expect(throws: ConfirmationError.self) { try result.confirm(SoftLimitConfirmation(reason: "override")) }
                return
            case .accepted:
                program = try #require(result.acceptedProgram)
            case .needsConfirmation:
                #expect(result.findings.allSatisfy { $0.severity == .soft })
                program = try result.confirm(SoftLimitConfirmation(reason: "clinical reason"))
            }
            #expect(drug.concentrations.contains(program.concentration))
            #expect(drug.weightRange.contains(program.weight))
            #expect(program.doseRate <= drug.doseRate.hardMaximum)
            #expect(program.doseRate.isPositive)
            #expect(Dosing.absoluteDoseRate(program.doseRate, weight: program.weight) <= drug.absoluteRateCap)
            #expect(program.calculation.projectedCumulativeDose <= drug.cumulativeDose.hardMaximum)
            #expect(program.calculation.totalDuration <= drug.sessionDuration.hardMaximum)
            // What the pump will actually deliver is no more than what was checked. Both sides divide by
            // 3600 s/h, a non-terminating decimal, so they agree only to Decimal's 38 digits (and Double's 16):
            // the margin below is representation, twelve orders of magnitude under any pump's resolution.
            let deliveredMass = Dosing.deliveredDose(volume: program.calculation.totalVolume, concentration: program.concentration)
            #expect(deliveredMass.milligrams <= program.calculation.projectedCumulativeMass.milligrams * (1 + 1e-12))
            #expect(program.maximumPumpRate.isPositive)
            if let l = program.calculation.loading {
                #expect(l.dose <= drug.loadingDose.hardMaximum)
                #expect(l.duration >= (drug.loadingDuration.hardMinimum ?? .zero))
            }
        }
    }

    static func checkRounding(_ rounded: Rounded<VolumeRate>, resolution: VolumeRate?) throws {
        let requested = try #require(rounded.requested.exactCanonicalValue)
        let actual = try #require(rounded.actual.exactCanonicalValue)
        #expect(actual <= requested, "rounding added drug: \(rounded.actual) > \(rounded.requested)")
        if let resolution {
            let step = try #require(resolution.exactCanonicalValue)
            #expect(requested - actual < step, "rounded down by more than one step")
        } else {
            #expect(actual == requested)
        }
    }
}
