import ArgumentParser
import Foundation
import InfusionCore

/// `--library FILE`, shared by every command that needs the drug library.
struct LibraryOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Drug library file (TOML). Default: the library shipped with infusionctl.", valueName: "FILE"))
    var library: String?

    /// Reads and validates the library; throws `DrugLibraryLoadError` or `LibraryFileError`.
    func load() throws -> DrugLibrary {
        let (text, source) = try LibraryFiles.read(library)
        return try DrugLibrary.load(text: text, source: source)
    }
}

/// A library file that could not be read.
struct LibraryFileError: Error, CustomStringConvertible {
    let description: String
}

enum LibraryFiles {
    /// The text and display name of `path`, or of the shipped default library when `path` is nil.
    static func read(_ path: String?) throws -> (String, String) {
        if let path {
            guard let data = FileManager.default.contents(atPath: path) else {
                let exists = FileManager.default.fileExists(atPath: path)
                throw LibraryFileError(description: exists
                    ? "cannot read the drug library \(path): check its permissions"
                    : "no drug library at \(path): check the path, or leave --library out to use the shipped library")
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw LibraryFileError(description: "\(path) is not UTF-8 text: save the library as UTF-8")
            }
            return (text, path)
        }
        guard let url = Bundle.module.url(forResource: "default-library", withExtension: "toml"),
              let data = FileManager.default.contents(atPath: url.path),
              let text = String(data: data, encoding: .utf8)
        else {
            throw LibraryFileError(description: "the shipped drug library is missing from this installation: reinstall infusionctl, or pass --library FILE")
        }
        return (text, "default-library.toml (shipped)")
    }
}

/// Prints a library failure to standard error and returns the exit code for "any other failure".
func reportLibraryFailure(_ error: any Error) -> ExitCode {
    Output.error("\(error)")
    return ExitCode.failure
}

struct LibraryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "library",
        abstract: "Check, show and seal drug libraries.",
        subcommands: [Check.self, Show.self, Seal.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load a drug library strictly and report every problem with its line, key and fix.",
            discussion: "Exit 0 when the library is valid; 1 when it is refused or cannot be read.")

        @Argument(help: ArgumentHelp("The library file to check.", valueName: "FILE"))
        var file: String

        func run() throws {
            do {
                let (text, source) = try LibraryFiles.read(file)
                let library = try DrugLibrary.load(text: text, source: source)
                let drugs = library.profiles.reduce(0) { $0 + $1.drugs.count }
                Output.line("OK: \(library.identity): \(library.profiles.count) profile(s), \(drugs) drug entr\(drugs == 1 ? "y" : "ies")")
                Output.line("sha256 \(library.sha256)")
            } catch {
                throw reportLibraryFailure(error)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a drug library's profiles, drugs and limits.")

        @OptionGroup var libraryOption: LibraryOption

        @Option(help: ArgumentHelp("Show only this profile (id or name).", valueName: "NAME"))
        var profile: String?

        func run() throws {
            let library: DrugLibrary
            do { library = try libraryOption.load() } catch { throw reportLibraryFailure(error) }
            var profiles = library.profiles
            if let profile {
                guard let match = library.profile(named: profile) else {
                    throw ValidationError("no profile \"\(profile)\" in \(library.identity); profiles: \(library.profiles.map(\.id).joined(separator: ", "))")
                }
                profiles = [match]
            }
            Output.line("\(library.name), version \(library.version)")
            Output.line("sha256 \(library.sha256)  (\(library.source))")
            for p in profiles { LibraryPrinter.print(p) }
        }
    }

    struct Seal: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the sha256 of a reviewed and approved library into the file.",
            discussion: """
                The loader refuses a library whose content does not match its sha256, so an unreviewed edit or a \
                corrupted file is never used. After a clinically approved change, seal the file. The file must \
                otherwise be valid: sealing a library with errors is refused.
                """)

        @Argument(help: ArgumentHelp("The library file to seal in place.", valueName: "FILE"))
        var file: String

        func run() throws {
            do {
                let (text, source) = try LibraryFiles.read(file)
                let sealed = LibraryChecksum.seal(text: text)
                let library = try DrugLibrary.load(text: sealed, source: source)
                try sealed.write(toFile: file, atomically: true, encoding: .utf8)
                Output.line("sealed \(file): sha256 \(library.sha256)")
            } catch {
                throw reportLibraryFailure(error)
            }
        }
    }
}

/// Human-readable rendering of a profile.
enum LibraryPrinter {
    static func print(_ p: CareAreaProfile) {
        Output.line("")
        Output.line("Profile \(p.id): \(p.name)")
        Output.line("  Care area: \(p.careArea)")
        let s = p.startChecks
        Output.line("  Start checks: SpO2 ≥ \(s.spo2Minimum), pulse \(s.pulseMinimum.formatted(fractionDigits: 0))–\(s.pulseMaximum.formatted(fractionDigits: 0)), vitals no older than \(s.vitalsMaxAge.humanReadable)")
        let m = p.monitoring
        Output.line("  Monitoring:")
        Output.line("    SpO2 < \(m.spo2PauseBelow) for \(m.spo2PauseHold.humanReadable): pause (high); < \(m.spo2ImmediatePauseBelow): pause at once; ≤ \(m.spo2WarningAtOrBelow) for \(m.spo2WarningHold.humanReadable): warning (medium)")
        Output.line("    Pulse > \(m.pulsePauseAbove.formatted(fractionDigits: 0)) or < \(m.pulsePauseBelow.formatted(fractionDigits: 0)) for \(m.pulsePauseHold.humanReadable): pause (high); > \(m.pulseWarningAbove.formatted(fractionDigits: 0)) for \(m.pulseWarningHold.humanReadable): warning (medium)")
        Output.line("    Loss of monitoring: alarm after \(m.monitoringLossAlarmAfter.humanReadable) (invalid signal after \(m.invalidSignalAlarmAfter.humanReadable)), pause after \(m.monitoringLossPauseAfter.humanReadable); samples older than \(m.sampleMaxAge.humanReadable) ignored")
        Output.line("    Stop must be confirmed within \(m.stopConfirmationDeadline.humanReadable); rate tolerance \(m.rateTolerance) for \(m.rateMismatchHold.humanReadable); volume tolerance \(m.volumeTolerance)")
        Output.line("  Alarms: audio pause at most \(p.alarms.audioPauseMax.humanReadable); medium escalates to high after \(p.alarms.escalateMediumAfter.humanReadable)")
        for d in p.drugs {
            let u = d.doseRateUnit, b = d.bolusDoseUnit
            let r = d.doseRate
            Output.line("  Drug \(d.name)")
            Output.line("    Concentrations: \(d.concentrations.map { $0.formatted() }.joined(separator: ", ")) (anything else is rejected)")
            Output.line("    Weight: \(d.weightRange.lowerBound)–\(d.weightRange.upperBound) (required)")
            Output.line("    Dose rate (\(u)): hard min \(r.hardMinimum.map { $0.formatted(in: u) } ?? "none"), soft min \(r.softMinimum.map { $0.formatted(in: u) } ?? "none"), soft max \(r.softMaximum.map { $0.formatted(in: u) } ?? "none"), hard max \(r.hardMaximum.formatted(in: u)); absolute cap \(d.absoluteRateCap)")
            Output.line("    Loading dose (\(b)): soft max \(d.loadingDose.softMaximum.map { $0.formatted(in: b) } ?? "none"), hard max \(d.loadingDose.hardMaximum.formatted(in: b)); over at least \(d.loadingDuration.hardMinimum?.humanReadable ?? "any time") (soft \(d.loadingDuration.softMinimum?.humanReadable ?? "none"))")
            Output.line("    Session dose: soft max \(d.cumulativeDose.softMaximum.map { $0.formatted(in: b) } ?? "none"), hard max \(d.cumulativeDose.hardMaximum.formatted(in: b)); duration soft max \(d.sessionDuration.softMaximum?.humanReadable ?? "none"), hard max \(d.sessionDuration.hardMaximum.humanReadable)")
            Output.line("    End of infusion: \(d.endOfInfusion.rawValue)")
        }
    }
}
