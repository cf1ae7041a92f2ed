import ArgumentParser
import Calibration
import DeviceIO
import Drivers
import Foundation
import InfusionCore
import Records
import Synchronization

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
            40/120/180 bpm at 97 %; or --setpoints FILE, TOML as in docs/calibration.md): at each it asks for the \
            SpO2 simulator to be set and waits for Enter (--unattended: announces the set point and goes on; the \
            set point's settling time, or --settle, covers the change), lets the reading settle, collects the \
            oximeter's readings over the window, and computes bias and A_rms against the claim (default A_rms ≤ 4 %). \
            The record is stored in the record database and the report (HTML, CSV) written to --out.

            Progress and the time remaining are shown on standard error. Ctrl-C or SIGTERM (or end of input while waiting \
            for Enter) stops and keeps the partial record, marked incomplete.

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
    @Option(help: ArgumentHelp("The oximeter's serial number, from its label (the serial formats do not report it).", valueName: "SERIAL"))
    var oximeterSerial: String?
    @Option(help: ArgumentHelp("The SpO2 simulator used, such as \"Fluke Index 2 SN 1234\" (recorded).", valueName: "TEXT"))
    var simulator: String?
    @Flag(help: "Do not wait for Enter at each set point: announce it and go on (a remote-controlled or scripted simulator).")
    var unattended = false
    @Option(help: ArgumentHelp("Settling time at every set point, overriding the plan's, such as \"30 s\".", valueName: "DURATION"))
    var settle: String?
    @OptionGroup var database: DatabaseOption
    @Option(help: ArgumentHelp("Folder for the HTML and CSV report. Default: the current folder.", valueName: "DIR"))
    var out: String = "."

    /// The plan from the arguments; throws `ValidationError` for bad values.
    func plan() throws -> OximeterVerificationPlan {
        var plan = OximeterVerificationPlan()
        if let setpoints {
            let text: String
            do { text = try String(contentsOfFile: setpoints, encoding: .utf8) } catch {
                throw ValidationError("--setpoints: cannot read \(setpoints): \(error.localizedDescription)")
            }
            do { plan = try OximeterVerificationPlan.load(toml: text, source: setpoints) } catch { throw ValidationError("--setpoints: \(error)") }
        }
        if let settle {
            let settling: Duration
            do { settling = try Duration.parse(settle) } catch { throw ValidationError("--settle: \(error)") }
            plan.settlingTime = settling
            plan.setPoints = plan.setPoints.map { point in
                var point = point
                point.settling = nil
                return point
            }
        }
        do { return try plan.validated() } catch { throw ValidationError("\(error)") }
    }

    func run() async throws {
        guard let family = DeviceProtocolName(rawValue: protocolName), family.role == .oximeter,
              let format = OximeterProtocol(rawValue: protocolName) else {
            throw ValidationError("--protocol: \"\(protocolName)\" is not an oximeter protocol; oximeters: nonin-df2, nonin-df7, nonin-df8, masimo, contec")
        }
        if operatorName.allSatisfy(\.isWhitespace) { throw ValidationError("--operator: give the technician's name or id") }
        let plan = try plan()
        guard let serial = oximeterSerial, !serial.allSatisfy(\.isWhitespace) else {
            throw ValidationError("--oximeter-serial: the \(format) serial output does not report a serial number; give it from the oximeter's label")
        }
        let identity: DeviceIdentity
        let simulatorIdentity: DeviceIdentity?
        do {
            identity = try DeviceIdentity(kind: .oximeter, manufacturer: Self.manufacturer(format), model: format.rawValue, serialNumber: serial,
                                          protocolName: format.rawValue, port: device)
            simulatorIdentity = try simulator.map { try DeviceIdentity(kind: .simulator, model: $0, serialNumber: $0) }
        } catch { throw ValidationError("\(error)") }
        let store: RecordStore
        do { store = try RecordStore.open(path: database.path) } catch {
            Output.error("\(error)")
            throw ExitCode.failure
        }
        let workflow: OximeterVerificationWorkflow
        do { workflow = try OximeterVerificationWorkflow(plan: plan) } catch { throw ValidationError("\(error)") }

        let clock = SystemMonotonicClock()
        let oximeter = makePulseOximeter(protocol: format, path: device, name: "oximeter under test \(device)", clock: clock)
        defer { oximeter.close() }
        guard await Self.waitForFirstSample(oximeter, within: .seconds(10)) else {
            Output.error("no readings from the \(format) oximeter on \(device) within 10 s: check the cable, that it is switched on with "
                + "the simulator's finger in the probe, and its output format (\(format)); nothing was recorded")
            throw ExitCode.failure
        }
        let enter = unattended ? nil : LineReader.standardInput
        let total = plan.setPoints.count
        let runner = OximeterVerificationRunner(oximeter: oximeter, clock: clock, applySetPoint: { index, point in
            let what = "set point \(index + 1) of \(total): set the SpO2 simulator to SpO2 \(NumberText.format(point.spo2.percent, fractionDigits: 1)) %, "
                + "pulse \(NumberText.format(point.pulseRate.beatsPerMinute, fractionDigits: 0)) bpm"
            guard let enter else {
                Output.note(what + " (unattended: going on)")
                return
            }
            Output.note(what + ", then press Enter (Ctrl-C stops and keeps a partial record)")
            guard await enter.nextLine() != nil else {
                try Task.checkCancellation()
                throw CLIDeviceError("standard input ended while waiting for Enter: run from a terminal, or with --unattended")
            }
        }, sleep: { until in
            let wait = until - clock.now()
            if wait > .zero { try await Task.sleep(for: wait) }
        })
        let interrupt = try StopOnSignal(message: "keeping the partial record…")
        Output.note("verifying \(identity.label): \(total) set points, about \(plan.totalDuration.humanReadable) plus the time to set each; "
            + "Ctrl-C or SIGTERM stops and keeps a partial record")
        let task = Task { await runner.run(workflow) { progress in ProgressPrinter.shared.show(progress) } }
        interrupt.arm { task.cancel() }
        let finished = await task.value
        interrupt.disarm()
        guard let run = finished else {
            Output.error("the verification ended without a result: report this as a bug")
            throw ExitCode.failure
        }
        let record: OximeterVerificationRecord
        do {
            record = try OximeterVerificationRecord(oximeter: identity, simulator: simulatorIdentity, operatorName: operatorName,
                                                    performedAt: Date(), run: run)
            try store.save(record)
        } catch {
            Output.error("\(error)")
            throw ExitCode.failure
        }
        try writeReports(record)
        Output.line(record.verdict.description)
        Output.line("Stored as \(record.id.uuidString.lowercased()) in \(database.path); reports in \(out).")
        switch record.verdict.outcome {
        case .pass: return
        case .fail: throw ExitCode(2)
        case .incomplete: throw ExitCode(3)
        }
    }

    private static func manufacturer(_ format: OximeterProtocol) -> String {
        switch format {
        case .noninDF2, .noninDF7, .noninDF8: "Nonin"
        case .masimo: "Masimo"
        case .contec: "Contec"
        }
    }

    /// True once the driver has published a sample (polling its latest sample), false after `limit`.
    static func waitForFirstSample(_ oximeter: any PulseOximeter, within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if oximeter.latestSample != nil { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return oximeter.latestSample != nil
    }

    private func writeReports(_ record: OximeterVerificationRecord) throws {
        try writeRecordFiles(into: out, base: "verification-\(record.oximeter.serialNumber)-\(record.id.uuidString.prefix(8).lowercased())", [
            (".html", CalibrationReport.html(record)),
            ("-readings.csv", CalibrationReport.readingsCSV(record)),
            ("-results.csv", CalibrationReport.resultsCSV(record)),
        ])
    }
}

/// Lines from standard input, read on one background thread (started at first use) and handed out in
/// order. `nextLine()` returns nil at end of input, or when the waiting task is cancelled (Ctrl-C).
final class LineReader: Sendable {
    static let standardInput = LineReader()
    private let state = Mutex<(lines: [String], ended: Bool)>(([], false))

    private init() {
        let thread = Thread { [self] in
            while let line = readLine() { state.withLock { $0.lines.append(line) } }
            state.withLock { $0.ended = true }
        }
        thread.name = "stdin"
        thread.start()
    }

    func nextLine() async -> String? {
        while !Task.isCancelled {
            let (line, ended) = state.withLock { state -> (String?, Bool) in
                state.lines.isEmpty ? (nil, state.ended) : (state.lines.removeFirst(), false)
            }
            if let line { return line }
            if ended { return nil }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }
}
