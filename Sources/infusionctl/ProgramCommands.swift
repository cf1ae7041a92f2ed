import ArgumentParser
import Foundation
import InfusionCore

struct ProgramCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "program",
        abstract: "Validate infusion programs against the drug library.",
        subcommands: [Validate.self]
    )

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate an infusion program (dose error reduction) and show the pump rate, volume and dose.",
            discussion: """
                Example: infusionctl program validate --profile ketamine-chronic-pain --drug ketamine \
                --concentration "1 mg/mL" --weight "80 kg" --dose "0.35 mg/kg/h" --duration "40 min"

                Exit codes: 0 accepted; 2 needs confirmation (a soft limit: a clinician must confirm with a \
                reason); 3 rejected (a hard limit, no override); 64 usage error (a bad or missing argument or unit).
                """)

        @OptionGroup var libraryOption: LibraryOption

        @OptionGroup var program: ProgramOptions

        @Option(name: .customLong("pump-resolution"), help: ArgumentHelp("The target pump's rate step, e.g. \"0.01 mL/h\" (rates are rounded down to it).", valueName: "Q"))
        var pumpResolution: String?

        @Option(name: .customLong("pump-max"), help: ArgumentHelp("The target pump's maximum rate, e.g. \"1200 mL/h\".", valueName: "Q"))
        var pumpMax: String?

        @Flag(help: "Print one JSON object (see README: program validation JSON) instead of text.")
        var json = false

        func run() throws {
            let request = try makeRequest()
            let library: DrugLibrary
            do {
                library = try libraryOption.load()
            } catch {
                // R-DL-11: no programming against a library that failed its integrity check.
                let finding = ProgramReport.FindingJSON(
                    rule: ProgramRule.libraryIntegrity.rawValue, severity: .hard,
                    message: "drug library refused, no programming possible: \(error)", limit: nil)
                if json {
                    Output.line(ProgramReport.json(.init(status: .rejected, findings: [finding])))
                } else {
                    Output.line("REJECTED (R-DL-11 drug library integrity)")
                    Output.error("\(error)")
                }
                throw ExitCode(3)
            }
            let result = ProgramValidator.validate(request, library: library)
            if json {
                Output.line(ProgramReport.json(ProgramReport.Document(result: result, request: request, library: library)))
            } else {
                ProgramReport.printHuman(result, request: request, library: library)
            }
            switch result.status {
            case .accepted: return
            case .needsConfirmation: throw ExitCode(2)
            case .rejected: throw ExitCode(3)
            }
        }

        func makeRequest() throws -> ProgramRequest {
            var pump: PumpCapabilities?
            if pumpResolution != nil || pumpMax != nil {
                pump = PumpCapabilities(
                    rateResolution: try pumpResolution.map { r in try ProgramOptions.parse("pump-resolution", r) { (t) throws(QuantityParseError) in try VolumeRate.parse(t) } },
                    maximumRate: try pumpMax.map { r in try ProgramOptions.parse("pump-max", r) { (t) throws(QuantityParseError) in try VolumeRate.parse(t) } })
            }
            return try program.makeRequest(pump: pump)
        }
    }
}

/// The program's options, shared by `program validate` and `run`: profile, drug, concentration, weight,
/// dose, duration and the optional loading dose.
struct ProgramOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Care-area profile, by id or name.", valueName: "NAME"))
    var profile: String

    @Option(help: ArgumentHelp("Drug name, as in the library.", valueName: "NAME"))
    var drug: String

    @Option(help: ArgumentHelp("Concentration of the solution, e.g. \"1 mg/mL\".", valueName: "Q"))
    var concentration: String

    @Option(help: ArgumentHelp("Patient weight, e.g. \"80 kg\". Required by weight-based drugs: without it the program is rejected.", valueName: "Q"))
    var weight: String?

    @Option(help: ArgumentHelp("Maintenance dose rate in the library's dosing unit, e.g. \"0.35 mg/kg/h\".", valueName: "Q"))
    var dose: String

    @Option(help: ArgumentHelp("Maintenance duration, e.g. \"40 min\" or \"4 h\".", valueName: "Q"))
    var duration: String

    @Option(help: ArgumentHelp("Optional loading dose, e.g. \"0.2 mg/kg\" (needs --loading-over).", valueName: "Q"))
    var loading: String?

    @Option(name: .customLong("loading-over"), help: ArgumentHelp("Duration of the loading dose, e.g. \"10 min\".", valueName: "Q"))
    var loadingOver: String?

    func validate() throws {
        if (loading == nil) != (loadingOver == nil) {
            throw ValidationError("--loading and --loading-over go together: give both, or neither")
        }
    }

    /// Parses one option's text, turning a unit error into a usage error naming the option.
    static func parse<T>(_ option: String, _ text: String, _ body: (String) throws(QuantityParseError) -> T) throws -> T {
        do { return try body(text) } catch { throw ValidationError("--\(option): \(error)") }
    }

    /// The request these options describe, for a pump with `pump` capabilities (nil: none known).
    /// Throws a usage error (exit 64) for a bad quantity or unit.
    func makeRequest(pump: PumpCapabilities?) throws -> ProgramRequest {
        let concentrationValue = try Self.parse("concentration", concentration) { (t) throws(QuantityParseError) in try Concentration.parse(t) }
        let weightValue = try weight.map { w in try Self.parse("weight", w) { (t) throws(QuantityParseError) in try BodyWeight.parse(t) } }
        let doseValue = try Self.parse("dose", dose) { (t) throws(QuantityParseError) in try DoseEntry.parse(t) }
        let durationValue = try Self.parse("duration", duration) { (t) throws(QuantityParseError) in try Duration.parse(t) }
        var loadingValue: LoadingEntry?
        if let loading, let loadingOver {
            let (dose, unit) = try Self.parse("loading", loading) { (t) throws(QuantityParseError) in try WeightBasedDose.parseEntry(t) }
            let over = try Self.parse("loading-over", loadingOver) { (t) throws(QuantityParseError) in try Duration.parse(t) }
            loadingValue = LoadingEntry(dose: dose, unit: unit, over: over)
        }
        return ProgramRequest(
            profile: profile, drug: drug, concentration: concentrationValue, weight: weightValue, dose: doseValue,
            duration: durationValue, loading: loadingValue, pump: pump)
    }
}

/// Renders validation results as text or as the documented JSON object.
enum ProgramReport {
    struct FindingJSON: Encodable {
        let rule: String
        let severity: FindingSeverity
        let message: String
        let limit: String?
    }

    struct LoadingJSON: Encodable {
        let dose_mg_per_kg: Double
        let duration_min: Double
        let pumpRate_mL_per_h: Double
        let pumpRateRequested_mL_per_h: Double
        let volume_mL: Double
    }

    /// The JSON document of `program validate --json` (documented in README.md).
    struct Document: Encodable {
        var status: ValidationResult.Status
        var library: [String: String]?
        var profile: String?
        var drug: String?
        var concentration_mg_per_mL: Double?
        var weight_kg: Double?
        var doseRate_mg_per_kg_per_h: Double?
        var pumpRate_mL_per_h: Double?
        var pumpRateRequested_mL_per_h: Double?
        var deliveredDoseRate_mg_per_kg_per_h: Double?
        var absoluteDoseRate_mg_per_h: Double?
        var duration_min: Double?
        var vtbi_mL: Double?
        var loading: LoadingJSON?
        var totalVolume_mL: Double?
        var totalDuration_min: Double?
        var cumulativeDose_mg_per_kg: Double?
        var cumulativeDose_mg: Double?
        var findings: [FindingJSON]

        init(status: ValidationResult.Status, findings: [FindingJSON]) {
            self.status = status
            self.findings = findings
        }

        init(result: ValidationResult, request: ProgramRequest, library: DrugLibrary) {
            self.init(status: result.status, findings: result.findings.map {
                FindingJSON(rule: $0.rule.rawValue, severity: $0.severity, message: $0.message, limit: $0.limit)
            })
            self.library = ["name": library.name, "version": library.version, "sha256": library.sha256]
            profile = request.profile.flatMap { library.profile(named: $0)?.id } ?? request.profile
            drug = request.profile.flatMap { library.profile(named: $0)?.drug(named: request.drug)?.name } ?? request.drug
            concentration_mg_per_mL = request.concentration?.milligramsPerMillilitre
            weight_kg = request.weight?.kilograms
            if case let .weightBased(rate, _) = request.dose { doseRate_mg_per_kg_per_h = rate.milligramsPerKilogramPerHour }
            // A rejected program has no pump rate, volume or projected dose: nothing from it may be
            // programmed into a pump, so nothing that could be copied into one is printed.
            if result.status != .rejected, let c = result.calculation {
                pumpRate_mL_per_h = c.pumpRate.actual.millilitresPerHour
                pumpRateRequested_mL_per_h = c.pumpRate.requested.millilitresPerHour
                deliveredDoseRate_mg_per_kg_per_h = c.deliveredDoseRate.milligramsPerKilogramPerHour
                absoluteDoseRate_mg_per_h = c.absoluteDoseRate.milligramsPerHour
                duration_min = c.duration.seconds / 60
                vtbi_mL = c.vtbi.millilitres
                loading = c.loading.map {
                    LoadingJSON(dose_mg_per_kg: $0.dose.milligramsPerKilogram, duration_min: $0.duration.seconds / 60,
                                pumpRate_mL_per_h: $0.pumpRate.actual.millilitresPerHour,
                                pumpRateRequested_mL_per_h: $0.pumpRate.requested.millilitresPerHour,
                                volume_mL: $0.volume.millilitres)
                }
                totalVolume_mL = c.totalVolume.millilitres
                totalDuration_min = c.totalDuration.seconds / 60
                cumulativeDose_mg_per_kg = c.projectedCumulativeDose.milligramsPerKilogram
                cumulativeDose_mg = c.projectedCumulativeMass.milligrams
            }
        }
    }

    static func json(_ document: Document) -> String { Output.json(document) }

    /// Writes the validation as text, one line per call of `write`: the headline, the program, and for an
    /// accepted or needs-confirmation program the pump rate, duration, volume and projected dose (a
    /// needs-confirmation program may be confirmed and run, so its numbers are shown for the clinician
    /// to confirm); for a rejected program no pump rate or volume at all, only the findings.
    static func printHuman(_ result: ValidationResult, request: ProgramRequest, library: DrugLibrary,
                           write: (String) -> Void = { Output.line($0) }) {
        let headline: String
        switch result.status {
        case .accepted: headline = "ACCEPTED"
        case .needsConfirmation: headline = "NEEDS CONFIRMATION (soft limit: a clinician must confirm with a reason)"
        case .rejected: headline = "REJECTED (hard limit: no override)"
        }
        write("Program \(headline)")
        write("  Library          \(library.identity)")
        let profileName = request.profile.flatMap { library.profile(named: $0)?.name } ?? request.profile ?? "none"
        write("  Profile          \(profileName)")
        let drugName = request.profile.flatMap { library.profile(named: $0)?.drug(named: request.drug)?.name } ?? request.drug
        write("  Drug             \(drugName)\(request.concentration.map { " \($0)" } ?? "")")
        write("  Patient weight   \(request.weight.map { "\($0)" } ?? "not given")")
        write("  Dose rate        \(request.dose.text)")
        if result.status == .rejected {
            // No rate or volume a person could copy into a pump by hand.
            write("  Pump program     none: a rejected program must not be programmed; change it and validate again")
        } else if let c = result.calculation {
            write("                   = \(c.absoluteDoseRate)")
            if let l = c.loading {
                write("  Loading dose     \(l.dose) over \(l.duration.humanReadable) at \(rateText(l.pumpRate)) (\(l.volume))")
            }
            write("  Pump rate        \(rateText(c.pumpRate))")
            if c.pumpRate.wasRounded {
                write("                   delivers \(c.deliveredDoseRate.formatted(fractionDigits: 4)) (rounded down to the pump's resolution)")
            }
            write("  Duration         \(c.duration.humanReadable)\(c.loading == nil ? "" : " (session \(c.totalDuration.humanReadable))")")
            write("  Volume (VTBI)    \(c.vtbi)\(c.loading == nil ? "" : " (session \(c.totalVolume))")")
            write("  Cumulative dose  \(c.projectedCumulativeDose) (\(c.projectedCumulativeMass))")
        }
        if result.findings.isEmpty {
            write("  Findings         none: within every limit")
        } else {
            write("  Findings:")
            for f in result.findings {
                write("    [\(f.severity == .hard ? "HARD" : "soft")] \(f.rule.rawValue): \(f.message)")
            }
        }
    }

    static func rateText(_ rate: Rounded<VolumeRate>) -> String {
        rate.wasRounded ? "\(rate.actual) (asked \(rate.requested.formatted(fractionDigits: 6)))" : "\(rate.actual)"
    }
}
