import ArgumentParser
import Foundation
import Logging

/// `infusionctl`: the operator's and technician's command-line tool. Thin: it parses arguments, calls
/// the libraries and prints. It is the only part of InfusionControl that writes to standard output.
@main
struct InfusionCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infusionctl",
        abstract: "InfusionControl: an infusion-pump controller with a drug library and a safety supervisor.",
        discussion: """
            Exit codes: 0 success; 2 needs confirmation (a soft limit); 3 rejected (a hard limit);
            64 usage error (a bad or missing argument or unit); 1 any other failure.
            """,
        subcommands: [
            LibraryCommand.self,
            ProgramCommand.self,
            SessionsCommand.self,
            ReportCommand.self,
            DevicesCommand.self,
            PumpCommand.self,
            CalibrateCommand.self,
            VerifyCommand.self,
            ConfigureCommand.self,
            CalibrationsCommand.self,
            OximeterCommand.self,
            RunCommand.self,
            DemoCommand.self,
        ]
    )

    /// Routes library logging to standard error (standard output carries only results, so `--json`
    /// stays parseable), at the level in `INFUSIONCONTROL_LOG_LEVEL` (default: warning), then runs.
    static func main() async {
        let level = ProcessInfo.processInfo.environment["INFUSIONCONTROL_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
