import Foundation
import GRDB
import InfusionCore

extension RecordStore {
    /// Every session, oldest first, with counts of its events, alarms, samples and pump statuses. Reads a
    /// consistent snapshot; runs concurrently with writes. Any thread.
    public func sessions() throws(RecordStoreError) -> [SessionSummary] {
        let path = self.path
        return try read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.*,
                    (SELECT COUNT(*) FROM events e WHERE e.session_id = s.id) AS event_count,
                    (SELECT COUNT(*) FROM events e WHERE e.session_id = s.id AND e.kind = 'alarm-raised') AS alarm_count,
                    (SELECT COUNT(*) FROM vital_samples v WHERE v.session_id = s.id) AS sample_count,
                    (SELECT COUNT(*) FROM pump_statuses p WHERE p.session_id = s.id) AS pump_status_count
                FROM sessions s ORDER BY s.id
                """).map { row in
                SessionSummary(
                    session: try Self.sessionRecord(row, path: path),
                    eventCount: row["event_count"], alarmCount: row["alarm_count"],
                    sampleCount: row["sample_count"], pumpStatusCount: row["pump_status_count"])
            }
        }
    }

    /// The session with this id, or nil when there is none. Any thread.
    public func session(_ id: SessionID) throws(RecordStoreError) -> SessionRecord? {
        let path = self.path
        return try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM sessions WHERE id = ?", arguments: [id.rawValue]).map {
                try Self.sessionRecord($0, path: path)
            }
        }
    }

    /// Sessions still marked running: after a crash, the ones the restarted process must mark interrupted.
    /// Oldest first. Any thread.
    public func unfinishedSessions() throws(RecordStoreError) -> [SessionRecord] {
        let path = self.path
        return try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM sessions WHERE state = 'running' ORDER BY id").map {
                try Self.sessionRecord($0, path: path)
            }
        }
    }

    /// One session with its program, every event (by sequence), every sample (by measurement time) and every
    /// pump status (by arrival time), read in one consistent snapshot. Throws `unknownSession` when there is
    /// no such session. Any thread; runs concurrently with writes.
    public func load(_ id: SessionID) throws(RecordStoreError) -> LoadedSession {
        let path = self.path
        return try read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM sessions WHERE id = ?", arguments: [id.rawValue]) else {
                throw RecordStoreError.unknownSession(id)
            }
            let session = try Self.sessionRecord(row, path: path)
            return LoadedSession(
                session: session,
                events: try Self.events(of: id, after: 0, db: db, path: path),
                samples: try Self.samples(of: id, db: db),
                pumpStatuses: try Self.pumpStatuses(of: id, db: db, path: path))
        }
    }

    /// The session's events with a sequence number above `sequence`, in order (for a live display that
    /// follows the record). Any thread.
    public func events(of id: SessionID, after sequence: Int64 = 0) throws(RecordStoreError) -> [EventRecord] {
        let path = self.path
        return try read { db in try Self.events(of: id, after: sequence, db: db, path: path) }
    }

    /// The highest sequence number committed for the session (0 when it has no events). Any thread.
    public func lastSequence(of id: SessionID) throws(RecordStoreError) -> Int64 {
        try read { db in try Self.nextSequence(id, db: db) - 1 }
    }

    // MARK: Row decoding

    static func events(of id: SessionID, after sequence: Int64, db: Database, path: String) throws -> [EventRecord] {
        try Row.fetchAll(db, sql: """
            SELECT sequence, monotonic_ns, wall_ms, kind, channel, rule_id, priority, operator_id, reason, message, payload
            FROM events WHERE session_id = ? AND sequence > ? ORDER BY sequence
            """, arguments: [id.rawValue, sequence]).map { row in
            let kindText: String = row["kind"]
            guard let kind = EventKind(rawValue: kindText) else {
                throw RecordStoreError.unreadableRecord(path: path, what: "event kind \"\(kindText)\"")
            }
            let priorityValue: Int? = row["priority"]
            var priority: AlarmPriority?
            if let priorityValue {
                guard let known = AlarmPriority(rawValue: priorityValue) else {
                    throw RecordStoreError.unreadableRecord(path: path, what: "alarm priority \(priorityValue)")
                }
                priority = known
            }
            let payload: String? = row["payload"]
            var details: JSONValue?
            if let payload {
                guard let parsed = JSONValue.parse(payload) else {
                    throw RecordStoreError.unreadableRecord(path: path, what: "event details that are not JSON")
                }
                details = parsed
            }
            let monotonic: Int64? = row["monotonic_ns"]
            return EventRecord(
                sessionID: id, sequence: row["sequence"], monotonic: monotonic.map(MonotonicInstant.init(nanoseconds:)),
                wallClock: Stored.date(milliseconds: row["wall_ms"]), kind: kind, channel: row["channel"],
                ruleID: row["rule_id"], priority: priority, operatorID: row["operator_id"], reason: row["reason"],
                message: row["message"], details: details)
        }
    }

    static func samples(of id: SessionID, db: Database) throws -> [VitalSample] {
        var samples: [VitalSample] = []
        let cursor = try Row.fetchCursor(db, sql: """
            SELECT measured_ns, arrived_ns, spo2_percent, pulse_bpm, perfusion_index_percent, quality
            FROM vital_samples WHERE session_id = ? ORDER BY measured_ns, id
            """, arguments: [id.rawValue])
        while let row = try cursor.next() {
            let spo2: Double? = row[2]
            let pulse: Double? = row[3]
            let pi: Double? = row[4]
            let quality: Int64 = row[5]
            samples.append(VitalSample(
                arrivedAt: MonotonicInstant(nanoseconds: row[1]), measuredAt: MonotonicInstant(nanoseconds: row[0]),
                spo2: spo2.map(Percentage.percent), pulseRate: pulse.map(PulseRate.beatsPerMinute),
                perfusionIndex: pi.map(Percentage.percent), quality: OximetryQuality(rawValue: UInt32(truncatingIfNeeded: quality))))
        }
        return samples
    }

    static func pumpStatuses(of id: SessionID, db: Database, path: String) throws -> [PumpStatus] {
        var statuses: [PumpStatus] = []
        let cursor = try Row.fetchCursor(db, sql: """
            SELECT received_ns, state, rate_ml_per_h, volume_infused_ml, alarms
            FROM pump_statuses WHERE session_id = ? ORDER BY received_ns, id
            """, arguments: [id.rawValue])
        while let row = try cursor.next() {
            let stateText: String = row[1]
            guard let state = Stored.pumpState(text: stateText) else {
                throw RecordStoreError.unreadableRecord(path: path, what: "pump state \"\(stateText)\"")
            }
            let rate: Double? = row[2]
            let volume: Double? = row[3]
            let alarms: Int64 = row[4]
            statuses.append(PumpStatus(
                receivedAt: MonotonicInstant(nanoseconds: row[0]), state: state, rate: rate.map(VolumeRate.millilitresPerHour),
                volumeInfused: volume.map(Volume.millilitres), alarms: PumpAlarms(rawValue: UInt32(truncatingIfNeeded: alarms))))
        }
        return statuses
    }

    static func sessionRecord(_ row: Row, path: String) throws -> SessionRecord {
        let id = SessionID(rawValue: row["id"])
        let stateText: String = row["state"]
        guard let state = SessionState(rawValue: stateText) else {
            throw RecordStoreError.unreadableRecord(path: path, what: "session \(id) has state \"\(stateText)\"")
        }
        guard let findings = Stored.decode([RecordedFinding].self, json: row["overridden_findings"]) else {
            throw RecordStoreError.unreadableRecord(path: path, what: "session \(id) overridden findings")
        }
        guard let devices = Stored.decode([DeviceDescription].self, json: row["devices"]) else {
            throw RecordStoreError.unreadableRecord(path: path, what: "session \(id) devices")
        }
        let limitsText: String? = row["monitoring_limits"]
        let limits = limitsText.flatMap { Stored.decode(RecordedMonitoringLimits.self, json: $0) }

        var loading: RecordedLoading?
        if let dose: Double = row["loading_dose_mg_per_kg"], let seconds: Double = row["loading_duration_s"],
           let rate: Double = row["loading_pump_rate_ml_per_h"], let requested: Double = row["loading_pump_rate_requested_ml_per_h"],
           let volume: Double = row["loading_volume_ml"]
        {
            loading = RecordedLoading(
                dose: .milligramsPerKilogram(dose), duration: Stored.duration(seconds: seconds),
                pumpRate: Rounded(requested: .millilitresPerHour(requested), actual: .millilitresPerHour(rate)),
                volume: .millilitres(volume))
        }
        let reason: String? = row["soft_limit_reason"]
        let confirmedBy: String? = row["soft_limit_confirmed_by"]
        let program = RecordedProgram(
            libraryName: row["library_name"], libraryVersion: row["library_version"], librarySHA256: row["library_sha256"],
            profileID: row["profile_id"], profileName: row["profile_name"], drug: row["drug"],
            concentration: .milligramsPerMillilitre(row["concentration_mg_per_ml"]), weight: .kilograms(row["weight_kg"]),
            doseRate: .milligramsPerKilogramPerHour(row["dose_rate_mg_per_kg_per_h"]),
            pumpRate: Rounded(requested: .millilitresPerHour(row["pump_rate_requested_ml_per_h"]), actual: .millilitresPerHour(row["pump_rate_ml_per_h"])),
            deliveredDoseRate: .milligramsPerKilogramPerHour(row["delivered_dose_rate_mg_per_kg_per_h"]),
            vtbi: .millilitres(row["vtbi_ml"]), duration: Stored.duration(seconds: row["duration_s"]), loading: loading,
            projectedCumulativeDose: .milligramsPerKilogram(row["projected_cumulative_dose_mg_per_kg"]),
            cumulativeHardLimit: .milligramsPerKilogram(row["cumulative_hard_limit_mg_per_kg"]),
            confirmation: reason.map { SoftLimitConfirmation(reason: $0, confirmedBy: confirmedBy) },
            overriddenFindings: findings, monitoringLimits: limits)
        let ended: Int64? = row["ended_wall_ms"]
        return SessionRecord(
            id: id, patientID: row["patient_id"], operatorID: row["operator_id"],
            startedAt: Stored.date(milliseconds: row["started_wall_ms"]),
            startedMonotonic: MonotonicInstant(nanoseconds: row["started_monotonic_ns"]),
            endedAt: ended.map(Stored.date(milliseconds:)), state: state, program: program, devices: devices)
    }
}
