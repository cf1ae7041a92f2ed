/// What went wrong with the record database: what happened, on which file, and what to do next.
///
/// Every write that throws has changed nothing: its transaction was rolled back, so the records it carried
/// are NOT acknowledged and must not be shown or acted on as recorded.
public enum RecordStoreError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The database file does not exist (and the caller asked not to create it).
    case notFound(path: String)
    /// The file could not be opened (permissions, a directory, a missing parent folder).
    case cannotOpen(path: String, reason: String)
    /// The file is not an SQLite database, or is an SQLite database that is not an InfusionControl record.
    case notARecordDatabase(path: String, reason: String)
    /// The integrity check failed: the file is damaged. Nothing was changed or repaired.
    case corrupt(path: String, problems: [String])
    /// The file was written by a newer InfusionControl whose schema this version does not know.
    case newerSchema(path: String, unknownMigrations: [String])
    /// No session has this id.
    case unknownSession(SessionID)
    /// The session is not running, so it cannot be ended or marked interrupted.
    case sessionNotRunning(SessionID, SessionState)
    /// The caller passed something that cannot be recorded (a blank operator id, a NaN). Nothing was written.
    case invalidInput(String)
    /// A write failed (disk full, I/O error, locked). Nothing of it was committed.
    case writeFailed(path: String, reason: String)
    /// A read failed.
    case readFailed(path: String, reason: String)
    /// A stored row could not be understood (a value outside what this version writes).
    case unreadableRecord(path: String, what: String)

    public var description: String {
        switch self {
        case let .notFound(path):
            return "no record database at \(path): check the path (--db or $INFUSIONCONTROL_DB), or run a session to create one"
        case let .cannotOpen(path, reason):
            return "cannot open the record database \(path): \(reason). Check that the path is a file and that this user may read and write it and its folder"
        case let .notARecordDatabase(path, reason):
            return "\(path) is not an InfusionControl record database (\(reason)). Nothing was changed: check the path (--db or $INFUSIONCONTROL_DB)"
        case let .corrupt(path, problems):
            let shown = problems.prefix(3).joined(separator: "; ")
            let more = problems.count > 3 ? " (and \(problems.count - 3) more)" : ""
            return """
                the record database \(path) failed its integrity check: \(shown)\(more). Nothing was changed and \
                nothing was repaired. Do not write to this file: keep a copy of it (with any \(path)-wal and \
                \(path)-shm files beside it) for investigation, and record new sessions in a new file (--db or \
                $INFUSIONCONTROL_DB). The readable records can be extracted into a new file with sqlite3's .recover command
                """
        case let .newerSchema(path, unknown):
            return "the record database \(path) was written by a newer InfusionControl (schema \(unknown.joined(separator: ", "))): use that version to read it; nothing was changed"
        case let .unknownSession(id):
            return "no session \(id) in the record database: list the sessions with `infusionctl sessions`"
        case let .sessionNotRunning(id, state):
            return "session \(id) is already \(state.rawValue): only a running session can be ended or marked interrupted"
        case let .invalidInput(what):
            return "not recorded: \(what). Nothing was written"
        case let .writeFailed(path, reason):
            return "could not write to the record database \(path): \(reason). Nothing of this write was recorded: check the disk (free space, permissions, health)"
        case let .readFailed(path, reason):
            return "could not read the record database \(path): \(reason)"
        case let .unreadableRecord(path, what):
            return "the record database \(path) holds a record this version cannot read (\(what)): check it with a newer InfusionControl"
        }
    }
}
