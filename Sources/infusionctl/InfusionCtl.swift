import ArgumentParser

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
            DevicesCommand.self,
        ]
    )
}
