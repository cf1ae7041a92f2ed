import DeviceSimulators
import Foundation
import InfusionCore
import Records
import SessionSimulation
import Supervisor
import Testing

/// Decisions of a virtual session go to a sink as they are made: in memory, or into the durable record.
@Suite("Virtual session: decision recording")
struct VirtualSessionRecordingTests {
    @Test("an in-memory sink receives every decision of the summary, in order")
    func inMemorySink() throws {
        let sink = InMemoryDecisionSink()
        let session = try VirtualSession(program: try Programs.ketamine(),
                                         scenario: scenario(VirtualSessionScenarioTests.longDesaturation),
                                         script: .start(at: .seconds(5)), sink: sink)
        let summary = session.run(until: .seconds(180))
        #expect(summary.firstDecision(.spo2Pause) { $0 == .stopCommanded } != nil, "\(summary.timeline)")
        #expect(sink.events == summary.decisions)
    }

    @Test("a record-store sink commits the decisions as events: the stop, the alarm with its priority, the operator's start")
    func recordStoreSink() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("virtual-session-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try RecordStore.open(path: directory.appendingPathComponent("records.sqlite").path)
        defer { try? store.close() }
        let program = try Programs.ketamine()

        // The store's session starts at the virtual session's start instant (its time axis).
        let startedAt = Date(timeIntervalSince1970: 1_800_000_000)
        let id = try store.startSession(SessionStart(patientID: "P-1", operatorID: "nurse-1", startedAt: startedAt,
                                                     startedMonotonic: VirtualSession.origin, program: program))
        let sink = RecordStoreDecisionSink(store: store, session: id, startedMonotonic: VirtualSession.origin, startedAt: startedAt,
                                           operatorID: "nurse-1")
        let session = try VirtualSession(program: program, scenario: scenario(VirtualSessionScenarioTests.longDesaturation),
                                         script: .start(at: .seconds(5)), sink: sink)
        #expect(session.startedAt == VirtualSession.origin)
        let summary = session.run(until: .seconds(180))

        #expect(sink.failures == 0, "\(String(describing: sink.lastError))")
        #expect(sink.written == summary.decisions.count)
        // Besides the session's own state changes, one event per decision.
        let events = try store.load(id).events.filter { $0.kind != .sessionStateChange }
        #expect(events.count == summary.decisions.count)
        let start = try #require(events.first { $0.kind == .operatorAction })
        #expect(start.operatorID == "nurse-1")
        let stop = try #require(events.first { $0.kind == .supervisorDecision && $0.ruleID == "R-MON-01" })
        #expect(stop.message.contains("stop"), "\(stop.message)")
        let alarm = try #require(events.first { $0.kind == .alarmRaised && $0.ruleID == "R-MON-01" })
        #expect(alarm.priority == .high)
        #expect(alarm.monotonic.map { $0 - session.startedAt } ?? .zero > .seconds(120))
    }
}
