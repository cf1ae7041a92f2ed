import CRealTime
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
/// CPU: with `cpu` set, those threads are also pinned to that one CPU, the CPU the supervisor's runner is
/// pinned to (`SupervisorRunner.Configuration.cpu`). Why: a link thread that publishes a sample wakes the
/// supervisor, and the kernel wakes a real-time thread on the CPU it last ran on. If that is the OTHER
/// CPU, and a normal-priority task is inside a long kernel path there, the supervisor waits until that
/// task reaches a preemption point (on a `preempt=none` kernel, up to milliseconds: traced 0.7 and 1.7 ms
/// under load, with the waker's own CPU idle for real-time work meanwhile; the kernel moves a queued
/// real-time task to another CPU only when its own CPU has two). On one shared CPU the wake-up preempts
/// the waker itself as it returns from the system call.
///
/// Threads started after `useRealTime(priority:cpu:)` apply it as they start; threads already running
/// keep what they had. Links over a pseudo-terminal MASTER (the simulators' side) are never raised.
/// When the system refuses (no CAP_SYS_NICE, RLIMIT_RTPRIO 0) the thread stays in the normal scheduler
/// and says so once in the log; it works, with weaker latency.
///
/// Thread rules: any thread; set it once at start-up, before opening devices.
public enum LinkThreadScheduling {
    private static let priority = Atomic<Int32>(0)
    private static let cpu = Atomic<Int32>(-1)
    private static let refusalLogged = Atomic<Bool>(false)
    private static let pinRefusalLogged = Atomic<Bool>(false)
    private static let raisedCount = Atomic<Int>(0)
    private static let pinnedCount = Atomic<Int>(0)
    private static let logger = Logger(label: "infusion.deviceio.link-scheduling")

    /// Run device-link reader threads under SCHED_FIFO at `priority` (1–99), or in the normal
    /// scheduler when nil (the default). Out-of-range priorities are clamped to 1…99. `cpu`: the CPU to
    /// pin them to (the supervisor's; see the type's description), or nil to let them run anywhere.
    /// Pinning applies only with a priority: it serves the real-time wake-up, not the normal scheduler.
    public static func useRealTime(priority newValue: Int32?, cpu newCPU: Int32? = nil) {
        priority.store(newValue.map { min(max($0, 1), 99) } ?? 0, ordering: .releasing)
        cpu.store(newCPU.map { max($0, 0) } ?? -1, ordering: .releasing)
    }

    /// The CPU new real-time link threads are pinned to, or nil when they are not pinned.
    public static var pinnedCPU: Int32? {
        let value = cpu.load(ordering: .acquiring)
        return value >= 0 && realTimePriority != nil ? value : nil
    }

    /// The SCHED_FIFO priority new reader threads ask for, or nil for the normal scheduler.
    public static var realTimePriority: Int32? {
        let value = priority.load(ordering: .acquiring)
        return value > 0 ? value : nil
    }

    /// How many reader threads have run under SCHED_FIFO since the process started (diagnostics, tests).
    public static var realTimeThreadsStarted: Int { raisedCount.load(ordering: .relaxed) }

    /// How many of those were also pinned to `pinnedCPU` since the process started (diagnostics, tests).
    public static var realTimeThreadsPinned: Int { pinnedCount.load(ordering: .relaxed) }

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
        if let target = pinnedCPU {
            let pinned = crt_pin_current_thread_to_cpu(target)
            if pinned == 0 { pinnedCount.wrappingAdd(1, ordering: .relaxed) }
            if pinned != 0, !pinRefusalLogged.exchange(true, ordering: .relaxed) {
                logger.warning(
                    "device link threads could not be pinned to CPU \(target) (sched_setaffinity: \(String(cString: strerror(pinned)))): they run on any CPU, so waking the supervisor may wait for a kernel path on another CPU; choose a CPU this process may use",
                    metadata: ["link": "\(link)"])
            }
        }
        return true
    }
}
