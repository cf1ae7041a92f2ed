import Foundation
import GRDB
import InfusionCore
import Synchronization
import Testing
@testable import Records

@Suite("RecordStore: opening, schema and durability settings", .temporaryFolder)
struct RecordStoreOpenTests {
    @Test("a new file gets the schema from the migrations, WAL, synchronous=FULL and foreign keys on")
    func newDatabase() throws {
        let path = try RecordFixtures.temporaryDatabase()
        #expect(!FileManager.default.fileExists(atPath: path))
        let store = try RecordStore.open(path: path)
        #expect(FileManager.default.fileExists(atPath: path))
        // Pragmas are per connection: read them on the writer, which is the one that commits.
        let (synchronous, journal, foreignKeys, migrations, tables) = try store.pool.write { db throws in
            (try Int.fetchOne(db, sql: "PRAGMA synchronous"), try String.fetchOne(db, sql: "PRAGMA journal_mode"),
             try Bool.fetchOne(db, sql: "PRAGMA foreign_keys"), try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations"),
             try ["sessions", "events", "vital_samples", "pump_statuses"].filter { try db.tableExists($0) })
        }
        #expect(synchronous == 2)  // FULL
        #expect(journal == "wal")
        #expect(foreignKeys == true)
        #expect(migrations == RecordStore.schemaVersions)
        #expect(tables.count == 4)
        #expect(try store.sessions().isEmpty)
        try store.close()
    }

    @Test("an empty (zero-byte) file is migrated from nothing, and reopening applies nothing twice")
    func emptyFile() throws {
        let path = try RecordFixtures.temporaryDatabase()
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        let store = try RecordStore.open(path: path)
        let id = try store.startSession(RecordFixtures.start(try RecordFixtures.program()))
        try store.close()
        let again = try RecordStore.open(path: path, integrityCheck: .full)
        #expect(try again.pool.read { try String.fetchAll($0, sql: "SELECT identifier FROM grdb_migrations") } == RecordStore.schemaVersions)
        #expect(try again.session(id)?.state == .running)
    }

    @Test("createIfMissing false: a missing file is a clear notFound error and no file is created")
    func notFound() throws {
        let path = try RecordFixtures.temporaryDatabase()
        #expect(throws: RecordStoreError.notFound(path: path)) { try RecordStore.open(path: path, createIfMissing: false) }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("the default path: $INFUSIONCONTROL_DB, else ./infusioncontrol.sqlite")
    func defaultPath() {
        #expect(RecordStore.defaultPath(environment: ["INFUSIONCONTROL_DB": "/var/lib/ic/records.sqlite"]) == "/var/lib/ic/records.sqlite")
        #expect(RecordStore.defaultPath(environment: ["INFUSIONCONTROL_DB": ""]) == "infusioncontrol.sqlite")
        #expect(RecordStore.defaultPath(environment: [:]) == "infusioncontrol.sqlite")
    }

    @Test("a directory is refused with cannotOpen")
    func directory() throws {
        let path = try RecordFixtures.temporaryDatabase()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        #expect { try RecordStore.open(path: path) } throws: { error in
            guard case .cannotOpen(let p, _) = error as? RecordStoreError else { return false }
            return p == path
        }
    }
}

@Suite("RecordStore: damaged and foreign files are refused, never repaired", .temporaryFolder)
struct RecordStoreIntegrityTests {
    /// A database with enough rows to span many pages, closed (checkpointed into the main file).
    static func populatedDatabase() throws -> (path: String, pageSize: Int) {
        let path = try RecordFixtures.temporaryDatabase()
        let store = try RecordStore.open(path: path)
        let id = try store.startSession(RecordFixtures.start(try RecordFixtures.program()))
        var events: [NewEvent] = []
        for i in 0..<3000 {
            events.append(NewEvent(kind: .note, monotonic: RecordFixtures.at(Double(i)), wallClock: RecordFixtures.wall(Double(i)),
                                   message: "event \(i) " + String(repeating: "x", count: 60)))
        }
        try store.append(RecordBatch(events: events), to: id)
        let pageSize = try store.pool.read { try Int.fetchOne($0, sql: "PRAGMA page_size") } ?? 4096
        try store.close()
        let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        #expect(wal == 0, "closing checkpoints the WAL into the database file")
        return (path, pageSize)
    }

    static func overwrite(_ path: String, at offset: Int, with bytes: [UInt8]) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: Data(bytes))
        try handle.close()
    }

    @Test("a damaged page: corrupt error naming the file and what to do; the file is left exactly as it was")
    func corruptPage() throws {
        let (path, pageSize) = try Self.populatedDatabase()
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let pages = size / pageSize
        #expect(pages > 20)
        // Scribble over the b-tree header of a page in the middle of the events table.
        var scribble = [UInt8](repeating: 0, count: 64)
        for i in scribble.indices { scribble[i] = UInt8((i * 37 + 11) % 256) }
        try Self.overwrite(path, at: (pages / 2) * pageSize, with: scribble)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        var caught: RecordStoreError?
        do { _ = try RecordStore.open(path: path) } catch { caught = error }
        guard case .corrupt(let errorPath, let problems) = caught else {
            Issue.record("expected a corrupt error, got \(String(describing: caught))")
            return
        }
        #expect(errorPath == path)
        #expect(!problems.isEmpty)
        let message = caught?.description ?? ""
        #expect(message.contains(path))
        #expect(message.contains("integrity check"))
        #expect(message.contains("nothing was repaired"))
        #expect(message.contains("new file"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "no silent repair: the file is unchanged")

        // The full check finds it too.
        #expect(throws: RecordStoreError.self) { try RecordStore.open(path: path, integrityCheck: .full) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test("a damaged header: not an SQLite database, file unchanged")
    func corruptHeader() throws {
        let (path, _) = try Self.populatedDatabase()
        try Self.overwrite(path, at: 0, with: Array("garbage, not SQLite".utf8))
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect { try RecordStore.open(path: path) } throws: { error in
            guard case .notARecordDatabase(let p, let reason) = error as? RecordStoreError else { return false }
            return p == path && reason.contains("not an SQLite database")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    }

    @Test("a text file is not a database")
    func textFile() throws {
        let path = try RecordFixtures.temporaryDatabase()
        try Data(String(repeating: "patient notes\n", count: 400).utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: RecordStoreError.self) { try RecordStore.open(path: path) }
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasPrefix("patient notes"))
    }

    @Test("another application's SQLite database is refused, not extended with our tables")
    func foreignDatabase() throws {
        let path = try RecordFixtures.temporaryDatabase()
        let queue = try DatabaseQueue(path: path)
        try queue.write { try $0.execute(sql: "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)") }
        try queue.close()
        #expect { try RecordStore.open(path: path) } throws: { error in
            guard case .notARecordDatabase(_, let reason) = error as? RecordStoreError else { return false }
            return reason.contains("invoices")
        }
        let check = try DatabaseQueue(path: path)
        #expect(try check.read { try $0.tableExists("sessions") } == false)
    }

    @Test("a database written by a newer version (unknown migration) is refused")
    func newerSchema() throws {
        let path = try RecordFixtures.temporaryDatabase()
        try RecordStore.open(path: path).close()
        let queue = try DatabaseQueue(path: path)
        try queue.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')") }
        try queue.close()
        #expect(throws: RecordStoreError.newerSchema(path: path, unknownMigrations: ["v99-from-the-future"])) {
            try RecordStore.open(path: path)
        }
    }
}

@Suite("RecordStore: sessions, events, samples and pump statuses", .temporaryFolder)
struct RecordStoreWriteTests {
    @Test("a session round-trips with its program, library identity, devices and start events")
    func sessionRoundTrip() throws {
        let store = try RecordStore.open(path: try RecordFixtures.temporaryDatabase())
        let validated = try RecordFixtures.program(loading: 0.2)
        let id = try store.startSession(RecordFixtures.start(validated))
        let session = try #require(try store.session(id))
        #expect(session.state == .running)
        #expect(session.patientID == "P-0042" && session.operatorID == "rn-okafor")
        #expect(session.startedAt == RecordFixtures.startWall)
        #expect(session.startedMonotonic == RecordFixtures.origin)
        #expect(session.endedAt == nil)
        #expect(session.program == RecordedProgram(validated))
        #expect(session.program.libraryName == validated.libraryName)
        #expect(session.program.librarySHA256 == validated.librarySHA256)
        #expect(session.program.pumpRate.actual == .millilitresPerHour(28))
        #expect(session.program.loading?.pumpRate.actual == .millilitresPerHour(96))
        #expect(session.program.cumulativeHardLimit == .milligramsPerKilogram(4))
        #expect(session.devices.count == 2 && session.devices[0].serialNumber == "NE-77120")
        let events = try store.events(of: id)
        #expect(events.map(\.sequence) == [1])
        #expect(events[0].kind == .sessionStateChange && events[0].details == ["state": "running"])
    }

    @Test("a soft-limit override is recorded with its reason and who confirmed it, as a column and an event")
    func softLimitOverride() throws {
        let store = try RecordStore.open(path: try RecordFixtures.temporaryDatabase())
        let id = try store.startSession(RecordFixtures.start(try RecordFixtures.overriddenProgram()))
        let session = try #require(try store.session(id))
        #expect(session.program.confirmation?.confirmedBy == "dr-lee")
        #expect(session.program.confirmation?.reason.contains("three earlier sessions") == true)
        #expect(session.program.overriddenFindings.map(\.rule) == ["R-DL-05"])
        let events = try store.events(of: id)
        #expect(events.map(\.kind) == [.sessionStateChange, .softLimitConfirmation])
        #expect(events[1].operatorID == "dr-lee")
        #expect(events[1].ruleID == "R-DL-05")
        #expect(events[1].reason == session.program.confirmation?.reason)
    }

    @Test("an override that names no one is refused, and nothing is written")
    func overrideWithoutWho() throws {
        let store = try RecordStore.open(path: try RecordFixtures.temporaryDatabase())
        #expect { try store.startSession(RecordFixtures.start(try RecordFixtures.overriddenProgram(confirmedBy: nil))) } throws: { error in
            guard case .invalidInput(let what) = error as? RecordStoreError else { return false }
            return what.contains("names no one")
        }
        #expect(try store.sessions().isEmpty)
        #expect(throws: RecordStoreError.self) { try store.startSession(RecordFixtures.start(try RecordFixtures.program(), patient: "  ")) }
        #expect(try store.sessions().isEmpty)
    }

    @Test("events get gapless sequence numbers; every field round-trips")
    func events() throws {
        let store = try RecordStore.open(path: try RecordFixtures.temporaryDatabase())
        let id = try store.startSession(RecordFixtures.start(try RecordFixtures.program()))
        let alarm = NewEvent.alarm(.alarmRaised, "SpO2 below 88 % for 15 s", priority: .high, ruleID: "R-MON-01",
                                   monotonic: RecordFixtures.at(100), wallClock: RecordFixtures.wall(100), channel: "1",
                                   details: ["spo2": 86.5, "hold_s": 15, "frames": ["a", "b"], "ok": false, "none": nil])
        #expect(try store.append(alarm, to: id) == 2)
        let action = NewEvent.operatorAction("acknowledge", operatorID: "rn-okafor", reason: "patient roused",
                                             monotonic: RecordFixtures.at(130), wallClock: RecordFixtures.wall(130))
        #expect(try store.append(action, to: id) == 3)
        #expect(try store.append(RecordBatch(events: [action, action]), to: id) == [4, 5])
        #expect(try store.lastSequence(of: id) == 5)
        let events = try store.events(of: id, after: 1)
        #expect(events.map(\.sequence) == [2, 3, 4, 5])
        let stored = events[0]
        #expect(stored.kind == .alarmRaised && stored.priority == .high && stored.ruleID == "R-MON-01" && stored.channel == "1")
        #expect(stored.monotonic == RecordFixtures.at(100))
        #expect(stored.wallClock == RecordFixtures.wall(100))
        #expect(stored.details == alarm.details)
        #expect(events[1].operatorID == "rn-okafor" && events[1].reason == "patient roused")
    }

    @Test("bad events are refused whole and change nothing", arguments: [
        NewEvent(kind: .operatorAction, monotonic: .origin, wallClock: Date(timeIntervalSince1970: 0), message: "stop"),
        NewEvent(kind: .softLimitConfirmation, monotonic: .origin, wallClock: Date(timeIntervalSince1970: 0), message: "override", operatorID: "dr-lee"),
        NewEvent(kind: .alarmRaised, monotonic: .origin, wallClock: Date(timeIntervalSince1970: 0), message: "low SpO2"),
        NewEvent(kind: .note, monotonic: .origin, wallClock: Date(timeIntervalSince1970: 0), message: "   "),
        NewEvent(kind: .note, monotonic: .origin, wallClock: Date(timeIntervalSince1970: 0), message: "nan", details: ["x": .number(.nan)]),
    ])
    func badEvents(event: NewEvent) throws {
        let store = try RecordStore.open(path: try RecordFixtures.temporaryDatabase())
        let id = try store.startSession(RecordFixtures.start(try RecordFixtures.program()))
        let good = NewEvent(kind: .note, monotonic: .origin, wallClock: Date(timeIntervalSince1970: 0), message: "fine")
        #expect(throws: RecordStoreError.self) { try store.append(event, to: id) }
        #expect(throws: RecordStoreError.self) { try store.append(RecordBatch(events: [good, event]), to: id) }
        #expect(try store.lastSequence(of: id) == 1, "nothing of a refused batch is written")
    }

    @Test("an unknown session is a clear error")
    func unknownSession() throws {
        let store = try RecordStore.open(path: try RecordFixtures.temporaryDatabase())
        let ghost = SessionID(rawValue: 99)
        let note = NewEvent(kind: .note, monotonic: .origin, wallClock: Date(timeIntervalSince1970: 0), message: "hello")
        #expect(throws: RecordStoreError.unknownSession(ghost)) { try store.append(note, to: ghost) }
        #expect(throws: RecordStoreError.unknownSession(ghost)) { try store.load(ghost) }
        #expect(try store.session(ghost) == nil)
        #expect(RecordStoreError.unknownSession(ghost).description.contains("infusionctl sessions"))
    }

    @Test("samples and pump statuses round-trip exactly, with missing values and flags")
    func samplesAndStatuses() throws {
        let store = try RecordStore.open(path: try RecordFixtures.temporaryDatabase())
        let id = try store.startSession(RecordFixtures.start(try RecordFixtures.program()))
        let samples = [
            VitalSample(arrivedAt: RecordFixtures.at(1.013), measuredAt: RecordFixtures.at(1), spo2: .percent(97), pulseRate: .beatsPerMinute(72), perfusionIndex: .percent(3.25)),
            VitalSample(arrivedAt: RecordFixtures.at(2), spo2: nil, pulseRate: nil, quality: [.probeOff, .searching]),
            VitalSample(arrivedAt: RecordFixtures.at(3), spo2: .percent(86.4), pulseRate: .beatsPerMinute(131), quality: [.artifact, .lowBattery]),
        ]
        let statuses = [
            PumpStatus(receivedAt: RecordFixtures.at(1), state: .infusing, rate: .millilitresPerHour(28), volumeInfused: .millilitres(0.007)),
            PumpStatus(receivedAt: RecordFixtures.at(2), state: .unknown),
            PumpStatus(receivedAt: RecordFixtures.at(3), state: .stopped, rate: .millilitresPerHour(0), volumeInfused: .millilitres(0.02), alarms: [.occlusion, .lowBattery]),
        ]
        try store.append(samples: samples, to: id)
        try store.append(pumpStatuses: statuses, to: id)
        let loaded = try store.load(id)
        #expect(loaded.samples == samples)
        #expect(loaded.pumpStatuses == statuses)
        #expect(throws: RecordStoreError.self) {
            try store.append(samples: [VitalSample(arrivedAt: .origin, spo2: .percent(.infinity), pulseRate: nil)], to: id)
        }
        #expect(try store.load(id).samples.count == 3)
    }

    @Test("finishing: completed or stopped once; the end is an event")
    func finish() throws {
        let store = try RecordStore.open(path: try RecordFixtures.temporaryDatabase())
        let id = try store.startSession(RecordFixtures.start(try RecordFixtures.program()))
        #expect(throws: RecordStoreError.self) {
            try store.finishSession(id, as: .interrupted, wallClock: RecordFixtures.wall(10), monotonic: RecordFixtures.at(10))
        }
        let sequence = try store.finishSession(id, as: .stopped, wallClock: RecordFixtures.wall(60), monotonic: RecordFixtures.at(60),
                                               message: "stopped by the operator", operatorID: "rn-okafor")
        #expect(sequence == 2)
        let session = try #require(try store.session(id))
        #expect(session.state == .stopped && session.endedAt == RecordFixtures.wall(60))
        #expect(throws: RecordStoreError.sessionNotRunning(id, .stopped)) {
            try store.finishSession(id, as: .completed, wallClock: RecordFixtures.wall(70), monotonic: RecordFixtures.at(70))
        }
        #expect(throws: RecordStoreError.sessionNotRunning(id, .stopped)) { try store.markInterrupted(id, detectedAt: RecordFixtures.wall(80)) }
        #expect(try store.unfinishedSessions().isEmpty)
    }

    @Test("recovery: unfinished sessions are found and marked interrupted, ending at their last record")
    func recovery() throws {
        let path = try RecordFixtures.temporaryDatabase()
        let first = try RecordStore.open(path: path)
        let program = try RecordFixtures.program()
        let done = try first.startSession(RecordFixtures.start(program))
        try first.finishSession(done, as: .completed, wallClock: RecordFixtures.wall(2400), monotonic: RecordFixtures.at(2400))
        let crashed = try first.startSession(RecordFixtures.start(program, patient: "P-0043"))
        try first.append(NewEvent(kind: .note, monotonic: RecordFixtures.at(30), wallClock: RecordFixtures.wall(30), message: "last event"), to: crashed)
        try first.append(samples: [VitalSample(arrivedAt: RecordFixtures.at(95), spo2: .percent(97), pulseRate: .beatsPerMinute(70))], to: crashed)
        try first.close()  // the process "dies" without finishing the session

        let restarted = try RecordStore.open(path: path)
        #expect(try restarted.unfinishedSessions().map(\.id) == [crashed])
        let detectedAt = RecordFixtures.wall(4000)
        let recovered = try restarted.recoverUnfinishedSessions(detectedAt: detectedAt)
        #expect(recovered.map(\.id) == [crashed])
        #expect(recovered.first?.state == .interrupted)
        #expect(recovered.first?.endedAt == RecordFixtures.wall(95), "the end is the last record (a sample at 95 s)")
        #expect(try restarted.unfinishedSessions().isEmpty)
        let last = try #require(try restarted.events(of: crashed).last)
        #expect(last.kind == .sessionStateChange && last.sequence == 3)
        #expect(last.wallClock == detectedAt)
        #expect(last.monotonic == nil, "the dead process's monotonic clock is not this one's")
        #expect(last.details?.jsonText?.contains("\"state\":\"interrupted\"") == true)
        #expect(try restarted.session(done)?.state == .completed, "finished sessions are left alone")
        // What the restarted runner learns from the pump goes on the interrupted session, without a monotonic time.
        let found = NewEvent(kind: .deviceReply, monotonic: RecordFixtures.at(12), wallClock: RecordFixtures.wall(4001),
                             message: "pump reports stopped (communication time-out), 0.7 mL infused")
        #expect(try restarted.appendRecoveryEvent(found, to: crashed) == 4)
        #expect(try restarted.events(of: crashed, after: 3).first?.monotonic == nil)
        #expect(try restarted.recoverUnfinishedSessions(detectedAt: detectedAt).isEmpty, "recovery is idempotent")
    }

    @Test("sessions list: counts of events, alarms, samples and statuses")
    func list() throws {
        let store = try RecordStore.open(path: try RecordFixtures.temporaryDatabase())
        let id = try RecordFixtures.recordDemoSession(in: store)
        let list = try store.sessions()
        #expect(list.map(\.session.id) == [id])
        let summary = try #require(list.first)
        #expect(summary.session.state == .completed)
        #expect(summary.sampleCount == 3123 && summary.pumpStatusCount == 3123)
        #expect(summary.alarmCount == 3)
        #expect(summary.eventCount == (try store.lastSequence(of: id)))
    }
}

@Suite("RecordStore: concurrency and throughput", .temporaryFolder)
struct RecordStoreConcurrencyTests {
    @Test("a reader on another connection sees consistent, growing snapshots while a writer commits")
    func concurrentReader() throws {
        let path = try RecordFixtures.temporaryDatabase()
        let writer = try RecordStore.open(path: path)
        let id = try writer.startSession(RecordFixtures.start(try RecordFixtures.program()))
        let reader = try RecordStore.open(path: path)  // as `infusionctl report` would, from another process
        let total = 400
        let done = Atomic<Bool>(false)
        let failure = Mutex<String?>(nil)
        let thread = Thread {
            do {
                for i in 0..<total {
                    let event = NewEvent(kind: .note, monotonic: RecordFixtures.at(Double(i)), wallClock: RecordFixtures.wall(Double(i)), message: "event \(i)")
                    if i % 4 == 0 {
                        try writer.append(RecordBatch(events: [event], samples: [VitalSample(arrivedAt: RecordFixtures.at(Double(i)), spo2: .percent(97), pulseRate: .beatsPerMinute(70))]), to: id)
                    } else {
                        try writer.append(event, to: id)
                    }
                }
            } catch {
                failure.withLock { $0 = "\(error)" }
            }
            done.store(true, ordering: .releasing)
        }
        thread.start()
        var reads = 0, intermediate = 0, previous: Int64 = 0
        while !done.load(ordering: .acquiring) {
            let loaded = try reader.load(id)
            let sequences = loaded.events.map(\.sequence)
            #expect(sequences == Array(1...Int64(sequences.count)), "a snapshot never has gaps")
            #expect(Int64(sequences.count) >= previous, "snapshots never go back")
            // Every fourth event was committed with one sample in the same transaction.
            #expect(loaded.samples.count == (sequences.count - 1 + 3) / 4)
            previous = Int64(sequences.count)
            if sequences.count > 1 && sequences.count < total + 1 { intermediate += 1 }
            reads += 1
        }
        #expect(failure.withLock { $0 } == nil)
        #expect(try reader.lastSequence(of: id) == Int64(total + 1))
        #expect(reads > 2 && intermediate > 0, "the reader ran while the writer was writing (\(reads) reads, \(intermediate) mid-way)")
    }

    @Test("insert throughput: each sample committed alone, and in 1-second batches of 75 (75 Hz oximetry)")
    func throughput() throws {
        let store = try RecordStore.open(path: try RecordFixtures.temporaryDatabase())
        let id = try store.startSession(RecordFixtures.start(try RecordFixtures.program()))
        func sample(_ i: Int) -> VitalSample {
            VitalSample(arrivedAt: RecordFixtures.at(Double(i) / 75), spo2: .percent(97), pulseRate: .beatsPerMinute(72), perfusionIndex: .percent(2))
        }
        let clock = SystemMonotonicClock()

        let single = 300
        var start = clock.now()
        for i in 0..<single { try store.append(samples: [sample(i)], to: id) }
        let singleRate = Double(single) / (clock.now() - start).seconds

        let batches = 60
        start = clock.now()
        for b in 0..<batches { try store.append(samples: (0..<75).map { sample(single + b * 75 + $0) }, to: id) }
        let batchedRate = Double(batches * 75) / (clock.now() - start).seconds

        let events = 300
        start = clock.now()
        for i in 0..<events {
            try store.append(NewEvent(kind: .note, monotonic: RecordFixtures.at(Double(i)), wallClock: RecordFixtures.wall(Double(i)), message: "event \(i)"), to: id)
        }
        let eventRate = Double(events) / (clock.now() - start).seconds

        print("records throughput (synchronous=FULL, WAL, this disk): one sample per commit \(Int(singleRate))/s; 75 samples per commit \(Int(batchedRate)) samples/s; one event per commit \(Int(eventRate))/s")
        #expect(try store.load(id).samples.count == single + batches * 75)
        // The budget that matters: a second of 75 Hz oximetry commits in well under a second (10× margin).
        #expect(batchedRate > 750, "batched sample inserts: \(batchedRate)/s")
    }
}
