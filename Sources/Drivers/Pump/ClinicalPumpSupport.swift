import InfusionCore
import Synchronization

/// What a clinical-pump session endpoint (Alaris, Fresenius) answers to one request: the public
/// classes map it onto `PumpCommandOutcome`. Pure value; any thread.
public enum ClinicalPumpResult: Hashable, Sendable {
    /// `identify()` confirmed.
    case identity(PumpIdentity)
    /// `setRate` confirmed, with what was asked and what was set (rounded toward less).
    case rate(Rounded<VolumeRate>)
    /// `setVolumeToInfuse` confirmed.
    case volume(Rounded<Volume>)
    /// A status read confirmed (also the answer to start and stop).
    case status(PumpStatus)
    /// `clearVolume` confirmed: the counter now reads this.
    case volumeCleared(Volume)
    /// The pump answered and refused (or the family cannot do it).
    case refused(PumpRefusal)
    /// Sent but not acknowledged, or not sendable: never assumed done or failed.
    case uncertain(String)

    /// The result as the `InfusionPump` outcome of type `Value`, using `extract` for confirmed values;
    /// a confirmed result of the wrong kind becomes `.uncertain` (a driver bug, logged by the caller).
    func outcome<Value: Sendable>(_ extract: (ClinicalPumpResult) -> Value?) -> PumpCommandOutcome<Value> {
        switch self {
        case let .refused(refusal): return .refused(refusal)
        case let .uncertain(reason): return .uncertain(reason: reason)
        default:
            if let value = extract(self) { return .confirmed(value) }
            return .uncertain(reason: "the pump's answer did not carry the expected value (\(self))")
        }
    }
}

/// Continuations of the requests a public pump class has submitted to its session endpoint, keyed by
/// request id. The endpoint guarantees one completion per request (reply, deadline, link loss), so
/// every `wait` resumes exactly once. Any thread.
final class ClinicalRequestWaiters: Sendable {
    private struct State {
        var next: UInt64 = 1
        var waiting: [UInt64: CheckedContinuation<ClinicalPumpResult, Never>] = [:]
    }
    private let state = Mutex(State())

    /// Registers a continuation under a new id, then calls `submit(id)` (which may complete it at once).
    func wait(_ submit: (UInt64) -> Void) async -> ClinicalPumpResult {
        await withCheckedContinuation { (continuation: CheckedContinuation<ClinicalPumpResult, Never>) in
            let id = state.withLock { state -> UInt64 in
                let id = state.next
                state.next += 1
                state.waiting[id] = continuation
                return id
            }
            submit(id)
        }
    }

    /// Resumes the request `id` (ignored when unknown or already resumed).
    func resume(_ id: UInt64, with result: ClinicalPumpResult) {
        let continuation = state.withLock { $0.waiting.removeValue(forKey: id) }
        continuation?.resume(returning: result)
    }

    /// Resumes every waiting request with `result` (on close).
    func resumeAll(with result: ClinicalPumpResult) {
        let all = state.withLock { state -> [CheckedContinuation<ClinicalPumpResult, Never>] in
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for continuation in all { continuation.resume(returning: result) }
    }
}

/// The last status and the event stream of one pump object. Any thread.
final class ClinicalPumpEvents: Sendable {
    let stream: AsyncStream<PumpEvent>
    private let continuation: AsyncStream<PumpEvent>.Continuation
    private let last = Mutex<PumpStatus?>(nil)

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: PumpEvent.self, bufferingPolicy: .bufferingNewest(256))
    }

    var lastStatus: PumpStatus? { last.withLock { $0 } }

    func publish(_ event: PumpEvent) {
        if case let .status(status) = event { last.withLock { $0 = status } }
        continuation.yield(event)
    }

    func finish() { continuation.finish() }
}

/// Refusals shared by the clinical families for interface calls they cannot honour.
enum ClinicalRefusals {
    static func noWatchdog(_ family: String) -> PumpRefusal {
        PumpRefusal(code: "no-watchdog",
                    description: "the \(family) protocol has no publicly documented pump-side communication watchdog: keep the supervisor's own stop path and watch the pump at the bedside")
    }

    static func syringeFromPump(_ family: String) -> PumpRefusal {
        PumpRefusal(code: "syringe-at-pump",
                    description: "the \(family) pump identifies the syringe itself (its own syringe library); select and confirm the syringe on the pump")
    }
}
