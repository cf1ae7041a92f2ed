// libusb-1.0 for USB enumeration and hot-plug. Debian 12: libusb-1.0-0-dev (1.0.26).
// pkg-config's cflags add -I/usr/include/libusb-1.0, so the header is found by its bare name.
#ifndef INFUSION_CLIBUSB_SHIM_H
#define INFUSION_CLIBUSB_SHIM_H
#include <libusb.h>
#endif
