import Foundation
import InfusionCore
import Testing
@testable import Records

/// Programs, temporary databases and a realistic recorded session for the Records tests.
enum RecordFixtures {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let libraryURL = repository.appendingPathComponent("Sources/infusionctl/Resources/default-library.toml")

    static func library() throws -> DrugLibrary {
        try DrugLibrary.load(text: String(contentsOf: libraryURL, encoding: .utf8), source: "default-library.toml")
    }

    static func request(dose: Double = 0.35, loading: Double? = nil) -> ProgramRequest {
        ProgramRequest(
            profile: "ketamine-chronic-pain", drug: "Ketamine", concentration: .milligramsPerMillilitre(1), weight: .kilograms(80),
            dose: .weightBased(.milligramsPerKilogramPerHour(dose), .milligramsPerKilogramPerHour), duration: .seconds(2400),
            loading: loading.map { LoadingEntry(dose: .milligramsPerKilogram($0), over: .seconds(600)) })
    }

    /// 80 kg, 0.35 mg/kg/h of 1 mg/mL ketamine for 40 min (28 mL/h), optionally with a loading dose over 10 min.
    static func program(loading: Double? = nil) throws -> ValidatedProgram {
        try #require(ProgramValidator.validate(request(loading: loading), library: library()).acceptedProgram)
    }

    /// 0.6 mg/kg/h: above the soft maximum, confirmed with a reason by `confirmedBy`.
    static func overriddenProgram(confirmedBy: String? = "dr-lee") throws -> ValidatedProgram {
        let result = ProgramValidator.validate(request(dose: 0.6), library: try library())
        return try result.confirm(SoftLimitConfirmation(
            reason: "tolerated 0.6 mg/kg/h in three earlier sessions, \"per pain-clinic protocol\" <B>", confirmedBy: confirmedBy))
    }

    /// The current test's temporary folder (set by the `.temporaryFolder` trait, removed after the test).
    @TaskLocal static var folder: URL?

    /// A fresh, not yet existing database path in the test's temporary folder.
    static func temporaryDatabase(_ name: String = "records.sqlite") throws -> String {
        let base = folder ?? FileManager.default.temporaryDirectory.appendingPathComponent("records-tests-\(UUID().uuidString)")
        let subfolder = base.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: subfolder, withIntermediateDirectories: true)
        return subfolder.appendingPathComponent(name).path
    }

    static let origin = MonotonicInstant(nanoseconds: 5_000_000_000_000)
    static let startWall = Date(timeIntervalSince1970: 1_795_000_000)  // 2026-11-18

    static func at(_ seconds: Double) -> MonotonicInstant { origin + .milliseconds(Int64(seconds * 1000)) }
    static func wall(_ seconds: Double) -> Date { startWall.addingTimeInterval(seconds) }

    static func start(_ program: ValidatedProgram, patient: String = "P-0042", operatorID: String = "rn-okafor") -> SessionStart {
        SessionStart(patientID: patient, operatorID: operatorID, startedAt: startWall, startedMonotonic: origin, program: program,
                     devices: [DeviceDescription(role: "pump", model: "New Era NE-1000 (simulated)", wireProtocol: "newera-safe", path: "/dev/pts/3", serialNumber: "NE-77120"),
                               DeviceDescription(role: "oximeter", model: "Nonin 3150 (simulated)", wireProtocol: "nonin-2", path: "/dev/pts/4")])
    }

    /// Records a realistic 52-minute (3123 s) ketamine session: a 10-minute loading dose, a desaturation that the
    /// supervisor stops on (R-MON-01), acknowledgement and restart by the nurse, a probe-off spell, and the
    /// end of the program. 1 Hz vital signs and pump statuses.
    @discardableResult
    static func recordDemoSession(in store: RecordStore) throws -> SessionID {
        let program = try program(loading: 0.2)
        let id = try store.startSession(start(program))
        let loadingRate = try #require(program.calculation.loading?.pumpRate.actual.millilitresPerHour)
        let maintenanceRate = program.calculation.pumpRate.actual.millilitresPerHour
        let pausedFrom = 1339.0, resumedAt = 1461.0
        let end = 600 + 2400 + (resumedAt - pausedFrom) + 1  // 3123 s: 40 min of maintenance infused
        var volume = 0.0
        var events: [Double: [NewEvent]] = [:]
        func event(_ t: Double, _ kind: EventKind, _ message: String, rule: String? = nil, priority: AlarmPriority? = nil,
                   operatorID: String? = nil, reason: String? = nil, details: JSONValue? = nil) {
            events[t, default: []].append(NewEvent(kind: kind, monotonic: at(t), wallClock: wall(t), message: message, channel: "1",
                                                   ruleID: rule, priority: priority, operatorID: operatorID, reason: reason, details: details))
        }
        event(1, .commandSent, "set rate 96 mL/h, volume 16 mL; run", details: ["frame": "RAT 96.00 MH\\r"])
        event(1, .deviceReply, "pump infusing at 96 mL/h", details: ["frame": "00I"])
        event(600, .supervisorDecision, "loading dose complete: maintenance rate 28 mL/h")
        event(600, .commandSent, "set rate 28 mL/h", details: ["frame": "RAT 28.00 MH\\r"])
        event(1322, .alarmRaised, "SpO2 at or below 90 %: warning", rule: "R-MON-02", priority: .medium, details: ["spo2": 90])
        event(1338, .alarmRaised, "SpO2 below 90 % for 15 s: infusion paused", rule: "R-MON-01", priority: .high, details: ["spo2": 87.5, "hold_s": 15])
        event(1338, .supervisorDecision, "pause the pump: SpO2 below 90 % for 15 s (R-MON-01)", rule: "R-MON-01")
        event(1338, .commandSent, "stop", details: ["frame": "STP\\r"])
        event(1339, .deviceReply, "pump paused, 26.55 mL infused", details: ["frame": "00P"])
        event(1372, .alarmChanged, "high-priority alarm audio-paused for 120 s by rn-okafor", rule: "R-MON-01", priority: .high)
        event(1372, .operatorAction, "audio pause", operatorID: "rn-okafor", reason: "at the bedside, stimulating the patient")
        event(1405, .alarmCleared, "SpO2 back above 90 %", rule: "R-MON-02", priority: .medium)
        event(1430, .operatorAction, "acknowledge the supervisor stop", operatorID: "rn-okafor", reason: "patient roused, SpO2 96 % on room air")
        event(1430, .alarmCleared, "SpO2 pause alarm acknowledged", rule: "R-MON-01", priority: .high)
        event(1460, .operatorAction, "restart at 28 mL/h", operatorID: "rn-okafor", reason: "start checks passed; continue at the same rate per Dr. Lee")
        event(1460, .commandSent, "run", details: ["frame": "RUN\\r"])
        event(1461, .deviceReply, "pump infusing at 28 mL/h", details: ["frame": "00I"])
        event(2110, .alarmRaised, "no valid SpO2 for 10 s: probe off", rule: "R-MON-06", priority: .medium)
        event(2163, .alarmCleared, "valid SpO2 again", rule: "R-MON-06", priority: .medium)
        event(end, .supervisorDecision, "program complete: volume to be infused reached")

        var samples: [VitalSample] = [], statuses: [PumpStatus] = [], pending: [NewEvent] = []
        for second in 1...Int(end) {
            let t = Double(second)
            var spo2 = 97.4 + 0.8 * sin(t / 37) + 0.4 * sin(t / 5.3)
            if t > 1290 && t < 1440 {
                let depth = t < 1340 ? (t - 1290) / 50 : max(0, 1 - (t - 1340) / 80)
                spo2 -= 10.8 * depth
            }
            let pulse = 74 + 5 * sin(t / 180) + 2 * sin(t / 7.1) + (t > 1330 && t < 1420 ? 9 : 0)
            let probeOff = t >= 2100 && t < 2162
            samples.append(VitalSample(
                arrivedAt: at(t), spo2: probeOff ? nil : .percent((spo2 * 10).rounded() / 10),
                pulseRate: probeOff ? nil : .beatsPerMinute(pulse.rounded()), perfusionIndex: probeOff ? nil : .percent(3.1),
                quality: probeOff ? [.probeOff] : []))
            let infusing = !(t >= pausedFrom && t < resumedAt) && t < end
            let rate = t <= 600 ? loadingRate : maintenanceRate
            if infusing { volume += rate / 3600 }
            statuses.append(PumpStatus(receivedAt: at(t) + .milliseconds(200), state: infusing ? .infusing : (t >= end ? .stopped : .paused),
                                       rate: .millilitresPerHour(rate), volumeInfused: .millilitres((volume * 1000).rounded() / 1000)))
            pending += events[t] ?? []
            // A live runner commits at least once a second; a fixture may batch a minute to keep the tests fast.
            if second % 60 == 0 || second == Int(end) {
                try store.append(RecordBatch(events: pending, samples: samples, pumpStatuses: statuses), to: id)
                samples.removeAll(keepingCapacity: true)
                statuses.removeAll(keepingCapacity: true)
                pending.removeAll(keepingCapacity: true)
            }
        }
        try store.finishSession(id, as: .completed, wallClock: wall(end + 1), monotonic: at(end + 1), message: "session completed: program delivered")
        return id
    }
}

/// Gives each test (case) its own temporary folder for databases, and removes it afterwards.
struct TemporaryFolderTrait: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { true }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard testCase != nil else { return try await function() }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("records-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try await RecordFixtures.$folder.withValue(folder) { try await function() }
    }
}

extension Trait where Self == TemporaryFolderTrait {
    /// Each test gets a temporary folder for its databases, removed when it ends.
    static var temporaryFolder: TemporaryFolderTrait { TemporaryFolderTrait() }
}
