import Drivers
import Foundation
import InfusionCore
import Logging
import Records

/// The recovery path after a crash (docs/session.md "Recovery"): finds the sessions a dead process left
/// `running`, marks them interrupted, asks the pump for its state and its own volume counter, records
/// both, stops the pump if it reports delivery (or cannot be read), records that, and NEVER starts
/// delivery. Run it at process start, before any new session.
///
/// Threads: any; `recover` blocks on the record store and awaits the pump.
public struct SessionRecovery: Sendable {
    /// The record store (owned by the caller).
    public let store: RecordStore
    /// The clock the pump driver uses (its time-outs are on it).
    public let clock: any MonotonicClock
    private let logger: Logger

    /// Recovery over `store`.
    public init(store: RecordStore, clock: any MonotonicClock = SystemMonotonicClock(),
                logger: Logger = Logger(label: "infusioncontrol.session.recovery")) {
        self.store = store
        self.clock = clock
        self.logger = logger
    }

    /// The sessions still marked running (what a crashed process left). Any thread.
    public func unfinishedSessions() throws(RecordStoreError) -> [SessionRecord] { try store.unfinishedSessions() }

    /// Recovers `sessions` (from `unfinishedSessions()`): marks each interrupted (committed first), then
    /// asks `pump` for its status, retrying for up to `connectTimeout` of REAL time while the driver
    /// connects; records what it reports on every recovered session; stops it when it reports anything
    /// but stopped or paused (or never answers) and records the outcome. Returns one report per session.
    /// Throws when the record store fails (what was committed before stays).
    public func recover(_ sessions: [SessionRecord], pump: any InfusionPump, connectTimeout: Duration = .seconds(3),
                        detectedAt: Date = Date()) async throws(RecordStoreError) -> [RecoveryReport] {
        guard !sessions.isEmpty else { return [] }
        for session in sessions {
            try store.markInterrupted(session.id, detectedAt: detectedAt)
            logger.warning("session \(session.id) was interrupted (the controller stopped without ending it): marked interrupted")
        }
        let status = await readStatus(pump, within: connectTimeout)
        var stopped = false
        var stopText: String?
        let delivering = status.map { !$0.state.isKnownStopped } ?? true
        if delivering {
            switch await pump.stop() {
            case .confirmed(let after):
                stopped = after.state.isKnownStopped
                stopText = stopped ? "the controller stopped the pump; it confirmed (\(after.state))"
                    : "the controller sent a stop; the pump now reports \(after.state): stop it by hand"
            case .refused(let refusal):
                stopText = "the controller sent a stop and the pump refused it (\(refusal.code): \(refusal.description)): stop it by hand NOW"
            case .uncertain(let reason):
                stopText = "the controller sent a stop that was not confirmed (\(reason)): stop the pump by hand NOW"
            }
        }
        var reports: [RecoveryReport] = []
        for session in sessions {
            let statusText: String
            var details: [String: JSONValue] = ["recovery": true, "pump": .string(pump.name)]
            if let status {
                statusText = "recovery: the pump reports \(status.state)"
                    + (status.volumeInfused.map { " with \($0.formatted(fractionDigits: 3)) infused (its own counter)" } ?? ", no volume counter")
                    + (status.rate.map { " at \($0)" } ?? "")
                details["pump_state"] = .string(status.state.description)
                details["volume_infused_ml"] = status.volumeInfused.map { .number($0.millilitres) } ?? .null
                details["rate_ml_h"] = status.rate.map { .number($0.millilitresPerHour) } ?? .null
                details["alarms"] = .string(status.alarms.names.joined(separator: ", "))
            } else {
                statusText = "recovery: the pump (\(pump.name)) did not answer: its state and volume are unknown"
                details["pump_state"] = .null
            }
            try store.appendRecoveryEvent(NewEvent(kind: .note, monotonic: .origin, wallClock: Date(), message: statusText,
                                                   channel: "1", details: .object(details)), to: session.id)
            if let stopText {
                try store.appendRecoveryEvent(NewEvent(kind: .note, monotonic: .origin, wallClock: Date(), message: "recovery: \(stopText)",
                                                       channel: "1", details: ["recovery": true, "stop_confirmed": .bool(stopped)]), to: session.id)
            }
            let next = "Nothing was started. Check the patient and the pump, review the record (infusionctl report \(session.id)), then start a new session."
            let found = status.map { "the pump reports \($0.state)\($0.volumeInfused.map { " with \($0.formatted(fractionDigits: 3)) infused" } ?? "")" }
                ?? "the pump did not answer"
            let message = "Session \(session.id) (patient \(session.patientID)) was interrupted: the controller stopped without ending it. "
                + "\(found.prefix(1).uppercased() + found.dropFirst())." + (stopText.map { " \($0.prefix(1).uppercased() + $0.dropFirst())." } ?? "") + " " + next
            reports.append(RecoveryReport(session: session.id, pumpState: status?.state, volumeInfused: status?.volumeInfused,
                                          stoppedByController: stopped, message: message))
            logger.warning("\(message)")
        }
        return reports
    }

    private func readStatus(_ pump: any InfusionPump, within timeout: Duration) async -> PumpStatus? {
        let deadline = ContinuousClock.now + timeout
        repeat {
            if case .confirmed(let status) = await pump.status() { return status }
            try? await Task.sleep(for: .milliseconds(50))
        } while ContinuousClock.now < deadline
        return nil
    }
}
