import CLibUSB
import CUdev
import Testing

/// The system-library shims link and really call each library (no hardware is needed).
@Suite("System libraries")
struct SystemLibrariesTests {
    @Test("libudev: create a context and enumerate the tty subsystem")
    func udevEnumeratesTTY() throws {
        let udev = try #require(udev_new(), "udev_new failed")
        defer { udev_unref(udev) }
        let enumerate = try #require(udev_enumerate_new(udev))
        defer { udev_enumerate_unref(enumerate) }
        #expect(udev_enumerate_add_match_subsystem(enumerate, "tty") == 0)
        #expect(udev_enumerate_scan_devices(enumerate) == 0)
        var entry = udev_enumerate_get_list_entry(enumerate)
        while let current = entry {
            let path = udev_list_entry_get_name(current).map { String(cString: $0) } ?? ""
            #expect(path.hasPrefix("/sys/"))
            entry = udev_list_entry_get_next(current)
        }
        // Containers may expose no tty devices to udev, so the list may be empty; what matters is that
        // the scan succeeded and every entry is a sysfs path.
    }

    @Test("libusb: initialise, list devices and exit cleanly")
    func libusbListsDevices() throws {
        var context: OpaquePointer?
        let status = libusb_init(&context)
        #expect(status == 0, "libusb_init returned \(status)")
        guard status == 0, let context else { return }
        defer { libusb_exit(context) }
        var list: UnsafeMutablePointer<OpaquePointer?>?
        let count = libusb_get_device_list(context, &list)
        #expect(count >= 0, "libusb_get_device_list returned \(count)")
        if let list { libusb_free_device_list(list, 1) }
        let version = try #require(libusb_get_version())
        #expect(version.pointee.major == 1)
    }
}
