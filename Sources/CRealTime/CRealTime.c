#define _GNU_SOURCE
#include "CRealTime.h"
#include <errno.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <sched.h>

int crt_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int crt_eventfd_signal(int fd) {
    uint64_t one = 1;
    return write(fd, &one, sizeof one) == (ssize_t)sizeof one || errno == EAGAIN ? 0 : -1;
}

uint64_t crt_eventfd_drain(int fd) {
    uint64_t value = 0;
    return read(fd, &value, sizeof value) == (ssize_t)sizeof value ? value : 0;
}

int crt_timerfd_monotonic(void) { return timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC); }

int crt_timerfd_arm_absolute(int fd, int64_t first_ns, int64_t interval_ns) {
    struct itimerspec spec;
    spec.it_value.tv_sec = (time_t)(first_ns / 1000000000);
    spec.it_value.tv_nsec = (long)(first_ns % 1000000000);
    spec.it_interval.tv_sec = (time_t)(interval_ns / 1000000000);
    spec.it_interval.tv_nsec = (long)(interval_ns % 1000000000);
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, NULL);
}

uint64_t crt_timerfd_expirations(int fd) {
    uint64_t value = 0;
    return read(fd, &value, sizeof value) == (ssize_t)sizeof value ? value : 0;
}

int crt_pin_current_thread_to_cpu(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : errno;
}

int crt_last_allowed_cpu(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    for (int cpu = CPU_SETSIZE - 1; cpu >= 0; cpu--) {
        if (CPU_ISSET(cpu, &set)) return cpu;
    }
    errno = ESRCH;
    return -1;
}

int crt_allowed_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    return CPU_COUNT(&set);
}

int crt_allowed_cpus(int *cpus, int capacity) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    int count = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && count < capacity; cpu++) {
        if (CPU_ISSET(cpu, &set)) cpus[count++] = cpu;
    }
    return count;
}

int crt_current_cpu(void) { return sched_getcpu(); }
#else
int crt_eventfd(void) { errno = ENOSYS; return -1; }
int crt_eventfd_signal(int fd) { (void)fd; errno = ENOSYS; return -1; }
uint64_t crt_eventfd_drain(int fd) { (void)fd; return 0; }
int crt_timerfd_monotonic(void) { errno = ENOSYS; return -1; }
int crt_timerfd_arm_absolute(int fd, int64_t first_ns, int64_t interval_ns) { (void)fd; (void)first_ns; (void)interval_ns; errno = ENOSYS; return -1; }
uint64_t crt_timerfd_expirations(int fd) { (void)fd; return 0; }
int crt_pin_current_thread_to_cpu(int cpu) { (void)cpu; return ENOSYS; }
int crt_last_allowed_cpu(void) { errno = ENOSYS; return -1; }
int crt_allowed_cpu_count(void) { errno = ENOSYS; return -1; }
int crt_allowed_cpus(int *cpus, int capacity) { (void)cpus; (void)capacity; errno = ENOSYS; return -1; }
int crt_current_cpu(void) { errno = ENOSYS; return -1; }
#endif
