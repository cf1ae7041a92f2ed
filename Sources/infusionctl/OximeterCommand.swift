import ArgumentParser
import DeviceIO
import Drivers
import Foundation
import InfusionCore
import Synchronization

/// `infusionctl oximeter …`: pulse-oximeter tools.
struct OximeterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oximeter",
        abstract: "Pulse-oximeter tools.",
        subcommands: [OximeterWatchCommand.self]
    )
}

/// `infusionctl oximeter watch --device PATH --protocol P [--json]`: live SpO2, pulse rate, perfusion
/// index and quality flags, about one line a second, until Ctrl-C.
struct OximeterWatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Show live SpO2, pulse rate, perfusion index and quality flags from an oximeter (Ctrl-C to stop).",
        discussion: """
            About one line a second: the latest values, and every quality flag seen since the previous line
            ("--" for a missing value). Connection changes (connected, silent = no valid data within the
            driver's staleness limit, disconnected) and the driver's notices are printed as they happen.
            With --json every line is one JSON object: {"type":"sample",...} or {"type":"connection",...},
            {"type":"no-data",...}, {"type":"notice",...}. Read counters are printed to standard error at the end.
            Protocols: nonin-df2, nonin-df7, nonin-df8 (9600 8N1), masimo (ASCII 1, 9600 8N1), contec (V7.0, 115200 8N1).
            """
    )

    @Option(help: "The oximeter's serial device or stable link (e.g. /dev/infusion/oximeter0, or a simulator's pty).")
    var device: String

    @Option(name: .customLong("protocol"), help: "nonin-df2, nonin-df7, nonin-df8, masimo or contec.")
    var protocolName: String

    @Flag(help: "Print JSON lines instead of text.")
    var json = false

    func validate() throws {
        guard OximeterProtocol(rawValue: protocolName) != nil else {
            throw ValidationError("unknown oximeter protocol \"\(protocolName)\": use one of \(OximeterProtocol.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() async throws {
        guard let format = OximeterProtocol(rawValue: protocolName) else { throw ExitCode.validationFailure }
        // Open once up front so a wrong path or a permission problem is reported at once, not retried.
        do {
            let port = try SerialPort(path: device, settings: format.serialSettings)
            port.close()
        } catch {
            Output.error("cannot open the oximeter on \(device): \(error)")
            throw ExitCode.failure
        }
        // Before the ready line: from then on SIGINT and SIGTERM end the watch cleanly (exit 0).
        do throws(TerminationSignals.Unavailable) {
            try TerminationSignals.install()
        } catch {
            Output.error("\(error)")
            throw ExitCode.failure
        }
        let clock = SystemMonotonicClock()
        let start = clock.now()
        let oximeter = makePulseOximeter(protocol: format, path: device, name: "oximeter \(device)", clock: clock)
        if !json { Output.line("Watching the \(format) oximeter on \(device) (Ctrl-C to stop)…") }
        let asJSON = json
        let stopping = Atomic<Bool>(false)
        let samples = Task {
            var lastPrinted: MonotonicInstant?
            var flags: OximetryQuality = []
            for await sample in oximeter.samples {
                flags.formUnion(sample.quality)
                if let last = lastPrinted, sample.arrivedAt - last < .milliseconds(950) { continue }
                lastPrinted = sample.arrivedAt
                Output.line(asJSON ? Self.json(sample, flags: flags, start: start) : Self.text(sample, flags: flags, start: start))
                flags = []
            }
        }
        let events = Task {
            for await event in oximeter.events {
                if stopping.load(ordering: .acquiring) { continue }  // closing: not a real disconnection
                if let line = asJSON ? Self.json(event, start: start) : Self.text(event, start: start) { Output.line(line) }
            }
        }
        _ = await TerminationSignals.wait()
        stopping.store(true, ordering: .releasing)
        let counters = oximeter.counters
        oximeter.close()
        await samples.value
        await events.value
        Output.note("""
            \(counters.framesDecoded) frames decoded, \(counters.samplesPublished) samples, \(counters.framingErrors) framing errors, \
            \(counters.checksumErrors) checksum errors, \(counters.bytesDiscarded) bytes discarded, \(counters.staleEpisodes) silences
            """)
    }

    // MARK: Formatting

    private static func seconds(_ instant: MonotonicInstant, since start: MonotonicInstant) -> String {
        String(format: "%8.3f s", (instant - start).seconds)
    }

    private static func number(_ value: Double?, digits: Int) -> String {
        guard let value, value.isFinite else { return "--" }
        return String(format: "%.\(digits)f", value)
    }

    static func text(_ sample: VitalSample, flags: OximetryQuality, start: MonotonicInstant) -> String {
        var line = "\(seconds(sample.arrivedAt, since: start))  SpO2 \(number(sample.spo2?.percent, digits: 0)) %"
        line += "  PR \(number(sample.pulseRate?.beatsPerMinute, digits: 0)) bpm"
        line += "  PI \(number(sample.perfusionIndex?.percent, digits: 2)) %"
        line += flags.isEmpty ? "  ok" : "  [\(flags.names.joined(separator: ", "))]"
        if !sample.isValid { line += "  NOT VALID" }
        return line
    }

    static func text(_ event: OximeterOutput, start: MonotonicInstant) -> String? {
        switch event {
        case .sample: nil
        case let .connection(state, at): "\(seconds(at, since: start))  connection: \(name(of: state))"
        case let .noData(last, at):
            "\(seconds(at, since: start))  NO DATA: " + (last.map { "no valid sample since \(seconds($0, since: start))" } ?? "no valid sample yet")
        case .notice(let notice): "note: \(notice)"
        }
    }

    private static func name(of state: DeviceConnection) -> String {
        switch state {
        case .connected: "connected"
        case .silent: "silent"
        case .disconnected: "disconnected (reconnecting)"
        }
    }

    private struct SampleLine: Encodable {
        let type = "sample"
        let time: Double
        let measuredAt: Double
        let spo2: Double?
        let pulseRate: Double?
        let perfusionIndex: Double?
        let flags: [String]
        let valid: Bool
    }

    private struct EventLine: Encodable {
        let type: String
        let time: Double?
        let state: String?
        let lastSample: Double?
        let message: String?
    }

    static func json(_ sample: VitalSample, flags: OximetryQuality, start: MonotonicInstant) -> String {
        Output.json(SampleLine(time: (sample.arrivedAt - start).seconds, measuredAt: (sample.measuredAt - start).seconds,
                               spo2: sample.spo2?.percent, pulseRate: sample.pulseRate?.beatsPerMinute,
                               perfusionIndex: sample.perfusionIndex?.percent, flags: flags.names, valid: sample.isValid))
    }

    static func json(_ event: OximeterOutput, start: MonotonicInstant) -> String? {
        switch event {
        case .sample: nil
        case let .connection(state, at):
            Output.json(EventLine(type: "connection", time: (at - start).seconds, state: name(of: state), lastSample: nil, message: nil))
        case let .noData(last, at):
            Output.json(EventLine(type: "no-data", time: (at - start).seconds, state: nil, lastSample: last.map { ($0 - start).seconds }, message: nil))
        case .notice(let notice):
            Output.json(EventLine(type: "notice", time: nil, state: nil, lastSample: nil, message: notice.description))
        }
    }
}
