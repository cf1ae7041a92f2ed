// Thin wrappers over the Linux calls the supervisor's real-time runner needs and Swift's Glibc module
// does not export (eventfd, timerfd). Each returns what the system call returns (-1 and errno on error).
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

#endif
