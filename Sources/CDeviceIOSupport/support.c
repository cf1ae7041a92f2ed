#define _GNU_SOURCE
#include "CDeviceIOSupport.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int infusion_posix_openpt(int flags) { return posix_openpt(flags); }

int infusion_grantpt(int fd) { return grantpt(fd); }

int infusion_unlockpt(int fd) { return unlockpt(fd); }

int infusion_ptsname_r(int fd, char *buffer, size_t length) { return ptsname_r(fd, buffer, length); }

int infusion_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }

int infusion_set_current_thread_name(const char *name) {
    char shortName[16];
    strncpy(shortName, name, sizeof shortName - 1);
    shortName[sizeof shortName - 1] = '\0';
    return pthread_setname_np(pthread_self(), shortName);
}
