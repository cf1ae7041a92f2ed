import Foundation
import GRDB
import InfusionCore

extension RecordStore {
    /// Starts a session: records the session row with its validated program (library name, version and
    /// SHA-256; every rate, volume and duration; the soft-limit confirmation with its reason and who
    /// confirmed), a "session started" state-change event (sequence 1) and, when the program overrode soft
    /// limits, a soft-limit-confirmation event, all in one transaction. Returns the new session's id once it
    /// is committed.
    ///
    /// Throws `invalidInput` (nothing written) for a blank patient or operator id, or a soft-limit
    /// confirmation that does not name who confirmed. Any thread; blocks until the commit.
    public func startSession(_ start: SessionStart) throws(RecordStoreError) -> SessionID {
        if start.patientID.allSatisfy(\.isWhitespace) { throw .invalidInput("a session needs the patient's id") }
        if start.operatorID.allSatisfy(\.isWhitespace) { throw .invalidInput("a session needs the operator's id") }
        let program = RecordedProgram(start.program)
        var confirmationEvent: NewEvent?
        if let confirmation = program.confirmation {
            guard let who = confirmation.confirmedBy, !who.allSatisfy(\.isWhitespace) else {
                throw .invalidInput("the soft-limit confirmation names no one: pass SoftLimitConfirmation(reason:confirmedBy:) with the confirming operator's id")
            }
            let rules = program.overriddenFindings.map(\.rule)
            confirmationEvent = NewEvent(
                kind: .softLimitConfirmation, monotonic: start.startedMonotonic, wallClock: start.startedAt,
                message: "soft limit\(rules.count == 1 ? "" : "s") \(rules.joined(separator: ", ")) overridden: "
                    + program.overriddenFindings.map(\.message).joined(separator: "; "),
                ruleID: rules.joined(separator: ","), operatorID: who, reason: confirmation.reason,
                details: .object(["findings": .array(program.overriddenFindings.map { finding in
                    .object(["rule": .string(finding.rule), "severity": .string(finding.severity),
                             "message": .string(finding.message), "limit": finding.limit.map(JSONValue.string) ?? .null])
                })]))
        }
        guard [program.concentration.canonicalValue, program.weight.canonicalValue, program.doseRate.canonicalValue,
               program.pumpRate.actual.canonicalValue, program.vtbi.canonicalValue].allSatisfy(\.isFinite)
        else { throw .invalidInput("the program holds a number that is not finite") }

        let started = NewEvent(
            kind: .sessionStateChange, monotonic: start.startedMonotonic, wallClock: start.startedAt,
            message: "session started: \(program.drug) \(program.doseRate.formatted(fractionDigits: 4)) at \(program.pumpRate.actual.formatted(fractionDigits: 3)) for \(program.totalDuration.humanReadable), patient \(start.patientID), operator \(start.operatorID)",
            operatorID: start.operatorID, details: ["state": "running"])

        return try write { db in
            let loading = program.loading
            try db.execute(sql: """
                INSERT INTO sessions (
                    patient_id, operator_id, started_wall_ms, started_monotonic_ns, state,
                    library_name, library_version, library_sha256, profile_id, profile_name, drug,
                    concentration_mg_per_ml, weight_kg, dose_rate_mg_per_kg_per_h, delivered_dose_rate_mg_per_kg_per_h,
                    pump_rate_ml_per_h, pump_rate_requested_ml_per_h, vtbi_ml, duration_s,
                    loading_dose_mg_per_kg, loading_duration_s, loading_pump_rate_ml_per_h,
                    loading_pump_rate_requested_ml_per_h, loading_volume_ml,
                    projected_cumulative_dose_mg_per_kg, cumulative_hard_limit_mg_per_kg,
                    soft_limit_reason, soft_limit_confirmed_by, overridden_findings, monitoring_limits, devices
                ) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [
                    start.patientID, start.operatorID, Stored.milliseconds(start.startedAt), start.startedMonotonic.nanoseconds,
                    program.libraryName, program.libraryVersion, program.librarySHA256, program.profileID, program.profileName,
                    program.drug, program.concentration.milligramsPerMillilitre, program.weight.kilograms,
                    program.doseRate.milligramsPerKilogramPerHour, program.deliveredDoseRate.milligramsPerKilogramPerHour,
                    program.pumpRate.actual.millilitresPerHour, program.pumpRate.requested.millilitresPerHour,
                    program.vtbi.millilitres, Stored.seconds(program.duration),
                    loading?.dose.milligramsPerKilogram, loading.map { Stored.seconds($0.duration) },
                    loading?.pumpRate.actual.millilitresPerHour, loading?.pumpRate.requested.millilitresPerHour,
                    loading?.volume.millilitres,
                    program.projectedCumulativeDose.milligramsPerKilogram, program.cumulativeHardLimit.milligramsPerKilogram,
                    program.confirmation?.reason, program.confirmation?.confirmedBy,
                    Stored.jsonText(program.overriddenFindings), program.monitoringLimits.map { Stored.jsonText($0) },
                    Stored.jsonText(start.devices),
                ])
            let id = SessionID(rawValue: db.lastInsertedRowID)
            var sequence = try Self.insert(started, session: id, sequence: 1, db: db)
            if let confirmationEvent { sequence = try Self.insert(confirmationEvent, session: id, sequence: sequence + 1, db: db) }
            return id
        }
    }

    /// Appends one event to a session in its own transaction and returns its sequence number once it is
    /// committed: that return is the acknowledgement. Throws (nothing written) for an unknown session, an
    /// event missing what its kind needs (`NewEvent.problem`), or a failed write. Events may be appended to a
    /// session in any state (the recovery path records what it finds on an interrupted session).
    /// Any thread; blocks until the commit (one fsync).
    @discardableResult
    public func append(_ event: NewEvent, to session: SessionID) throws(RecordStoreError) -> Int64 {
        if let problem = event.problem { throw .invalidInput(problem) }
        return try write { db in
            _ = try Self.state(of: session, db: db, path: path)
            return try Self.insert(event, session: session, sequence: Self.nextSequence(session, db: db), db: db)
        }
    }

    /// Appends an event about a session that an earlier process recorded (the recovery path: "the pump reports
    /// it is stopped with 12.4 mL infused"), in its own transaction; returns its sequence number once committed.
    /// The event's monotonic time is not stored, because this process's monotonic clock is not the session's;
    /// reports place it by its wall-clock time. Same checks as `append(_:to:)`. Any thread; blocks until the commit.
    @discardableResult
    public func appendRecoveryEvent(_ event: NewEvent, to session: SessionID) throws(RecordStoreError) -> Int64 {
        if let problem = event.problem { throw .invalidInput(problem) }
        return try write { db in
            _ = try Self.state(of: session, db: db, path: path)
            return try Self.insert(event, session: session, sequence: Self.nextSequence(session, db: db), monotonicKnown: false, db: db)
        }
    }

    /// Appends events, samples and pump statuses in one transaction and returns the events' sequence numbers
    /// (in order) once all are committed; if it throws, none of them was written. Use it to batch samples
    /// (at least once a second) and to commit a decision together with the samples behind it.
    /// Any thread; blocks until the commit (one fsync for the whole batch).
    @discardableResult
    public func append(_ batch: RecordBatch, to session: SessionID) throws(RecordStoreError) -> [Int64] {
        if batch.isEmpty { return [] }
        for event in batch.events { if let problem = event.problem { throw .invalidInput(problem) } }
        if let problem = Self.problem(in: batch.samples) { throw .invalidInput(problem) }
        if let problem = Self.problem(in: batch.pumpStatuses) { throw .invalidInput(problem) }
        return try write { db in
            _ = try Self.state(of: session, db: db, path: path)
            var sequences: [Int64] = []
            sequences.reserveCapacity(batch.events.count)
            var next = try Self.nextSequence(session, db: db)
            for event in batch.events {
                sequences.append(try Self.insert(event, session: session, sequence: next, db: db))
                next += 1
            }
            for sample in batch.samples { try Self.insert(sample, session: session, db: db) }
            for status in batch.pumpStatuses { try Self.insert(status, session: session, db: db) }
            return sequences
        }
    }

    /// Appends vital-sign samples in one transaction, committed before it returns. Which samples to keep is
    /// the caller's choice (1 Hz plus every abnormal one). Any thread; blocks until the commit.
    public func append(samples: [VitalSample], to session: SessionID) throws(RecordStoreError) {
        _ = try append(RecordBatch(samples: samples), to: session)
    }

    /// Appends pump statuses in one transaction, committed before it returns. Any thread; blocks until the commit.
    public func append(pumpStatuses: [PumpStatus], to session: SessionID) throws(RecordStoreError) {
        _ = try append(RecordBatch(pumpStatuses: pumpStatuses), to: session)
    }

    /// Ends a running session as `completed` or `stopped`: sets its state and end time and appends the
    /// state-change event in one transaction; returns that event's sequence number once committed.
    /// Throws `sessionNotRunning` if it already ended, `invalidInput` for any other target state.
    /// Any thread; blocks until the commit.
    @discardableResult
    public func finishSession(
        _ session: SessionID, as state: SessionState, wallClock: Date, monotonic: MonotonicInstant,
        message: String? = nil, operatorID: String? = nil
    ) throws(RecordStoreError) -> Int64 {
        guard state == .completed || state == .stopped else {
            throw .invalidInput("a session ends as completed or stopped (interrupted is set by markInterrupted), not \(state.rawValue)")
        }
        let event = NewEvent(kind: .sessionStateChange, monotonic: monotonic, wallClock: wallClock,
                             message: message ?? "session \(state.rawValue)", operatorID: operatorID,
                             details: ["state": .string(state.rawValue)])
        if let problem = event.problem { throw .invalidInput(problem) }
        return try write { db in
            let current = try Self.state(of: session, db: db, path: path)
            guard current == .running else { throw RecordStoreError.sessionNotRunning(session, current) }
            try db.execute(sql: "UPDATE sessions SET state = ?, ended_wall_ms = ? WHERE id = ?",
                           arguments: [state.rawValue, Stored.milliseconds(wallClock), session.rawValue])
            return try Self.insert(event, session: session, sequence: Self.nextSequence(session, db: db), db: db)
        }
    }

    /// The recovery path after a crash: marks a running session `interrupted`, sets its end time to the time
    /// of its last record, and appends a state-change event (wall clock `detectedAt`, no monotonic time: the
    /// dead process's clock is not this one's) saying when recovery found it. Returns the event's sequence
    /// number once committed. Throws `sessionNotRunning` if it already ended.
    ///
    /// Call it only from the process that owns the database's sessions (one writer per file), at start-up,
    /// before starting new sessions. It records; it does not touch the pump (the runner asks the pump for its
    /// state and never restarts delivery by itself). Any thread; blocks until the commit.
    @discardableResult
    public func markInterrupted(_ session: SessionID, detectedAt: Date) throws(RecordStoreError) -> Int64 {
        try write { db in
            let current = try Self.state(of: session, db: db, path: path)
            guard current == .running else { throw RecordStoreError.sessionNotRunning(session, current) }
            let last = try Self.lastActivity(of: session, db: db)
            let lastSequence = try Self.nextSequence(session, db: db) - 1
            try db.execute(sql: "UPDATE sessions SET state = 'interrupted', ended_wall_ms = ? WHERE id = ?",
                           arguments: [last.map(Stored.milliseconds), session.rawValue])
            let lastText = last.map { ISO8601DateFormatter().string(from: $0) } ?? "unknown"
            let event = NewEvent(
                kind: .sessionStateChange, monotonic: .origin, wallClock: detectedAt,
                message: "session interrupted: the controller stopped without ending the session (last record \(lastText), event \(lastSequence)); found on restart",
                details: ["state": "interrupted", "lastRecordWallMs": last.map { .number(Double(Stored.milliseconds($0))) } ?? .null,
                          "lastSequence": .number(Double(lastSequence))])
            return try Self.insert(event, session: session, sequence: lastSequence + 1, monotonicKnown: false, db: db)
        }
    }

    /// Finds every running session and marks it interrupted (see `markInterrupted`). Returns the sessions it
    /// marked, as they now are. Call once at start-up, before starting new sessions. Any thread.
    public func recoverUnfinishedSessions(detectedAt: Date) throws(RecordStoreError) -> [SessionRecord] {
        var recovered: [SessionRecord] = []
        for session in try unfinishedSessions() {
            try markInterrupted(session.id, detectedAt: detectedAt)
            logger.warning("session found unfinished after a restart: marked interrupted", metadata: ["session": "\(session.id)", "path": "\(path)"])
            if let updated = try self.session(session.id) { recovered.append(updated) }
        }
        return recovered
    }

    // MARK: Statements

    static func state(of session: SessionID, db: Database, path: String = "the record database") throws -> SessionState {
        guard let text = try String.fetchOne(db.cachedStatement(sql: "SELECT state FROM sessions WHERE id = ?"), arguments: [session.rawValue])
        else { throw RecordStoreError.unknownSession(session) }
        guard let state = SessionState(rawValue: text) else {
            throw RecordStoreError.unreadableRecord(path: path, what: "session \(session) has state \"\(text)\"")
        }
        return state
    }

    static func nextSequence(_ session: SessionID, db: Database) throws -> Int64 {
        let max = try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT MAX(sequence) FROM events WHERE session_id = ?"), arguments: [session.rawValue])
        return (max ?? 0) + 1
    }

    /// The wall-clock time of the session's last record of any kind (events by wall clock; samples and pump
    /// statuses mapped from the session's monotonic time).
    static func lastActivity(of session: SessionID, db: Database) throws -> Date? {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT started_wall_ms, started_monotonic_ns,
                   (SELECT MAX(wall_ms) FROM events WHERE session_id = s.id),
                   (SELECT MAX(measured_ns) FROM vital_samples WHERE session_id = s.id),
                   (SELECT MAX(received_ns) FROM pump_statuses WHERE session_id = s.id)
            FROM sessions s WHERE id = ?
            """, arguments: [session.rawValue]) else { return nil }
        let startedWall: Int64 = row[0]
        let startedMono: Int64 = row[1]
        var latest: Int64 = startedWall
        if let events: Int64 = row[2] { latest = max(latest, events) }
        for column in [3, 4] {
            if let ns: Int64 = row[column] { latest = max(latest, startedWall + (ns &- startedMono) / 1_000_000) }
        }
        return Stored.date(milliseconds: latest)
    }

    @discardableResult
    static func insert(_ event: NewEvent, session: SessionID, sequence: Int64, monotonicKnown: Bool = true, db: Database) throws -> Int64 {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO events (session_id, sequence, monotonic_ns, wall_ms, kind, channel, rule_id, priority,
                                operator_id, reason, message, payload)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        try statement.execute(arguments: [
            session.rawValue, sequence, monotonicKnown ? event.monotonic.nanoseconds : nil, Stored.milliseconds(event.wallClock),
            event.kind.rawValue, event.channel, event.ruleID, event.priority?.rawValue, event.operatorID, event.reason,
            event.message, event.details?.jsonText,
        ])
        return sequence
    }

    static func insert(_ sample: VitalSample, session: SessionID, db: Database) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO vital_samples (session_id, measured_ns, arrived_ns, spo2_percent, pulse_bpm, perfusion_index_percent, quality)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """)
        try statement.execute(arguments: [
            session.rawValue, sample.measuredAt.nanoseconds, sample.arrivedAt.nanoseconds, sample.spo2?.percent,
            sample.pulseRate?.beatsPerMinute, sample.perfusionIndex?.percent, Int64(sample.quality.rawValue),
        ])
    }

    static func insert(_ status: PumpStatus, session: SessionID, db: Database) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO pump_statuses (session_id, received_ns, state, rate_ml_per_h, volume_infused_ml, alarms)
            VALUES (?, ?, ?, ?, ?, ?)
            """)
        try statement.execute(arguments: [
            session.rawValue, status.receivedAt.nanoseconds, Stored.pumpState(status.state), status.rate?.millilitresPerHour,
            status.volumeInfused?.millilitres, Int64(status.alarms.rawValue),
        ])
    }

    static func problem(in samples: [VitalSample]) -> String? {
        for sample in samples {
            for value in [sample.spo2?.percent, sample.pulseRate?.beatsPerMinute, sample.perfusionIndex?.percent] {
                if let value, !value.isFinite { return "a vital-sign sample at \(sample.measuredAt) holds a value that is not finite" }
            }
        }
        return nil
    }

    static func problem(in statuses: [PumpStatus]) -> String? {
        for status in statuses {
            for value in [status.rate?.millilitresPerHour, status.volumeInfused?.millilitres] {
                if let value, !value.isFinite { return "a pump status at \(status.receivedAt) holds a value that is not finite" }
            }
        }
        return nil
    }
}
