import Glibc
import Logging
import Synchronization

/// Process-wide scheduling of the threads that serve device links on the driver's side: the reader
/// thread of each `DescriptorLink` over a `SerialPort` and the timer thread of each driver's
/// `EndpointHost` (which shares the endpoint's lock with that reader).
///
/// Why: those threads are on the safety path. An oximeter frame that should stop the pump is decoded
/// and published to the supervisor on its link's thread; in the normal scheduler that thread can wait
/// for a CPU behind any other work on the machine (measured: decision-to-wire p99 2.6 ms on a loaded
/// 2-core machine), while the supervisor's own thread runs under SCHED_FIFO. With a real-time priority
/// the reader runs as soon as its bytes arrive. It should sit just below the supervisor's priority, so
/// that a device flooding bytes can never delay the supervisor's tick; a reader spends its time blocked
/// in `poll(2)`, so it takes the CPU only for the bytes it really gets.
///
/// Threads started after `useRealTime(priority:)` apply it as they start; threads already running keep
/// what they had. Links over a pseudo-terminal MASTER (the simulators' side) are never raised.
/// When the system refuses (no CAP_SYS_NICE, RLIMIT_RTPRIO 0) the thread stays in the normal scheduler
/// and says so once in the log; it works, with weaker latency.
///
/// Thread rules: any thread; set it once at start-up, before opening devices.
public enum LinkThreadScheduling {
    private static let priority = Atomic<Int32>(0)
    private static let refusalLogged = Atomic<Bool>(false)
    private static let raisedCount = Atomic<Int>(0)
    private static let logger = Logger(label: "infusion.deviceio.link-scheduling")

    /// Run device-link reader threads under SCHED_FIFO at `priority` (1–99), or in the normal
    /// scheduler when nil (the default). Out-of-range priorities are clamped to 1…99.
    public static func useRealTime(priority newValue: Int32?) {
        priority.store(newValue.map { min(max($0, 1), 99) } ?? 0, ordering: .releasing)
    }

    /// The SCHED_FIFO priority new reader threads ask for, or nil for the normal scheduler.
    public static var realTimePriority: Int32? {
        let value = priority.load(ordering: .acquiring)
        return value > 0 ? value : nil
    }

    /// How many reader threads have run under SCHED_FIFO since the process started (diagnostics, tests).
    public static var realTimeThreadsStarted: Int { raisedCount.load(ordering: .relaxed) }

    /// Applies the setting to the calling thread (called by a link's reader thread, or a driver host's
    /// timer thread, as it starts).
    /// Returns true when the thread now runs under SCHED_FIFO.
    @discardableResult
    static func applyToCurrentThread(link: String) -> Bool {
        guard let wanted = realTimePriority else { return false }
        var parameters = sched_param()
        parameters.sched_priority = wanted
        let rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &parameters)
        guard rc == 0 else {
            if !refusalLogged.exchange(true, ordering: .relaxed) {
                logger.warning(
                    "device link threads could not use SCHED_FIFO priority \(wanted) (pthread_setschedparam: \(String(cString: strerror(rc)))): they run under the normal scheduler and a stop decision may wait for a CPU; grant CAP_SYS_NICE or set LimitRTPRIO in the systemd unit",
                    metadata: ["link": "\(link)"])
            }
            return false
        }
        raisedCount.wrappingAdd(1, ordering: .relaxed)
        return true
    }
}
