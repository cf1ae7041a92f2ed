import Dispatch
import Foundation
import Glibc
import InfusionCore
import Synchronization

@testable import DeviceIO

/// Collects a link's events from its delivery thread and lets a test wait for a condition on them.
final class EventRecorder: Sendable {
    private let events = Mutex<[LinkEvent]>([])
    private let signal = DispatchSemaphore(value: 0)

    /// The handler to give to `start(handler:)`.
    var handler: LinkHandler {
        { [self] event in
            events.withLock { $0.append(event) }
            signal.signal()
        }
    }

    /// A copy of the events so far.
    var snapshot: [LinkEvent] { events.withLock { $0 } }

    /// All bytes received so far, concatenated.
    var receivedBytes: [UInt8] {
        snapshot.flatMap { event -> [UInt8] in
            if case .received(let bytes, _) = event { return bytes }
            return []
        }
    }

    /// Waits until `condition` holds on the events (true) or `timeout` passes (false).
    @discardableResult
    func wait(timeout: Duration = .seconds(5), until condition: ([LinkEvent]) -> Bool) -> Bool {
        let deadline = SystemMonotonicClock().now() + timeout
        while true {
            if events.withLock({ condition($0) }) { return true }
            let remaining = deadline - SystemMonotonicClock().now()
            if remaining <= .zero { return false }
            _ = signal.wait(timeout: .now() + .nanoseconds(Int(remaining.nanoseconds)))
        }
    }

    /// Waits until at least `count` bytes have been received.
    @discardableResult
    func waitForBytes(_ count: Int, timeout: Duration = .seconds(5)) -> Bool {
        wait(timeout: timeout) { events in
            events.reduce(0) { total, event in
                if case .received(let bytes, _) = event { return total + bytes.count }
                return total
            } >= count
        }
    }
}

extension LinkEvent {
    var isTerminal: Bool {
        switch self {
        case .closed, .disconnected: true
        default: false
        }
    }
    var isPeerConnected: Bool { if case .peerConnected = self { true } else { false } }
    var isPeerDisconnected: Bool { if case .peerDisconnected = self { true } else { false } }
    var isDisconnected: Bool { if case .disconnected = self { true } else { false } }
    var isClosed: Bool { if case .closed = self { true } else { false } }
}

/// Runs `body` on a new thread and returns a handle to wait for its result.
final class Background<T: Sendable>: Sendable {
    private let result = Mutex<T?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> T) {
        let thread = Thread(block: { [self] in
            let value = body()
            result.withLock { $0 = value }
            done.signal()
        })
        thread.start()
    }

    /// The result, or nil when `body` has not finished within `timeout`.
    func value(timeout: Duration = .seconds(5)) -> T? {
        guard done.wait(timeout: .now() + .nanoseconds(Int(timeout.nanoseconds))) == .success else { return nil }
        done.signal()
        return result.withLock { $0 }
    }
}

/// The outcome of a throwing device call, as a value a test can compare.
enum Outcome<T: Sendable & Equatable>: Sendable, Equatable {
    case success(T)
    case failure(DeviceIOError)

    init(_ body: () throws(DeviceIOError) -> T) {
        do throws(DeviceIOError) { self = .success(try body()) } catch { self = .failure(error) }
    }
}

/// Time `body` on the monotonic clock.
func measure<T>(_ body: () throws -> T) rethrows -> (T, Duration) {
    let start = SystemMonotonicClock().now()
    let value = try body()
    return (value, SystemMonotonicClock().now() - start)
}

/// Sleeps the calling thread (tests only; never in library code).
func pause(_ duration: Duration) {
    var ts = timespec(tv_sec: Int(duration.nanoseconds / 1_000_000_000), tv_nsec: Int(duration.nanoseconds % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&ts, &remaining) != 0 && errno == EINTR { ts = remaining }
}

/// True while `path` exists (a pty's /dev/pts/N node disappears when its master closes).
func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
