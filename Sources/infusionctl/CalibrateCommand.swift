import ArgumentParser
import Calibration
import DeviceIO
import Drivers
import Foundation
import InfusionCore
import Records
import Synchronization

/// `infusionctl calibrate`: technician calibrations.
struct CalibrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Calibrate a device (gravimetric pump accuracy test).",
        subcommands: [CalibratePumpCommand.self])
}

/// Opens pump drivers by protocol name. Only families whose driver is in this build are available.
enum PumpDrivers {
    /// Opens the pump on `path` (every family `makePump` knows), or explains why it cannot.
    static func open(_ name: DeviceProtocolName, path: String) throws(CLIDeviceError) -> any InfusionPump {
        guard name.role == .syringePump else {
            throw CLIDeviceError("\(name) is not a pump protocol: use one of \(pumpFactoryProtocols.joined(separator: ", "))")
        }
        do throws(PumpFactoryError) {
            return try makePump(protocol: name.rawValue, device: path, options: PumpFactoryOptions(name: "pump under test \(path)"))
        } catch {
            throw CLIDeviceError(error.description)
        }
    }
}

/// A device could not be used; the message says what to do.
struct CLIDeviceError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `infusionctl calibrate pump`: the IEC 60601-2-24 gravimetric accuracy test (docs/calibration.md).
struct CalibratePumpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pump",
        abstract: "Gravimetric accuracy test of a pump into an MT-SICS balance (IEC 60601-2-24 method).",
        discussion: """
            Zeroes the balance, waits for it to settle, starts the pump at --rate, weighs every 30 s and computes \
            the flow, the overall volume error and the trumpet curve (standard: a 120-minute run, analysis of the \
            second hour; --quick: 30 minutes, analysis of minutes 10-30, indicative only). The record is stored in \
            the record database and the report (HTML with the trumpet plot, CSV) written to --out.

            Progress and the time remaining are shown on standard error. Ctrl-C or SIGTERM stops the pump and keeps the \
            partial record, marked incomplete.

            Exit codes: 0 pass; 2 fail; 3 incomplete (interrupted or aborted); 1 a device or the database could \
            not be used; 64 usage error.
            """)

    @Option(help: ArgumentHelp("The pump's port, such as /dev/infusion/pump0.", valueName: "PATH"))
    var device: String

    @Option(name: .customLong("protocol"), help: ArgumentHelp("The pump's protocol: newera, alaris, fresenius.", valueName: "NAME"))
    var protocolName: String

    @Option(help: ArgumentHelp("The MT-SICS balance's port, such as /dev/infusion/balance0.", valueName: "PATH"))
    var balance: String

    @Option(help: ArgumentHelp("The test rate, such as \"25 mL/h\".", valueName: "RATE"))
    var rate: String

    @Option(help: ArgumentHelp("Run length (a multiple of 30 s; analysis of its second half). Default: 120 min.", valueName: "DURATION"))
    var duration: String?

    @Flag(help: "The 30-minute routine check (not the standard's method; indicative only).")
    var quick = false

    @Option(name: .customLong("operator"), help: ArgumentHelp("The technician's name or id.", valueName: "NAME"))
    var operatorName: String

    @Option(help: ArgumentHelp("Water temperature, °C (15-30), for its density. Default: 20.", valueName: "CELSIUS"))
    var temperature: Double = 20

    @Option(help: ArgumentHelp("The pump's serial number, when the pump does not report one.", valueName: "SERIAL"))
    var pumpSerial: String?

    @OptionGroup var database: DatabaseOption

    @Option(help: ArgumentHelp("Folder for the HTML and CSV report. Default: the current folder.", valueName: "DIR"))
    var out: String = "."

    /// The plan from the arguments; throws `ValidationError` for bad values.
    func plan() throws -> (PumpCalibrationPlan, TestLiquid) {
        let setRate: VolumeRate
        do { setRate = try VolumeRate.parse(rate) } catch { throw ValidationError("--rate: \(error)") }
        let liquid: TestLiquid
        do { liquid = try TestLiquid.water(celsius: temperature) } catch { throw ValidationError("--temperature: \(error)") }
        var method = GravimetricMethod.standard()
        if quick {
            if duration != nil { throw ValidationError("--quick has its own 30-minute length: give --quick or --duration, not both") }
            method = .quick()
        } else if let duration {
            let length: Duration
            do { length = try Duration.parse(duration) } catch { throw ValidationError("--duration: \(error)") }
            if length != method.duration {
                let half = Duration.seconds(Int64((length.seconds / 2 / 30).rounded(.down)) * 30)
                method = GravimetricMethod(mode: .custom, duration: length, analysisStart: half, analysisEnd: length)
            }
        }
        let plan = PumpCalibrationPlan(setRate: setRate, method: method, density: liquid.density)
        do { return (try plan.validated(), liquid) } catch { throw ValidationError("\(error)") }
    }

    func run() async throws {
        let (plan, liquid) = try plan()
        if operatorName.allSatisfy(\.isWhitespace) { throw ValidationError("--operator: give the technician's name or id") }
        guard let family = DeviceProtocolName(rawValue: protocolName) else {
            throw ValidationError("--protocol: unknown protocol \"\(protocolName)\"; pumps: newera, alaris, fresenius")
        }
        let pump: any InfusionPump
        do { pump = try PumpDrivers.open(family, path: device) } catch {
            Output.error("\(error)")
            throw ExitCode.failure
        }
        defer { pump.close() }
        let scale = MTSICSBalance(path: balance)
        defer { scale.close() }
        let identities: (DeviceIdentity, DeviceIdentity)
        do {
            identities = try await identify(pump: pump, family: family, balance: scale)
        } catch {
            Output.error("\(error)")
            throw ExitCode.failure
        }
        let store: RecordStore
        do { store = try RecordStore.open(path: database.path) } catch {
            Output.error("\(error)")
            throw ExitCode.failure
        }
        let workflow: PumpCalibrationWorkflow
        do { workflow = try PumpCalibrationWorkflow(plan: plan) } catch { throw ValidationError("\(error)") }
        let clock = SystemMonotonicClock()
        let runner = PumpCalibrationRunner(balance: scale, pump: InfusionPumpUnderTest(pump), clock: clock) { until in
            let wait = until - clock.now()
            if wait > .zero { try await Task.sleep(for: wait) }
        }
        let interrupt = try StopOnSignal(message: "stopping the pump and keeping the partial record…")
        Output.note("calibrating \(identities.0.label) at \(plan.setRate) for \(plan.method.duration.humanReadable) (+ settling); Ctrl-C or SIGTERM stops the pump and keeps a partial record")
        let task = Task { await runner.run(workflow) { progress in ProgressPrinter.shared.show(progress) } }
        interrupt.arm { task.cancel() }
        let finished = await task.value
        interrupt.disarm()
        guard let run = finished else {
            Output.error("the calibration ended without a result: report this as a bug")
            throw ExitCode.failure
        }
        let record: PumpCalibrationRecord
        do {
            record = try PumpCalibrationRecord(pump: identities.0, balance: identities.1, operatorName: operatorName, performedAt: Date(),
                                               liquid: liquid, run: run)
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

    private func identify(pump: any InfusionPump, family: DeviceProtocolName, balance: MTSICSBalance) async throws -> (DeviceIdentity, DeviceIdentity) {
        let balanceIdentity = try await balance.identify()
        guard let pumpIdentity = await pump.identify().value else {
            throw CLIDeviceError("the pump on \(device) did not identify itself: check the cable, its address and baud rate")
        }
        guard let serial = pumpIdentity.serialNumber ?? pumpSerial else {
            throw CLIDeviceError("the pump does not report a serial number: give it from its label with --pump-serial")
        }
        return (
            try DeviceIdentity(kind: .pump, model: pumpIdentity.model, serialNumber: serial, firmware: pumpIdentity.firmware,
                               protocolName: family.rawValue, port: device),
            try DeviceIdentity(kind: .balance, manufacturer: "Mettler Toledo", model: balanceIdentity.model,
                               serialNumber: balanceIdentity.serialNumber, firmware: balanceIdentity.softwareVersion,
                               protocolName: "mt-sics", port: balance.name)
        )
    }

    private func writeReports(_ record: PumpCalibrationRecord) throws {
        try writeRecordFiles(into: out, base: "calibration-\(record.pump.serialNumber)-\(record.id.uuidString.prefix(8).lowercased())", [
            (".html", CalibrationReport.html(record)),
            ("-samples.csv", CalibrationReport.samplesCSV(record)),
            ("-results.csv", CalibrationReport.resultsCSV(record)),
        ])
    }
}

/// Writes a stored record's report files (`base` + each suffix) into the folder `out`, creating it.
/// The record is already stored: a failure says so, and exits with a failure status.
func writeRecordFiles(into out: String, base: String, _ files: [(suffix: String, text: String)]) throws {
    let folder = URL(fileURLWithPath: out)
    do {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for file in files {
            try file.text.write(to: folder.appendingPathComponent(base + file.suffix), atomically: true, encoding: .utf8)
        }
    } catch {
        Output.error("the record is stored, but the report could not be written to \(out): \(error). Check the folder; reprint it later")
        throw ExitCode.failure
    }
}

/// Prints progress to standard error, at most every 10 s (and on every phase change).
final class ProgressPrinter: Sendable {
    static let shared = ProgressPrinter()
    private let last = Mutex<(phase: CalibrationPhase?, at: ContinuousClock.Instant?)>((nil, nil))

    func show(_ progress: CalibrationProgress) {
        let now = ContinuousClock.now
        let due = last.withLock { last -> Bool in
            guard last.phase != progress.phase || last.at.map({ now - $0 >= .seconds(10) }) ?? true else { return false }
            last = (progress.phase, now)
            return true
        }
        if due { FileHandle.standardError.write(Data("\(progress)\n".utf8)) }
    }
}

/// Cancels a calibration or verification run on the first SIGINT (Ctrl-C) or SIGTERM, saying so on
/// standard error; later signals are absorbed while the run stops the pump and keeps its record.
/// `init` installs the handlers (call it before announcing the run); `arm` says what to do (at once when
/// a signal already came); `disarm` stops listening and restores the default handlers. Any thread.
final class StopOnSignal: Sendable {
    private let message: String
    private let fired = Atomic<Bool>(false)
    private let registration = Mutex<TerminationSignals.Registration?>(nil)

    /// Installs the SIGINT and SIGTERM handlers; throws exit 1 (after saying why) when it cannot.
    init(message: String) throws {
        self.message = message
        do throws(TerminationSignals.Unavailable) {
            try TerminationSignals.install()
        } catch {
            Output.error("\(error); nothing was started")
            throw ExitCode.failure
        }
    }

    /// Runs `action` once, on the first signal since `init` (at once if it already arrived).
    func arm(_ action: @escaping @Sendable () -> Void) {
        let made = TerminationSignals.onSignal { [self] number in
            guard !fired.exchange(true, ordering: .acquiringAndReleasing) else { return }
            FileHandle.standardError.write(Data("\n\(TerminationSignals.name(of: number)): \(message)\n".utf8))
            action()
        }
        registration.withLock { $0 = made }
    }

    /// Stops listening and puts back the default handlers.
    func disarm() {
        registration.withLock { $0?.cancel() }
        TerminationSignals.restoreDefaults()
    }
}
