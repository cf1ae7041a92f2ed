import Foundation
import GRDB
import InfusionCore
import Logging

/// The durable session record (DESIGN.md principle 6): sessions, events, vital-sign samples and pump statuses
/// in one SQLite file, through GRDB.
///
/// **Acknowledged means committed.** Every append method returns only after its transaction has been
/// committed with `synchronous = FULL` in WAL mode, that is after the write-ahead log has been fsync'ed. So a
/// record whose append returned survives `kill -9` and power loss; a record whose append threw was not
/// written at all (the transaction rolled back). Callers must record what they act on or show *before*
/// acting on it or showing it, and treat a thrown error as "not recorded".
///
/// Events are committed one per transaction (`append(_:to:)`), or several at once in one transaction
/// (`append(_ batch:to:)`), which also returns only after the commit. Vital samples may be buffered by the
/// caller and appended in batches at least once a second, under the rule that no sample that is acted on
/// or shown is held back: a sample that triggers a decision goes in the same batch as (or before) the
/// decision's event.
///
/// **Threads.** Any thread may call any method; the store is `Sendable`. Writes are serialised on one
/// writer connection (callers block while another write commits); reads run concurrently with writes on
/// separate reader connections (WAL), so a report or `infusionctl sessions` can read while a session is
/// being recorded, in this process or another. Every call blocks on disk I/O (a commit is an fsync), so
/// never call it from the supervisor's real-time thread: give the records their own thread or task.
///
/// **Files.** The store owns its SQLite connections and their file descriptors (`path`, `path-wal`,
/// `path-shm`) until `close()` or deinit. One process should write a given file at a time; other processes
/// may read it.
public final class RecordStore: Sendable {
    /// The database file.
    public let path: String
    let pool: DatabasePool
    let logger: Logger

    /// How thoroughly `open` checks the file.
    public enum IntegrityCheck: Sendable {
        /// `PRAGMA quick_check`: every page and b-tree structure, not the agreement of indexes with tables.
        /// Linear in the file's size; the default.
        case quick
        /// `PRAGMA integrity_check`: also checks every index against its table. Slower on big files.
        case full
    }

    /// The default database path: `$INFUSIONCONTROL_DB` when set and not empty, otherwise
    /// `./infusioncontrol.sqlite` (in the current directory). Pure: pass the environment.
    public static func defaultPath(environment: [String: String]) -> String {
        if let path = environment["INFUSIONCONTROL_DB"], !path.isEmpty { return path }
        return "infusioncontrol.sqlite"
    }

    /// The schema versions (migration identifiers) this version writes, oldest first.
    public static var schemaVersions: [String] { Schema.migrations }

    private init(path: String, pool: DatabasePool, logger: Logger) {
        self.path = path
        self.pool = pool
        self.logger = logger
    }

    /// Opens the record database at `path`, checking it first; creates the file and its schema when it does
    /// not exist (unless `createIfMissing` is false), and applies any pending migrations.
    ///
    /// An existing file is checked before anything is written to it: `integrityCheck` (quick_check or
    /// integrity_check) and `PRAGMA foreign_key_check`, on a read-only connection. If the check fails the
    /// call throws `RecordStoreError.corrupt` naming the file and what to do: there is no repair, and the file
    /// is left exactly as it was. A file that is not an SQLite database, or an SQLite database of another
    /// application, or one written by a newer version, is refused the same way.
    ///
    /// The connection runs in WAL mode with `synchronous = FULL` and foreign keys on.
    /// Any thread may call it; it blocks on disk I/O.
    public static func open(
        path: String, createIfMissing: Bool = true, integrityCheck: IntegrityCheck = .quick,
        logger: Logger = Logger(label: "infusioncontrol.records")
    ) throws(RecordStoreError) -> RecordStore {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if exists && isDirectory.boolValue { throw .cannotOpen(path: path, reason: "it is a directory") }
        if !exists && !createIfMissing { throw .notFound(path: path) }
        if exists { try preflight(path: path, integrityCheck: integrityCheck) }

        var configuration = Configuration()
        configuration.label = "InfusionControl.Records"
        configuration.foreignKeysEnabled = true
        // Another process (a report) may hold a lock briefly (checkpoints, WAL recovery): wait, don't fail.
        configuration.busyMode = .timeout(5)
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try pool.writeWithoutTransaction { db in
                // GRDB sets synchronous = NORMAL with WAL. NORMAL survives a process crash but may lose the last
                // commits on power loss (the WAL is only fsync'ed at checkpoints). FULL fsyncs the WAL on every
                // commit: an event acknowledged to the caller must survive power loss (principle 6).
                try db.execute(sql: "PRAGMA synchronous = FULL")
                let synchronous = try Int.fetchOne(db, sql: "PRAGMA synchronous")
                let journal = try String.fetchOne(db, sql: "PRAGMA journal_mode")
                let foreignKeys = try Bool.fetchOne(db, sql: "PRAGMA foreign_keys")
                guard synchronous == 2, journal?.lowercased() == "wal", foreignKeys == true else {
                    throw RecordStoreError.cannotOpen(
                        path: path, reason: "SQLite refused the durability settings (synchronous \(synchronous.map(String.init) ?? "?"), journal \(journal ?? "?"), foreign keys \(foreignKeys.map(String.init) ?? "?"))")
                }
            }
            try Schema.migrator.migrate(pool)
        } catch let error as RecordStoreError {
            throw error
        } catch let error as DatabaseError {
            throw map(error, path: path, writing: true)
        } catch {
            throw .cannotOpen(path: path, reason: "\(error)")
        }
        if !exists { logger.info("created record database", metadata: ["path": "\(path)"]) }
        return RecordStore(path: path, pool: pool, logger: logger)
    }

    /// Checks an existing file on a read-only connection, before anything can write to it.
    private static func preflight(path: String, integrityCheck: IntegrityCheck) throws(RecordStoreError) {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            try queue.read { db in
                let pragma = integrityCheck == .full ? "integrity_check" : "quick_check"
                let results = try String.fetchAll(db, sql: "PRAGMA \(pragma)")
                if results != ["ok"] { throw RecordStoreError.corrupt(path: path, problems: results) }
                let violations = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check")
                if !violations.isEmpty {
                    let problems = violations.prefix(10).map { row -> String in
                        let table: String = row[0] ?? "?"
                        let rowid: Int64? = row[1]
                        let parent: String = row[2] ?? "?"
                        return "foreign key check: \(table) row \(rowid.map(String.init) ?? "?") refers to a missing \(parent) row"
                    }
                    throw RecordStoreError.corrupt(path: path, problems: problems + (violations.count > 10 ? ["\(violations.count) violations in all"] : []))
                }
                let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                guard tables.contains("grdb_migrations") else {
                    if tables.isEmpty { return }  // an empty SQLite file: the migrations create the schema
                    throw RecordStoreError.notARecordDatabase(
                        path: path, reason: "an SQLite database with other tables (\(tables.prefix(5).joined(separator: ", "))) and no InfusionControl schema")
                }
                let applied = try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
                guard applied.contains(Schema.migrations[0]) || applied.isEmpty else {
                    throw RecordStoreError.notARecordDatabase(path: path, reason: "an SQLite database of another application")
                }
                let unknown = applied.filter { !Schema.migrations.contains($0) }
                if !unknown.isEmpty { throw RecordStoreError.newerSchema(path: path, unknownMigrations: unknown) }
            }
        } catch let error as RecordStoreError {
            throw error
        } catch let error as DatabaseError {
            throw map(error, path: path, writing: false)
        } catch {
            throw .cannotOpen(path: path, reason: "\(error)")
        }
    }

    /// Checkpoints the write-ahead log into the database file (so a closed database is one self-contained
    /// file that can be copied) and closes the connections. Later calls throw. Any thread; waits for a write in
    /// progress to commit. Committed records are durable whether or not this is called.
    public func close() throws(RecordStoreError) {
        do {
            // Best effort: a reader in another process can keep part of the log from being checkpointed; the
            // records are durable in the log either way, and the next open or checkpoint moves them.
            _ = try? pool.writeWithoutTransaction { try $0.checkpoint(.truncate) }
            try pool.close()
        } catch {
            throw .writeFailed(path: path, reason: "closing failed: \(error)")
        }
    }

    // MARK: Access

    /// Runs `body` in one IMMEDIATE write transaction, committed (fsync'ed) before it returns.
    func write<T>(_ body: (Database) throws -> T) throws(RecordStoreError) -> T {
        do {
            return try pool.write(body)
        } catch let error as RecordStoreError {
            throw error
        } catch let error as DatabaseError {
            throw Self.map(error, path: path, writing: true)
        } catch {
            throw .writeFailed(path: path, reason: "\(error)")
        }
    }

    /// Runs `body` on a reader connection, in a snapshot consistent with the last commit.
    func read<T>(_ body: (Database) throws -> T) throws(RecordStoreError) -> T {
        do {
            return try pool.read(body)
        } catch let error as RecordStoreError {
            throw error
        } catch let error as DatabaseError {
            throw Self.map(error, path: path, writing: false)
        } catch {
            throw .readFailed(path: path, reason: "\(error)")
        }
    }

    static func map(_ error: DatabaseError, path: String, writing: Bool) -> RecordStoreError {
        let message = error.message ?? "SQLite error \(error.extendedResultCode.rawValue)"
        switch error.resultCode {
        case .SQLITE_NOTADB:
            return .notARecordDatabase(path: path, reason: "not an SQLite database, or its header is damaged")
        case .SQLITE_CORRUPT:
            return .corrupt(path: path, problems: [message])
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH:
            return .cannotOpen(path: path, reason: message)
        case .SQLITE_FULL:
            return .writeFailed(path: path, reason: "the disk is full")
        case .SQLITE_READONLY:
            return .writeFailed(path: path, reason: "the file or its folder is read-only (\(message))")
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return writing
                ? .writeFailed(path: path, reason: "another process held the database locked for more than 5 s (\(message))")
                : .readFailed(path: path, reason: "another process held the database locked for more than 5 s (\(message))")
        case .SQLITE_IOERR:
            return writing
                ? .writeFailed(path: path, reason: "input/output error (SQLite \(error.extendedResultCode.rawValue): \(message))")
                : .readFailed(path: path, reason: "input/output error (SQLite \(error.extendedResultCode.rawValue): \(message))")
        default:
            return writing ? .writeFailed(path: path, reason: message) : .readFailed(path: path, reason: message)
        }
    }
}

// MARK: - Value conversions shared by writes and reads

enum Stored {
    /// Milliseconds since 1970 UTC.
    static func milliseconds(_ date: Date) -> Int64 {
        let value = (date.timeIntervalSince1970 * 1000).rounded()
        guard value.isFinite, value < 9.2e18, value > -9.2e18 else { return 0 }
        return Int64(value)
    }

    static func date(milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    static func duration(seconds: Double) -> Duration {
        .nanoseconds(Int64((seconds * 1e9).rounded()))
    }

    static func pumpState(_ state: PumpRunState) -> String { state.description }

    static func pumpState(text: String) -> PumpRunState? {
        switch text {
        case "stopped": .stopped
        case "infusing": .infusing
        case "paused": .paused
        case "withdrawing": .withdrawing
        case "purging": .purging
        case "unknown": .unknown
        default: nil
        }
    }

    static func jsonText<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, json text: String) -> T? {
        try? JSONDecoder().decode(type, from: Data(text.utf8))
    }
}
