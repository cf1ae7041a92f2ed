import Foundation
import Synchronization

/// One JSON event of `infusionctl run --json-events` (docs/run-contract.md), with the fields the demo uses.
/// Every field is optional and read leniently: a field of an unexpected type is treated as absent, so
/// one odd field never loses the whole event. A value; any thread.
struct ControllerEvent: Decodable, Sendable {
    /// One alarm in a `status` event's `alarms` array.
    struct Alarm: Decodable, Sendable, Hashable {
        var cause: String
        var priority: String?
        var state: String?
        var acknowledged: Bool?
    }

    var type: String
    var t: Double?
    var session: Int64?
    var mode: String?
    var elapsedS: Double?
    var remainingS: Double?
    var durationS: Double?
    var progress: Double?
    var spo2: Double?
    var pulseRate: Double?
    var rateMlH: Double?
    var deliveredMl: Double?
    var deliveredMg: Double?
    var alarms: [Alarm]?
    var audioPaused: Bool?
    var cause: String?
    var priority: String?
    var state: String?
    var message: String?
    var action: String?
    var rule: String?
    var kind: String?
    var modeBefore: String?
    var modeAfter: String?
    var command: String?
    var accepted: Bool?
    var reason: String?
    var outcome: String?
    var exitCode: Int?
    var pumpState: String?
    var volumeMl: Double?
    var stoppedByController: Bool?
    var drug: String?
    var dose: String?

    enum CodingKeys: String, CodingKey {
        case type, t, session, mode, progress, spo2, alarms, cause, priority, state, message, action, rule, kind, command
        case accepted, reason, outcome, drug, dose
        case elapsedS = "elapsed_s", remainingS = "remaining_s", durationS = "duration_s", pulseRate = "pulse_rate"
        case rateMlH = "rate_ml_h", deliveredMl = "delivered_ml", deliveredMg = "delivered_mg", audioPaused = "audio_paused"
        case modeBefore = "mode_before", modeAfter = "mode_after", exitCode = "exit_code", pumpState = "pump_state"
        case volumeMl = "volume_ml", stoppedByController = "stopped_by_controller"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(String.self, forKey: .type)
        func get<T: Decodable>(_ key: CodingKeys) -> T? { (try? c.decodeIfPresent(T.self, forKey: key)) ?? nil }
        t = get(.t); session = get(.session); mode = get(.mode); elapsedS = get(.elapsedS); remainingS = get(.remainingS)
        durationS = get(.durationS); progress = get(.progress); spo2 = get(.spo2); pulseRate = get(.pulseRate)
        rateMlH = get(.rateMlH); deliveredMl = get(.deliveredMl); deliveredMg = get(.deliveredMg); alarms = get(.alarms)
        audioPaused = get(.audioPaused); cause = get(.cause); priority = get(.priority); state = get(.state)
        message = get(.message); action = get(.action); rule = get(.rule); kind = get(.kind); modeBefore = get(.modeBefore)
        modeAfter = get(.modeAfter); command = get(.command); accepted = get(.accepted); reason = get(.reason)
        outcome = get(.outcome); exitCode = get(.exitCode); pumpState = get(.pumpState); volumeMl = get(.volumeMl)
        stoppedByController = get(.stoppedByController); drug = get(.drug); dose = get(.dose)
    }

    /// Parses one line of `--json-events` output; nil for a line that is not a JSON object with a `type`.
    static func parse(_ line: String) -> ControllerEvent? {
        try? JSONDecoder().decode(ControllerEvent.self, from: Data(line.utf8))
    }
}

/// The controller (`infusionctl run`) running as a child process: its standard input takes operator
/// commands, its standard output (JSON events, one per line) is read on a thread of its own and queued,
/// its standard error goes to a log file. Owns the child and the pipes. Any thread may call any method.
final class ControllerProcess: @unchecked Sendable {
    /// How a run ended.
    enum Ending: Hashable, Sendable {
        case exited(Int32)
        case killed(Int32)
    }

    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let queue = Mutex<[ControllerEvent]>([])
    private let rawLines: FileHandle?
    private let finishedReading = DispatchSemaphore(value: 0)

    /// Starts `executable` with `arguments`; its events are also appended to `eventLog` and its standard
    /// error to `errorLog` (both created or truncated). Throws when the process cannot be started.
    init(executable: String, arguments: [String], eventLog: String, errorLog: String) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        _ = FileManager.default.createFile(atPath: errorLog, contents: nil)
        _ = FileManager.default.createFile(atPath: eventLog, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: errorLog) ?? FileHandle.nullDevice
        rawLines = FileHandle(forWritingAtPath: eventLog)
        try process.run()
        let reader = output.fileHandleForReading
        let thread = Thread { [self] in
            var pending = Data()
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                rawLines?.write(chunk)
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    if let event = ControllerEvent.parse(line) { queue.withLock { $0.append(event) } }
                }
            }
            finishedReading.signal()
        }
        thread.name = "controller events"
        thread.start()
    }

    /// The child's process id.
    var pid: Int32 { process.processIdentifier }

    /// The events received since the last call, in order.
    func drain() -> [ControllerEvent] {
        queue.withLock { events in
            defer { events.removeAll(keepingCapacity: true) }
            return events
        }
    }

    /// Writes one operator command line to the child's standard input (ignored once it has exited).
    func send(_ line: String) {
        guard process.isRunning else { return }
        try? input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    /// Sends SIGKILL.
    func kill() {
        if process.isRunning { _ = Glibc.kill(process.processIdentifier, SIGKILL) }
    }

    /// How the run ended, or nil while it runs. Once it has ended, every event it wrote has been queued.
    var ending: Ending? {
        guard !process.isRunning else { return nil }
        finishedReading.wait()
        finishedReading.signal()
        return process.terminationReason == .uncaughtSignal ? .killed(process.terminationStatus) : .exited(process.terminationStatus)
    }
}
