// Thin C wrappers for the few glibc calls DeviceIO needs that Swift's Glibc module does not import
// (they are declared only under _GNU_SOURCE / _XOPEN_SOURCE, which the Glibc module is built
// without). Each wrapper returns exactly what the wrapped call returns and leaves errno as it set it.
#ifndef INFUSION_CDEVICEIOSUPPORT_H
#define INFUSION_CDEVICEIOSUPPORT_H

#include <stddef.h>

/// posix_openpt(flags): a new pseudo-terminal master descriptor, or -1 with errno.
int infusion_posix_openpt(int flags);
/// grantpt(fd): 0, or -1 with errno.
int infusion_grantpt(int fd);
/// unlockpt(fd): 0, or -1 with errno.
int infusion_unlockpt(int fd);
/// ptsname_r(fd, buffer, length): 0, or an error number.
int infusion_ptsname_r(int fd, char *buffer, size_t length);
/// pipe2(fds, flags): 0, or -1 with errno.
int infusion_pipe2(int fds[2], int flags);
/// pthread_setname_np(pthread_self(), name) (name truncated to 15 bytes): 0, or an error number.
int infusion_set_current_thread_name(const char *name);

#endif
