import ArgumentParser
import Foundation
import InfusionCore
import Records

/// `--db PATH`, shared by every command that reads the session record.
struct DatabaseOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The record database. Default: $INFUSIONCONTROL_DB, or ./infusioncontrol.sqlite when that is not set.", valueName: "PATH"))
    var db: String?

    /// The path to use: --db, else $INFUSIONCONTROL_DB, else ./infusioncontrol.sqlite.
    var path: String { db ?? RecordStore.defaultPath(environment: ProcessInfo.processInfo.environment) }
}

/// Replaces control characters (terminal escapes included) so recorded text cannot drive the terminal.
func terminalSafe(_ text: String) -> String {
    String(String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : $0 }))
}

struct SessionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessions",
        abstract: "List the recorded infusion sessions.",
        discussion: """
            Reads the record database (it is never created or changed by this command, except that an older \
            schema is brought up to date). With no database or no sessions it says so plainly; with --json it \
            prints [] then.

            Exit codes: 0 success (also when there are no sessions); 1 the database cannot be read (for \
            example it failed its integrity check: the message says what to do); 64 usage error.
            """)

    @OptionGroup var database: DatabaseOption

    @Flag(help: "Print a JSON array (one object per session; see README: session list JSON) instead of a table.")
    var json = false

    func run() throws {
        let path = database.path
        let summaries: [SessionSummary]
        do {
            let store = try RecordStore.open(path: path, createIfMissing: false)
            summaries = try store.sessions()
        } catch RecordStoreError.notFound {
            if json { Output.line("[]") } else { Output.line("No sessions recorded: \(path) does not exist yet.") }
            return
        } catch {
            Output.error("\(error)")
            throw ExitCode.failure
        }
        if json {
            Output.line(JSONExport.sessionList(summaries))
            return
        }
        if summaries.isEmpty {
            Output.line("No sessions recorded in \(path).")
            return
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        var rows = [["ID", "STATE", "STARTED", "LENGTH", "PATIENT", "OPERATOR", "PROGRAM", "ALARMS", "EVENTS"]]
        for summary in summaries {
            let session = summary.session
            let program = session.program
            let length = session.endedAt.map { clock(seconds: $0.timeIntervalSince(session.startedAt)) } ?? "-"
            rows.append([
                "\(session.id)", session.state.rawValue, formatter.string(from: session.startedAt), length,
                terminalSafe(session.patientID), terminalSafe(session.operatorID),
                terminalSafe("\(program.drug) \(program.doseRate.formatted(fractionDigits: 4)), \(program.pumpRate.actual.formatted(fractionDigits: 3))"),
                "\(summary.alarmCount)", "\(summary.eventCount)",
            ])
        }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            Output.line(row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  "))
        }
        Output.line()
        Output.line("\(summaries.count) session\(summaries.count == 1 ? "" : "s") in \(path). Times are \(TimeZone.current.identifier). Report: infusionctl report ID")
    }

    /// "52:02" or "1:02:05".
    func clock(seconds: Double) -> String {
        let total = max(0, Int(seconds.rounded()))
        let h = total / 3600, m = (total % 3600) / 60, s = total % 60
        let mm = m < 10 ? "0\(m)" : "\(m)", ss = s < 10 ? "0\(s)" : "\(s)"
        return h > 0 ? "\(h):\(mm):\(ss)" : "\(m):\(ss)"
    }
}
