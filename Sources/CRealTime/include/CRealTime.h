// Thin wrappers over the Linux calls the real-time threads need and Swift's Glibc module does not
// export (eventfd, timerfd, CPU affinity): the supervisor's runner, and the device links' threads in
// DeviceIO. Each returns what the system call returns (-1 and errno on error).
// Safe to call from any thread; none allocates.
#ifndef C_REAL_TIME_H
#define C_REAL_TIME_H

#include <stdint.h>

/// A non-blocking, close-on-exec eventfd (Linux), or -1 with errno (ENOSYS on other systems).
int crt_eventfd(void);

/// Adds 1 to an eventfd's counter (wakes a poller). Returns 0, or -1 with errno.
int crt_eventfd_signal(int fd);

/// Reads and clears an eventfd's counter; returns the count read (0 when nothing was pending).
uint64_t crt_eventfd_drain(int fd);

/// A non-blocking, close-on-exec timerfd on CLOCK_MONOTONIC, or -1 with errno.
int crt_timerfd_monotonic(void);

/// Arms a timerfd to expire first at the absolute CLOCK_MONOTONIC instant `first_ns` and then every
/// `interval_ns` (0: once). Returns 0, or -1 with errno.
int crt_timerfd_arm_absolute(int fd, int64_t first_ns, int64_t interval_ns);

/// Reads a timerfd's expiration count (0 when none is pending).
uint64_t crt_timerfd_expirations(int fd);

/// Pins the calling thread to the one CPU `cpu` (sched_setaffinity(0, …) on the calling thread).
/// Returns 0, or an error number: EINVAL when `cpu` is negative, beyond the kernel's CPU set size, or
/// not in the process's allowed set (cpuset, taskset); ENOSYS on systems without CPU affinity.
int crt_pin_current_thread_to_cpu(int cpu);

/// The highest-numbered CPU the calling thread may run on (sched_getaffinity), or -1 with errno.
int crt_last_allowed_cpu(void);

/// How many CPUs the calling thread may run on (sched_getaffinity), or -1 with errno.
int crt_allowed_cpu_count(void);

/// Writes the CPUs the calling thread may run on (sched_getaffinity, one call), in increasing order, into
/// `cpus` (at most `capacity`; the caller owns the buffer) and returns how many there are, or -1 with errno.
int crt_allowed_cpus(int *cpus, int capacity);

/// The CPU the calling thread is running on right now (sched_getcpu), or -1 with errno.
int crt_current_cpu(void);

#endif
