import ArgumentParser
import Calibration
import DeviceIO
import Foundation

/// `infusionctl verify`: technician verifications.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a device against a reference (oximeter against an SpO2 simulator).",
        subcommands: [VerifyOximeterCommand.self])
}

/// `infusionctl verify oximeter`: guided SpO2-simulator set points, A_rms and bias (docs/calibration.md).
struct VerifyOximeterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oximeter",
        abstract: "Verify an oximeter's SpO2 and pulse-rate accuracy against an SpO2 simulator.",
        discussion: """
            Guides the technician through the set points (default SpO2 70-100 % in 5 % steps at 75 bpm, then \
            40/120/180 bpm at 97 %; or --setpoints FILE, TOML as in docs/calibration.md), collects readings at \
            each, and computes bias and A_rms against the claim (default A_rms ≤ 4 %).

            Exit codes: 0 pass; 2 fail; 3 incomplete; 1 the oximeter or the database could not be used; 64 usage error.
            """)

    @Option(help: ArgumentHelp("The oximeter's port, such as /dev/infusion/oximeter0.", valueName: "PATH"))
    var device: String
    @Option(name: .customLong("protocol"), help: ArgumentHelp("nonin-df2, nonin-df7, nonin-df8, masimo, contec.", valueName: "NAME"))
    var protocolName: String
    @Option(help: ArgumentHelp("A set-points file (TOML).", valueName: "FILE"))
    var setpoints: String?
    @Option(name: .customLong("operator"), help: ArgumentHelp("The technician's name or id.", valueName: "NAME"))
    var operatorName: String
    @OptionGroup var database: DatabaseOption

    func run() async throws {
        guard let family = DeviceProtocolName(rawValue: protocolName), family.role == .oximeter else {
            throw ValidationError("--protocol: \"\(protocolName)\" is not an oximeter protocol; oximeters: nonin-df2, nonin-df7, nonin-df8, masimo, contec")
        }
        if operatorName.allSatisfy(\.isWhitespace) { throw ValidationError("--operator: give the technician's name or id") }
        var plan = OximeterVerificationPlan()
        if let setpoints {
            let text: String
            do { text = try String(contentsOfFile: setpoints, encoding: .utf8) } catch {
                throw ValidationError("--setpoints: cannot read \(setpoints): \(error.localizedDescription)")
            }
            do { plan = try OximeterVerificationPlan.load(toml: text, source: setpoints) } catch { throw ValidationError("--setpoints: \(error)") }
        }
        do { plan = try plan.validated() } catch { throw ValidationError("\(error)") }
        Output.error("guided verification of a \(family) oximeter is not wired to the oximeter drivers in this build yet "
            + "(use `infusionctl oximeter watch` to read it meanwhile); the plan is valid: \(plan.setPoints.count) set points, about \(plan.totalDuration.humanReadable)")
        throw ExitCode.failure
    }
}
