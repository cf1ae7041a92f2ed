import ArgumentParser
import Foundation
import InfusionCore
import Records

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a session's report: HTML with a chart, CSV (samples, events or pump statuses) or JSON.",
        discussion: """
            Examples:
              infusionctl report 12 --out session-12.html
              infusionctl report 12 --format csv --table samples --out session-12-samples.csv
              infusionctl report 12 --format json > session-12.json

            The HTML page is self-contained (inline CSS and SVG; no scripts, no external files). CSV follows \
            RFC 4180 (CRLF line ends, quoted fields). Without --out the report goes to standard output.

            Exit codes: 0 success; 1 no such session, or the database cannot be read; 64 usage error.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case html, csv, json
    }

    enum Table: String, ExpressibleByArgument, CaseIterable {
        case samples, events, pump
    }

    @Argument(help: ArgumentHelp("The session id, as listed by `infusionctl sessions`.", valueName: "SESSION"))
    var session: String

    @OptionGroup var database: DatabaseOption

    @Option(help: ArgumentHelp("Report format: html, csv or json.", valueName: "FORMAT"))
    var format: Format = .html

    @Option(help: ArgumentHelp("With --format csv: which table, samples, events or pump (pump statuses).", valueName: "TABLE"))
    var table: Table = .events

    @Option(help: ArgumentHelp("Write the report to this file instead of standard output.", valueName: "FILE"))
    var out: String?

    mutating func validate() throws {
        guard SessionID(parsing: session) != nil else {
            throw ValidationError("\"\(session)\" is not a session id: give the number listed by `infusionctl sessions`")
        }
    }

    func run() throws {
        guard let id = SessionID(parsing: session) else { throw ExitCode.validationFailure }
        let loaded: LoadedSession
        do {
            let store = try RecordStore.open(path: database.path, createIfMissing: false)
            loaded = try store.load(id)
        } catch {
            Output.error("\(error)")
            throw ExitCode.failure
        }
        let text: String = switch format {
        case .html: HTMLReport.render(loaded, options: ReportOptions(timeZone: .current, generatedAt: Date()))
        case .json: JSONExport.render(loaded)
        case .csv:
            switch table {
            case .samples: CSVExport.samples(loaded)
            case .events: CSVExport.events(loaded)
            case .pump: CSVExport.pumpStatuses(loaded)
            }
        }
        guard let out else {
            Output.write(text)
            return
        }
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: out), options: .atomic)
        } catch {
            Output.error("cannot write the report to \(out): \(error.localizedDescription). Check the folder exists and is writable")
            throw ExitCode.failure
        }
        Output.line("Session \(id) report (\(format.rawValue)\(format == .csv ? ", \(table.rawValue)" : "")) written to \(out)")
    }
}


