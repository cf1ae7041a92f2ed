import GRDB

/// The record database's schema, as versioned migrations. A migration, once shipped, never changes: a new
/// schema version is a new migration appended here. Each runs in its own transaction, and GRDB records the
/// applied identifiers in `grdb_migrations`; a database that lists an identifier unknown here was written by
/// a newer version and is refused (`RecordStoreError.newerSchema`).
///
/// Conventions: times are `*_wall_ms` (wall clock, milliseconds since 1970 UTC) or `*_ns` (the session's
/// monotonic clock, nanoseconds); quantities are REAL in the unit their column name says; JSON columns are
/// checked with `json_valid`.
enum Schema {
    /// Every migration identifier, in order.
    static let migrations = ["v1", "v2-calibrations"]

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE sessions (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    patient_id TEXT NOT NULL,
                    operator_id TEXT NOT NULL,
                    started_wall_ms INTEGER NOT NULL,
                    started_monotonic_ns INTEGER NOT NULL,
                    ended_wall_ms INTEGER,
                    state TEXT NOT NULL CHECK (state IN ('running', 'completed', 'stopped', 'interrupted')),
                    library_name TEXT NOT NULL,
                    library_version TEXT NOT NULL,
                    library_sha256 TEXT NOT NULL,
                    profile_id TEXT NOT NULL,
                    profile_name TEXT NOT NULL,
                    drug TEXT NOT NULL,
                    concentration_mg_per_ml REAL NOT NULL,
                    weight_kg REAL NOT NULL,
                    dose_rate_mg_per_kg_per_h REAL NOT NULL,
                    delivered_dose_rate_mg_per_kg_per_h REAL NOT NULL,
                    pump_rate_ml_per_h REAL NOT NULL,
                    pump_rate_requested_ml_per_h REAL NOT NULL,
                    vtbi_ml REAL NOT NULL,
                    duration_s REAL NOT NULL,
                    loading_dose_mg_per_kg REAL,
                    loading_duration_s REAL,
                    loading_pump_rate_ml_per_h REAL,
                    loading_pump_rate_requested_ml_per_h REAL,
                    loading_volume_ml REAL,
                    projected_cumulative_dose_mg_per_kg REAL NOT NULL,
                    cumulative_hard_limit_mg_per_kg REAL NOT NULL,
                    soft_limit_reason TEXT,
                    soft_limit_confirmed_by TEXT,
                    overridden_findings TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(overridden_findings)),
                    monitoring_limits TEXT CHECK (monitoring_limits IS NULL OR json_valid(monitoring_limits)),
                    devices TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(devices))
                );
                CREATE INDEX sessions_by_state ON sessions(state);

                CREATE TABLE events (
                    id INTEGER PRIMARY KEY,
                    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE RESTRICT,
                    sequence INTEGER NOT NULL CHECK (sequence > 0),
                    monotonic_ns INTEGER,
                    wall_ms INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    channel TEXT,
                    rule_id TEXT,
                    priority INTEGER CHECK (priority IS NULL OR priority BETWEEN 1 AND 3),
                    operator_id TEXT,
                    reason TEXT,
                    message TEXT NOT NULL,
                    payload TEXT CHECK (payload IS NULL OR json_valid(payload)),
                    UNIQUE (session_id, sequence)
                );

                CREATE TABLE vital_samples (
                    id INTEGER PRIMARY KEY,
                    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE RESTRICT,
                    measured_ns INTEGER NOT NULL,
                    arrived_ns INTEGER NOT NULL,
                    spo2_percent REAL,
                    pulse_bpm REAL,
                    perfusion_index_percent REAL,
                    quality INTEGER NOT NULL
                );
                CREATE INDEX vital_samples_by_session ON vital_samples(session_id, measured_ns);

                CREATE TABLE pump_statuses (
                    id INTEGER PRIMARY KEY,
                    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE RESTRICT,
                    received_ns INTEGER NOT NULL,
                    state TEXT NOT NULL,
                    rate_ml_per_h REAL,
                    volume_infused_ml REAL,
                    alarms INTEGER NOT NULL
                );
                CREATE INDEX pump_statuses_by_session ON pump_statuses(session_id, received_ns);
                """)
        }
        // Calibration and verification records (issue 9): indexed columns for listing and lookup by device,
        // and the full record as the Calibration target's JSON (Records does not know its types).
        migrator.registerMigration("v2-calibrations") { db in
            try db.execute(sql: """
                CREATE TABLE calibrations (
                    id TEXT PRIMARY KEY NOT NULL,
                    kind TEXT NOT NULL CHECK (kind IN ('pump', 'oximeter')),
                    device_model TEXT NOT NULL,
                    device_serial TEXT NOT NULL,
                    device_protocol TEXT,
                    operator_id TEXT NOT NULL,
                    performed_wall_ms INTEGER NOT NULL,
                    outcome TEXT NOT NULL CHECK (outcome IN ('pass', 'fail', 'incomplete')),
                    incomplete INTEGER NOT NULL CHECK (incomplete IN (0, 1)),
                    summary TEXT NOT NULL DEFAULT '',
                    record TEXT NOT NULL CHECK (json_valid(record))
                );
                CREATE INDEX calibrations_by_device ON calibrations(device_serial, performed_wall_ms);
                CREATE INDEX calibrations_by_time ON calibrations(performed_wall_ms);
                """)
        }
        return migrator
    }
}
