import CRealTime
import Foundation

/// Where the real-time threads (the supervisor runner, and the device links' threads that publish its
/// inputs) run: all on one CPU, or wherever the kernel places them (the default of `infusionctl run`).
///
/// What pinning changes (measured and traced; docs/supervisor.md "Real-time placement"): a link thread's
/// publication wakes the SCHED_FIFO runner. Unpinned, the kernel wakes it on the CPU it last ran on, and when
/// a normal task there is inside a long kernel path, a `preempt=none` kernel holds the wake-up until that
/// path ends (traced up to 1.7 ms). Pinned together, the runner preempts its publisher as that returns from
/// its system call, which cuts the supervisor's part of decision-to-wire. But the device's bytes reach the
/// link's reader through the tty layer's flush work, a kernel worker under the normal scheduler, and with
/// every real-time thread on one CPU that part got slower in most runs, so end to end pinning did not win
/// on a shared machine. Pin on a box whose chosen CPU is kept free of other work (isolcpus, IRQ and
/// workqueue affinity), and measure.
///
/// Pure except `automatic()` and `allowedCPUs()`, which read the process's affinity; any thread.
public enum RealTimePlacement: Hashable, Sendable {
    /// Pin every real-time thread to this CPU.
    case pinned(cpu: Int32)
    /// Let the kernel place them; `reason` says why (for the log).
    case unpinned(reason: String)

    /// The CPU to pin to, or nil.
    public var cpu: Int32? {
        if case .pinned(let cpu) = self { return cpu }
        return nil
    }

    /// The highest-numbered CPU this process may use (`choose(allowed:)` over `allowedCPUs()`).
    public static func automatic() -> RealTimePlacement {
        choose(allowed: allowedCPUs())
    }

    /// The highest-numbered CPU in `allowed` when there is more than one (one must stay for everything
    /// else: the kernel's own work, the record store, the console); otherwise unpinned, with the reason.
    public static func choose(allowed: [Int32]) -> RealTimePlacement {
        guard allowed.count > 1, let cpu = allowed.max() else {
            return .unpinned(reason: allowed.count == 1
                ? "this process may use one CPU only, which everything else needs too"
                : "this process's CPUs could not be read")
        }
        return .pinned(cpu: cpu)
    }

    /// The CPUs the calling thread may run on (sched_getaffinity), in order; empty when it cannot be read.
    public static func allowedCPUs() -> [Int32] {
        var cpus = [Int32](repeating: 0, count: 1024)  // CPU_SETSIZE
        let count = cpus.withUnsafeMutableBufferPointer { crt_allowed_cpus($0.baseAddress, Int32($0.count)) }
        return count > 0 ? Array(cpus.prefix(Int(count))) : []
    }
}
