// libudev (systemd) for device discovery and hot-plug. Debian 12: libudev-dev (systemd 252).
#ifndef INFUSION_CUDEV_SHIM_H
#define INFUSION_CUDEV_SHIM_H
#include <libudev.h>
#endif
